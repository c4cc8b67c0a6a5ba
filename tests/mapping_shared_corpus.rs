//! Maps every record of the shared CloudTrail corpus (real, published attack simulations):
//! every action must be a catalog action, every resource an ARN or `*`, and almost every
//! record must map.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use iam_tailor::catalog::catalog;
use iam_tailor::cloudtrail::Record;
use iam_tailor::cloudtrail::mapping::{Mapping, Unmapped, map_record};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/cloudtrail");

#[derive(serde::Deserialize)]
struct Log<'a> {
    #[serde(borrow, rename = "Records")]
    records: Vec<Record<'a>>,
}

fn gz_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("corpus directory") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            gz_files(&path, out);
        } else if path.to_string_lossy().ends_with(".json.gz") {
            out.push(path);
        }
    }
}

/// The decompressed text of every corpus file, by file name.
fn corpus() -> Vec<(String, String)> {
    let mut files = Vec::new();
    gz_files(Path::new(CORPUS), &mut files);
    files.sort();
    assert!(!files.is_empty(), "no .json.gz under {CORPUS}");
    (files.into_iter())
        .map(|path| {
            let mut text = String::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
                .read_to_string(&mut text)
                .unwrap();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                text,
            )
        })
        .collect()
}

fn event(r: &Record) -> (String, String) {
    let text = |s: &Option<std::borrow::Cow<str>>| s.as_deref().unwrap_or("").to_string();
    (text(&r.event_source), text(&r.event_name))
}

#[test]
fn every_record_maps_to_catalog_actions_and_arns() {
    let files = corpus();
    let (mut total, mut mapped) = (0usize, 0usize);
    let mut unmapped: BTreeMap<(String, String), (Unmapped, usize)> = BTreeMap::new();
    for (name, text) in &files {
        let log: Log = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        for record in &log.records {
            total += 1;
            match map_record(record) {
                Ok(Mapping { grants, .. }) => {
                    mapped += 1;
                    assert!(
                        !grants.is_empty(),
                        "{name}: {:?} has no grants",
                        event(record)
                    );
                    for g in grants {
                        assert!(catalog().action_exists(&g.action.full_name()));
                        assert!(
                            g.resource == "*" || g.resource.starts_with("arn:"),
                            "{name}: {} on {}",
                            g.action,
                            g.resource
                        );
                    }
                }
                Err(why) => unmapped.entry(event(record)).or_insert((why, 0)).1 += 1,
            }
        }
    }
    for ((source, name), (why, n)) in &unmapped {
        println!("unmapped: {source} {name} ({why:?}, {n} records)");
    }
    println!("{mapped} of {total} records mapped");
    // Only what is no IAM permission at all may stay unmapped (console sign-in).
    let allowed = [("signin.amazonaws.com", "ConsoleLogin")];
    for (source, name) in unmapped.keys() {
        assert!(
            allowed.contains(&(source.as_str(), name.as_str())),
            "unmapped: {source} {name}"
        );
    }
    assert!(total > 400, "corpus shrank to {total} records");
}

/// The grants of the first record with this event name in the file, as text.
fn grants_of(files: &[(String, String)], file: &str, event_name: &str) -> Vec<(String, String)> {
    let (_, text) = files.iter().find(|(n, _)| n == file).expect("corpus file");
    let log: Log = serde_json::from_str(text).unwrap();
    let record = (log.records.iter())
        .find(|r| r.event_name.as_deref() == Some(event_name))
        .expect("record");
    (map_record(record).unwrap().grants.into_iter())
        .map(|g| (g.action.full_name(), g.resource))
        .collect()
}

#[test]
fn known_records_map_to_known_grants() {
    let files = corpus();
    let one = |action: &str, resource: &str| vec![(action.to_string(), resource.to_string())];

    let secret = grants_of(
        &files,
        "aws.credential-access.secretsmanager-retrieve-secrets.json.gz",
        "GetSecretValue",
    );
    assert_eq!(secret.len(), 1);
    assert_eq!(secret[0].0, "secretsmanager:GetSecretValue");
    assert!(
        secret[0].1.starts_with("arn:aws:secretsmanager:") && secret[0].1.contains(":secret:"),
        "{secret:?}"
    );

    assert_eq!(
        grants_of(
            &files,
            "aws.persistence.lambda-overwrite-code.json.gz",
            "UpdateFunctionCode20150331v2"
        ),
        one(
            "lambda:UpdateFunctionCode",
            "arn:aws:lambda:ap-westeast-2r:266106314375:function:stratus-red-team-olc-func-vayhjqkdav"
        )
    );

    assert_eq!(
        grants_of(&files, "ec2_proxy_s3_exfiltration.json.gz", "GetObject"),
        one(
            "s3:GetObject",
            "arn:aws:s3:::mordors3stack-s3bucket-llp2yingx64a/ring.txt"
        )
    );
    assert_eq!(
        grants_of(&files, "ec2_proxy_s3_exfiltration.json.gz", "ListObjects"),
        one(
            "s3:ListBucket",
            "arn:aws:s3:::mordors3stack-s3bucket-llp2yingx64a"
        )
    );
    assert_eq!(
        grants_of(&files, "ec2_proxy_s3_exfiltration.json.gz", "ListBuckets"),
        one("s3:ListAllMyBuckets", "*")
    );

    assert_eq!(
        grants_of(
            &files,
            "aws.impact.bedrock-invoke-model.json.gz",
            "InvokeModel"
        ),
        one(
            "bedrock:InvokeModel",
            "arn:aws:bedrock:megov-northeast-1r::foundation-model/anthropic.claude-3-sonnet-20240229-v1:0"
        )
    );

    let attach = grants_of(
        &files,
        "aws.persistence.iam-create-backdoor-role.json.gz",
        "AttachRolePolicy",
    );
    assert_eq!(attach.len(), 1);
    assert_eq!(attach[0].0, "iam:AttachRolePolicy");
    assert!(
        attach[0]
            .1
            .ends_with(":role/stratus-red-team-malicious-iam-role"),
        "{attach:?}"
    );
}

/// The request-aware rows (`src/cloudtrail/request-actions.tsv`) as (prefix, event, when,
/// action, condition, source).
fn request_rows() -> Vec<Vec<String>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/cloudtrail/request-actions.tsv"
    );
    (std::fs::read_to_string(path).unwrap().lines())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/iam-reference");

/// Rows that say they come from iam-dataset's map do: the call is there, with the action, and
/// (for PassRole) an ARN template naming the parameter the row reads.
#[test]
fn request_rows_from_iam_dataset_are_in_its_map() {
    let map: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{REFERENCE}/map.json.2022-08-19.json")).unwrap(),
    )
    .unwrap();
    let methods = map["sdk_method_iam_mappings"].as_object().unwrap();
    let rows = request_rows();
    let derived: Vec<&Vec<String>> = rows.iter().filter(|r| r[6] == "iam-dataset").collect();
    assert!(derived.len() >= 45, "{} rows", derived.len());
    for row in derived {
        let (prefix, event, when, action) = (&row[0], &row[1], &row[2], &row[3]);
        let suffixes: Vec<String> = {
            let steps: Vec<&str> = when.split('.').collect();
            (0..steps.len())
                .map(|i| steps[i..].join(".").to_lowercase())
                .collect()
        };
        let found = methods.iter().any(|(method, entries)| {
            let entries = entries.as_array().unwrap();
            // The call's service is that of its first action (the map's service names are
            // the SDK's).
            let service_action = entries.first().and_then(|e| e["action"].as_str());
            let same_service =
                service_action.is_some_and(|a| a.split(':').next() == Some(prefix.as_str()));
            let op = method.split_once('.').map(|(_, op)| op);
            if !op.is_some_and(|op| op.eq_ignore_ascii_case(event)) || !same_service {
                return false;
            }
            entries.iter().any(|entry| {
                let template = (entry["arn_override"]["template"].as_str())
                    .unwrap_or_default()
                    .replace("[]", "")
                    .to_lowercase();
                entry["action"] == action.as_str()
                    && suffixes
                        .iter()
                        .any(|s| template.contains(&format!("${{{s}}}")))
            })
        });
        assert!(found, "not in iam-dataset's map: {row:?}");
    }
}

/// Every service a role is passed to under `iam:PassedToService` is one AWS's own managed
/// policies name in that condition: a value AWS never uses would deny the deploy.
#[test]
fn passed_to_services_are_those_aws_managed_policies_use() {
    let mut used = std::collections::BTreeSet::new();
    let text = std::fs::read_to_string(format!("{REFERENCE}/aws_managed_policies.jsonl")).unwrap();
    for line in text.lines() {
        let policy: serde_json::Value = serde_json::from_str(line).unwrap();
        let statements = &policy["document"]["Statement"];
        let statements = match statements.as_array() {
            Some(list) => list.clone(),
            None => vec![statements.clone()],
        };
        for statement in statements {
            for block in statement["Condition"]
                .as_object()
                .into_iter()
                .flat_map(|c| c.values())
            {
                for (key, values) in block.as_object().into_iter().flatten() {
                    if key.eq_ignore_ascii_case("iam:PassedToService") {
                        let values = match values.as_array() {
                            Some(list) => list.clone(),
                            None => vec![values.clone()],
                        };
                        used.extend(values.iter().filter_map(|v| v.as_str().map(str::to_string)));
                    }
                }
            }
        }
    }
    assert!(used.len() > 50, "{} services", used.len());
    let mut checked = 0;
    for row in request_rows() {
        if let Some(service) = row[5].strip_prefix("iam:PassedToService=") {
            assert!(
                used.contains(service),
                "no managed policy passes to {service}: {row:?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "{checked} rows checked");
}

const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/mapping/shared-corpus-actions.tsv"
);

/// The shared corpus's calls and the catalog actions they map to, against a committed list
/// (event names and action names only, derived from `../shared`): a catalog update or a
/// mapping change that loses an action fails here, naming the call. With
/// `UPDATE_MAPPING_SNAPSHOT=1` the list is written anew (review the diff).
#[test]
fn the_shared_corpus_keeps_every_mapped_action() {
    let mut now: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for (name, text) in &corpus() {
        let log: Log = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        for record in &log.records {
            if let Ok(mapping) = map_record(record) {
                let (source, event) = event(record);
                let actions = now.entry(format!("{source}\t{event}")).or_default();
                actions.extend(mapping.grants.iter().map(|g| g.action.full_name()));
            }
        }
    }
    let text: String = (now.iter())
        .map(|(call, actions)| {
            let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
            format!("{call}\t{}\n", actions.join(","))
        })
        .collect();
    if std::env::var_os("UPDATE_MAPPING_SNAPSHOT").is_some() {
        std::fs::create_dir_all(std::path::Path::new(SNAPSHOT).parent().unwrap()).unwrap();
        std::fs::write(SNAPSHOT, &text).unwrap();
    }
    let committed = std::fs::read_to_string(SNAPSHOT).expect("the committed list");
    let mut lost = Vec::new();
    for line in committed.lines() {
        let (call, actions) = line.rsplit_once('\t').unwrap();
        let mapped = now.get(call);
        for action in actions.split(',') {
            if !mapped.is_some_and(|m| m.contains(action)) {
                lost.push(format!("{call} no longer maps to {action}"));
            }
        }
    }
    assert!(lost.is_empty(), "{lost:#?}");
    assert_eq!(
        text, committed,
        "new mappings: run with UPDATE_MAPPING_SNAPSHOT=1 and review the diff"
    );
    assert!(now.len() >= 70, "{} calls", now.len());
}
