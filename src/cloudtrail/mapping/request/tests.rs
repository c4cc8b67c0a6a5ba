//! Request-aware rows, from records shaped as CloudTrail logs these calls (field names and
//! nesting as in AWS's CloudTrail examples; values made up).

use super::*;
use crate::cloudtrail::Record;
use crate::cloudtrail::mapping::map_record;

/// (action, resource, condition) of a record's grants, and its instance profiles and notes.
type Mapped = (Vec<(String, String, String)>, Vec<String>, Vec<String>);

fn map(source: &str, name: &str, params: &str) -> Mapped {
    let json = format!(
        r#"{{"eventSource":"{source}.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1",
        "recipientAccountId":"111122223333","requestParameters":{params}}}"#
    );
    let record: Record = serde_json::from_str(&json).expect("fixture parses");
    let mapping = map_record(&record).expect("maps");
    let grants = (mapping.grants.iter())
        .map(|g| {
            let condition = g.condition.map(|c| format!("{}={}", c.key, c.value));
            let condition = condition.unwrap_or_default();
            (g.action.full_name(), g.resource.clone(), condition)
        })
        .collect();
    (grants, mapping.instance_profiles, mapping.notes)
}

/// The grants of one action.
fn of(mapped: &Mapped, action: &str) -> Vec<(String, String)> {
    (mapped.0.iter())
        .filter(|(a, _, _)| a == action)
        .map(|(_, r, c)| (r.clone(), c.clone()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    (list.iter())
        .map(|(r, c)| (r.to_string(), c.to_string()))
        .collect()
}

const LAMBDA_ROLE: &str = "arn:aws:iam::111122223333:role/service-role/orders-fn";

#[test]
fn create_function_passes_its_role_to_lambda_only() {
    let params = format!(
        r#"{{"functionName":"orders","runtime":"python3.12","role":"{LAMBDA_ROLE}",
        "handler":"app.handler","code":{{}},"timeout":30,"publish":false}}"#
    );
    let mapped = map("lambda", "CreateFunction20150331", &params);
    assert_eq!(
        of(&mapped, "iam:PassRole"),
        pairs(&[(LAMBDA_ROLE, "iam:PassedToService=lambda.amazonaws.com")])
    );
    assert_eq!(
        of(&mapped, "lambda:CreateFunction"),
        pairs(&[("arn:aws:lambda:us-east-1:111122223333:function:orders", "")])
    );
    // No tags asked for: no lambda:TagResource.
    assert!(of(&mapped, "lambda:TagResource").is_empty());
}

/// Not the other way round: a call that could pass a role, but did not, needs no PassRole.
#[test]
fn no_parameter_no_dependent_action() {
    let updated = map(
        "lambda",
        "UpdateFunctionConfiguration20150331v2",
        r#"{"functionName":"orders","timeout":60}"#,
    );
    assert!(of(&updated, "iam:PassRole").is_empty(), "{updated:?}");
    let stack = map(
        "cloudformation",
        "CreateStack",
        r#"{"stackName":"app","templateURL":"https://b.s3.amazonaws.com/t.yaml"}"#,
    );
    assert!(of(&stack, "iam:PassRole").is_empty(), "{stack:?}");
    let topic = map("sns", "CreateTopic", r#"{"name":"alerts"}"#);
    assert!(of(&topic, "iam:PassRole").is_empty(), "{topic:?}");
    assert!(of(&topic, "sns:TagResource").is_empty(), "{topic:?}");
    // `tags` present but empty says nothing.
    let queue = map("sqs", "CreateQueue", r#"{"queueName":"q","tags":{}}"#);
    assert!(of(&queue, "sqs:TagQueue").is_empty(), "{queue:?}");
}

/// The attack: a record (the trail is untrusted) names a pattern, another account's thing of
/// another kind, or a policy variable as the role. None of them becomes a grant.
#[test]
fn a_passed_role_is_exactly_one_role() {
    let hostile = [
        "arn:aws:iam::111122223333:role/*",
        "arn:aws:iam::111122223333:role/app-?",
        "arn:aws:iam::*:role/app",
        "arn:aws:iam::111122223333:role/${aws:username}",
        "arn:aws:iam::111122223333:user/alice",
        "arn:aws:iam::111122223333:role/",
        "arn:aws:s3:::bucket/role/app",
        "arn:aws:iam:us-east-1:111122223333:role/app",
        "*",
        "app*",
        "",
    ];
    for role in hostile {
        let params = format!(r#"{{"stackName":"app","roleARN":{role:?}}}"#);
        let mapped = map("cloudformation", "CreateStack", &params);
        assert!(of(&mapped, "iam:PassRole").is_empty(), "{role}: {mapped:?}");
        if !role.is_empty() {
            assert!(
                mapped
                    .2
                    .iter()
                    .any(|n| n.contains("not a role ARN or name")),
                "{role}: {mapped:?}"
            );
        }
    }
    // A name is a role of the call's account; a path is kept.
    let by_name = map("glue", "CreateJob", r#"{"name":"etl","role":"GlueEtl"}"#);
    assert_eq!(
        of(&by_name, "iam:PassRole"),
        pairs(&[(
            "arn:aws:iam::111122223333:role/GlueEtl",
            "iam:PassedToService=glue.amazonaws.com"
        )])
    );
    let other_account = "arn:aws:iam::444455556666:role/path/to/deployer";
    let params = format!(r#"{{"stackName":"app","roleARN":"{other_account}"}}"#);
    assert_eq!(
        of(
            &map("cloudformation", "CreateStack", &params),
            "iam:PassRole"
        ),
        pairs(&[(
            other_account,
            "iam:PassedToService=cloudformation.amazonaws.com"
        )])
    );
}

#[test]
fn roles_nested_in_the_request_are_found() {
    let replication = r#"{"bucketName":"src","replication":"",
        "ReplicationConfiguration":{"Role":"arn:aws:iam::111122223333:role/replicator",
        "Rule":{"ID":"all","Status":"Enabled","Destination":{"Bucket":"arn:aws:s3:::dst"}}}}"#;
    let mapped = map("s3", "PutBucketReplication", replication);
    assert_eq!(
        of(&mapped, "iam:PassRole"),
        pairs(&[(
            "arn:aws:iam::111122223333:role/replicator",
            "iam:PassedToService=s3.amazonaws.com"
        )])
    );
    let task = r#"{"family":"web","taskRoleArn":"arn:aws:iam::111122223333:role/web-task",
        "executionRoleArn":"arn:aws:iam::111122223333:role/ecsTaskExecutionRole",
        "containerDefinitions":[{"name":"web","image":"nginx"}]}"#;
    assert_eq!(
        of(&map("ecs", "RegisterTaskDefinition", task), "iam:PassRole"),
        pairs(&[
            (
                "arn:aws:iam::111122223333:role/ecsTaskExecutionRole",
                "iam:PassedToService=ecs-tasks.amazonaws.com"
            ),
            (
                "arn:aws:iam::111122223333:role/web-task",
                "iam:PassedToService=ecs-tasks.amazonaws.com"
            ),
        ])
    );
    // RDS feature roles: no managed policy shows the service, so no condition; still the role.
    let export = r#"{"exportTaskIdentifier":"x","sourceArn":"arn:aws:rds:us-east-1:111122223333:snapshot:s",
        "s3BucketName":"b","iamRoleArn":"arn:aws:iam::111122223333:role/rds-export","kmsKeyId":"k"}"#;
    assert_eq!(
        of(&map("rds", "StartExportTask", export), "iam:PassRole"),
        pairs(&[("arn:aws:iam::111122223333:role/rds-export", "")])
    );
}

#[test]
fn instance_profiles_are_reported_not_guessed() {
    let run = r#"{"instancesSet":{"items":[{"imageId":"ami-0abc","minCount":1,"maxCount":1}]},
        "instanceType":"t3.micro","iamInstanceProfile":{"name":"web-profile"},
        "tagSpecificationSet":{"items":[{"resourceType":"instance","tags":[{"key":"Name","value":"web"}]},
        {"resourceType":"volume","tags":[{"key":"Name","value":"web"}]}]}}"#;
    let mapped = map("ec2", "RunInstances", run);
    assert!(of(&mapped, "iam:PassRole").is_empty(), "{mapped:?}");
    assert_eq!(
        mapped.1,
        ["arn:aws:iam::111122223333:instance-profile/web-profile"]
    );
    assert_eq!(
        of(&mapped, "ec2:CreateTags"),
        pairs(&[
            (
                "arn:aws:ec2:us-east-1:111122223333:instance/*",
                "ec2:CreateAction=RunInstances"
            ),
            (
                "arn:aws:ec2:us-east-1:111122223333:volume/*",
                "ec2:CreateAction=RunInstances"
            ),
        ])
    );
    let associate = r#"{"AssociateIamInstanceProfileRequest":{"InstanceId":"i-0abc",
        "IamInstanceProfile":{"Arn":"arn:aws:iam::111122223333:instance-profile/ops/batch"}}}"#;
    assert_eq!(
        map("ec2", "AssociateIamInstanceProfile", associate).1,
        ["arn:aws:iam::111122223333:instance-profile/ops/batch"]
    );
    // A resource type that could be a pattern is refused.
    let hostile = r#"{"tagSpecificationSet":{"items":[{"resourceType":"*"}]}}"#;
    let refused = map("ec2", "CreateVolume", hostile);
    assert!(of(&refused, "ec2:CreateTags").is_empty(), "{refused:?}");
}

#[test]
fn versions_acls_and_tags_asked_for_need_their_actions() {
    let get = map(
        "s3",
        "GetObject",
        r#"{"bucketName":"b","key":"k","versionId":"3HL4kqtJ"}"#,
    );
    assert_eq!(
        of(&get, "s3:GetObjectVersion"),
        pairs(&[("arn:aws:s3:::b/k", "")])
    );
    let latest = map("s3", "GetObject", r#"{"bucketName":"b","key":"k"}"#);
    assert!(of(&latest, "s3:GetObjectVersion").is_empty());
    let delete = map(
        "s3",
        "DeleteObject",
        r#"{"bucketName":"b","key":"k","versionId":"v1"}"#,
    );
    assert_eq!(
        of(&delete, "s3:DeleteObjectVersion"),
        pairs(&[("arn:aws:s3:::b/k", "")])
    );
    let put = r#"{"bucketName":"b","key":"k","x-amz-acl":"bucket-owner-full-control",
        "x-amz-tagging":"team=data"}"#;
    let put = map("s3", "PutObject", put);
    assert_eq!(
        of(&put, "s3:PutObjectAcl"),
        pairs(&[("arn:aws:s3:::b/k", "")])
    );
    assert_eq!(
        of(&put, "s3:PutObjectTagging"),
        pairs(&[("arn:aws:s3:::b/k", "")])
    );
    let db = r#"{"dBInstanceIdentifier":"orders","engine":"postgres",
        "tags":[{"key":"team","value":"data"}]}"#;
    assert_eq!(
        of(&map("rds", "CreateDBInstance", db), "rds:AddTagsToResource"),
        pairs(&[("arn:aws:rds:us-east-1:111122223333:db:orders", "")])
    );
    let queue = r#"{"queueName":"jobs","tags":{"team":"data"}}"#;
    assert_eq!(
        of(&map("sqs", "CreateQueue", queue), "sqs:TagQueue"),
        pairs(&[("arn:aws:sqs:us-east-1:111122223333:jobs", "")])
    );
}

#[test]
fn a_cluster_reboot_reboots_its_instances() {
    let mapped = map(
        "rds",
        "RebootDBCluster",
        r#"{"dBClusterIdentifier":"orders"}"#,
    );
    assert_eq!(
        of(&mapped, "rds:RebootDBInstance"),
        pairs(&[("arn:aws:rds:us-east-1:111122223333:db:*", "")])
    );
    assert_eq!(of(&mapped, "rds:RebootDBCluster").len(), 1, "{mapped:?}");
}

/// A request listing many values costs a bounded amount, and says so.
#[test]
fn values_per_row_are_bounded() {
    let items: Vec<String> = (0..100)
        .map(|i| format!(r#"{{"resourceType":"type{i}"}}"#))
        .collect();
    let params = format!(
        r#"{{"tagSpecificationSet":{{"items":[{}]}}}}"#,
        items.join(",")
    );
    let mapped = map("ec2", "CreateVolume", &params);
    assert_eq!(of(&mapped, "ec2:CreateTags").len(), MAX_VALUES_PER_ROW);
    assert!(
        mapped.2.iter().any(|n| n.contains("100 values")),
        "{mapped:?}"
    );
}

/// The table's own rules (the shared-data checks are in `tests/mapping_shared_corpus.rs`).
#[test]
fn every_row_is_a_catalog_action_under_a_key_it_defines() {
    let lines: Vec<&str> = (REQUEST_ACTIONS.lines())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(rows().len(), lines.len(), "every action is in the catalog");
    let mut keys = Vec::new();
    for line in &lines {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 7, "{line:?}");
        assert!(catalog().has_service(fields[0]), "{line:?}");
        assert!(matches!(fields[6], "iam-dataset" | "aws-docs"), "{line:?}");
        let action = catalog().action(fields[3]).expect("catalog action");
        if let Some((key, value)) = fields[5].split_once('=') {
            assert!(action.condition_keys().any(|k| k == key), "{line:?}");
            assert!(!value.is_empty() && !value.contains(['*', '?']), "{line:?}");
        } else {
            assert_eq!(fields[5], "-", "{line:?}");
        }
        // PassRole only ever on a role the request names, never on every call.
        if fields[3] == "iam:PassRole" {
            assert!(matches!(fields[4], "role" | "profile"), "{line:?}");
            assert_ne!(fields[2], "-", "{line:?}");
        }
        keys.push(fields[..4].join("\t").to_lowercase());
    }
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "sorted, no duplicates"
    );
}

/// Whoever calls it, a successful AddRoleToInstanceProfile says which role a profile holds;
/// a failed one, or names that could read as patterns, say nothing.
#[test]
fn added_roles_are_learned_only_from_successful_calls_with_plain_names() {
    let record = |params: &str, error: &str| {
        let json = format!(
            r#"{{"eventSource":"iam.amazonaws.com","eventName":"AddRoleToInstanceProfile",
            "awsRegion":"us-east-1","recipientAccountId":"111122223333",{error}
            "requestParameters":{params}}}"#
        );
        let record: Record = serde_json::from_str(&json).unwrap();
        profile_role(&record)
    };
    assert_eq!(
        record(r#"{"instanceProfileName":"web","roleName":"web-role"}"#, ""),
        Some((
            "arn:aws:iam::111122223333:instance-profile/web".to_string(),
            "arn:aws:iam::111122223333:role/web-role".to_string()
        ))
    );
    let denied = r#""errorCode":"AccessDenied","#;
    assert_eq!(
        record(r#"{"instanceProfileName":"web","roleName":"r"}"#, denied),
        None
    );
    for hostile in [
        r#"{"instanceProfileName":"web","roleName":"*"}"#,
        r#"{"instanceProfileName":"*","roleName":"r"}"#,
        r#"{"instanceProfileName":"web","roleName":"a/b"}"#,
        r#"{"instanceProfileName":"web"}"#,
    ] {
        assert_eq!(record(hostile, ""), None, "{hostile}");
    }
}
