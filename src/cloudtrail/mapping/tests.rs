use super::*;

/// (action, resource) pairs as text, and the notes.
type Mapped = (Vec<(String, String)>, Vec<String>);

/// Maps a record given as JSON.
fn map(json: &str) -> Result<Mapped, Unmapped> {
    let record: Record = serde_json::from_str(json).expect("fixture parses");
    let mapping = map_record(&record)?;
    let grants = (mapping.grants.iter())
        .map(|g| (g.action.full_name(), g.resource.clone()))
        .collect();
    Ok((grants, mapping.notes))
}

/// A record in us-east-1 of account 111122223333 with these source, name and parameters.
fn record(source: &str, name: &str, params: &str) -> String {
    format!(
        r#"{{"eventSource":"{source}.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1",
        "recipientAccountId":"111122223333","requestParameters":{params}}}"#
    )
}

fn grants(source: &str, name: &str, params: &str) -> Vec<(String, String)> {
    map(&record(source, name, params)).expect("maps").0
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    (list.iter())
        .map(|(a, r)| (a.to_string(), r.to_string()))
        .collect()
}

fn names(prefix: &str, event_name: &str) -> Vec<String> {
    (actions_for(prefix, event_name).iter())
        .map(|a| a.full_name())
        .collect()
}

#[test]
fn event_sources_map_to_catalog_prefixes() {
    let cases = [
        ("monitoring.amazonaws.com", Some("cloudwatch")),
        ("tagging.amazonaws.com", Some("tag")),
        ("email.amazonaws.com", Some("ses")),
        ("bedrock-runtime.amazonaws.com", Some("bedrock")),
        (
            "elasticloadbalancing.amazonaws.com",
            Some("elasticloadbalancing"),
        ),
        ("sso.amazonaws.com", Some("sso")),
        ("sso-oauth.amazonaws.com", Some("sso-oauth")),
        ("es.amazonaws.com", Some("es")),
        ("aoss.amazonaws.com", Some("aoss")),
        ("s3.amazonaws.com", Some("s3")),
        ("no-such-service.amazonaws.com", None),
    ];
    for (source, prefix) in cases {
        assert_eq!(service_prefix(source), prefix, "{source}");
    }
}

#[test]
fn renames_are_sorted_and_point_at_catalog_services() {
    assert!(SERVICE_RENAMES.windows(2).all(|w| w[0].0 < w[1].0));
    for (host, prefix) in SERVICE_RENAMES {
        assert!(catalog().has_service(prefix), "{host} -> {prefix}");
    }
}

#[test]
fn api_version_suffixes_are_stripped() {
    assert_eq!(names("lambda", "Invoke20150331"), ["lambda:InvokeFunction"]);
    assert_eq!(
        names("lambda", "GetFunction20150331v2"),
        ["lambda:GetFunction"]
    );
    assert_eq!(
        names("lambda", "UpdateFunctionCode20150331v2"),
        ["lambda:UpdateFunctionCode"]
    );
    // Digits that are no date stay part of the name.
    assert_eq!(strip_api_version("GetV2"), "GetV2");
    assert_eq!(strip_api_version("Op12345678"), "Op12345678");
}

#[test]
fn s3_calls_map_to_their_iam_actions() {
    let cases: &[(&str, &[&str])] = &[
        ("ListObjects", &["s3:ListBucket"]),
        ("ListObjectsV2", &["s3:ListBucket"]),
        ("ListObjectVersions", &["s3:ListBucketVersions"]),
        ("HeadObject", &["s3:GetObject"]),
        ("HeadBucket", &["s3:ListBucket"]),
        ("CreateMultipartUpload", &["s3:PutObject"]),
        ("UploadPart", &["s3:PutObject"]),
        ("UploadPartCopy", &["s3:GetObject", "s3:PutObject"]),
        ("CompleteMultipartUpload", &["s3:PutObject"]),
        ("AbortMultipartUpload", &["s3:AbortMultipartUpload"]),
        ("CopyObject", &["s3:GetObject", "s3:PutObject"]),
        ("DeleteObjects", &["s3:DeleteObject"]),
        ("GetBucketLocation", &["s3:GetBucketLocation"]),
        ("ListBuckets", &["s3:ListAllMyBuckets"]),
        (
            "GetObjectAttributes",
            &["s3:GetObject", "s3:GetObjectAttributes"],
        ),
        ("PutBucketPolicy", &["s3:PutBucketPolicy"]),
        ("NoSuchCall", &[]),
    ];
    for (event, expected) in cases {
        assert_eq!(names("s3", event), *expected, "{event}");
    }
}

#[test]
fn override_table_holds_only_catalog_actions_and_services() {
    for line in ACTION_OVERRIDES.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 3, "{line:?}");
        assert!(catalog().has_service(fields[0]), "{line:?}");
        for action in fields[2].split(',') {
            assert!(catalog().action_exists(action), "{action} in {line:?}");
        }
    }
    let keys: Vec<_> = (ACTION_OVERRIDES.lines())
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            l.split('\t')
                .take(2)
                .collect::<Vec<_>>()
                .join("\t")
                .to_lowercase()
        })
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "sorted, no duplicates"
    );
}

#[test]
fn unmappable_records_say_why() {
    assert_eq!(
        map(r#"{"eventName":"GetObject"}"#),
        Err(Unmapped::MissingFields)
    );
    assert_eq!(
        map(&record("nonexistent", "GetObject", "null")),
        Err(Unmapped::UnknownService)
    );
    assert_eq!(
        map(&record("signin", "ConsoleLogin", "null")),
        Err(Unmapped::UnknownAction)
    );
}

#[test]
fn listed_resources_are_used_when_the_action_supports_their_type() {
    let json = r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1",
        "requestParameters":{"bucketName":"other","key":"ignored"},
        "resources":[{"ARN":"arn:aws:s3:::b/k","type":"AWS::S3::Object"},
                     {"ARN":"arn:aws:s3:::b","type":"AWS::S3::Bucket"}]}"#;
    assert_eq!(
        map(json).unwrap().0,
        pairs(&[("s3:GetObject", "arn:aws:s3:::b/k")])
    );
}

#[test]
fn s3_object_arn_is_built_from_bucket_and_key() {
    assert_eq!(
        grants("s3", "PutObject", r#"{"bucketName":"b","key":"dir/k.txt"}"#),
        pairs(&[("s3:PutObject", "arn:aws:s3:::b/dir/k.txt")])
    );
    assert_eq!(
        grants("s3", "ListObjects", r#"{"bucketName":"b","list-type":"2"}"#),
        pairs(&[("s3:ListBucket", "arn:aws:s3:::b")])
    );
}

#[test]
fn partition_follows_region_and_account_falls_back_to_identity() {
    let json = r#"{"eventSource":"dynamodb.amazonaws.com","eventName":"GetItem",
        "awsRegion":"cn-north-1","userIdentity":{"accountId":"222233334444"},
        "requestParameters":{"tableName":"t"}}"#;
    assert_eq!(
        map(json).unwrap().0,
        pairs(&[(
            "dynamodb:GetItem",
            "arn:aws-cn:dynamodb:cn-north-1:222233334444:table/t"
        )])
    );
    assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
    assert_eq!(partition_of("eu-west-1"), "aws");
}

#[test]
fn copy_object_reads_the_decoded_source_and_writes_the_target() {
    let params = r#"{"bucketName":"dst","key":"new.txt",
        "x-amz-copy-source":"src/dir%2Fold%20file.txt?versionId=abc"}"#;
    assert_eq!(
        grants("s3", "CopyObject", params),
        pairs(&[
            ("s3:GetObject", "arn:aws:s3:::src/dir/old file.txt"),
            ("s3:PutObject", "arn:aws:s3:::dst/new.txt"),
        ])
    );
}

#[test]
fn copy_ignores_listed_resources_and_notes_a_missing_source() {
    let json = r#"{"eventSource":"s3.amazonaws.com","eventName":"CopyObject","awsRegion":"us-east-1",
        "requestParameters":{"bucketName":"dst","key":"k"},
        "resources":[{"ARN":"arn:aws:s3:::src/k"},{"ARN":"arn:aws:s3:::dst/k"}]}"#;
    let (g, notes) = map(json).unwrap();
    assert_eq!(
        g,
        pairs(&[
            ("s3:GetObject", "*"),
            ("s3:PutObject", "arn:aws:s3:::dst/k")
        ])
    );
    assert_eq!(notes.len(), 1);
}

#[test]
fn delete_objects_covers_each_listed_key_or_the_bucket() {
    let listed = r#"{"bucketName":"b","delete":{"Object":[{"Key":"x"},{"Key":"y"}]}}"#;
    assert_eq!(
        grants("s3", "DeleteObjects", listed),
        pairs(&[
            ("s3:DeleteObject", "arn:aws:s3:::b/x"),
            ("s3:DeleteObject", "arn:aws:s3:::b/y"),
        ])
    );
    assert_eq!(
        grants("s3", "DeleteObjects", r#"{"bucketName":"b","delete":""}"#),
        pairs(&[("s3:DeleteObject", "arn:aws:s3:::b/*")])
    );
}

#[test]
fn dynamodb_batch_calls_name_each_table() {
    let params = r#"{"requestItems":{"t1":{"keys":[{}]},"t2":{"keys":[{}]}}}"#;
    let table = |t: &str| format!("arn:aws:dynamodb:us-east-1:111122223333:table/{t}");
    assert_eq!(
        grants("dynamodb", "BatchGetItem", params),
        vec![
            ("dynamodb:BatchGetItem".to_string(), table("t1")),
            ("dynamodb:BatchGetItem".to_string(), table("t2")),
        ]
    );
}

#[test]
fn assume_role_uses_the_role_arn() {
    let params = r#"{"roleArn":"arn:aws:iam::999988887777:role/path/app","roleSessionName":"s"}"#;
    assert_eq!(
        grants("sts", "AssumeRole", params),
        pairs(&[("sts:AssumeRole", "arn:aws:iam::999988887777:role/path/app")])
    );
}

#[test]
fn lambda_function_may_be_an_arn_or_a_qualified_name() {
    let arn = "arn:aws:lambda:us-east-1:999988887777:function:f";
    assert_eq!(
        grants(
            "lambda",
            "Invoke",
            &format!(r#"{{"functionName":"{arn}"}}"#)
        ),
        pairs(&[("lambda:InvokeFunction", arn)])
    );
    // A qualified call is authorized on the qualified ARN, named or passed as an ARN; the
    // generator then grants the function and its qualifiers.
    assert_eq!(
        grants("lambda", "Invoke", r#"{"functionName":"f:live"}"#),
        pairs(&[(
            "lambda:InvokeFunction",
            "arn:aws:lambda:us-east-1:111122223333:function:f:live"
        )])
    );
    assert_eq!(
        grants(
            "lambda",
            "Invoke",
            &format!(r#"{{"functionName":"{arn}:42"}}"#)
        ),
        pairs(&[("lambda:InvokeFunction", &format!("{arn}:42"))])
    );
}

#[test]
fn ec2_tagging_names_its_resources_by_id() {
    let params = r#"{"resourcesSet":{"items":[{"resourceId":"i-0123456789abcdef0"},
        {"resourceId":"vol-0123abcd"},{"resourceId":"ami-0abc1234"},{"resourceId":"zzz-1"}]},
        "tagSet":{"items":[{"key":"a","value":"b"}]}}"#;
    assert_eq!(
        grants("ec2", "CreateTags", params),
        pairs(&[
            (
                "ec2:CreateTags",
                "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0"
            ),
            (
                "ec2:CreateTags",
                "arn:aws:ec2:us-east-1:111122223333:volume/vol-0123abcd"
            ),
            (
                "ec2:CreateTags",
                "arn:aws:ec2:us-east-1::image/ami-0abc1234"
            ),
        ])
    );
    // Every prefix names a resource type the catalog has.
    for (prefix, name) in super::EC2_ID_TYPES {
        assert!(
            catalog().resource_type("ec2", name).is_some(),
            "{prefix} → {name}"
        );
        assert_eq!(super::ec2_type_of_id(&format!("{prefix}0a1b")), Some(*name));
    }
}

#[test]
fn no_named_resource_falls_back_to_the_narrowest_template() {
    // The bucket is known, the key is not: the bucket's objects, not every object.
    let (g, notes) = map(&record("s3", "GetObject", r#"{"bucketName":"b"}"#)).unwrap();
    assert_eq!(g, pairs(&[("s3:GetObject", "arn:aws:s3:::b/*")]));
    assert_eq!(
        notes,
        [
            "s3:GetObject: no ARN could be built from requestParameters (missing ${ObjectName}); used arn:aws:s3:::b/*"
        ]
    );
    // Tags on resources the record does not name: within the account and region, never `*`.
    let (g, _) = map(&record("ec2", "CreateTags", r#"{"tagSet":{}}"#)).unwrap();
    assert!(!g.is_empty());
    for grant in &g {
        assert!(grant.1.starts_with("arn:aws:"), "{grant:?}");
        assert!(
            !grant.1.contains(":999988887777:"),
            "only the record's account: {grant:?}"
        );
    }
}

#[test]
fn queue_url_gives_the_queue_arn_with_its_account_and_region() {
    let params = r#"{"queueUrl":"https://sqs.eu-west-1.amazonaws.com/999988887777/jobs"}"#;
    assert_eq!(
        grants("sqs", "SendMessage", params),
        pairs(&[("sqs:SendMessage", "arn:aws:sqs:eu-west-1:999988887777:jobs")])
    );
}

#[test]
fn topic_arn_is_used_as_is() {
    let params = r#"{"topicArn":"arn:aws:sns:us-east-1:111122223333:alerts","message":"m"}"#;
    assert_eq!(
        grants("sns", "Publish", params),
        pairs(&[("sns:Publish", "arn:aws:sns:us-east-1:111122223333:alerts")])
    );
}

#[test]
fn kms_key_from_id_or_arn_but_not_alias() {
    assert_eq!(
        grants("kms", "Decrypt", r#"{"keyId":"1234abcd"}"#),
        pairs(&[(
            "kms:Decrypt",
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd"
        )])
    );
    let arn = "arn:aws:kms:us-east-1:999988887777:key/k";
    assert_eq!(
        grants("kms", "Decrypt", &format!(r#"{{"keyId":"{arn}"}}"#)),
        pairs(&[("kms:Decrypt", arn)])
    );
    // An alias names no key: some key of the account and region.
    let (g, notes) = map(&record("kms", "Decrypt", r#"{"keyId":"alias/app"}"#)).unwrap();
    assert_eq!(
        g,
        pairs(&[("kms:Decrypt", "arn:aws:kms:us-east-1:111122223333:key/*")])
    );
    assert_eq!(notes.len(), 1);
}

#[test]
fn secret_name_gets_the_random_suffix_wildcard() {
    assert_eq!(
        grants(
            "secretsmanager",
            "GetSecretValue",
            r#"{"secretId":"db/pass"}"#
        ),
        pairs(&[(
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:db/pass-??????"
        )])
    );
    let arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCdEf";
    assert_eq!(
        grants(
            "secretsmanager",
            "GetSecretValue",
            &format!(r#"{{"secretId":"{arn}"}}"#)
        ),
        pairs(&[("secretsmanager:GetSecretValue", arn)])
    );
}

#[test]
fn ssm_parameter_names_drop_their_leading_slash() {
    let p = |n: &str| format!("arn:aws:ssm:us-east-1:111122223333:parameter/{n}");
    assert_eq!(
        grants(
            "ssm",
            "GetParameters",
            r#"{"names":["/a/b","c"],"withDecryption":true}"#
        ),
        vec![
            ("ssm:GetParameters".to_string(), p("a/b")),
            ("ssm:GetParameters".to_string(), p("c")),
        ]
    );
}

#[test]
fn named_parameters_fill_iam_logs_and_ec2_templates() {
    assert_eq!(
        grants(
            "iam",
            "AttachRolePolicy",
            r#"{"roleName":"r","policyArn":"arn:aws:iam::aws:policy/P"}"#
        ),
        pairs(&[("iam:AttachRolePolicy", "arn:aws:iam::111122223333:role/r")])
    );
    assert_eq!(
        grants("iam", "CreateAccessKey", r#"{"userName":"u"}"#),
        pairs(&[("iam:CreateAccessKey", "arn:aws:iam::111122223333:user/u")])
    );
    assert_eq!(
        grants(
            "logs",
            "CreateLogStream",
            r#"{"logGroupName":"/app","logStreamName":"s"}"#
        ),
        pairs(&[(
            "logs:CreateLogStream",
            "arn:aws:logs:us-east-1:111122223333:log-group:/app:log-stream:s"
        )])
    );
    let params = r#"{"instancesSet":{"items":[{"instanceId":"i-1"},{"instanceId":"i-2"}]}}"#;
    let i = |id: &str| format!("arn:aws:ec2:us-east-1:111122223333:instance/{id}");
    assert_eq!(
        grants("ec2", "StopInstances", params),
        vec![
            ("ec2:StopInstances".to_string(), i("i-1")),
            ("ec2:StopInstances".to_string(), i("i-2")),
        ]
    );
}

#[test]
fn actions_without_resource_types_get_star_without_a_note() {
    let (g, notes) = map(&record("ec2", "DescribeInstances", r#"{"filterSet":{}}"#)).unwrap();
    assert_eq!(g, pairs(&[("ec2:DescribeInstances", "*")]));
    assert!(notes.is_empty());
}

#[test]
fn required_resource_type_is_preferred() {
    // ssm:SendCommand requires the document; the instances are an optional type.
    let params = r#"{"documentName":"MyDoc","instanceIds":["i-1"]}"#;
    assert_eq!(
        grants("ssm", "SendCommand", params),
        pairs(&[(
            "ssm:SendCommand",
            "arn:aws:ssm:us-east-1:111122223333:document/MyDoc"
        )])
    );
    // AWS's own documents have no account.
    assert_eq!(
        grants(
            "ssm",
            "SendCommand",
            r#"{"documentName":"AWS-RunShellScript"}"#
        ),
        pairs(&[(
            "ssm:SendCommand",
            "arn:aws:ssm:us-east-1::document/AWS-RunShellScript"
        )])
    );
    // ssm:StartSession requires none: the first type whose variables are all there.
    assert_eq!(
        grants("ssm", "StartSession", r#"{"target":"i-1"}"#),
        pairs(&[(
            "ssm:StartSession",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-1"
        )])
    );
}

#[test]
fn grants_are_sorted_and_deduplicated() {
    let json = r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1",
        "resources":[{"ARN":"arn:aws:s3:::b/z"},{"ARN":"arn:aws:s3:::b/a"},{"ARN":"arn:aws:s3:::b/z"}]}"#;
    assert_eq!(
        map(json).unwrap().0,
        pairs(&[
            ("s3:GetObject", "arn:aws:s3:::b/a"),
            ("s3:GetObject", "arn:aws:s3:::b/z")
        ])
    );
}

#[test]
fn percent_decoding_keeps_invalid_escapes() {
    // The decoding copy-source parsing relies on (percent-encoding's).
    let percent_decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    assert_eq!(percent_decode("a%2Fb%20c"), "a/b c");
    assert_eq!(percent_decode("100%zz"), "100%zz");
    assert_eq!(percent_decode("%E2%82%AC"), "€");
}

#[test]
fn templates_without_request_values_do_not_win_over_the_model_id() {
    // bedrock:InvokeModel has a dozen required types, one of them variable-free.
    assert_eq!(
        grants(
            "bedrock",
            "InvokeModel",
            r#"{"modelId":"anthropic.claude-v2"}"#
        ),
        pairs(&[(
            "bedrock:InvokeModel",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2"
        )])
    );
    assert_eq!(
        grants(
            "bedrock",
            "InvokeModel",
            r#"{"modelId":"us.anthropic.claude-v2"}"#
        ),
        pairs(&[(
            "bedrock:InvokeModel",
            "arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.anthropic.claude-v2"
        )])
    );
    // No model named: bedrock resources of the account and region (a dozen types, folded
    // to their ARN headers), not every resource of every service.
    let (g, notes) = map(&record("bedrock", "InvokeModel", "null")).unwrap();
    assert_eq!(
        g,
        pairs(&[
            ("bedrock:InvokeModel", "arn:aws:bedrock::111122223333:*"),
            (
                "bedrock:InvokeModel",
                "arn:aws:bedrock:us-east-1:111122223333:*"
            ),
            ("bedrock:InvokeModel", "arn:aws:bedrock:us-east-1::*"),
        ])
    );
    assert_eq!(notes.len(), 1);
}

#[test]
fn actions_needing_several_resource_types_name_them_all() {
    // glue:GetTable needs the root catalog, the database and the table together.
    let (got, notes) = map(&record(
        "glue",
        "GetTable",
        r#"{"databaseName":"sales","name":"orders"}"#,
    ))
    .unwrap();
    let resources: Vec<&str> = got.iter().map(|(_, r)| r.as_str()).collect();
    assert!(
        resources.contains(&"arn:aws:glue:us-east-1:111122223333:database/sales"),
        "{got:?}"
    );
    assert!(
        resources.contains(&"arn:aws:glue:us-east-1:111122223333:catalog"),
        "{got:?}"
    );
    assert!(
        resources.iter().any(|r| r.contains(":table/sales/")),
        "{got:?}"
    );
    assert!(got.iter().all(|(a, _)| a == "glue:GetTable"));
    assert!(
        notes.is_empty() || notes.iter().all(|n| n.contains("wildcard")),
        "{notes:?}"
    );

    // ec2:RunInstances: the record names the image and subnet, not the instance to be.
    let (got, notes) = map(&record(
        "ec2",
        "RunInstances",
        r#"{"instancesSet":{"items":[{"imageId":"ami-0abc"}]},"subnetId":"subnet-1","instanceType":"t3.micro"}"#,
    ))
    .unwrap();
    let resources: Vec<&str> = got.iter().map(|(_, r)| r.as_str()).collect();
    assert!(
        resources.contains(&"arn:aws:ec2:us-east-1::image/ami-0abc"),
        "{got:?}"
    );
    assert!(
        resources.contains(&"arn:aws:ec2:us-east-1:111122223333:instance/*"),
        "{got:?}"
    );
    assert!(
        resources.contains(&"arn:aws:ec2:us-east-1:111122223333:security-group/*"),
        "{got:?}"
    );
    assert!(
        !resources.contains(&"*"),
        "stays within the account: {got:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("ec2:RunInstances") && n.contains("instance")),
        "{notes:?}"
    );
}

#[test]
fn bedrock_model_types_stay_alternatives() {
    let got = grants(
        "bedrock-runtime",
        "InvokeModel",
        r#"{"modelId":"anthropic.claude-v2"}"#,
    );
    assert_eq!(
        got,
        pairs(&[(
            "bedrock:InvokeModel",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2"
        )])
    );
}

/// Newer event names map to their documented actions.
#[test]
fn newer_event_names_map_to_documented_actions() {
    assert_eq!(names("bedrock", "Converse"), ["bedrock:InvokeModel"]);
    assert_eq!(
        names("bedrock", "ConverseStream"),
        ["bedrock:InvokeModelWithResponseStream"]
    );
    assert_eq!(
        names("s3express", "ListDirectoryBuckets"),
        ["s3express:ListAllMyDirectoryBuckets"]
    );
    assert_eq!(
        names("ssm", "OpenControlChannel"),
        ["ssmmessages:OpenControlChannel"]
    );
    let converse = grants(
        "bedrock-runtime",
        "Converse",
        r#"{"modelId":"anthropic.claude-3-haiku-20240307-v1:0"}"#,
    );
    assert_eq!(
        converse,
        pairs(&[(
            "bedrock:InvokeModel",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
        )])
    );
}

#[test]
fn unmapped_calls_get_a_hint() {
    let unknown = unmapped_hint("nothing.amazonaws.com", "Do");
    assert!(unknown.contains("no IAM service"), "{unknown}");
    let close = unmapped_hint("s3.amazonaws.com", "GetObjekt");
    assert!(close.contains("--keep s3:GetObject"), "{close}");
    let far = unmapped_hint("s3.amazonaws.com", "Zzzzzzzzzzzzzzzz");
    assert!(far.contains("s3 has no action Zzzzzzzzzzzzzzzz"), "{far}");
}

/// A value a caller chose (a key, a name, a listed ARN, a copy source, a region) is written as
/// a pattern naming exactly it: its `*`, `?` and `$` escaped, never a wildcard or a policy
/// variable; the wildcards the mapping itself writes stay wildcards.
#[test]
fn values_from_the_record_are_literal_in_the_pattern() {
    assert_eq!(
        grants(
            "s3",
            "PutObject",
            r#"{"bucketName":"b","key":"a*/b?/${aws:username}"}"#
        ),
        pairs(&[(
            "s3:PutObject",
            "arn:aws:s3:::b/a${*}/b${?}/${$}{aws:username}"
        )])
    );
    assert_eq!(
        grants("secretsmanager", "GetSecretValue", r#"{"secretId":"db*"}"#),
        pairs(&[(
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:db${*}-??????"
        )])
    );
    let copy = r#"{"bucketName":"dst","key":"k","x-amz-copy-source":"src/a%2A"}"#;
    assert_eq!(
        grants("s3", "CopyObject", copy),
        pairs(&[
            ("s3:GetObject", "arn:aws:s3:::src/a${*}"),
            ("s3:PutObject", "arn:aws:s3:::dst/k"),
        ])
    );
    let listed = r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1",
        "requestParameters":{"bucketName":"b","key":"k"},
        "resources":[{"ARN":"arn:aws:s3:::b/k?","type":"AWS::S3::Object"}]}"#;
    assert_eq!(
        map(listed).unwrap().0,
        pairs(&[("s3:GetObject", "arn:aws:s3:::b/k${?}")])
    );
    let region = r#"{"eventSource":"dynamodb.amazonaws.com","eventName":"GetItem",
        "awsRegion":"us-east-*","recipientAccountId":"111122223333",
        "requestParameters":{"tableName":"t"}}"#;
    assert_eq!(
        map(region).unwrap().0,
        pairs(&[(
            "dynamodb:GetItem",
            "arn:aws:dynamodb:us-east-${*}:111122223333:table/t"
        )])
    );
    // The mapping's own wildcard: DeleteObjects without its keys.
    assert_eq!(
        grants("s3", "DeleteObjects", r#"{"bucketName":"b","delete":""}"#),
        pairs(&[("s3:DeleteObject", "arn:aws:s3:::b/*")])
    );
}
