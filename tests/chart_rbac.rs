//! The Helm chart on a real kube-apiserver (1.20) with moto for AWS: the README's "Install with
//! Helm" commands install it, then the operator binary runs with the Deployment's own arguments
//! and environment, authenticated only as the chart's ServiceAccount (a `kubectl create token`
//! token). The operator story must work under exactly the chart's RBAC — shrink a role with the
//! backup ConfigMap and Events, revert drift, wait for a Manual approval, restore on delete — and
//! what the chart does not grant must be refused (403). Once cluster-wide (ClusterRole, two
//! replicas so leader election and its Lease Role) and once for one namespace (Role there).

use crate::control_plane;
use crate::k8s_tools;
use crate::moto;
use crate::operator_env;

use iam_tailor::controller::LeastPrivilegeRole;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use operator_env::story::{Story, broad_roles_and_trail};
use operator_env::{
    IamLastAccessedDouble, NS, Operator, crd_established, create_namespace, lpr, wait_event,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The README installs the release `iam-tailor` into namespace `iam-tailor`; its ServiceAccount
/// (the release's full name) is `iam-tailor` too.
const RELEASE_NS: &str = "iam-tailor";
const ACCOUNT_NAME: &str = "iam-tailor";
const CRD: &str = "leastprivilegeroles.iamtailor.dev";

/// A control plane and moto, with a place for helm's state, kubeconfigs and logs.
struct Env {
    server: control_plane::ControlPlane,
    aws: moto::Moto,
    iam_double: IamLastAccessedDouble,
    admin: kube::Client,
    dir: tempfile::TempDir,
}

impl Env {
    async fn start() -> Env {
        let server = control_plane::ControlPlane::start();
        let aws = moto::Moto::start();
        let admin = server.client().await;
        Env {
            server,
            iam_double: IamLastAccessedDouble::start(&aws.endpoint),
            aws,
            admin,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs a README block with bash (`set -euo pipefail`) in the repository, with helm and
    /// kubectl on PATH, the admin kubeconfig, and helm's state in the temporary directory.
    fn run_readme_block(&self, block: &str) {
        let mut command = Command::new("bash");
        command
            .args(["-euo", "pipefail", "-c", block])
            .current_dir(k8s_tools::repo())
            .env("PATH", k8s_tools::path_with_tools())
            .env("KUBECONFIG", &self.server.kubeconfig);
        k8s_tools::isolate_helm(&mut command, &self.dir.path().join("helm"));
        let started = Instant::now();
        k8s_tools::run(&mut command);
        eprintln!("README block ran in {:?}:\n{block}", started.elapsed());
    }

    fn kubectl(&self, kubeconfig: &Path) -> Command {
        let mut command = Command::new(k8s_tools::kubectl_path());
        command.arg("--kubeconfig").arg(kubeconfig);
        command
    }

    /// A kubeconfig for the same apiserver (server and CA from the admin's) that authenticates
    /// with a fresh TokenRequest token of the chart's ServiceAccount, and nothing else.
    fn service_account_kubeconfig(&self) -> PathBuf {
        let token = k8s_tools::run(self.kubectl(&self.server.kubeconfig).args([
            "create",
            "token",
            ACCOUNT_NAME,
            "--namespace",
            RELEASE_NS,
            "--duration",
            "1h",
        ]));
        let token = token.trim();
        assert!(token.starts_with("eyJ"), "a JWT: {token}");
        let admin: serde_json::Value =
            serde_norway::from_str(&std::fs::read_to_string(&self.server.kubeconfig).unwrap())
                .unwrap();
        let cluster = &admin["clusters"][0]["cluster"];
        let user = format!("system:serviceaccount:{RELEASE_NS}:{ACCOUNT_NAME}");
        let config = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": {
                "server": cluster["server"],
                "certificate-authority-data": cluster["certificate-authority-data"],
            }}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "operator", "context": {"cluster": "test", "user": user}}],
            "current-context": "operator",
        });
        let path = self.dir.path().join("operator.kubeconfig");
        std::fs::write(&path, serde_norway::to_string(&config).unwrap()).unwrap();
        path
    }

    /// The operator as the chart's Deployment runs it: its container's arguments and
    /// environment (the downward API filled in as the kubelet would), with the metrics address
    /// moved to a loopback port the operator chooses as it binds (port 0), Kubernetes access through `kubeconfig` and AWS at moto.
    async fn operator_from_chart(&self, kubeconfig: &Path) -> (Operator, Vec<String>) {
        let deployments: Api<Deployment> = Api::namespaced(self.admin.clone(), RELEASE_NS);
        let deployment = deployments.get(ACCOUNT_NAME).await.unwrap();
        let pod = deployment.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some(ACCOUNT_NAME));
        let container = &pod.containers[0];
        assert!(container.command.is_none(), "the image's entrypoint runs");
        let chart_args = container.args.clone().unwrap();
        let args: Vec<String> = chart_args
            .iter()
            .map(|arg| {
                if arg.starts_with("--metrics-addr=") {
                    "--metrics-addr=127.0.0.1:0".to_string()
                } else if arg.starts_with("--min-drift-interval=") {
                    // The story waits for drift checks: seconds, not the chart's minute.
                    "--min-drift-interval=1s".to_string()
                } else {
                    arg.clone()
                }
            })
            .collect();
        for flag in ["--metrics-addr=", "--min-drift-interval="] {
            assert!(
                chart_args.iter().any(|a| a.starts_with(flag)),
                "{chart_args:?}"
            );
        }
        let mut env = Vec::new();
        for var in container.env.clone().unwrap_or_default() {
            let value = match (var.value, var.value_from) {
                (Some(value), _) => value,
                (None, Some(from)) => {
                    match from.field_ref.expect("only fieldRefs").field_path.as_str() {
                        "metadata.name" => "iam-tailor-7d9f-test".to_string(),
                        "metadata.namespace" => RELEASE_NS.to_string(),
                        other => panic!("unexpected fieldRef {other}"),
                    }
                }
                (None, None) => String::new(),
            };
            env.push((var.name, value));
        }
        let names: BTreeSet<&str> = env.iter().map(|(name, _)| name.as_str()).collect();
        assert!(
            ["POD_NAME", "POD_NAMESPACE", "AWS_REGION", "RUST_LOG"]
                .iter()
                .all(|n| names.contains(n)),
            "{names:?}"
        );
        env.retain(|(name, _)| name != "AWS_ENDPOINT_URL");
        for (name, value) in [
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("AWS_ENDPOINT_URL", &self.aws.endpoint),
            // moto has no last-accessed reports: IAM goes through the double in front of it.
            ("AWS_ENDPOINT_URL_IAM", &self.iam_double.endpoint),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ] {
            env.push((name.to_string(), value.to_string()));
        }
        eprintln!("operator: iam-tailor {}", args.join(" "));
        let operator = Operator::start_exact(self.dir.path(), &args, &env);
        (operator, chart_args)
    }

    /// Roles `app` and `worker` with broad access, `viewer` for a failing analysis, and their
    /// trail in S3.
    async fn aws_setup(&self) {
        broad_roles_and_trail(&self.aws.iam(), &self.aws.s3()).await;
    }
}

/// The operator story under the chart's RBAC, in namespace `ns`.
async fn story(env: &Env, operator: &Operator, ns: &str) {
    let started = Instant::now();
    let story = Story::new(&env.admin, env.aws.iam(), ns).await;

    // A failing analysis (no such bucket) is retried, and its Warning Event recorded each
    // time: created once, then patched.
    story
        .create(
            "broken",
            "  roleName: viewer\n  mode: Observe\n  cloudTrail: {s3: {bucket: no-such-bucket}}\n",
        )
        .await;

    // Enforce + Automatic: the role shrinks to what it used, after a backup ConfigMap.
    let app = story.enforce_app().await.status;
    let backup_name = &app.backup.as_ref().unwrap().config_map;

    // Drift: AdministratorAccess attached out of band is taken off again, with a Warning.
    story.attach_admin_out_of_band().await;
    story.drift_reverted().await;
    wait_event(&env.admin, ns, "app", "a Drifted Warning", |e| {
        e.reason.as_deref() == Some("Drifted") && e.type_.as_deref() == Some("Warning")
    })
    .await;

    // Manual approval: a proposal, and no write until its revision is approved.
    let (revision, _) = story.propose_worker("").await;
    story.approve_worker(&revision).await;

    // Delete with Restore: the original policies are back exactly and the backup is deleted.
    story.delete_and_restore_app().await;
    assert!(story.backup(&app).await.is_none(), "{backup_name} deleted");

    // The failing analysis' Event was recorded again: by a patch (events.k8s.io series). A
    // missing bucket is not retried soon (someone has to fix it), so a change to the resource
    // makes the operator try again.
    let broken: Api<LeastPrivilegeRole> = Api::namespaced(env.admin.clone(), ns);
    let touch = serde_json::json!({"metadata": {"annotations": {"retry": "1"}}});
    broken
        .patch("broken", &PatchParams::default(), &Patch::Merge(&touch))
        .await
        .unwrap();
    wait_event(&env.admin, ns, "broken", "a repeated Warning", |e| {
        e.type_.as_deref() == Some("Warning") && e.series.as_ref().is_some_and(|s| s.count >= 2)
    })
    .await;

    // Nothing the operator tried was refused: every write it needed was granted.
    let log = operator.log();
    // (kube's Api errors show the apiserver's "… is forbidden: User …" and `code: 403`.)
    for needle in ["is forbidden", "code: 403"] {
        let refused: Vec<&str> = log.lines().filter(|l| l.contains(needle)).collect();
        assert!(refused.is_empty(), "the operator was refused: {refused:#?}");
    }
    eprintln!("story in {ns}: {:?}", started.elapsed());
}

/// `kubectl auth can-i ARGS…` as the operator: true for yes, false for no.
fn can_i(env: &Env, kubeconfig: &Path, args: &[&str]) -> bool {
    let output = k8s_tools::output(env.kubectl(kubeconfig).args(["auth", "can-i"]).args(args));
    let answer = String::from_utf8_lossy(&output.stdout).trim().to_string();
    match (output.status.code(), answer.as_str()) {
        (Some(0), "yes") => true,
        (Some(1), "no") => false,
        _ => panic!(
            "kubectl auth can-i {args:?}: {:?} {answer}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// Asserts each (arguments, expected) answer of `kubectl auth can-i`.
fn assert_can_i(env: &Env, kubeconfig: &Path, table: &[(&str, bool)]) {
    let mut wrong = Vec::new();
    for (question, expected) in table {
        let args: Vec<&str> = question.split_whitespace().collect();
        if can_i(env, kubeconfig, &args) != *expected {
            wrong.push(format!("can-i {question}: expected {expected}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// What the chart grants in the watched namespace `ns`, and what it must not grant there;
/// then its backups' ConfigMaps in the release namespace.
fn watched_namespace_answers(ns: &str) -> Vec<(String, bool)> {
    let backups = [
        ("get configmaps -n iam-tailor", true),
        ("create configmaps -n iam-tailor", true),
        ("delete configmaps -n iam-tailor", true),
        ("list configmaps -n iam-tailor", false),
        ("watch configmaps -n iam-tailor", false),
        ("update configmaps -n iam-tailor", false),
        ("patch configmaps -n iam-tailor", false),
        ("get secrets/iam-tailor-external-ids -n iam-tailor", true),
        ("get secrets/iam-tailor-status-key -n iam-tailor", true),
        ("create secrets -n iam-tailor", true),
        ("get secrets/other -n iam-tailor", false),
        ("list secrets -n iam-tailor", false),
        ("update secrets/iam-tailor-status-key -n iam-tailor", false),
        ("delete secrets/iam-tailor-status-key -n iam-tailor", false),
    ]
    .map(|(q, a)| (q.to_string(), a));
    [
        ("list leastprivilegeroles.iamtailor.dev", true),
        ("watch leastprivilegeroles.iamtailor.dev", true),
        ("patch leastprivilegeroles.iamtailor.dev", true),
        (
            "patch leastprivilegeroles.iamtailor.dev --subresource=status",
            true,
        ),
        ("create events.events.k8s.io", true),
        ("patch events.events.k8s.io", true),
        // Not granted:
        ("get leastprivilegeroles.iamtailor.dev", false),
        ("create leastprivilegeroles.iamtailor.dev", false),
        ("update leastprivilegeroles.iamtailor.dev", false),
        ("delete leastprivilegeroles.iamtailor.dev", false),
        (
            "update leastprivilegeroles.iamtailor.dev --subresource=status",
            false,
        ),
        // Backups live in the release namespace: tenants' ConfigMaps are not the operator's.
        ("get configmaps", false),
        ("create configmaps", false),
        ("delete configmaps", false),
        ("list configmaps", false),
        ("get secrets", false),
        ("list secrets", false),
        ("create secrets", false),
        ("create pods", false),
        ("create events", false),
        ("delete events.events.k8s.io", false),
        ("create leases.coordination.k8s.io", false),
        ("create rolebindings.rbac.authorization.k8s.io", false),
    ]
    .iter()
    .map(|(q, a)| (format!("{q} --namespace {ns}"), *a))
    .chain(backups)
    .collect()
}

/// Requests the operator's token makes that the apiserver must refuse with 403.
async fn assert_forbidden<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {
            assert!(status.is_forbidden(), "{what}: {status:?}");
        }
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

async fn token_client(kubeconfig: &Path) -> kube::Client {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "data": {"k": "v"}}))
        .unwrap()
}

#[tokio::test]
async fn cluster_wide_chart_rbac() {
    let started = Instant::now();
    let env = Env::start().await;
    let blocks = k8s_tools::readme_blocks("Install with Helm");
    assert_eq!(blocks.len(), 2, "two install variants in the README");
    env.run_readme_block(&blocks[0]);
    crd_established(&env.admin, CRD).await;
    create_namespace(&env.admin, NS).await;
    create_namespace(&env.admin, "elsewhere").await;
    env.aws_setup().await;

    let kubeconfig = env.service_account_kubeconfig();
    let (operator, chart_args) = env.operator_from_chart(&kubeconfig).await;
    for arg in [
        "--leader-election",
        "--lease-namespace=iam-tailor",
        "--lease-name=iam-tailor",
    ] {
        assert!(chart_args.iter().any(|a| a == arg), "{chart_args:?}");
    }
    assert!(!chart_args.iter().any(|a| a.starts_with("--namespace")));
    story(&env, &operator, NS).await;

    // It led through the Lease the chart's Role lets it create and renew.
    let leases: Api<Lease> = Api::namespaced(env.admin.clone(), RELEASE_NS);
    let holder = leases
        .get("iam-tailor")
        .await
        .unwrap()
        .spec
        .unwrap()
        .holder_identity
        .unwrap_or_default();
    assert!(holder.starts_with("iam-tailor-7d9f-test-"), "{holder}");

    // What the chart grants, and only that.
    let mut table = watched_namespace_answers(NS);
    table.extend(watched_namespace_answers("elsewhere").into_iter().filter(
        // Cluster-wide: the same rules hold in every namespace.
        |(q, _)| !q.contains("leases"),
    ));
    for (question, answer) in [
        (
            "list leastprivilegeroles.iamtailor.dev --all-namespaces",
            true,
        ),
        (
            "watch leastprivilegeroles.iamtailor.dev --all-namespaces",
            true,
        ),
        (
            "get leases.coordination.k8s.io/iam-tailor -n iam-tailor",
            true,
        ),
        (
            "update leases.coordination.k8s.io/iam-tailor -n iam-tailor",
            true,
        ),
        ("create leases.coordination.k8s.io -n iam-tailor", true),
        ("get leases.coordination.k8s.io/other -n iam-tailor", false),
        (
            "update leases.coordination.k8s.io/other -n iam-tailor",
            false,
        ),
        (
            "delete leases.coordination.k8s.io/iam-tailor -n iam-tailor",
            false,
        ),
        ("list leases.coordination.k8s.io -n iam-tailor", false),
        (
            "get leases.coordination.k8s.io/iam-tailor -n payments",
            false,
        ),
        ("list secrets --all-namespaces", false),
        ("list configmaps --all-namespaces", false),
        (
            "create customresourcedefinitions.apiextensions.k8s.io",
            false,
        ),
        ("list namespaces", false),
    ] {
        table.push((question.to_string(), answer));
    }
    let table: Vec<(&str, bool)> = table.iter().map(|(q, a)| (q.as_str(), *a)).collect();
    assert_can_i(&env, &kubeconfig, &table);

    // A tenant given the chart's edit role (bound directly: this control plane has no
    // controller-manager to aggregate it into `edit`) writes resources, never their status.
    k8s_tools::run(env.kubectl(&env.server.kubeconfig).args([
        "create",
        "rolebinding",
        "tenant-edit",
        "--clusterrole=iam-tailor-edit",
        "--user=tenant",
        "--namespace",
        NS,
    ]));
    let tenant: Vec<(String, bool)> = [
        ("create leastprivilegeroles.iamtailor.dev", true),
        ("patch leastprivilegeroles.iamtailor.dev", true),
        ("delete leastprivilegeroles.iamtailor.dev", true),
        (
            "patch leastprivilegeroles.iamtailor.dev --subresource=status",
            false,
        ),
        (
            "update leastprivilegeroles.iamtailor.dev --subresource=status",
            false,
        ),
    ]
    .iter()
    .map(|(q, a)| (format!("{q} --namespace {NS} --as tenant"), *a))
    .collect();
    let tenant: Vec<(&str, bool)> = tenant.iter().map(|(q, a)| (q.as_str(), *a)).collect();
    assert_can_i(&env, &env.server.kubeconfig, &tenant);

    // Real requests with its token: refused.
    let client = token_client(&kubeconfig).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    assert_forbidden("list Secrets", secrets.list(&ListParams::default()).await).await;
    let tenant_maps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    assert_forbidden(
        "create a ConfigMap in the watched namespace",
        tenant_maps
            .create(&PostParams::default(), &config_map("probe"))
            .await,
    )
    .await;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "iam-tailor");
    assert_forbidden(
        "list ConfigMaps",
        config_maps.list(&ListParams::default()).await,
    )
    .await;
    let mine = config_maps
        .create(&PostParams::default(), &config_map("probe"))
        .await
        .expect("creating a ConfigMap in the release namespace is granted");
    assert_forbidden(
        "update a ConfigMap",
        config_maps
            .replace("probe", &PostParams::default(), &mine)
            .await,
    )
    .await;
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(client.clone(), NS);
    assert_forbidden(
        "create a LeastPrivilegeRole",
        roles
            .create(
                &PostParams::default(),
                &lpr("sneaky", "  roleName: x\n  cloudTrail: {s3: {bucket: b}}\n"),
            )
            .await,
    )
    .await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), NS);
    assert_forbidden("list Leases", leases.list(&ListParams::default()).await).await;
    // kubectl with the token kubeconfig says the same.
    let output = k8s_tools::output(env.kubectl(&kubeconfig).args(["get", "secrets", "-n", NS]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Forbidden")
            && stderr.contains("system:serviceaccount:iam-tailor:iam-tailor"),
        "{stderr}"
    );
    eprintln!("cluster-wide chart RBAC: {:?}", started.elapsed());
}

#[tokio::test]
async fn one_namespace_chart_rbac() {
    let started = Instant::now();
    let env = Env::start().await;
    // The watched namespace exists before the chart's Role goes into it.
    create_namespace(&env.admin, NS).await;
    create_namespace(&env.admin, "elsewhere").await;
    let blocks = k8s_tools::readme_blocks("Install with Helm");
    assert_eq!(blocks.len(), 2, "two install variants in the README");
    env.run_readme_block(&blocks[1]);
    crd_established(&env.admin, CRD).await;
    env.aws_setup().await;

    let kubeconfig = env.service_account_kubeconfig();
    let (operator, chart_args) = env.operator_from_chart(&kubeconfig).await;
    assert!(
        chart_args.iter().any(|a| a == "--namespace=payments"),
        "{chart_args:?}"
    );
    assert!(
        !chart_args.iter().any(|a| a == "--leader-election"),
        "one replica: {chart_args:?}"
    );

    // A resource in another namespace: neither watched nor reachable.
    let elsewhere: Api<LeastPrivilegeRole> = Api::namespaced(env.admin.clone(), "elsewhere");
    elsewhere
        .create(
            &PostParams::default(),
            &lpr(
                "outside",
                "  roleName: app\n  mode: Observe\n  cloudTrail: {s3: {bucket: org-trail-logs}}\n",
            ),
        )
        .await
        .unwrap();

    story(&env, &operator, NS).await;

    let outside = elsewhere.get("outside").await.unwrap();
    assert!(outside.status.is_none(), "{:?}", outside.status);
    assert!(outside.metadata.finalizers.is_none());

    let mut table = watched_namespace_answers(NS);
    for (question, answer) in [
        (
            "list leastprivilegeroles.iamtailor.dev --all-namespaces",
            false,
        ),
        ("list leastprivilegeroles.iamtailor.dev -n elsewhere", false),
        (
            "patch leastprivilegeroles.iamtailor.dev -n elsewhere",
            false,
        ),
        ("create configmaps -n elsewhere", false),
        ("get configmaps -n elsewhere", false),
        ("create events.events.k8s.io -n elsewhere", false),
        ("create leases.coordination.k8s.io -n iam-tailor", false),
        (
            "get leases.coordination.k8s.io/iam-tailor -n iam-tailor",
            false,
        ),
    ] {
        table.push((question.to_string(), answer));
    }
    let table: Vec<(&str, bool)> = table.iter().map(|(q, a)| (q.as_str(), *a)).collect();
    assert_can_i(&env, &kubeconfig, &table);

    let client = token_client(&kubeconfig).await;
    let elsewhere_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "elsewhere");
    assert_forbidden(
        "create a ConfigMap in another namespace",
        elsewhere_maps
            .create(&PostParams::default(), &config_map("probe"))
            .await,
    )
    .await;
    let all_roles: Api<LeastPrivilegeRole> = Api::all(client.clone());
    assert_forbidden(
        "list LeastPrivilegeRoles in all namespaces",
        all_roles.list(&ListParams::default()).await,
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    assert_forbidden("list Secrets", secrets.list(&ListParams::default()).await).await;
    eprintln!("one-namespace chart RBAC: {:?}", started.elapsed());
}
