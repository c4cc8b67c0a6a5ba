//! `generate` over a deploy role's trail: the roles it passed become `iam:PassRole` on exactly
//! those roles, to their services; an instance profile's role comes from the trail's own
//! `AddRoleToInstanceProfile` (by another principal) or a hint, else it is reported.

use std::process::Command;

const DEPLOYER: &str = "arn:aws:iam::111122223333:role/deployer";
const FN_ROLE: &str = "arn:aws:iam::111122223333:role/service-role/orders-fn";
const WEB_ROLE: &str = "arn:aws:iam::111122223333:role/web";

/// A record as CloudTrail writes it for `arn` (an assumed role), in us-east-1.
fn record(arn_role: &str, source: &str, name: &str, params: &str, id: u32) -> String {
    let role_name = arn_role.rsplit('/').next().unwrap();
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"AssumedRole",
        "arn":"arn:aws:sts::111122223333:assumed-role/{role_name}/session","accountId":"111122223333",
        "sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"{arn_role}","accountId":"111122223333"}}}}}},
        "eventTime":"2026-11-20T10:00:{id:02}Z","eventSource":"{source}.amazonaws.com","eventName":"{name}",
        "awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userAgent":"aws-cli/2",
        "requestParameters":{params},"responseElements":null,"eventID":"e-{id}",
        "eventType":"AwsApiCall","recipientAccountId":"111122223333"}}"#
    )
}

fn trail(dir: &std::path::Path, records: &[String]) -> String {
    let path = dir.join("trail.json");
    std::fs::write(&path, format!(r#"{{"Records":[{}]}}"#, records.join(","))).unwrap();
    path.to_str().unwrap().to_string()
}

/// Runs `generate --principal DEPLOYER` with `extra`: (policy, report, stderr).
fn generate(file: &str, extra: &[&str]) -> (serde_json::Value, serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_iam-tailor"))
        .args(["generate", "--cloudtrail", file, "--principal", DEPLOYER])
        .args(["--report", report.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let policy = serde_json::from_slice(&out.stdout).unwrap();
    let report = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    (policy, report, stderr)
}

/// The statements granting iam:PassRole: (resources, PassedToService values).
fn pass_role(policy: &serde_json::Value) -> Vec<(Vec<String>, Vec<String>)> {
    let strings = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().unwrap().to_string())
                .collect(),
            other => vec![other.as_str().unwrap().to_string()],
        }
    };
    (policy["Statement"].as_array().unwrap().iter())
        .filter(|s| strings(&s["Action"]).iter().any(|a| a == "iam:PassRole"))
        .map(|s| {
            let services = &s["Condition"]["StringEquals"]["iam:PassedToService"];
            let services = if services.is_null() {
                Vec::new()
            } else {
                strings(services)
            };
            (strings(&s["Resource"]), services)
        })
        .collect()
}

#[test]
fn passed_roles_are_granted_to_their_services_and_profiles_resolved_or_reported() {
    let dir = tempfile::tempdir().unwrap();
    let create = format!(
        r#"{{"functionName":"orders","runtime":"python3.12","role":"{FN_ROLE}","handler":"a.h"}}"#
    );
    let run = r#"{"instancesSet":{"items":[{"imageId":"ami-0abc","minCount":1,"maxCount":1}]},
        "instanceType":"t3.micro","iamInstanceProfile":{"name":"web"}}"#;
    let records = [
        record(DEPLOYER, "lambda", "CreateFunction20150331", &create, 1),
        record(DEPLOYER, "ec2", "RunInstances", run, 2),
        // A call the catalog has no action for: reported with a hint, never guessed.
        record(
            DEPLOYER,
            "s3",
            "GetObjekt",
            r#"{"bucketName":"b","key":"k"}"#,
            5,
        ),
        // Asking for a pattern as the role is refused, whoever's trail says so.
        record(
            DEPLOYER,
            "cloudformation",
            "CreateStack",
            r#"{"stackName":"x","roleARN":"arn:aws:iam::111122223333:role/*"}"#,
            3,
        ),
    ];
    let file = trail(dir.path(), &records);
    let (policy, report, stderr) = generate(&file, &[]);
    assert_eq!(
        pass_role(&policy),
        [(
            vec![FN_ROLE.to_string()],
            vec!["lambda.amazonaws.com".to_string()]
        )]
    );
    let unresolved = &report["unresolvedInstanceProfiles"];
    assert_eq!(
        unresolved[0]["instanceProfile"],
        "arn:aws:iam::111122223333:instance-profile/web"
    );
    assert!(stderr.contains("instance profile"), "{stderr}");
    assert!(
        stderr.contains("unmapped s3.amazonaws.com GetObjekt (1 calls)")
            && stderr.contains("--keep s3:GetObject"),
        "{stderr}"
    );
    let hint = report["unmapped"][0]["hint"].as_str().unwrap();
    assert!(hint.contains("the closest is s3:GetObject"), "{hint}");
    assert!(
        (report["notes"].as_array().unwrap().iter())
            .any(|n| n.as_str().unwrap().contains("not a role ARN or name")),
        "{report}"
    );

    // A hint resolves the profile: PassRole on its role, to EC2 only.
    let hint = format!("web={WEB_ROLE}");
    let (policy, report, _) = generate(&file, &["--instance-profile", &hint]);
    let mut granted = pass_role(&policy);
    granted.sort();
    assert_eq!(
        granted,
        [
            (
                vec![FN_ROLE.to_string()],
                vec!["lambda.amazonaws.com".to_string()]
            ),
            (
                vec![WEB_ROLE.to_string()],
                vec!["ec2.amazonaws.com".to_string()]
            ),
        ]
    );
    assert_eq!(report["unresolvedInstanceProfiles"], serde_json::json!([]));

    // So does the trail, when it shows another principal adding the role to the profile.
    let mut with_setup = records.to_vec();
    with_setup.push(record(
        "arn:aws:iam::111122223333:role/terraform",
        "iam",
        "AddRoleToInstanceProfile",
        r#"{"instanceProfileName":"web","roleName":"web"}"#,
        4,
    ));
    let file = trail(dir.path(), &with_setup);
    let (policy, report, _) = generate(&file, &[]);
    assert_eq!(pass_role(&policy).len(), 2, "{policy}");
    assert_eq!(report["unresolvedInstanceProfiles"], serde_json::json!([]));
    // The deployer did not call AddRoleToInstanceProfile: it is not granted that.
    assert!(
        !policy.to_string().contains("AddRoleToInstanceProfile"),
        "{policy}"
    );
}

#[test]
fn a_hint_must_name_a_role_arn() {
    let out = Command::new(env!("CARGO_BIN_EXE_iam-tailor"))
        .args([
            "generate",
            "--cloudtrail",
            "/nonexistent",
            "--principal",
            DEPLOYER,
        ])
        .args(["--instance-profile", "web=web"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--instance-profile") && stderr.contains("not a role ARN"),
        "{stderr}"
    );
}
