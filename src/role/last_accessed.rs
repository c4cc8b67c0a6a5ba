//! IAM's last-accessed data of a role ("access advisor"), as plain data: `aws::iam` fills it,
//! `generate::last_accessed` asks its questions. Times are RFC 3339 text as IAM reported them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One last-accessed report of a role.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastAccessed {
    pub services: Vec<ServiceLastAccessed>,
}

/// A service the role's policies allow, and when the role last used it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceLastAccessed {
    /// The service prefix, e.g. `s3`.
    pub namespace: String,
    /// IAM's display name, e.g. `Amazon S3`.
    pub name: String,
    /// When the role last authenticated to the service (RFC 3339, UTC); `None`: not within
    /// IAM's tracking period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_authenticated: Option<String>,
    /// IAM reported per-action data for the service. It does so only for services with
    /// action-level tracking, and only when the role used some tracked action.
    #[serde(default)]
    pub action_level: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionLastAccessed>,
}

/// A tracked action and when the role last used it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionLastAccessed {
    /// `service:Action`, e.g. `s3:GetObject`, as IAM spells it.
    pub action: String,
    /// RFC 3339, UTC; `None`: not within IAM's tracking period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_accessed: Option<String>,
    /// The region of that last use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl LastAccessed {
    /// Services by namespace, each one's actions by name: IAM's order is not part of its
    /// contract, and the report must not change when it does.
    pub fn new(mut services: Vec<ServiceLastAccessed>) -> LastAccessed {
        services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        for service in &mut services {
            service.actions.sort_by(|a, b| a.action.cmp(&b.action));
        }
        LastAccessed { services }
    }
}
