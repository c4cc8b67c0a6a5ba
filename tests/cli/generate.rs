//! `generate` and `unused` as users run them: local logs, S3 logs (moto), formats, the cut to
//! the current policies, the report, and determinism across thread counts.

use crate::moto;

use std::process::{Command, Output};

const ROLE: &str = "arn:aws:iam::111122223333:role/checkout-api";
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cloudtrail");
const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/cloudtrail");
const CURRENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/policies/checkout-api.json"
);

fn iam_tailor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iam-tailor"))
        .args(args)
        .output()
        .expect("runs iam-tailor")
}

fn ok_stdout(args: &[&str]) -> String {
    let o = iam_tailor(args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Runs `generate` for the example role with `extra` arguments; returns the policy text and
/// the `--report` JSON.
fn generate_with_report(extra: &[&str]) -> (String, serde_json::Value) {
    let dir = tempdir();
    let report = dir.path().join("report.json");
    let mut args = vec!["generate", "--cloudtrail", EXAMPLES, "--principal", ROLE];
    args.extend_from_slice(extra);
    args.extend(["--report", report.to_str().unwrap()]);
    let out = ok_stdout(&args);
    let report = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    (out, report)
}

#[test]
fn generates_the_example_role_policy() {
    let (out, report) = generate_with_report(&[]);
    let policy = iam_tailor::policy::Policy::parse(&out).unwrap();
    assert_eq!(
        policy.canonical_json_pretty() + "\n",
        out,
        "printed in canonical form"
    );
    let allowed = iam_tailor::policy::analysis::allowed_actions(std::slice::from_ref(&policy));
    let actions: Vec<&str> = allowed.iter().map(|a| a.action.as_str()).collect();
    for used in [
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
        "sqs:SendMessage",
        "dynamodb:GetItem",
        "kms:Decrypt",
    ] {
        assert!(actions.contains(&used), "{used} missing from {actions:?}");
    }
    // Denied attempts and other principals' calls are never granted.
    assert!(!actions.contains(&"iam:ListRoles"));
    assert!(!actions.contains(&"s3:DeleteObject"));
    assert_eq!(report["filesScanned"], 3);
    assert_eq!(report["denied"][0]["eventName"], "ListRoles");
    assert_eq!(report["revisions"][0].as_str().unwrap(), policy.revision());
    // Next month's orders are still allowed; other buckets and prefixes are not.
    let set = iam_tailor::policy::PolicySet::builder()
        .identity(policy)
        .build();
    let decide = |action: &str, resource: &str| {
        let context = iam_tailor::policy::Context::new();
        let request = iam_tailor::policy::Request {
            action,
            resource,
            principal: None,
            context: &context,
        };
        set.evaluate(&request).decision == iam_tailor::policy::Decision::Allowed
    };
    assert!(decide(
        "s3:PutObject",
        "arn:aws:s3:::checkout-orders/orders/2026/12/01/a.json"
    ));
    assert!(!decide(
        "s3:PutObject",
        "arn:aws:s3:::checkout-orders/admin/a.json"
    ));
    assert!(!decide(
        "s3:GetObject",
        "arn:aws:s3:::checkout-archive/orders/2026/12/01/a.json"
    ));
    let generalized = &report["generalized"][0];
    assert_eq!(
        generalized["resource"],
        "arn:aws:s3:::checkout-orders/orders/*"
    );
    assert_eq!(generalized["because"], serde_json::json!(["date segments"]));
}

/// The forward replay of scripts/bench-forward, asserted: a policy generated from a
/// workload's first fortnight allows every call of the next one (across a year, a month and
/// February's end) and denies every probe of access the role never used.
#[test]
fn next_fortnight_is_allowed_and_probes_are_denied() {
    let dir = tempdir();
    let work = dir.path();
    let generator = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/gen-forward-workloads.py"
    );
    let status = Command::new("python3")
        .args([generator, work.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    for workload in ["checkout", "ingest", "fleet"] {
        let role = format!("arn:aws:iam::111122223333:role/{workload}");
        let path = |part: &str| work.join(workload).join(part).display().to_string();
        let policy = ok_stdout(&[
            "generate",
            "--cloudtrail",
            &path("train"),
            "--principal",
            &role,
        ]);
        let policy_file = work.join(format!("{workload}.json"));
        std::fs::write(&policy_file, &policy).unwrap();
        let replay = |part: &str| {
            let o = iam_tailor(&[
                "replay",
                "--policy",
                policy_file.to_str().unwrap(),
                "--cloudtrail",
                &path(part),
                "--principal",
                &role,
                "--format",
                "json",
            ]);
            let result: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            (o.status.code(), result)
        };
        let (code, future) = replay("future");
        assert!(
            future["calls"].as_u64().unwrap() > 1000,
            "{workload}: {future}"
        );
        assert_eq!(
            (code, &future["deniedCalls"]),
            (Some(0), &serde_json::json!(0)),
            "{workload}: next fortnight denied under\n{policy}\n{future:#}"
        );
        let (code, probes) = replay("probes");
        assert_eq!(code, Some(1), "{workload}: a denied call exits 1");
        assert!(
            probes["calls"].as_u64().unwrap() >= 8,
            "{workload}: {probes}"
        );
        assert_eq!(
            probes["deniedCalls"], probes["calls"],
            "{workload}: a probe was allowed by\n{policy}\ndenied: {probes:#}"
        );
    }
}

#[test]
fn output_does_not_depend_on_threads() {
    let one = ok_stdout(&[
        "generate",
        "--cloudtrail",
        SHARED,
        "--cloudtrail",
        EXAMPLES,
        "--threads",
        "1",
        "--granularity",
        "exact",
    ]);
    let four = ok_stdout(&[
        "generate",
        "--cloudtrail",
        SHARED,
        "--cloudtrail",
        EXAMPLES,
        "--threads",
        "4",
        "--granularity",
        "exact",
    ]);
    assert_eq!(one, four);
    assert!(one.len() > 1000, "a real policy came out");
}

#[test]
fn current_policies_cut_the_output_and_formats_agree() {
    let (out, report) = generate_with_report(&["--current", CURRENT]);
    let policy = iam_tailor::policy::Policy::parse(&out).unwrap();
    let current =
        iam_tailor::policy::Policy::parse(&std::fs::read_to_string(CURRENT).unwrap()).unwrap();
    assert!(iam_tailor::policy::analysis::grants_no_new_access(&[policy], &[current]).is_proven());
    let dropped: Vec<&str> = report["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["action"].as_str().unwrap())
        .collect();
    assert!(
        dropped.contains(&"dynamodb:GetItem") && dropped.contains(&"kms:Decrypt"),
        "{dropped:?}"
    );

    let terraform = ok_stdout(&[
        "generate",
        "--cloudtrail",
        EXAMPLES,
        "--principal",
        ROLE,
        "--format",
        "terraform",
    ]);
    assert!(terraform.contains("data \"aws_iam_policy_document\""));
    assert!(terraform.contains("\"arn:aws:sqs:us-east-1:111122223333:checkout-events\""));
    let cloudformation = ok_stdout(&[
        "generate",
        "--cloudtrail",
        EXAMPLES,
        "--principal",
        ROLE,
        "--format",
        "cloudformation",
    ]);
    assert!(cloudformation.contains("AWS::IAM::ManagedPolicy"));
}

#[test]
fn unused_lists_what_was_granted_but_not_used() {
    let out = ok_stdout(&[
        "unused",
        "--policy",
        CURRENT,
        "--cloudtrail",
        EXAMPLES,
        "--principal",
        ROLE,
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let groups = v["groups"].as_array().unwrap();
    let all: Vec<&str> = groups
        .iter()
        .flat_map(|g| g["actions"].as_array().unwrap())
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(all.contains(&"sqs:DeleteQueue"));
    assert!(all.contains(&"iam:PassRole"));
    assert!(
        !all.contains(&"sqs:SendMessage"),
        "used actions are not unused"
    );
    assert!(!all.contains(&"s3:GetObject"));
    assert_eq!(
        groups[0]["accessLevel"], "PermissionsManagement",
        "most dangerous first"
    );
}

#[test]
fn bad_input_is_reported_not_fatal_unless_strict() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("bad.json"),
        "{\"Records\": [{\"eventName\": 3}, ",
    )
    .unwrap();
    let out = iam_tailor(&[
        "generate",
        "--cloudtrail",
        dir.path().to_str().unwrap(),
        "--cloudtrail",
        EXAMPLES,
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped"));
    let strict = iam_tailor(&[
        "generate",
        "--strict",
        "--cloudtrail",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(strict.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&strict.stderr).contains("bad.json"),
        "{}",
        String::from_utf8_lossy(&strict.stderr)
    );
    assert_eq!(
        iam_tailor(&["generate", "--cloudtrail", "/nonexistent"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        iam_tailor(&["generate", "--cloudtrail", EXAMPLES, "--since", "soon"])
            .status
            .code(),
        Some(2)
    );
}

/// The same logs read from S3 (moto) give the same policy as read locally; the window limits
/// which days are read.
#[test]
fn s3_logs_match_local_logs() {
    let server = moto::Moto::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let s3 = server.s3();
    runtime.block_on(async {
        s3.create_bucket().bucket("org-trail").send().await.unwrap();
        for entry in walk(std::path::Path::new(EXAMPLES)) {
            let key = entry
                .strip_prefix(EXAMPLES)
                .unwrap()
                .to_str()
                .unwrap()
                .trim_start_matches('/')
                .to_string();
            let body = std::fs::read(&entry).unwrap();
            s3.put_object()
                .bucket("org-trail")
                .key(format!("logs/{key}"))
                .body(body.into())
                .send()
                .await
                .unwrap();
        }
    });
    let run = |source: &str, extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_iam-tailor"));
        cmd.args([
            "generate",
            "--cloudtrail",
            source,
            "--principal",
            ROLE,
            "--granularity",
            "exact",
        ])
        .args(extra)
        .env("AWS_ENDPOINT_URL", &server.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE");
        let o = cmd.output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        (
            String::from_utf8(o.stdout).unwrap(),
            String::from_utf8(o.stderr).unwrap(),
        )
    };
    let (local, _) = run(EXAMPLES, &[]);
    let (remote, stderr) = run("s3://org-trail/logs/", &[]);
    assert_eq!(remote, local);
    assert!(stderr.contains("3 files"), "{stderr}");
    let window = [
        "--from",
        "2026-11-21T00:00:00Z",
        "--to",
        "2026-11-22T00:00:00Z",
    ];
    let (_, stderr) = run("s3://org-trail/logs/", &window);
    assert!(
        stderr.contains("1 files"),
        "only the one day in the window is read: {stderr}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn logs_are_required_except_for_the_access_analyzer_engine() {
    for command in ["generate", "unused"] {
        let o = iam_tailor(
            &[command, "--principal", ROLE, "--policy", CURRENT]
                [..if command == "unused" { 5 } else { 3 }],
        );
        assert_eq!(o.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains("--cloudtrail"), "{command}: {stderr}");
    }
    let o = iam_tailor(&[
        "generate",
        "--trail-arn",
        "arn:aws:cloudtrail:us-east-1:111122223333:trail/t",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--engine access-analyzer"));
}

/// Fleet mode: one read of the shared real logs answers every role in them, and each answer is
/// the policy that role's own run gives; `--principal` repeated does the same for the roles
/// named. Bad combinations are refused by name.
#[test]
fn one_read_answers_every_role_as_its_own_run_would() {
    let dir = tempdir();
    let out = dir.path().join("all");
    let all = iam_tailor(&[
        "generate",
        "--cloudtrail",
        SHARED,
        "--all-roles",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        all.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&all.stderr)
    );
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| !f.ends_with(".report.json"))
        .collect();
    written.sort();
    assert!(written.len() >= 3, "{written:?}");
    // Names as ACCOUNT-NAME; the roles whose name is unique among them, run on their own.
    let names: Vec<(String, String)> = written
        .iter()
        .map(|f| {
            let stem = f.trim_end_matches(".json");
            let (account, name) = stem.split_once('-').unwrap();
            (account.to_string(), name.to_string())
        })
        .collect();
    let unique: Vec<&(String, String)> = names
        .iter()
        .filter(|(_, n)| names.iter().filter(|(_, m)| m == n).count() == 1)
        .take(4)
        .collect();
    assert!(!unique.is_empty(), "{names:?}");
    for (account, name) in &unique {
        let alone = ok_stdout(&["generate", "--cloudtrail", SHARED, "--principal", name]);
        let answered = std::fs::read_to_string(out.join(format!("{account}-{name}.json"))).unwrap();
        assert_eq!(answered, alone, "{account}-{name}");
        let report = out.join(format!("{account}-{name}.report.json"));
        assert!(
            serde_json::from_slice::<serde_json::Value>(&std::fs::read(report).unwrap()).is_ok()
        );
    }

    let named = dir.path().join("named");
    let mut args = vec![
        "generate",
        "--cloudtrail",
        SHARED,
        "--out-dir",
        named.to_str().unwrap(),
    ];
    for (_, name) in &unique {
        args.extend(["--principal", name.as_str()]);
    }
    ok_stdout(&args);
    for (account, name) in &unique {
        assert_eq!(
            std::fs::read_to_string(named.join(format!("{name}.json"))).unwrap(),
            std::fs::read_to_string(out.join(format!("{account}-{name}.json"))).unwrap()
        );
    }

    for (args, expected) in [
        (
            vec![
                "generate",
                "--cloudtrail",
                SHARED,
                "--principal",
                "a",
                "--principal",
                "b",
            ],
            "need --out-dir",
        ),
        (
            vec![
                "generate",
                "--cloudtrail",
                SHARED,
                "--all-roles",
                "--out-dir",
                "x",
                "--current",
                CURRENT,
            ],
            "--current",
        ),
        (
            vec![
                "generate",
                "--cloudtrail",
                SHARED,
                "--principal",
                "a",
                "--all-roles",
            ],
            "cannot be used with",
        ),
    ] {
        let refused = iam_tailor(&args);
        assert_eq!(refused.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// `unused` for several principals reads the logs once; each answer is exactly what that
/// principal's own run prints, against its own policies (a file, or a folder of them).
#[test]
fn unused_answers_each_principal_as_its_own_run_would() {
    let dir = tempdir();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(policies.join("retention-job")).unwrap();
    std::fs::copy(CURRENT, policies.join("checkout-api.json")).unwrap();
    let boundary = format!(
        "{}/examples/policies/boundary.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::copy(CURRENT, policies.join("retention-job/a.json")).unwrap();
    std::fs::copy(&boundary, policies.join("retention-job/b.json")).unwrap();
    let out = dir.path().join("out");
    let roles = [
        "arn:aws:iam::111122223333:role/checkout-api",
        "arn:aws:iam::111122223333:role/retention-job",
    ];
    let mut args = vec![
        "unused",
        "--cloudtrail",
        EXAMPLES,
        "--policy-dir",
        policies.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
        "--format",
        "json",
    ];
    for role in roles {
        args.extend(["--principal", role]);
    }
    ok_stdout(&args);
    let alone = |role: &str, files: &[&str]| {
        let mut args = vec!["unused", "--cloudtrail", EXAMPLES, "--principal", role];
        for file in files {
            args.extend(["--policy", file]);
        }
        args.extend(["--format", "json"]);
        ok_stdout(&args)
    };
    let written = |name: &str| std::fs::read_to_string(out.join(format!("{name}.json"))).unwrap();
    assert_eq!(written("checkout-api"), alone(roles[0], &[CURRENT]));
    assert_eq!(
        written("retention-job"),
        alone(roles[1], &[CURRENT, &boundary])
    );
    assert_ne!(written("checkout-api"), written("retention-job"));

    // A principal without policies is an error naming where they were looked for.
    std::fs::remove_file(policies.join("checkout-api.json")).unwrap();
    let missing = iam_tailor(&args);
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("checkout-api: neither") && stderr.contains("checkout-api.json"),
        "{stderr}"
    );
}

/// `replay --policy` takes what `generate` prints, and refuses anything else by file and
/// document, never replaying against part of it.
#[test]
fn replay_names_the_malformed_policy_document() {
    let dir = tempdir();
    let bad = dir.path().join("policies.json");
    std::fs::write(
        &bad,
        r#"[{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]},
            {"Version":"2012-10-17","Statement":"not a statement"}]"#,
    )
    .unwrap();
    let o = iam_tailor(&[
        "replay",
        "--policy",
        bad.to_str().unwrap(),
        "--cloudtrail",
        EXAMPLES,
        "--principal",
        ROLE,
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("policies.json: document [1]"), "{stderr}");
    assert!(o.stdout.is_empty(), "nothing replayed");
}

/// `--boundary-from` on the example logs: the envelope holds everything the tight policy
/// allows, lets through only the access levels used in each service, fits a managed policy,
/// and a forbidden service is denied whatever was used.
#[test]
fn boundary_from_holds_the_policy_and_only_the_used_levels() {
    use iam_tailor::policy::{Policy, analysis::allowed_actions};
    use std::collections::BTreeSet;
    let allowed = |text: &str| {
        let policy = Policy::parse(text).unwrap();
        allowed_actions(&[policy])
    };
    let policy = allowed(&ok_stdout(&[
        "generate",
        "--cloudtrail",
        EXAMPLES,
        "--principal",
        ROLE,
    ]));
    let service = |action: &str| action.split(':').next().unwrap().to_string();
    let used: BTreeSet<(String, _)> = (policy.iter())
        .map(|a| (service(&a.action), a.access_level))
        .collect();
    let boundary_from = |extra: &[&str]| {
        let mut args = vec!["generate", "--cloudtrail", EXAMPLES, "--principal", ROLE];
        args.extend(["--boundary-from"]);
        args.extend_from_slice(extra);
        ok_stdout(&args)
    };
    let text = boundary_from(&["access-level"]);
    assert!(iam_tailor::policy::lint::policy_size(&text) <= 6_144);
    let envelope = allowed(&text);
    let inside: BTreeSet<&str> = envelope.iter().map(|a| a.action.as_str()).collect();
    for a in &policy {
        assert!(inside.contains(a.action.as_str()), "{} is cut", a.action);
    }
    assert!(envelope.len() > policy.len(), "an envelope, not the policy");
    for a in &envelope {
        let level = (service(&a.action), a.access_level);
        assert!(
            used.contains(&level),
            "{} at {:?}",
            a.action,
            a.access_level
        );
    }
    assert!(
        !inside.contains("s3:PutBucketPolicy"),
        "never used that level"
    );

    let forbidden = boundary_from(&["service", "--forbid", "kms:*"]);
    let envelope = allowed(&forbidden);
    assert!(envelope.iter().any(|a| a.action == "s3:PutBucketPolicy"));
    assert!(!envelope.iter().any(|a| a.action.starts_with("kms:")));

    for (extra, says) in [
        (&["--report", "r.json"][..], "--boundary-from takes neither"),
        (&["--principal", "nobody"][..], "nothing to bound"),
    ] {
        let mut args = vec!["generate", "--cloudtrail", EXAMPLES, "--principal", ROLE];
        if extra[0] == "--principal" {
            args.truncate(3);
        }
        args.extend(["--boundary-from", "access-level"]);
        args.extend_from_slice(extra);
        let o = iam_tailor(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(o.stdout.is_empty());
    }
}

/// The attack: a caller who chooses object keys (an upload form, a user-named report) makes
/// the role read `reports/a*`, `reports/b?.csv` and `reports/${aws:username}`. Each is granted
/// as exactly that object, not as a pattern or a policy variable reaching its neighbours.
#[test]
fn a_key_that_reads_as_a_pattern_is_granted_as_itself() {
    use iam_tailor::policy::{Context, Decision, Policy, PolicySet, Request};
    let dir = tempdir();
    let logs = dir.path().join("AWSLogs");
    std::fs::create_dir_all(&logs).unwrap();
    let keys = [
        "reports/a*",
        "reports/b?.csv",
        "reports/${aws:username}",
        "reports/$5",
    ];
    let records: Vec<serde_json::Value> = (keys.iter().enumerate())
        .map(|(i, key)| {
            serde_json::json!({
                "eventVersion": "1.08",
                "userIdentity": {
                    "type": "AssumedRole",
                    "arn": "arn:aws:sts::111122223333:assumed-role/checkout-api/s",
                    "accountId": "111122223333",
                    "sessionContext": {"sessionIssuer": {"type": "Role", "arn": ROLE}},
                },
                "eventTime": "2026-11-20T10:00:00Z",
                "eventSource": "s3.amazonaws.com",
                "eventName": "GetObject",
                "awsRegion": "us-east-1",
                "requestParameters": {"bucketName": "data", "key": key},
                "eventID": format!("e{i}"),
                "recipientAccountId": "111122223333",
            })
        })
        .collect();
    let trail = serde_json::json!({ "Records": records }).to_string();
    std::fs::write(logs.join("trail.json"), trail).unwrap();
    let o = iam_tailor(&[
        "generate",
        "--cloudtrail",
        dir.path().to_str().unwrap(),
        "--principal",
        ROLE,
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(", 0 would be denied)"),
        "every call replays allowed: {stderr}"
    );
    let policy = Policy::parse(std::str::from_utf8(&o.stdout).unwrap()).unwrap();
    let set = PolicySet::builder().identity(policy).build();
    let mut context = Context::new();
    context.insert("aws:username", "alice");
    let allowed = |key: &str| {
        let resource = format!("arn:aws:s3:::data/{key}");
        let request = Request {
            action: "s3:GetObject",
            resource: &resource,
            principal: None,
            context: &context,
        };
        set.evaluate(&request).decision == Decision::Allowed
    };
    for key in keys {
        assert!(allowed(key), "{key} as used");
    }
    for neighbour in [
        "reports/abc",
        "reports/b1.csv",
        "reports/alice",
        "reports/$55",
    ] {
        assert!(!allowed(neighbour), "{neighbour} was never used");
    }
}
