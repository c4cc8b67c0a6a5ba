//! The Helm chart (`charts/iam-tailor`) without a cluster: its CRDs are the committed ones, it
//! lints, and what it renders — RBAC above all — is what the operator needs and no more, in both
//! the cluster-wide and the one-namespace variant. `tests/chart_rbac.rs` runs the operator under
//! the rendered RBAC on a real kube-apiserver.

use crate::k8s_tools;

use k8s_tools::{chart_dir, helm, repo, run, template};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The rules the operator needs where it watches LeastPrivilegeRoles.
fn watch_rules() -> Value {
    json!([
        {"apiGroups": ["iamtailor.dev"], "resources": ["leastprivilegeroles"],
         "verbs": ["list", "watch", "patch"]},
        {"apiGroups": ["iamtailor.dev"], "resources": ["leastprivilegeroles/status"],
         "verbs": ["patch"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    ])
}

/// ClusterTrails, cluster-wide whatever is watched: read, never written.
fn cluster_trail_rules() -> Value {
    json!([
        {"apiGroups": ["iamtailor.dev"], "resources": ["clustertrails"],
         "verbs": ["get", "list", "watch"]},
    ])
}

/// The operator's namespace: backups (ConfigMaps) and the ExternalIds' one Secret.
fn backup_rules() -> Value {
    json!([
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "delete"]},
        {"apiGroups": [""], "resources": ["secrets"],
         "resourceNames": ["iam-tailor-external-ids", "iam-tailor-status-key"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    ])
}

fn lease_rules(name: &str) -> Value {
    json!([
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "resourceNames": [name], "verbs": ["get", "update"]},
    ])
}

fn kinds(documents: &[Value]) -> BTreeSet<String> {
    documents
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect()
}

fn find<'a>(documents: &'a [Value], kind: &str, name: &str) -> &'a Value {
    documents
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {:#?}", kinds(documents)))
}

fn all<'a>(documents: &'a [Value], kind: &str) -> Vec<&'a Value> {
    documents.iter().filter(|d| d["kind"] == kind).collect()
}

fn container(documents: &[Value]) -> &Value {
    let deployments = all(documents, "Deployment");
    assert_eq!(deployments.len(), 1);
    &deployments[0]["spec"]["template"]["spec"]["containers"][0]
}

fn args(documents: &[Value]) -> Vec<String> {
    container(documents)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn env(documents: &[Value], name: &str) -> Option<Value> {
    container(documents)["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .cloned()
}

fn subjects(binding: &Value) -> Value {
    binding["subjects"].clone()
}

#[test]
fn chart_crds_are_the_committed_crds() {
    let names = |dir: &std::path::Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    let committed = repo().join("crds");
    let chart = chart_dir().join("crds");
    assert_eq!(
        names(&chart),
        names(&committed),
        "charts/iam-tailor/crds/ must hold exactly the files of crds/: cp crds/* charts/iam-tailor/crds/"
    );
    for name in names(&committed) {
        assert!(
            std::fs::read(committed.join(&name)).unwrap()
                == std::fs::read(chart.join(&name)).unwrap(),
            "charts/iam-tailor/crds/{name} differs from crds/{name}: cp crds/* charts/iam-tailor/crds/"
        );
    }
}

#[test]
fn chart_app_version_is_the_crate_version() {
    let chart: Value =
        serde_norway::from_str(&std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap())
            .unwrap();
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
}

/// values.yaml is documented line by line: every key has a comment right above it, except
/// the Kubernetes fields inside blocks passed through as they are (security contexts,
/// resources, probes), documented by the comment above the block.
#[test]
fn every_value_is_documented() {
    const PASSED_THROUGH: [&str; 5] = [
        "podSecurityContext:",
        "securityContext:",
        "resources:",
        "livenessProbe:",
        "readinessProbe:",
    ];
    let text = std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap();
    let mut comment_above = false;
    let mut passed_through = false;
    let mut undocumented = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.starts_with('#') {
            comment_above = true;
            continue;
        }
        let is_key = !trimmed.is_empty() && !trimmed.starts_with("- ") && trimmed.contains(':');
        if indent == 0 && is_key {
            passed_through = PASSED_THROUGH.contains(&trimmed);
        }
        if is_key && !comment_above && !(passed_through && indent > 0) {
            undocumented.push(line.to_string());
        }
        comment_above = false;
    }
    assert!(
        undocumented.is_empty(),
        "values.yaml keys without a comment right above: {undocumented:#?}"
    );
}

#[test]
fn chart_lints() {
    let home = tempfile::tempdir().unwrap();
    for values in [
        &[][..],
        &["--set", "watchNamespace=payments"],
        &[
            "--set",
            "replicaCount=2",
            "--set",
            "serviceMonitor.enabled=true",
            "--set",
            "aws.endpointUrl=http://moto:5000",
        ],
    ] {
        run(helm(home.path())
            .args(["lint", "--strict", "charts/iam-tailor"])
            .args(values));
    }
}

#[test]
fn cluster_wide_by_default() {
    let home = tempfile::tempdir().unwrap();
    let docs = template(home.path(), "iam-tailor", "iam-tailor", &[]);
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
        .map(String::from)
        .into(),
        "one replica: no leader election, so no Lease Role"
    );
    let role = find(&docs, "ClusterRole", "iam-tailor");
    assert_eq!(role["rules"], watch_rules());
    let trails = find(&docs, "ClusterRole", "iam-tailor-clustertrails");
    assert_eq!(trails["rules"], cluster_trail_rules());
    assert_eq!(
        subjects(find(
            &docs,
            "ClusterRoleBinding",
            "iam-tailor-clustertrails"
        )),
        json!([{"kind": "ServiceAccount", "name": "iam-tailor", "namespace": "iam-tailor"}])
    );
    // ConfigMaps only where the backups are: the release namespace, never the tenants'.
    let backups = find(&docs, "Role", "iam-tailor-backups");
    assert_eq!(backups["metadata"]["namespace"], "iam-tailor");
    assert_eq!(backups["rules"], backup_rules());
    let binding = find(&docs, "RoleBinding", "iam-tailor-backups");
    assert_eq!(binding["metadata"]["namespace"], "iam-tailor");
    assert_eq!(
        subjects(binding),
        json!([{"kind": "ServiceAccount", "name": "iam-tailor", "namespace": "iam-tailor"}])
    );
    assert!(
        args(&docs).contains(&"--backup-namespace=iam-tailor".to_string()),
        "{:?}",
        args(&docs)
    );
    let binding = find(&docs, "ClusterRoleBinding", "iam-tailor");
    assert_eq!(binding["roleRef"]["name"], "iam-tailor");
    assert_eq!(
        subjects(binding),
        json!([{"kind": "ServiceAccount", "name": "iam-tailor", "namespace": "iam-tailor"}])
    );

    let account = find(&docs, "ServiceAccount", "iam-tailor");
    assert_eq!(account["metadata"]["namespace"], "iam-tailor");
    assert_eq!(account["automountServiceAccountToken"], true);

    let deployment = find(&docs, "Deployment", "iam-tailor");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(
        deployment["spec"]["strategy"]["type"], "Recreate",
        "without leader election two pods must never overlap"
    );
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "iam-tailor");
    assert_eq!(pod["automountServiceAccountToken"], true);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        args(&docs),
        [
            "controller",
            "--metrics-addr=0.0.0.0:8080",
            "--log-format=json",
            "--aws-rate-limit=10",
            "--concurrency=4",
            "--min-drift-interval=1m",
            "--managed-policies-per-role=10",
            "--backup-namespace=iam-tailor",
            "--require-tenancy",
        ]
    );
    let c = container(&docs);
    assert_eq!(
        c["image"],
        format!("iam-tailor:{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        c["securityContext"],
        json!({
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        })
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(
        env(&docs, "POD_NAME").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env(&docs, "POD_NAMESPACE").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(env(&docs, "AWS_REGION").unwrap()["value"], "us-east-1");
    assert!(env(&docs, "AWS_ENDPOINT_URL").is_none());

    let service = find(&docs, "Service", "iam-tailor-metrics");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
}

#[test]
fn no_wildcards_and_no_broad_verbs_anywhere() {
    let home = tempfile::tempdir().unwrap();
    for values in [
        &["--set", "replicaCount=3"][..],
        &[
            "--set",
            "watchNamespace=payments,leaderElection.enabled=true",
        ],
    ] {
        let docs = template(home.path(), "iam-tailor", "iam-tailor", values);
        for role in all(&docs, "Role")
            .into_iter()
            .chain(all(&docs, "ClusterRole"))
        {
            for rule in role["rules"].as_array().unwrap() {
                let text = rule.to_string();
                assert!(!text.contains('*'), "wildcard in {text}");
                for verb in rule["verbs"].as_array().unwrap() {
                    assert!(
                        !["list", "watch"].contains(&verb.as_str().unwrap())
                            || rule["resources"] == json!(["leastprivilegeroles"])
                            || rule["resources"] == json!(["clustertrails"]),
                        "only LeastPrivilegeRoles and ClusterTrails are listed or watched: {text}"
                    );
                    assert!(
                        !["escalate", "bind", "impersonate", "deletecollection"]
                            .contains(&verb.as_str().unwrap()),
                        "{text}"
                    );
                }
            }
        }
    }
}

#[test]
fn leader_election_with_more_than_one_replica() {
    let home = tempfile::tempdir().unwrap();
    let docs = template(
        home.path(),
        "ops",
        "iam-tailor",
        &["--set", "replicaCount=2"],
    );
    assert_eq!(
        args(&docs)[9..],
        [
            "--leader-election",
            "--lease-namespace=iam-tailor",
            "--lease-name=ops-iam-tailor",
            "--lease-duration-seconds=15",
        ]
    );
    let deployment = find(&docs, "Deployment", "ops-iam-tailor");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    let role = find(&docs, "Role", "ops-iam-tailor-leader-election");
    assert_eq!(role["metadata"]["namespace"], "iam-tailor");
    assert_eq!(role["rules"], lease_rules("ops-iam-tailor"));
    let binding = find(&docs, "RoleBinding", "ops-iam-tailor-leader-election");
    assert_eq!(binding["metadata"]["namespace"], "iam-tailor");
    assert_eq!(
        subjects(binding),
        json!([{"kind": "ServiceAccount", "name": "ops-iam-tailor", "namespace": "iam-tailor"}])
    );

    // Asked for with one replica; a Lease name of one's own.
    let docs = template(
        home.path(),
        "iam-tailor",
        "ops",
        &[
            "--set",
            "leaderElection.enabled=true,leaderElection.leaseName=mine,leaderElection.leaseDurationSeconds=30",
        ],
    );
    assert!(args(&docs).contains(&"--leader-election".to_string()));
    assert!(args(&docs).contains(&"--lease-name=mine".to_string()));
    assert!(args(&docs).contains(&"--lease-duration-seconds=30".to_string()));
    assert_eq!(
        find(&docs, "Role", "iam-tailor-leader-election")["rules"],
        lease_rules("mine")
    );
}

#[test]
fn one_namespace_with_a_role_there() {
    let home = tempfile::tempdir().unwrap();
    let docs = template(
        home.path(),
        "iam-tailor",
        "iam-tailor",
        &["--set", "watchNamespace=payments,replicaCount=2"],
    );
    // Cluster-wide only what is cluster-scoped: ClusterTrails (and the tenants' aggregated
    // roles, which bind nothing themselves).
    let cluster_roles = all(&docs, "ClusterRole");
    assert_eq!(cluster_roles.len(), 3);
    let trails = find(&docs, "ClusterRole", "iam-tailor-clustertrails");
    assert_eq!(trails["rules"], cluster_trail_rules());
    assert_eq!(all(&docs, "ClusterRoleBinding").len(), 1);
    let role = find(&docs, "Role", "iam-tailor");
    assert_eq!(role["metadata"]["namespace"], "payments");
    assert_eq!(role["rules"], watch_rules());
    let binding = find(&docs, "RoleBinding", "iam-tailor");
    assert_eq!(binding["metadata"]["namespace"], "payments");
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(
        subjects(binding),
        json!([{"kind": "ServiceAccount", "name": "iam-tailor", "namespace": "iam-tailor"}])
    );
    // The Lease and the backups stay in the release namespace, not the watched one.
    let lease_role = find(&docs, "Role", "iam-tailor-leader-election");
    assert_eq!(lease_role["metadata"]["namespace"], "iam-tailor");
    let backups = find(&docs, "Role", "iam-tailor-backups");
    assert_eq!(backups["metadata"]["namespace"], "iam-tailor");
    let args = args(&docs);
    assert!(
        args.contains(&"--namespace=payments".to_string()),
        "{args:?}"
    );
    assert!(
        args.contains(&"--lease-namespace=iam-tailor".to_string()),
        "{args:?}"
    );
}

#[test]
fn values_reach_the_deployment() {
    let home = tempfile::tempdir().unwrap();
    let docs = template(
        home.path(),
        "iam-tailor",
        "ops",
        &[
            "--set-string",
            "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::123456789012:role/iam-tailor",
            "--set",
            "image.repository=registry.example.com/iam-tailor,image.tag=1.2.3,image.pullPolicy=Always",
            "--set",
            "aws.region=eu-west-1,aws.endpointUrl=http://moto:5000",
            "--set",
            "metrics.port=9090,metrics.bindAddress=::,logFormat=text,logLevel=debug",
            "--set",
            "awsRateLimit=3,concurrency=8,minDriftInterval=30s",
            "--set",
            "signalQueueUrl=https://sqs.eu-west-1.amazonaws.com/123456789012/iam-tailor-signals,signalDebounceSeconds=30",
            "--set",
            "nodeSelector.pool=system,tolerations[0].key=dedicated,tolerations[0].operator=Exists",
            "--set",
            "resources.limits.memory=2Gi",
        ],
    );
    let account = find(&docs, "ServiceAccount", "iam-tailor");
    assert_eq!(
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/iam-tailor"
    );
    assert_eq!(
        args(&docs),
        [
            "controller",
            "--metrics-addr=[::]:9090",
            "--log-format=text",
            "--aws-rate-limit=3",
            "--concurrency=8",
            "--min-drift-interval=30s",
            "--managed-policies-per-role=10",
            "--backup-namespace=ops",
            "--require-tenancy",
            "--signal-queue-url=https://sqs.eu-west-1.amazonaws.com/123456789012/iam-tailor-signals",
            "--signal-debounce-seconds=30",
        ]
    );
    let c = container(&docs);
    assert_eq!(c["image"], "registry.example.com/iam-tailor:1.2.3");
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["ports"][0]["containerPort"], 9090);
    assert_eq!(c["resources"]["limits"]["memory"], "2Gi");
    assert_eq!(env(&docs, "AWS_REGION").unwrap()["value"], "eu-west-1");
    assert_eq!(
        env(&docs, "AWS_ENDPOINT_URL").unwrap()["value"],
        "http://moto:5000"
    );
    assert_eq!(env(&docs, "RUST_LOG").unwrap()["value"], "debug");
    let pod = &find(&docs, "Deployment", "iam-tailor")["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"], json!({"pool": "system"}));
    assert_eq!(
        pod["tolerations"],
        json!([{"key": "dedicated", "operator": "Exists"}])
    );
    let service = find(&docs, "Service", "iam-tailor-metrics");
    assert_eq!(service["spec"]["ports"][0]["port"], 9090);
}

#[test]
fn service_monitor_only_when_enabled() {
    let home = tempfile::tempdir().unwrap();
    let docs = template(home.path(), "iam-tailor", "ops", &[]);
    assert!(all(&docs, "ServiceMonitor").is_empty());
    let docs = template(
        home.path(),
        "iam-tailor",
        "ops",
        &[
            "--set",
            "serviceMonitor.enabled=true,serviceMonitor.labels.release=prometheus",
        ],
    );
    let monitor = find(&docs, "ServiceMonitor", "iam-tailor");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        find(&docs, "Service", "iam-tailor-metrics")["spec"]["selector"]
    );
}

/// Only the CRDs are rendered with --include-crds, and they are the committed ones.
#[test]
fn include_crds_renders_the_committed_crds() {
    let home = tempfile::tempdir().unwrap();
    let docs = template(home.path(), "iam-tailor", "ops", &["--include-crds"]);
    let crds = all(&docs, "CustomResourceDefinition");
    let committed: Vec<Value> = iam_tailor::controller::crd::crds()
        .iter()
        .map(|(file, _)| {
            serde_norway::from_str(
                &std::fs::read_to_string(repo().join("crds").join(file)).unwrap(),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(crds.len(), committed.len());
    for crd in &committed {
        assert!(crds.contains(&crd), "{}", crd["metadata"]["name"]);
    }
}

/// The Argo CD example's Helm values are ones the chart knows, and they arrive.
#[test]
fn gitops_example_values_render() {
    let text =
        std::fs::read_to_string(repo().join("examples/gitops/argocd-application.yaml")).unwrap();
    let apps = k8s_tools::yaml_documents(&text);
    let values = &apps[0]["spec"]["source"]["helm"]["valuesObject"];
    assert!(values.is_object(), "{:#}", apps[0]);
    assert_eq!(apps[0]["spec"]["source"]["path"], "charts/iam-tailor");
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("values.yaml");
    std::fs::write(&file, serde_json::to_string(values).unwrap()).unwrap();
    let docs = template(
        home.path(),
        "iam-tailor",
        "iam-tailor",
        &["--values", file.to_str().unwrap()],
    );
    let account = find(&docs, "ServiceAccount", "iam-tailor");
    assert_eq!(
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
    );
    assert_eq!(
        env(&docs, "AWS_REGION").unwrap()["value"],
        values["aws"]["region"]
    );
}

#[test]
fn tenancy_values_render_the_tenancy_config_map() {
    let home = tempfile::tempdir().unwrap();
    let docs = template(home.path(), "iam-tailor", "iam-tailor", &[]);
    // No rules: still a ConfigMap, saying tags only, so that a missing one means a lost one.
    let config_map = find(&docs, "ConfigMap", "iam-tailor-tenancy");
    let text = config_map["data"]["tenancy.yaml"].as_str().unwrap();
    let config = iam_tailor::controller::tenancy::TenancyConfig::parse(text).unwrap();
    assert!(config.tags_only, "{text}");
    assert!(config.rules.is_empty());
    let docs = template(
        home.path(),
        "iam-tailor",
        "iam-tailor",
        &["--set", "tenancy.trustedAccounts[0]=444455556666"],
    );
    let text = find(&docs, "ConfigMap", "iam-tailor-tenancy")["data"]["tenancy.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    let config = iam_tailor::controller::tenancy::TenancyConfig::parse(&text).unwrap();
    assert!(config.tags_only, "{text}");
    assert_eq!(config.trusted_accounts, ["444455556666"]);
    let docs = template(
        home.path(),
        "iam-tailor",
        "iam-tailor",
        &[
            "--set",
            "tenancy.rules[0].namespaces[0]=payments",
            "--set",
            "tenancy.rules[0].roleArns[0]=arn:aws:iam::111122223333:role/payments-*",
            "--set",
            "tenancy.rules[0].enforce=true",
            "--set",
            "tenancy.rules[0].clusterTrails[0]=org",
            "--set-json",
            "tenancy.rules[0].trailBuckets=[]",
        ],
    );
    let config_map = find(&docs, "ConfigMap", "iam-tailor-tenancy");
    assert_eq!(config_map["metadata"]["namespace"], "iam-tailor");
    let text = config_map["data"]["tenancy.yaml"].as_str().unwrap();
    // What the chart renders is what the operator reads.
    let config = iam_tailor::controller::tenancy::TenancyConfig::parse(text).unwrap();
    assert_eq!(config.rules[0].namespaces, ["payments"]);
    assert!(config.rules[0].enforce);
    assert!(!config.tags_only);
    assert_eq!(
        config.rules[0].cluster_trails,
        Some(vec!["org".to_string()])
    );
    assert_eq!(config.rules[0].trail_buckets, Some(vec![]));
}

/// What the chart refuses to render, naming why.
#[test]
fn the_chart_refuses_a_watched_release_namespace_and_contradictory_tenancy() {
    let home = tempfile::tempdir().unwrap();
    for (values, needle) in [
        (
            &["--set", "watchNamespace=iam-tailor"][..],
            "watchNamespace iam-tailor is the release namespace",
        ),
        (
            &[
                "--set",
                "tenancy.tagsOnly=true,tenancy.rules[0].namespaces[0]=a,tenancy.rules[0].roleArns[0]=x",
            ],
            "tenancy.tagsOnly and tenancy.rules exclude each other",
        ),
    ] {
        let out = k8s_tools::output(
            helm(home.path())
                .args([
                    "template",
                    "iam-tailor",
                    "charts/iam-tailor",
                    "--namespace",
                    "iam-tailor",
                ])
                .args(values),
        );
        assert!(!out.status.success(), "{values:?} rendered");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{values:?}: {stderr}");
    }
}

/// Tenants get the resources through Kubernetes' admin/edit and view roles, never status.
#[test]
fn tenants_roles_aggregate_into_edit_and_view_without_status() {
    let home = tempfile::tempdir().unwrap();
    let docs = template(home.path(), "iam-tailor", "iam-tailor", &[]);
    let edit = find(&docs, "ClusterRole", "iam-tailor-edit");
    let labels = &edit["metadata"]["labels"];
    assert_eq!(
        labels["rbac.authorization.k8s.io/aggregate-to-edit"],
        "true"
    );
    assert_eq!(
        labels["rbac.authorization.k8s.io/aggregate-to-admin"],
        "true"
    );
    assert_eq!(
        edit["rules"],
        json!([{"apiGroups": ["iamtailor.dev"], "resources": ["leastprivilegeroles"],
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}])
    );
    let view = find(&docs, "ClusterRole", "iam-tailor-view");
    assert_eq!(
        view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"],
        "true"
    );
    assert_eq!(
        view["rules"],
        json!([{"apiGroups": ["iamtailor.dev"], "resources": ["leastprivilegeroles"],
                "verbs": ["get", "list", "watch"]}])
    );
    let off = template(
        home.path(),
        "iam-tailor",
        "iam-tailor",
        &["--set", "rbac.aggregateToTenants=false"],
    );
    assert_eq!(all(&off, "ClusterRole").len(), 2);
}
