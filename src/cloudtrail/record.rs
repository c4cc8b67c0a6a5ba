//! One CloudTrail record, borrowing from the bytes of its file.
//!
//! Only the fields iam-tailor reads are declared; serde skips the rest without building them,
//! and strings borrow from the input unless they contain escapes. That keeps a scan's memory
//! flat and its speed close to decompression.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record<'a> {
    /// RFC 3339, e.g. `2024-07-31T12:36:52Z`.
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub event_time: Option<Cow<'a, str>>,
    /// `s3.amazonaws.com`.
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub event_source: Option<Cow<'a, str>>,
    /// The API name, e.g. `GetObject` or `UpdateFunctionCode20150331v2`.
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub event_name: Option<Cow<'a, str>>,
    /// `AwsApiCall`, `AwsServiceEvent`, `AwsConsoleSignIn`, …
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub event_type: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub aws_region: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub recipient_account_id: Option<Cow<'a, str>>,
    /// CloudTrail's id of the event: names a denied call in `status.restore`.
    #[serde(borrow, default, rename = "eventID", deserialize_with = "borrowed")]
    pub event_id: Option<Cow<'a, str>>,
    /// Where the call came from (an IP address, or an AWS service's name): in the audit of a
    /// refused call the restore answers.
    #[serde(
        borrow,
        default,
        rename = "sourceIPAddress",
        deserialize_with = "borrowed"
    )]
    pub source_ip_address: Option<Cow<'a, str>>,
    /// Present when the call failed: `AccessDenied`, `NoSuchKey`, …
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub error_code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub user_identity: Option<UserIdentity<'a>>,
    /// Kept raw: only the mapper reads it, and only the keys it needs.
    #[serde(borrow, default)]
    pub request_parameters: Option<&'a RawValue>,
    /// `null` in many real records, so an absent list and `null` are the same.
    #[serde(borrow, default)]
    pub resources: Option<Vec<RecordResource<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity<'a> {
    /// `IAMUser`, `AssumedRole`, `FederatedUser`, `Root`, `AWSService`, …
    #[serde(borrow, default, rename = "type", deserialize_with = "borrowed")]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub arn: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub account_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub session_context: Option<SessionContext<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext<'a> {
    #[serde(borrow, default)]
    pub session_issuer: Option<SessionIssuer<'a>>,
}

/// The role (or user) whose credentials an `AssumedRole` session came from.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer<'a> {
    #[serde(borrow, default, rename = "type", deserialize_with = "borrowed")]
    pub kind: Option<Cow<'a, str>>,
    /// The role ARN with its path: `arn:aws:iam::111122223333:role/service/app`.
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub arn: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RecordResource<'a> {
    #[serde(borrow, default, rename = "ARN", deserialize_with = "borrowed")]
    pub arn: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type", deserialize_with = "borrowed")]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "accountId", deserialize_with = "borrowed")]
    pub account_id: Option<Cow<'a, str>>,
}

/// Deserializes an optional string borrowing from the input when it has no escapes. (serde
/// borrows a bare `Cow<str>` field, but an `Option<Cow<str>>` would always be copied.)
fn borrowed<'de, D>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed>::deserialize(deserializer)?.map(|b| b.0))
}

impl<'a> Record<'a> {
    /// The ARN of the principal whose permissions the call used: the session issuer (the role)
    /// for assumed-role sessions, the identity ARN otherwise.
    pub fn principal_arn(&self) -> Option<&str> {
        let identity = self.user_identity.as_ref()?;
        identity
            .session_context
            .as_ref()
            .and_then(|c| c.session_issuer.as_ref())
            .and_then(|issuer| issuer.arn.as_deref())
            .or(identity.arn.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_used_fields_and_tolerates_nulls() {
        let text = r#"{"eventTime":"2024-07-31T12:36:52Z","eventSource":"s3.amazonaws.com",
            "eventName":"GetObject","awsRegion":"us-east-1","recipientAccountId":"111122223333",
            "userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/app/s",
              "sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/svc/app"}}},
            "requestParameters":{"bucketName":"b","key":"k"},"resources":null,"unused":{"deep":[1,2]}}"#;
        let r: Record = serde_json::from_str(text).unwrap();
        assert!(matches!(r.event_name, Some(Cow::Borrowed("GetObject"))));
        assert!(r.resources.is_none());
        assert_eq!(
            r.principal_arn(),
            Some("arn:aws:iam::111122223333:role/svc/app")
        );
        assert_eq!(
            r.request_parameters.unwrap().get(),
            r#"{"bucketName":"b","key":"k"}"#
        );
    }
}
