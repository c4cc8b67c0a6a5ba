//! Status: the resource's status by server-side apply, only when it changed, and its Events.

use super::Context;
use super::FIELD_MANAGER;
use crate::controller::crd::{LeastPrivilegeRole, LeastPrivilegeRoleStatus};
use crate::controller::plan::{EventType, PlannedEvent};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType as KubeEventType};
use kube::{Resource, ResourceExt};

/// Writes `status` by server-side apply, unless it is what was last written: a steady state
/// makes no writes, so it triggers no further reconciles.
pub(super) async fn write_status(
    lpr: &LeastPrivilegeRole,
    ctx: &Context,
    previous: &LeastPrivilegeRoleStatus,
    status: &LeastPrivilegeRoleStatus,
) -> Result<(), kube::Error> {
    if lpr.status.is_some() && status == previous {
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
