//! One EventBridge event of a CloudTrail call, as the signal queue delivers it
//! (`examples/aws/signals.cfn.yaml`): an envelope whose `detail` is the CloudTrail record.
//! Untrusted like every record: bounded, and read by the same mapper as trail files.

use super::record::Record;
use super::scan::add_call;
use super::select::{is_denied, principal_key};
use crate::usage::Usage;
use serde::Deserialize;
use serde_json::value::RawValue;

/// The largest event read (SQS's largest message).
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
/// How far in the future a refused call's `eventTime` may be (clocks differ a little); one
/// later is refused, so a forged far-future time cannot keep a grant fresh.
pub const MAX_CLOCK_SKEW_SECS: i128 = 300;

/// The IAM calls that change a role's permissions (or its policies'): the iam-writes rule's
/// `eventName`s (`examples/aws/signals-iam-writes.pattern.json`).
pub const ROLE_WRITES: [&str; 12] = [
    "AttachRolePolicy",
    "DetachRolePolicy",
    "PutRolePolicy",
    "DeleteRolePolicy",
    "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
    "CreatePolicyVersion",
    "SetDefaultPolicyVersion",
    "DeletePolicyVersion",
    "TagRole",
    "UntagRole",
    "DeleteRole",
];

/// What an event tells the operator.
#[derive(Debug, PartialEq)]
pub enum Signal {
    /// An IAM write to the role named `role`: look at it now.
    RoleWritten { role: String },
    /// A new version of the managed policy `arn` (iam-tailor's own name the role).
    PolicyWritten { arn: String },
    /// A call of `principal` (a role ARN) refused for lack of permission: what it asked for
    /// (`Usage::denied_grants`).
    Refused {
        principal: String,
        usage: Box<Usage>,
    },
    /// Nothing the operator acts on, and why.
    Ignored(&'static str),
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    detail: Option<&'a RawValue>,
    /// `aws.<service>` for AWS's own events; nobody else may send one (PutEvents refuses it).
    #[serde(default)]
    source: Option<String>,
    /// The account the call was recorded in.
    #[serde(default)]
    account: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IamParameters {
    #[serde(default)]
    role_name: Option<String>,
    #[serde(default)]
    policy_arn: Option<String>,
}

/// Reads one message body, received at `now`. `Err` names what is wrong with it. Only AWS's
/// own events count, and a refused call only of a role of the account it was recorded in, at
/// a time not in the future.
pub fn read_event(body: &str, now: crate::time::Instant) -> Result<Signal, String> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(format!("{} bytes, more than {MAX_EVENT_BYTES}", body.len()));
    }
    let envelope: Envelope =
        serde_json::from_str(body).map_err(|e| format!("not an EventBridge event: {e}"))?;
    let detail = envelope.detail.ok_or("an event without detail")?;
    let source = envelope.source.as_deref().unwrap_or_default();
    if !source.starts_with("aws.") {
        let shown: String = source.chars().take(64).collect();
        return Err(format!(
            "source {shown:?}: only AWS's own events (aws.*) are read"
        ));
    }
    let record: Record = serde_json::from_str(detail.get()).map_err(|e| format!("detail: {e}"))?;
    let source = record.event_source.as_deref().unwrap_or_default();
    let name = record.event_name.as_deref().unwrap_or_default();
    if source == "iam.amazonaws.com" && ROLE_WRITES.contains(&name) {
        let parameters: IamParameters = (record.request_parameters)
            .map(|p| serde_json::from_str(p.get()))
            .transpose()
            .map_err(|e| format!("detail.requestParameters: {e}"))?
            .ok_or("an IAM write without requestParameters")?;
        return Ok(match (parameters.role_name, parameters.policy_arn) {
            (Some(role), _) => Signal::RoleWritten { role },
            (None, Some(arn)) => Signal::PolicyWritten { arn },
            (None, None) => Signal::Ignored("an IAM write naming no role or policy"),
        });
    }
    if !record.error_code.as_deref().is_some_and(is_denied) {
        return Ok(Signal::Ignored("neither an IAM write nor a refused call"));
    }
    let Some(principal) = principal_key(&record).filter(|p| p.contains(":role/")) else {
        return Ok(Signal::Ignored("a refused call of no role"));
    };
    let Some(time) = record.event_time.as_deref() else {
        return Err("detail: a refused call without eventTime".to_string());
    };
    let Some(at) = crate::time::parse_date(time) else {
        return Err("detail.eventTime: not an RFC 3339 time".to_string());
    };
    if at > now + MAX_CLOCK_SKEW_SECS * 1_000_000_000 {
        return Err(format!("detail.eventTime {time} is in the future"));
    }
    let recorded_in = envelope
        .account
        .as_deref()
        .ok_or("a refused call without account")?;
    if principal.split(':').nth(4) != Some(recorded_in) {
        return Ok(Signal::Ignored("a refused call of another account's role"));
    }
    let mut usage = Usage::default();
    add_call(&record, time, &mut usage);
    Ok(Signal::Refused {
        principal: principal.to_string(),
        usage: Box::new(usage),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(detail: serde_json::Value) -> String {
        serde_json::json!({
            "version": "0",
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.s3",
            "account": "111122223333",
            "detail": detail,
        })
        .to_string()
    }

    /// When the tests' events are received: a day after their calls.
    fn now() -> crate::time::Instant {
        crate::time::parse_date("2026-12-01T10:00:00Z").unwrap()
    }

    fn read(body: &str) -> Result<Signal, String> {
        read_event(body, now())
    }

    fn session(role: &str) -> serde_json::Value {
        serde_json::json!({
            "type": "AssumedRole",
            "arn": format!("arn:aws:sts::111122223333:assumed-role/{role}/s"),
            "sessionContext": {"sessionIssuer": {
                "type": "Role",
                "arn": format!("arn:aws:iam::111122223333:role/{role}"),
            }},
        })
    }

    #[test]
    fn iam_writes_name_their_role_or_policy() {
        let attach = event(serde_json::json!({
            "eventSource": "iam.amazonaws.com",
            "eventName": "AttachRolePolicy",
            "requestParameters": {"roleName": "app", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        }));
        assert_eq!(
            read(&attach),
            Ok(Signal::RoleWritten {
                role: "app".to_string()
            })
        );
        let version = event(serde_json::json!({
            "eventSource": "iam.amazonaws.com",
            "eventName": "CreatePolicyVersion",
            "requestParameters": {"policyArn": "arn:aws:iam::111122223333:policy/iam-tailor-app"},
        }));
        assert_eq!(
            read(&version),
            Ok(Signal::PolicyWritten {
                arn: "arn:aws:iam::111122223333:policy/iam-tailor-app".to_string()
            })
        );
        let list = event(serde_json::json!({
            "eventSource": "iam.amazonaws.com",
            "eventName": "ListRoles",
        }));
        assert!(matches!(read(&list), Ok(Signal::Ignored(_))));
    }

    #[test]
    fn a_refused_call_maps_to_what_it_asked_for() {
        let denied = event(serde_json::json!({
            "eventID": "ev-1",
            "eventTime": "2026-11-30T10:00:00Z",
            "eventSource": "s3.amazonaws.com",
            "eventName": "DeleteObject",
            "awsRegion": "us-east-1",
            "errorCode": "AccessDenied",
            "userIdentity": session("app"),
            "requestParameters": {"bucketName": "orders", "key": "old.json"},
        }));
        let Ok(Signal::Refused { principal, usage }) = read(&denied) else {
            panic!("{:?}", read(&denied));
        };
        assert_eq!(principal, "arn:aws:iam::111122223333:role/app");
        let (key, denial) = usage.denied_grants.into_iter().next().unwrap();
        assert_eq!(
            key,
            (
                "s3:DeleteObject".to_string(),
                "arn:aws:s3:::orders/old.json".to_string()
            )
        );
        assert_eq!(denial.event_id, "ev-1");
        assert!(usage.actions.is_empty(), "a refusal is never use");
    }

    #[test]
    fn hostile_bodies_are_refused_by_what_is_wrong() {
        assert!(
            read("\"text\"")
                .unwrap_err()
                .contains("not an EventBridge event")
        );
        // An array reads as an envelope of nothing: no AWS source.
        assert!(read("[1]").unwrap_err().contains("only AWS's own"));
        assert!(read("{}").unwrap_err().contains("without detail"));
        // Only AWS's own events; a refused call of a role of the account it was recorded in,
        // at a time not in the future.
        let refused = serde_json::json!({
            "eventTime": "2026-11-30T10:00:00Z",
            "eventSource": "s3.amazonaws.com",
            "eventName": "DeleteObject",
            "errorCode": "AccessDenied",
            "userIdentity": session("app"),
            "requestParameters": {"bucketName": "orders", "key": "old.json"},
        });
        let mut custom: serde_json::Value = serde_json::from_str(&event(refused.clone())).unwrap();
        custom["source"] = "my.app".into();
        assert!(
            read(&custom.to_string())
                .unwrap_err()
                .contains("only AWS's own")
        );
        let mut elsewhere: serde_json::Value =
            serde_json::from_str(&event(refused.clone())).unwrap();
        elsewhere["account"] = "444455556666".into();
        assert_eq!(
            read(&elsewhere.to_string()),
            Ok(Signal::Ignored("a refused call of another account's role"))
        );
        let mut future = refused;
        future["eventTime"] = "9999-12-31T23:59:59Z".into();
        assert!(read(&event(future)).unwrap_err().contains("in the future"));
        let huge = "x".repeat(MAX_EVENT_BYTES + 1);
        assert!(read(&huge).unwrap_err().contains("more than"));
        let bad_params = event(serde_json::json!({
            "eventSource": "iam.amazonaws.com",
            "eventName": "PutRolePolicy",
            "requestParameters": {"roleName": 7},
        }));
        assert!(read(&bad_params).unwrap_err().contains("requestParameters"));
        // A refusal of a user (not a role), or one that is not a refusal: nothing to do.
        let mut user = serde_json::json!({
            "eventTime": "2026-11-30T10:00:00Z",
            "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject",
            "errorCode": "AccessDenied",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/bob"},
        });
        assert!(matches!(read(&event(user.clone())), Ok(Signal::Ignored(_))));
        user["errorCode"] = "NoSuchKey".into();
        user["userIdentity"] = session("app");
        assert!(matches!(read(&event(user)), Ok(Signal::Ignored(_))));
    }
}
