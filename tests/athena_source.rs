//! The Athena source. Its SQL's meaning: `examples/athena/usage.sql` run on DuckDB over real
//! CloudTrail records loaded in the table shape of `examples/athena/cloudtrail-table.sql`
//! (`scripts/athena-duckdb`) gives, for every principal, the usage the file ingester gives from
//! the same records. Its plumbing: `iam-tailor generate --athena-table` against moto's Athena,
//! which returns the rows a test queues (moto runs no SQL; the rows queued are DuckDB's), writes
//! the policies the same command writes from the files. Polling and paging, which moto skips,
//! against `AthenaPagingDouble`.

use crate::athena_paging_double;
use crate::athena_results;
use crate::moto;

use iam_tailor::aws::athena::ResultRows;
use iam_tailor::cloudtrail::{ScanOptions, scan_paths_into};
use iam_tailor::sources::athena::{add_rows, query};
use iam_tailor::sources::facts::FileFacts;
use iam_tailor::time::Day;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// [`athena_results::duckdb`] with `sql` (filled in) as the query.
fn duckdb(sql: &str, account: &str, day: Day, principals: &[&str], files: &[PathBuf]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let query = dir.path().join("query.sql");
    std::fs::write(&query, sql).unwrap();
    let day = day.path();
    athena_results::duckdb(
        &query,
        account,
        day.trim_end_matches('/'),
        principals,
        files,
    )
}

/// The rows of a queued result, as GetQueryResults gives them (header row dropped).
fn result_rows(text: &str) -> ResultRows {
    let value: serde_json::Value = serde_json::from_str(text).unwrap();
    let columns: Vec<String> = (value["column_info"].as_array().unwrap().iter())
        .map(|c| c["Name"].as_str().unwrap().to_string())
        .collect();
    let rows: Vec<Vec<Option<String>>> = (value["rows"].as_array().unwrap().iter())
        .map(|row| {
            (row["Data"].as_array().unwrap().iter())
                .map(|d| d["VarCharValue"].as_str().map(str::to_string))
                .collect()
        })
        .collect();
    assert_eq!(
        rows[0].iter().flatten().collect::<Vec<_>>(),
        columns.iter().collect::<Vec<_>>(),
        "the header row"
    );
    ResultRows {
        columns,
        rows: rows[1..].to_vec(),
    }
}

/// CloudTrail log files (`{"Records": [...]}`, gzipped or not) under `dir`.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let mut text = Vec::new();
            if bytes.starts_with(&[0x1f, 0x8b]) {
                if flate2::read::GzDecoder::new(&bytes[..])
                    .read_to_end(&mut text)
                    .is_err()
                {
                    continue;
                }
            } else {
                text = bytes;
            }
            let parsed: Option<serde_json::Value> = serde_json::from_slice(&text).ok();
            if parsed.is_some_and(|v| v["Records"].is_array()) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_sql_on_duckdb_agrees_with_the_file_ingester() {
    let mut files = log_files(&Path::new(REPO).join("../shared/data/cloudtrail"));
    files.extend(log_files(&Path::new(REPO).join("examples/cloudtrail")));
    assert!(files.len() >= 30, "{files:?}");
    let from_files: FileFacts = scan_paths_into(&files, &ScanOptions::default()).unwrap();
    // Every principal Athena can be asked about: role and user ARNs.
    let principals: Vec<&str> = (from_files.principals().into_iter())
        .filter(|p| query("t", "111122223333", Day::of(0), &[p]).is_ok())
        .collect();
    assert!(principals.len() >= 20, "{principals:?}");
    let (account, day) = (
        "111122223333",
        Day {
            year: 2026,
            month: 11,
            day: 28,
        },
    );
    let sql = query("cloudtrail_logs", account, day, &principals).unwrap();
    let rows = result_rows(&duckdb(&sql, account, day, &principals, &files));
    assert!(!rows.rows.is_empty());
    let mut from_athena = FileFacts::default();
    add_rows(&rows, &ScanOptions::default(), &mut from_athena).unwrap();
    // Day by day and principal by principal, the same usage (the file counts aside, which
    // only the file reader has).
    let asked: Vec<String> = principals.iter().map(|p| p.to_string()).collect();
    let mut expected = from_files.days.clone();
    for usages in expected.values_mut() {
        usages.retain(|principal, _| asked.contains(principal));
        // Grouped rows carry no event id or source address (the restore reads trail files
        // only).
        for usage in usages.values_mut() {
            for denial in usage.denied_grants.values_mut() {
                denial.event_id.clear();
                denial.source_ip.clear();
            }
        }
    }
    expected.retain(|_, usages| !usages.is_empty());
    assert_eq!(from_athena.days, expected);
    let calls: u64 = (expected.values().flat_map(|u| u.values()))
        .map(|u| u.stats.records_matched)
        .sum();
    // Identical calls were grouped: fewer rows than the calls they stand for.
    assert!(
        (rows.rows.len() as u64) < calls,
        "{} rows, {calls} calls",
        rows.rows.len()
    );
    eprintln!(
        "{} files, {} principals: {} rows for {calls} matched calls",
        files.len(),
        principals.len(),
        rows.rows.len()
    );
}

#[test]
fn generate_from_athena_against_moto_writes_what_the_files_give() {
    let server = moto::Moto::start();
    let roles = [
        "arn:aws:iam::111122223333:role/checkout-api",
        "arn:aws:iam::111122223333:role/retention-job",
    ];
    // One query per day of the window, in order: each gets that day's rows.
    let examples = Path::new(REPO).join("examples/cloudtrail");
    let files = log_files(&examples);
    assert_eq!(files.len(), 3);
    for (file, day) in files.iter().zip(20..=22) {
        let day = Day {
            year: 2026,
            month: 11,
            day,
        };
        let result = athena_results::duckdb(
            &athena_results::usage_sql(),
            "111122223333",
            day.path().trim_end_matches('/'),
            &roles,
            std::slice::from_ref(file),
        );
        athena_results::queue(&server.endpoint, "123456789012", &result);
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &str, source: &[&str]| {
        let mut args = vec![
            "generate",
            "--from",
            "2026-11-20T00:00:00Z",
            "--to",
            "2026-11-23T00:00:00Z",
            "--out-dir",
            out,
        ];
        for role in &roles {
            args.extend(["--principal", role]);
        }
        args.extend(source);
        let output = Command::new(env!("CARGO_BIN_EXE_iam-tailor"))
            .args(&args)
            .env("AWS_ENDPOINT_URL", &server.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let athena = dir.path().join("athena");
    let local = dir.path().join("files");
    run(
        athena.to_str().unwrap(),
        &[
            "--athena-table",
            "trails.cloudtrail_logs",
            "--athena-output",
            "s3://athena-results/iam-tailor/",
        ],
    );
    run(
        local.to_str().unwrap(),
        &["--cloudtrail", examples.to_str().unwrap()],
    );
    for name in ["checkout-api", "retention-job"] {
        let policy =
            |dir: &Path| std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        assert_eq!(policy(&athena), policy(&local), "{name}");
        assert!(policy(&athena).contains("\"Allow\""), "{name}");
    }
    // Every call of the three days arrived, through the three queued results.
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(athena.join("checkout-api.report.json")).unwrap(),
    )
    .unwrap();
    let matched = report["recordsMatched"].as_u64().unwrap_or_default();
    assert_eq!(matched, 3 * 35, "{report}");
}

/// The workgroup the double's tests run in.
fn workgroup() -> iam_tailor::aws::athena::Workgroup {
    iam_tailor::aws::athena::Workgroup {
        workgroup: "primary".to_string(),
        database: None,
        output_location: Some("s3://results/".to_string()),
    }
}

async fn athena_client(endpoint: &str) -> aws_sdk_athena::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    iam_tailor::aws::athena::client(&config)
}

/// What real Athena does and moto does not (`AthenaPagingDouble`): a query still running when
/// first polled, and results in pages of 1,000 rows with the header row on the first only.
#[tokio::test]
async fn a_running_query_is_polled_and_every_page_of_its_rows_is_read() {
    use iam_tailor::aws::athena::run;
    let rows: Vec<Vec<Option<String>>> = (0..2_500)
        .map(|i| {
            vec![
                Some(format!("key-{i}")),
                (i % 7 != 0).then(|| i.to_string()),
            ]
        })
        .collect();
    let double = athena_paging_double::AthenaPagingDouble::start(&["key", "n"], rows.clone());
    double.running_polls(2);
    let client = athena_client(double.endpoint()).await;
    let workgroup = workgroup();
    let result = run(&client, &workgroup, "SELECT 1").await.unwrap();
    assert_eq!(result.columns, ["key", "n"]);
    assert_eq!(
        result.rows, rows,
        "every row once, NULLs kept, no header among them"
    );
    let operations = double.operations();
    let count = |op: &str| operations.iter().filter(|o| *o == op).count();
    assert_eq!(count("GetQueryExecution"), 3, "{operations:?}");
    assert_eq!(count("GetQueryResults"), 3, "2,501 rows in pages of 1,000");

    let failing = athena_paging_double::AthenaPagingDouble::start(&["key"], Vec::new());
    failing.fail_with("TABLE_NOT_FOUND: line 1:6: Table trails.cloudtrail_logs does not exist");
    let client = athena_client(failing.endpoint()).await;
    let error = run(&client, &workgroup, "SELECT 1")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("FAILED") && error.contains("TABLE_NOT_FOUND"),
        "{error}"
    );
    assert!(
        !failing
            .operations()
            .contains(&"GetQueryResults".to_string())
    );
}

/// A result row of the Athena query: `issuer`'s session called s3 GetObject 3 times on
/// 2024-07-01.
fn get_object_row(issuer: &str) -> Vec<Option<String>> {
    [
        "s3.amazonaws.com",
        "GetObject",
        "AwsApiCall",
        "us-east-1",
        "111122223333",
        "",
        "AssumedRole",
        "arn:aws:sts::111122223333:assumed-role/x/s",
        "111122223333",
        issuer,
        r#"{"bucketName":"b","key":"k"}"#,
        r#"[{"arn":"arn:aws:s3:::b/k","accountid":null,"type":"AWS::S3::Object"}]"#,
        "3",
        "2024-07-01T01:00:00Z",
        "2024-07-01T02:00:00Z",
    ]
    .into_iter()
    .map(|v| (!v.is_empty()).then(|| v.to_string()))
    .collect()
}

/// One tenant's bad value fails one tenant's resource: a principal no query may name (a space
/// and a quote in its ARN) among the others on the table is left out of the batch, and the
/// resources asking beside it are answered; asking for it fails that call alone.
#[tokio::test]
async fn a_principal_no_query_may_name_fails_only_its_own_resource() {
    use iam_tailor::sources::athena::{
        Asked, AthenaIngester, AthenaScanError, COLUMNS, QueryError,
    };
    const APP: &str = "arn:aws:iam::111122223333:role/app";
    const BAD: &str = "arn:aws:iam::111122223333:role/x' OR 'a'='a";
    let double =
        athena_paging_double::AthenaPagingDouble::start(&COLUMNS, vec![get_object_row(APP)]);
    let client = athena_client(double.endpoint()).await;
    let mut ingester = AthenaIngester::new(workgroup(), "trails.cloudtrail_logs".to_string());
    let days = [Day {
        year: 2024,
        month: 7,
        day: 1,
    }];
    let t0 = iam_tailor::time::parse_date("2024-08-01T00:00:00Z").unwrap();
    let others: std::collections::BTreeSet<String> = [BAD.to_string()].into();
    let mut answer = None;
    for second in 0..10 {
        let at = t0 + i128::from(second) * 1_000_000_000;
        match ingester
            .usage(&client, "111122223333", &days, APP, &others, at)
            .await
        {
            Ok(Asked::Answered(usage)) => {
                answer = Some(usage);
                break;
            }
            Ok(Asked::Running(_)) => continue,
            Err(error) => panic!("the others' bad value failed app: {error}"),
        }
    }
    let usage = answer.expect("app answered");
    assert_eq!(usage.actions["s3:GetObject"].seen.count, 3);
    let started = double
        .operations()
        .iter()
        .filter(|o| *o == "StartQueryExecution")
        .count();
    assert_eq!(started, 1);
    let error = ingester
        .usage(&client, "111122223333", &days, BAD, &Default::default(), t0)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, AthenaScanError::Query(QueryError::Principal(p)) if p == BAD),
        "{error}"
    );
}

/// The operator's Athena ingester never waits for a query (`AthenaPagingDouble`, whose queries
/// stay RUNNING for the first polls): each look starts what is missing (at most
/// `MAX_QUERIES_IN_FLIGHT` at once), polls each running query at most once a second however
/// often it is asked, and answers only when every day of the window is in. A query running past
/// the timeout is stopped and fails the look; the next look starts it again.
#[tokio::test]
async fn the_operator_s_athena_ingester_never_waits_for_a_query() {
    use iam_tailor::aws::athena::QUERY_TIMEOUT;
    use iam_tailor::sources::athena::{Asked, AthenaIngester, COLUMNS, MAX_QUERIES_IN_FLIGHT};
    const APP: &str = "arn:aws:iam::111122223333:role/app";
    const WORKER: &str = "arn:aws:iam::111122223333:role/worker";
    let double = athena_paging_double::AthenaPagingDouble::start(
        &COLUMNS,
        vec![get_object_row(APP), get_object_row(WORKER)],
    );
    double.running_polls(4);
    let client = athena_client(double.endpoint()).await;
    let workgroup = workgroup();
    let mut ingester = AthenaIngester::new(workgroup.clone(), "trails.cloudtrail_logs".to_string());
    let day = |d: u32| Day {
        year: 2024,
        month: 7,
        day: d,
    };
    let days = [day(1), day(2), day(3)];
    let second = 1_000_000_000i128;
    let t0 = iam_tailor::time::parse_date("2024-08-01T00:00:00Z").unwrap();
    let others: std::collections::BTreeSet<String> = [WORKER.to_string()].into();
    let count = |op: &str| double.operations().iter().filter(|o| *o == op).count();
    let mut look = async |at: i128| {
        ingester
            .usage(&client, "111122223333", &days, APP, &others, t0 + at)
            .await
            .unwrap()
    };
    let Asked::Running(progress) = look(0).await else {
        panic!("answered before any query ran")
    };
    assert_eq!((progress.days_answered, progress.days), (0, 3));
    assert_eq!(progress.queries, ["q-1", "q-1", "q-1"]);
    assert_eq!(
        (count("StartQueryExecution"), count("GetQueryExecution")),
        (3, 0)
    );
    assert!(matches!(look(second / 2).await, Asked::Running(_)));
    assert_eq!(count("GetQueryExecution"), 3, "each polled once");
    assert!(matches!(look(second * 7 / 10).await, Asked::Running(_)));
    assert_eq!(count("GetQueryExecution"), 3, "not again within the second");
    let Asked::Running(progress) = look(2 * second).await else {
        panic!("the fourth poll still says RUNNING")
    };
    assert_eq!(progress.days_answered, 2);
    let Asked::Answered(usage) = look(4 * second).await else {
        panic!("every query succeeded")
    };
    assert_eq!(usage.actions["s3:GetObject"].seen.count, 9, "3 calls a day");
    assert_eq!(count("StartQueryExecution"), 3, "nothing started twice");
    // The worker was asked about too: answered without a query.
    let asked = ingester
        .usage(
            &client,
            "111122223333",
            &days,
            WORKER,
            &Default::default(),
            t0 + 5 * second,
        )
        .await
        .unwrap();
    assert!(matches!(asked, Asked::Answered(u) if u.actions["s3:GetObject"].seen.count == 9));
    assert_eq!(count("StartQueryExecution"), 3);
    // The days of a shadow period, inside the window: answered from what the window read.
    let asked = ingester
        .usage(
            &client,
            "111122223333",
            &days[..1],
            APP,
            &others,
            t0 + 6 * second,
        )
        .await
        .unwrap();
    // (The double's rows all say 2024-07-01: each day's 3 calls are that day's.)
    assert!(matches!(asked, Asked::Answered(u) if u.actions["s3:GetObject"].seen.count == 9));
    assert_eq!(
        count("StartQueryExecution"),
        3,
        "no query for the shadow days"
    );

    // A long window starts at most MAX_QUERIES_IN_FLIGHT queries; one running past the
    // timeout is stopped.
    let slow = athena_paging_double::AthenaPagingDouble::start(&COLUMNS, Vec::new());
    slow.running_polls(usize::MAX);
    let client = athena_client(slow.endpoint()).await;
    let mut ingester = AthenaIngester::new(workgroup, "trails.cloudtrail_logs".to_string());
    let month: Vec<Day> = (1..=20).map(day).collect();
    let asked = ingester
        .usage(
            &client,
            "111122223333",
            &month,
            APP,
            &Default::default(),
            t0,
        )
        .await
        .unwrap();
    assert!(matches!(asked, Asked::Running(p) if p.queries.len() == MAX_QUERIES_IN_FLIGHT));
    let late = t0 + QUERY_TIMEOUT.as_nanos() as i128 + second;
    let error = ingester
        .usage(
            &client,
            "111122223333",
            &month,
            APP,
            &Default::default(),
            late,
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("still running"), "{error}");
    assert!(
        slow.operations()
            .contains(&"StopQueryExecution".to_string())
    );
}
