//! The steps of the operator story that `tests/operator/story.rs` (the operator as a test starts it)
//! and `tests/chart_rbac.rs` (the operator under the chart's RBAC) both tell: roles with broad
//! grants and their trail; `app` enforced (Enforce + Automatic) down to what it used, after a
//! backup; AdministratorAccess attached out of band and reverted; `worker` proposed, held for a
//! Manual approval and applied once approved; `app` deleted and restored. Each step asserts
//! what both tests check; each test keeps its own checks between the steps.

use super::{
    ADMIN, APP_USES, broad_role, condition, events, lpr, put_trail, read, reasons, wait_for,
};
use crate::watch;
use iam_tailor::controller::{LeastPrivilegeRole, LeastPrivilegeRoleStatus};
use iam_tailor::policy::analysis::allowed_actions;
use iam_tailor::role::LiveRole;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use std::collections::BTreeSet;
use std::time::Duration;

/// Roles `app`, `worker` and `viewer` with broad access, and the trail of what they did in S3.
pub async fn broad_roles_and_trail(iam: &aws_sdk_iam::Client, s3: &aws_sdk_s3::Client) {
    for role in ["app", "worker", "viewer"] {
        broad_role(iam, role).await;
    }
    put_trail(s3).await;
}

/// The story in namespace `ns`, told to the operator the test runs through the admin client
/// `kube`, with IAM read (and drifted) through `iam`.
pub struct Story {
    pub kube: kube::Client,
    pub iam: aws_sdk_iam::Client,
    pub ns: String,
    pub roles: Api<LeastPrivilegeRole>,
    /// Role `app` as it was before the story.
    pub original_app: LiveRole,
}

/// Role `app` once enforced.
pub struct Enforced {
    pub status: LeastPrivilegeRoleStatus,
    /// The role in IAM.
    pub live: LiveRole,
    /// The backup taken before the first write (`backup.json` of its ConfigMap).
    pub snapshot: serde_json::Value,
}

impl Story {
    /// Reads role `app` as it is before anything is created.
    pub async fn new(kube: &kube::Client, iam: aws_sdk_iam::Client, ns: &str) -> Story {
        let original_app = read(&iam, "app").await;
        Story {
            kube: kube.clone(),
            iam,
            ns: ns.to_string(),
            roles: Api::namespaced(kube.clone(), ns),
            original_app,
        }
    }

    /// The backup ConfigMap `status` names, where it names it (the operator's namespace, never
    /// the resource's), if it exists.
    pub async fn backup(&self, status: &LeastPrivilegeRoleStatus) -> Option<ConfigMap> {
        let backup = status.backup.as_ref().expect("a backup in status");
        assert_ne!(
            backup.namespace, self.ns,
            "backups stay out of the tenant's namespace"
        );
        let config_maps: Api<ConfigMap> = Api::namespaced(self.kube.clone(), &backup.namespace);
        config_maps.get_opt(&backup.config_map).await.unwrap()
    }

    /// Creates the LeastPrivilegeRole `name` with `spec` (YAML lines indented by two).
    pub async fn create(&self, name: &str, spec: &str) {
        self.roles
            .create(&PostParams::default(), &lpr(name, spec))
            .await
            .unwrap();
    }

    /// Polls `name` until `done` holds for its status (see [`wait_for`]).
    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&LeastPrivilegeRoleStatus) -> bool,
    ) -> LeastPrivilegeRoleStatus {
        wait_for(&self.roles, name, what, done).await
    }

    /// Enforce + Automatic (Restore on delete, IAM forbidden, drift reverted every 2 s): `app`
    /// shrinks to exactly the actions it used, after a backup of its AdministratorAccess, and
    /// each step is an Event. Without IAM's last-accessed reports too (`operator_story` runs
    /// against plain moto, which has none).
    pub async fn enforce_app(&self) -> Enforced {
        self.create(
            "app",
            "  roleName: app\n  mode: Enforce\n  approval: Automatic\n  deletionPolicy: Restore\n  \
             cloudTrail: {s3: {bucket: org-trail-logs, region: us-east-1}}\n  forbid: [\"iam:*\"]\n  \
             drift: {interval: 2s, action: Revert}\n  lastAccessed: {required: false}\n",
        )
        .await;
        let status = self
            .wait_for("app", "enforcement", |s| {
                ["Analyzed", "ProposalReady", "Approved", "InSync", "Ready"]
                    .iter()
                    .all(|t| condition(s, t).is_some_and(|(status, _)| status == "True"))
            })
            .await;
        let live = read(&self.iam, "app").await;
        assert!(live.inline.is_empty(), "inline s3-all deleted: {live:#?}");
        let attached: Vec<&str> = live.attached.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(attached, ["iam-tailor-app"], "AdministratorAccess detached");
        let granted: BTreeSet<String> = allowed_actions(&live.documents())
            .into_iter()
            .map(|a| a.action)
            .collect();
        let used: BTreeSet<String> = APP_USES.iter().map(|a| a.to_string()).collect();
        assert_eq!(granted, used);
        let backup = self.backup(&status).await.expect("the backup ConfigMap");
        let snapshot: serde_json::Value =
            serde_json::from_str(&backup.data.unwrap()["backup.json"]).unwrap();
        assert_eq!(snapshot["attached"], serde_json::json!([ADMIN]));
        let recorded = reasons(&events(&self.kube, &self.ns, "app").await);
        for reason in [
            "Analyzed",
            "BackedUp",
            "PolicyPut",
            "PolicyAttached",
            "PolicyDetached",
            "InlinePolicyDeleted",
            "PolicyApplied",
        ] {
            assert!(recorded.contains(reason), "{reason} not in {recorded:?}");
        }
        Enforced {
            status,
            live,
            snapshot,
        }
    }

    /// Drift: attaches AdministratorAccess to `app` behind the operator's back.
    pub async fn attach_admin_out_of_band(&self) {
        self.iam
            .attach_role_policy()
            .role_name("app")
            .policy_arn(ADMIN)
            .send()
            .await
            .unwrap();
    }

    /// Waits (60 s at most) until the operator has taken AdministratorAccess off `app` again.
    pub async fn drift_reverted(&self) {
        watch::poll(
            "the drift reverted",
            Duration::from_secs(60),
            Duration::from_millis(200),
            async || match read(&self.iam, "app").await.attached {
                attached if attached.len() == 1 => Ok(()),
                attached => Err(format!("attached: {attached:?}")),
            },
        )
        .await;
    }

    /// Manual approval for `worker` (`extra_spec`: more spec lines): a proposal awaiting
    /// approval, and nothing written for a while. Returns the proposal's revision and the role
    /// in IAM, still broad.
    pub async fn propose_worker(&self, extra_spec: &str) -> (String, LiveRole) {
        self.create(
            "worker",
            &format!(
                "  roleName: worker\n  mode: Enforce\n  approval: Manual\n{extra_spec}  \
                 cloudTrail: {{s3: {{bucket: org-trail-logs}}}}\n"
            ),
        )
        .await;
        let worker = self
            .wait_for("worker", "a proposal", |s| {
                condition(s, "ProposalReady") == Some(("True", "ProposalReady"))
                    && condition(s, "Approved").is_some()
            })
            .await;
        assert_eq!(
            condition(&worker, "Approved"),
            Some(("False", "AwaitingApproval"))
        );
        let revision = worker.proposal.unwrap().revision;
        tokio::time::sleep(Duration::from_secs(3)).await; // room for a wrong write to happen
        let live = read(&self.iam, "worker").await;
        assert_eq!(live.attached.len(), 1, "nothing attached before approval");
        assert_eq!(live.attached[0].arn, ADMIN);
        (revision, live)
    }

    /// Approves `revision` of `worker`'s proposal: it is applied, and the role keeps only the
    /// one action it used.
    pub async fn approve_worker(&self, revision: &str) {
        let approve = serde_json::json!({"spec": {"approvedRevision": revision}});
        self.roles
            .patch("worker", &PatchParams::default(), &Patch::Merge(&approve))
            .await
            .unwrap();
        let worker = self
            .wait_for("worker", "the approved apply", |s| {
                condition(s, "InSync") == Some(("True", "Applied"))
                    || condition(s, "InSync") == Some(("True", "InSync"))
            })
            .await;
        assert_eq!(
            worker.applied.unwrap().revision,
            revision,
            "the approved revision"
        );
        let live = read(&self.iam, "worker").await;
        let granted: Vec<String> = allowed_actions(&live.documents())
            .into_iter()
            .map(|a| a.action)
            .collect();
        assert_eq!(granted, ["sqs:ReceiveMessage"]);
    }

    /// Deletes `app` (deletionPolicy Restore) and waits (60 s at most) until it is gone: the
    /// original policies are back exactly, and a `Restored` Event says so.
    pub async fn delete_and_restore_app(&self) {
        self.roles
            .delete("app", &DeleteParams::default())
            .await
            .unwrap();
        super::wait_gone(&self.roles, "app").await;
        assert_eq!(read(&self.iam, "app").await, self.original_app);
        assert!(reasons(&events(&self.kube, &self.ns, "app").await).contains("Restored"));
    }
}
