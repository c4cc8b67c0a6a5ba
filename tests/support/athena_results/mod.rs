//! Athena results for tests: what `examples/athena/usage.sql` gives on DuckDB over CloudTrail
//! files (`scripts/athena-duckdb`), and queueing one in moto's Athena, which runs no SQL and
//! answers each StartQueryExecution with the next queued result.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Runs `scripts/athena-duckdb` with the query in `sql_file` over `files` as the partition
/// (`account`, `day` as `YYYY/MM/DD`): one result, in moto's queue and GetQueryResults' shape.
pub fn duckdb(
    sql_file: &Path,
    account: &str,
    day: &str,
    principals: &[&str],
    files: &[std::path::PathBuf],
) -> String {
    let mut cmd = Command::new(Path::new(REPO).join("scripts/athena-duckdb"));
    cmd.arg("--ddl")
        .arg(Path::new(REPO).join("examples/athena/cloudtrail-table.sql"))
        .arg("--query")
        .arg(sql_file)
        .args(["--account", account, "--day", day]);
    for principal in principals {
        cmd.args(["--principal", principal]);
    }
    let output = cmd.args(files).output().unwrap();
    assert!(
        output.status.success(),
        "scripts/athena-duckdb: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The shipped query's file.
#[allow(dead_code)] // not every test binary runs the shipped text unfilled
pub fn usage_sql() -> std::path::PathBuf {
    Path::new(REPO).join("examples/athena/usage.sql")
}

/// Queues `result` in moto's Athena (at `endpoint`) for the next StartQueryExecution of
/// `account` (the credentials' account).
#[allow(dead_code)] // not every test binary talks to moto
pub fn queue(endpoint: &str, account: &str, result: &str) {
    let body = format!(r#"{{"account_id":"{account}","region":"us-east-1","results":[{result}]}}"#);
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sys, urllib.request as u; \
             r = u.urlopen(u.Request(sys.argv[1] + '/moto-api/static/athena/query-results', \
             data=sys.stdin.buffer.read(), headers={'Content-Type': 'application/json'})); \
             sys.exit(0 if r.status == 201 else 1)",
            endpoint,
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "queueing a result in moto failed"
    );
}
