//! The scan over the shared corpus of real CloudTrail records (Stratus Red Team detonations and
//! an OTRF dataset), checked against counts taken independently with `serde_json::Value`.

use iam_tailor::catalog::catalog;
use iam_tailor::cloudtrail::{PrincipalFilter, ScanOptions, scan_paths};
use iam_tailor::usage::Usage;
use serde_json::Value;
use std::path::{Path, PathBuf};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/cloudtrail");
/// A role with a path, used through IAM Identity Center.
const SSO_ROLE: &str = "arn:aws:iam::844015365555:role/aws-reserved/sso.amazonaws.com/\
                        AWSReservedSSO_account-admin_599c9e90e350d2ff";
const STRATUS_ROLE: &str =
    "arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role";
const USER: &str = "arn:aws:iam::056392974792:user/christophe";

/// The corpus's `.json.gz` files (its other files are licenses).
fn files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.to_string_lossy().ends_with(".json.gz") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new(CORPUS), &mut out);
    out
}

/// Every record of the corpus, parsed without the scanner.
fn records() -> Vec<Value> {
    let mut out = Vec::new();
    for path in files() {
        let gz = flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap());
        let file: Value = serde_json::from_reader(gz).unwrap();
        out.extend(file["Records"].as_array().unwrap().iter().cloned());
    }
    out
}

fn scan(principal: Option<&str>, threads: usize) -> Usage {
    let opts = ScanOptions {
        principal: principal.map(|p| PrincipalFilter::parse(p).unwrap()),
        threads,
        ..ScanOptions::default()
    };
    scan_paths(&[PathBuf::from(CORPUS)], &opts).unwrap()
}

/// Records chosen for the principal: matched (used, denied or unmapped) or skipped as a
/// sign-in or service event. No window is set and nothing is malformed, so nothing else.
fn chosen(usage: &Usage) -> u64 {
    usage.stats.records_matched + usage.stats.skipped.values().sum::<u64>()
}

#[test]
fn every_file_and_record_is_read() {
    let usage = scan(None, 0);
    let records = records();
    assert_eq!(usage.stats.files_scanned, files().len() as u64);
    assert!(files().len() > 30);
    assert_eq!(usage.stats.records_scanned, records.len() as u64);
    assert!(
        !usage
            .stats
            .skipped
            .keys()
            .any(|k| k.starts_with("malformed")),
        "{:?}",
        usage.stats.skipped
    );
    assert_eq!(chosen(&usage), records.len() as u64);
    for action in usage.actions.keys() {
        assert!(
            catalog().action_exists(action),
            "{action} is not in the catalog"
        );
    }
    assert!(usage.actions.len() > 20, "{:?}", usage.actions.keys());
}

#[test]
fn role_filters_select_exactly_the_roles_sessions() {
    let records = records();
    for role in [SSO_ROLE, STRATUS_ROLE] {
        let expected = records
            .iter()
            .filter(|r| {
                r["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] == role
                    || r["userIdentity"]["arn"] == role
            })
            .count();
        assert!(expected > 0);
        let usage = scan(Some(role), 0);
        assert_eq!(chosen(&usage), expected as u64, "{role}");
    }
}

#[test]
fn a_user_filter_selects_the_users_records() {
    let expected = records()
        .iter()
        .filter(|r| r["userIdentity"]["type"] == "IAMUser" && r["userIdentity"]["arn"] == USER)
        .count();
    assert!(expected > 10);
    assert_eq!(chosen(&scan(Some(USER), 0)), expected as u64);
}

#[test]
fn denied_attempts_are_found_and_not_granted() {
    let records = records();
    let usage = scan(None, 0);
    let denied_codes = ["Client.UnauthorizedOperation", "AccessDenied"];
    let expected = records
        .iter()
        .filter(|r| denied_codes.iter().any(|c| r["errorCode"] == *c))
        .count();
    let found: u64 = usage.denied.values().map(|s| s.count).sum();
    assert_eq!(found, expected as u64);
    for code in denied_codes {
        assert!(usage.denied.keys().any(|(_, _, c)| c == code), "no {code}");
    }
    // A call only ever denied is not granted.
    let ec2 = scan(Some(STRATUS_ROLE), 0);
    for (source, name, _) in ec2.denied.keys() {
        let used = records.iter().any(|r| {
            r["eventSource"] == source.as_str()
                && r["eventName"] == name.as_str()
                && r["errorCode"].is_null()
                && r["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] == STRATUS_ROLE
        });
        let action = format!("{}:{name}", source.trim_end_matches(".amazonaws.com"));
        assert!(
            used || !ec2.actions.contains_key(&action),
            "{action} granted"
        );
    }
}

#[test]
fn the_result_does_not_depend_on_the_thread_count() {
    assert_eq!(scan(None, 1), scan(None, 4));
}
