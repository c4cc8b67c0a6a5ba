//! Status: the resource's status by server-side apply, only when it changed, and its Events.

use super::Context;
use super::FIELD_MANAGER;
use crate::controller::crd::{LeastPrivilegeRole, LeastPrivilegeRoleStatus};
use crate::controller::plan::{EventType, PlannedEvent};
use crate::controller::seal::{self, StatusKey};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType as KubeEventType};
use kube::{Resource, ResourceExt};

/// Writes `status`, sealed ([`crate::controller::seal`]), by server-side apply, unless it is
/// what the resource holds: a steady state makes no writes, so it triggers no further
/// reconciles.
pub(super) async fn write_status(
    lpr: &LeastPrivilegeRole,
    ctx: &Context,
    status: &LeastPrivilegeRoleStatus,
) -> Result<(), kube::Error> {
    let status = &ctx.status_key.seal(&lpr.uid().unwrap_or_default(), status);
    if lpr.status.as_ref() == Some(status) {
        return Ok(());
    }
    let api: Api<LeastPrivilegeRole> =
        Api::namespaced(ctx.client.clone(), &lpr.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": LeastPrivilegeRole::api_version(&()),
        "kind": LeastPrivilegeRole::kind(&()),
        "status": status,
    });
    api.patch_status(
        &lpr.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}

/// The key statuses are sealed with: the Secret [`seal::KEY_SECRET`] in `namespace`, made
/// with a new random key when missing (by whichever replica gets there first).
pub async fn status_key(client: &kube::Client, namespace: &str) -> anyhow::Result<StatusKey> {
    use anyhow::Context as _;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let read = async || -> anyhow::Result<Option<StatusKey>> {
        let secret = (secrets.get_opt(seal::KEY_SECRET).await)
            .with_context(|| format!("reading Secret {namespace}/{}", seal::KEY_SECRET))?;
        let Some(secret) = secret else {
            return Ok(None);
        };
        let bytes = (secret.data.unwrap_or_default().remove(seal::KEY_FIELD))
            .map(|b| b.0)
            .unwrap_or_default();
        StatusKey::new(bytes)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{namespace}/{e}"))
    };
    if let Some(key) = read().await? {
        return Ok(key);
    }
    let key = StatusKey::generate();
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(seal::KEY_SECRET.to_string()),
            ..Default::default()
        },
        data: Some(
            [(
                seal::KEY_FIELD.to_string(),
                k8s_openapi::ByteString(key.bytes().to_vec()),
            )]
            .into(),
        ),
        ..Default::default()
    };
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => {
            tracing::info!(
                namespace,
                secret = seal::KEY_SECRET,
                "made the status seal key"
            );
            Ok(key)
        }
        // Another replica made it first: theirs is the key.
        Err(kube::Error::Api(e)) if e.code == 409 => read()
            .await?
            .ok_or_else(|| anyhow::anyhow!("Secret {namespace}/{} vanished", seal::KEY_SECRET)),
        Err(e) => {
            Err(e).with_context(|| format!("creating Secret {namespace}/{}", seal::KEY_SECRET))
        }
    }
}

/// Records `event` on the resource; a failure to record is logged, never fatal.
pub(super) async fn publish(ctx: &Context, lpr: &LeastPrivilegeRole, event: &PlannedEvent) {
    let mut note = event.note.clone();
    if note.len() > 1000 {
        let mut end = 997;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push_str("...");
    }
    let kube_event = Event {
        type_: match event.type_ {
            EventType::Normal => KubeEventType::Normal,
            EventType::Warning => KubeEventType::Warning,
        },
        reason: event.reason.clone(),
        note: Some(note),
        action: "Reconcile".to_string(),
        secondary: None,
    };
    if let Err(e) = ctx
        .recorder
        .publish(&kube_event, &lpr.object_ref(&()))
        .await
    {
        tracing::warn!(error = %e, reason = event.reason, "recording an event failed");
    }
}
