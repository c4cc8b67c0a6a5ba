//! The generated CRD on a real kube-apiserver: it is accepted (structural, no schema features
//! newer than 1.20), its defaults and validation work server-side, and the status subresource
//! and printer columns are served.

use crate::control_plane;

use iam_tailor::controller::{LeastPrivilegeRole, LeastPrivilegeRoleStatus};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use std::time::Duration;

#[tokio::test]
async fn crd_is_served_with_defaults_and_validation() {
    let server = control_plane::ControlPlane::start();
    let client = server.client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = LeastPrivilegeRole::crd();
    let name = crd.metadata.name.clone().unwrap();
    crds.patch(
        &name,
        &PatchParams::apply("iam-tailor-test").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("the CRD is accepted");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .expect("established in time")
    .unwrap();

    let roles: Api<LeastPrivilegeRole> = Api::namespaced(client, "default");
    let minimal: LeastPrivilegeRole = serde_norway::from_str(
        "apiVersion: iamtailor.dev/v1alpha1\nkind: LeastPrivilegeRole\n\
         metadata: {name: checkout-api}\n\
         spec: {roleName: checkout-api, cloudTrail: {s3: {bucket: org-trail-logs}}}\n",
    )
    .unwrap();
    let created = roles
        .create(&PostParams::default(), &minimal)
        .await
        .unwrap();
    // Defaults filled in by the API server from the schema.
    assert_eq!(created.spec.window, "90d");
    assert_eq!(created.spec.drift.interval, "5m");

    let mut bad = minimal.clone();
    bad.metadata.name = Some("bad".into());
    bad.spec.approved_revision = Some("md5:abc".into());
    let error = roles
        .create(&PostParams::default(), &bad)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("approvedRevision"), "{error}");

    // A role ARN IAM would not accept (a space, a quote in the name) is refused by the API
    // server; a path of printable ASCII is not.
    for (arn, accepted) in [
        ("arn:aws:iam::123456789012:role/bad name", false),
        ("arn:aws:iam::123456789012:role/x' OR 'a'='a", false),
        ("arn:aws:iam::123456789012:role/team/a.b/app+1@x", true),
    ] {
        let mut role = minimal.clone();
        role.metadata.name = Some("by-arn".into());
        role.spec.role_name = None;
        role.spec.role_arn = Some(arn.into());
        let created = roles.create(&PostParams::default(), &role).await;
        match (created, accepted) {
            (Ok(_), true) => roles
                .delete("by-arn", &Default::default())
                .await
                .map(drop)
                .unwrap(),
            (Err(error), false) => assert!(error.to_string().contains("spec.roleArn"), "{error}"),
            (outcome, _) => panic!("{arn}: {outcome:?}"),
        }
    }

    // A region is AWS's shape (`us-gov-west-1`), nothing else: not a host, not a path.
    for (region, accepted) in [
        ("us-gov-west-1", true),
        ("eu-west-1", true),
        ("127.0.0.1", false),
        ("us-east-1/../x", false),
        ("US-EAST-1", false),
    ] {
        let mut role = minimal.clone();
        role.metadata.name = Some("by-region".into());
        let s3 = role.spec.cloud_trail.s3.as_mut().unwrap();
        s3.region = Some(region.into());
        s3.regions = vec![region.into()];
        match (roles.create(&PostParams::default(), &role).await, accepted) {
            (Ok(_), true) => roles
                .delete("by-region", &Default::default())
                .await
                .map(drop)
                .unwrap(),
            (Err(error), false) => {
                assert!(
                    error.to_string().contains("spec.cloudTrail.s3.region"),
                    "{error}"
                )
            }
            (outcome, _) => panic!("{region}: {outcome:?}"),
        }
    }

    // A duration with more digits than any range allows is refused by the API server, before
    // the operator sees it (within six digits, the ranges are the operator's InvalidSpec).
    for (field, value) in [("window", "9999999w"), ("driftInterval", "0s")] {
        let mut huge = minimal.clone();
        huge.metadata.name = Some("huge".into());
        match field {
            "window" => huge.spec.window = value.into(),
            _ => huge.spec.drift.interval = value.into(),
        }
        let error = roles
            .create(&PostParams::default(), &huge)
            .await
            .unwrap_err();
        let expected = if field == "window" {
            "spec.window"
        } else {
            "spec.drift.interval"
        };
        assert!(error.to_string().contains(expected), "{field}: {error}");
    }

    let status = LeastPrivilegeRoleStatus {
        observed_generation: Some(1),
        ..Default::default()
    };
    let patched = roles
        .patch_status(
            "checkout-api",
            &PatchParams::apply("iam-tailor-test").force(),
            &Patch::Apply(serde_json::json!({
                "apiVersion": "iamtailor.dev/v1alpha1",
                "kind": "LeastPrivilegeRole",
                "status": status,
            })),
        )
        .await
        .unwrap();
    assert_eq!(patched.status.unwrap().observed_generation, Some(1));
}
