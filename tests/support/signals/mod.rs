//! CloudTrail records and the EventBridge events that carry them, shaped as the signal queue
//! (`examples/aws/signals.*`) receives them: `tests/examples_aws.rs` puts them through moto's
//! EventBridge, operator tests may send [`cloudtrail_event`] straight to SQS.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The `detail-type` of every event CloudTrail delivers for an API call.
pub const DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

/// The EventBridge event for a CloudTrail `record`, as EventBridge delivers it to an SQS target
/// (the message body): `source` from `eventSource` (`iam.amazonaws.com` → `aws.iam`; AWS's few
/// exceptions to that rule are not modelled), `account` the recipient account, `time` the event
/// time, `region` the record's, and an `id` derived from `eventID` (EventBridge's own is a
/// different UUID; derived, equal records give equal events).
pub fn cloudtrail_event(record: &Value) -> Value {
    let text = |key: &str| {
        record[key]
            .as_str()
            .unwrap_or_else(|| panic!("the record has no {key}: {record}"))
    };
    let service = (text("eventSource").strip_suffix(".amazonaws.com"))
        .unwrap_or_else(|| panic!("not an AWS eventSource: {record}"));
    let account = (record["recipientAccountId"].as_str())
        .or(record["userIdentity"]["accountId"].as_str())
        .unwrap_or_else(|| panic!("the record names no account: {record}"));
    json!({
        "version": "0",
        "id": uuid_from(text("eventID")),
        "detail-type": DETAIL_TYPE,
        "source": format!("aws.{service}"),
        "account": account,
        "time": text("eventTime"),
        "region": text("awsRegion"),
        "resources": [],
        "detail": record,
    })
}

/// A CloudTrail record of `event_name` on `event_source` (`s3.amazonaws.com`) by a session of
/// the role `role_arn` (`arn:aws:iam::123456789012:role/path/app`), successful, in us-east-1,
/// recorded in the role's account. Add `errorCode` with [`denied`].
pub fn cloudtrail_record(
    event_id: &str,
    role_arn: &str,
    event_source: &str,
    event_name: &str,
    request_parameters: Value,
) -> Value {
    let account = role_arn.split(':').nth(4).expect("a role ARN");
    let role_name = role_arn.rsplit('/').next().expect("a role ARN");
    let role_id = format!("AROA{}", &uuid_from(role_arn).replace('-', "")[..17]).to_uppercase();
    let read_only = ["Get", "List", "Describe", "Head"]
        .iter()
        .any(|verb| event_name.starts_with(verb));
    let data = event_source == "s3.amazonaws.com" && event_name.contains("Object")
        || event_source == "lambda.amazonaws.com" && event_name.starts_with("Invoke");
    json!({
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": format!("{role_id}:session"),
            "arn": format!("arn:aws:sts::{account}:assumed-role/{role_name}/session"),
            "accountId": account,
            "accessKeyId": "ASIAEXAMPLEEXAMPLE00",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": role_arn,
                    "accountId": account,
                    "userName": role_name,
                },
                "attributes": {"creationDate": "2026-05-04T09:00:00Z", "mfaAuthenticated": "false"},
            },
        },
        "eventTime": "2026-05-04T10:11:12Z",
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.10",
        "userAgent": "aws-sdk-rust/1.3.0",
        "requestParameters": request_parameters,
        "responseElements": null,
        "requestID": uuid_from(&format!("request {event_id}")),
        "eventID": event_id,
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": !data,
        "recipientAccountId": account,
        "eventCategory": if data { "Data" } else { "Management" },
    })
}

/// `record` failed with `error_code` (`AccessDenied`, `Client.UnauthorizedOperation`, ...).
pub fn denied(mut record: Value, error_code: &str) -> Value {
    let service = (record["eventSource"]
        .as_str()
        .unwrap_or("?")
        .split('.')
        .next())
    .unwrap_or("?");
    let message = format!(
        "User: {} is not authorized to perform: {service}:{} because no identity-based policy allows the action",
        record["userIdentity"]["arn"].as_str().unwrap_or("?"),
        record["eventName"].as_str().unwrap_or("?"),
    );
    record["errorCode"] = json!(error_code);
    record["errorMessage"] = json!(message);
    record
}

/// A UUID-shaped id, the same for the same `seed`.
fn uuid_from(seed: &str) -> String {
    let hex: String = Sha256::digest(seed.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
