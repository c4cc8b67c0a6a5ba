//! The example LeastPrivilegeRoles in `examples/k8s`: each one parses, passes the operator's
//! own spec checks, and is accepted by a real kube-apiserver with the committed CRD.

use crate::control_plane;

use iam_tailor::controller::LeastPrivilegeRole;
use iam_tailor::controller::spec::{Limits, NO_CLUSTER_TRAIL, validate};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use std::path::PathBuf;
use std::time::Duration;

fn examples() -> Vec<(String, LeastPrivilegeRole)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/k8s");
    let mut out: Vec<(String, LeastPrivilegeRole)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let lpr = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, lpr)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn examples_pass_the_spec_checks() {
    let all = examples();
    assert!(
        all.len() >= 5,
        "{:?}",
        all.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    for (file, lpr) in &all {
        assert_eq!(
            validate(&lpr.spec, &Limits::default(), &NO_CLUSTER_TRAIL).map(|_| ()),
            Ok(()),
            "{file}"
        );
        assert!(lpr.namespace().is_some(), "{file} names its namespace");
    }
}

#[tokio::test]
async fn examples_are_accepted_by_the_apiserver() {
    let server = control_plane::ControlPlane::start();
    let client = server.client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("crds/leastprivilegeroles.iamtailor.dev.yaml");
    let crd: CustomResourceDefinition =
        serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let name = crd.name_any();
    crds.patch(
        &name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .unwrap()
    .unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for (file, lpr) in examples() {
        let ns = lpr.namespace().unwrap();
        if namespaces.get_opt(&ns).await.unwrap().is_none() {
            let namespace: Namespace =
                serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
            namespaces
                .create(&PostParams::default(), &namespace)
                .await
                .unwrap();
        }
        let api: Api<LeastPrivilegeRole> = Api::namespaced(client.clone(), &ns);
        // Dry run: several examples are stages of the same resource, so they share a name.
        let dry_run = PostParams {
            dry_run: true,
            ..Default::default()
        };
        api.create(&dry_run, &lpr)
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}
