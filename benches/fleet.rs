//! Fleet scale: N LeastPrivilegeRoles over one organization-style trail, on the real
//! kube-apiserver and moto, with the `iam-tailor controller` binary. Prints S3 downloads per
//! trail file, the time until all N are Analyzed, the operator's CPU seconds and peak RSS.
//! A benchmark (figures, no pass/fail): `scripts/bench-fleet [N …]` (default 1 and 100).
//! Then a restart: a new operator, every resource's window changed so all are analyzed again,
//! answered from the ClusterTrail's fact store — the trail files it downloads, the time until
//! all are Analyzed again, its CPU seconds and peak RSS.
//!
//! The trail: 3 days × 12 files, every file holding two calls of every role (its own S3
//! object and its own queue), so each file mixes all N roles. The operator runs with
//! `--aws-rate-limit 0` (moto has no IAM quota to respect) and `--concurrency 16`.

// The bench uses a few of the test helpers, not all.
#[allow(dead_code)]
#[path = "../tests/support/control_plane/mod.rs"]
mod control_plane;
#[allow(dead_code)]
#[path = "../tests/doubles/double_server/mod.rs"]
mod double_server;
#[allow(dead_code)]
#[path = "../tests/doubles/iam_last_accessed_double/mod.rs"]
mod iam_last_accessed_double;
#[allow(dead_code)]
#[path = "../tests/support/moto/mod.rs"]
mod moto;
#[allow(dead_code)]
#[path = "../tests/support/operator_env/mod.rs"]
mod operator_env;
#[allow(dead_code)]
#[path = "../tests/support/watch/mod.rs"]
mod watch;

use iam_tailor::controller::{ClusterTrail, LeastPrivilegeRole};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use operator_env::{
    ACCOUNT, BUCKET, Cluster, NS, broad_role, condition, lpr, put_trail_file, record, sample,
};
use std::time::{Duration, Instant};

const DAYS: i64 = 3;
const FILES_PER_DAY: usize = 12;

fn role(i: usize) -> String {
    format!("svc-{i:05}")
}

/// Puts the trail: every file mixes every role's calls.
async fn put_fleet_trail(s3: &aws_sdk_s3::Client, roles: usize) {
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    for days_ago in 1..=DAYS {
        let day = k8s_openapi::jiff::Timestamp::now()
            .checked_sub(k8s_openapi::jiff::SignedDuration::from_hours(24 * days_ago))
            .unwrap()
            .strftime("%Y-%m-%d")
            .to_string();
        for file in 0..FILES_PER_DAY {
            let time = format!("{day}T{:02}:10:00Z", file * 2);
            let mut records = Vec::with_capacity(roles * 2);
            for i in 0..roles {
                let name = role(i);
                records.push(record(
                    &name,
                    &time,
                    "s3",
                    "GetObject",
                    serde_json::json!({"bucketName": "fleet-data", "key": format!("{name}/{file}.json")}),
                ));
                let queue = format!("https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/{name}");
                records.push(record(
                    &name,
                    &time,
                    "sqs",
                    "SendMessage",
                    serde_json::json!({"queueUrl": queue}),
                ));
            }
            let suffix = format!("T{:02}10Z_{file}", file * 2);
            put_trail_file(s3, &day, &suffix, &records).await;
        }
    }
}

/// utime + stime of `pid` in seconds, and its peak RSS in MiB.
fn cpu_and_peak_rss(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    (ticks / 100.0, hwm_kib / 1024.0)
}

struct Figures {
    roles: usize,
    files: usize,
    files_read: f64,
    analyzed_after: Duration,
    cpu_seconds: f64,
    peak_rss_mib: f64,
}

/// Waits (30 minutes at most) until every resource is Analyzed with inputs other than
/// `before`'s (by name).
async fn all_analyzed(
    api: &Api<LeastPrivilegeRole>,
    roles: usize,
    before: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    watch::poll(
        "every resource analyzed",
        Duration::from_secs(1800),
        Duration::from_millis(500),
        async || {
            let list = api.list(&ListParams::default()).await.unwrap();
            let analyzed: std::collections::BTreeMap<String, String> = (list.items.iter())
                .filter_map(|r| {
                    let status = r.status.as_ref()?;
                    let inputs = status.analysis.as_ref()?.inputs.clone()?;
                    let name = r.metadata.name.clone()?;
                    (condition(status, "Analyzed") == Some(("True", "Analyzed"))
                        && before.get(&name) != Some(&inputs))
                    .then_some((name, inputs))
                })
                .collect();
            match analyzed.len() {
                n if n == roles => Ok(analyzed),
                n => Err(format!("{n} of {roles} analyzed")),
            }
        },
    )
    .await
}

fn figures(
    roles: usize,
    operator: &operator_env::Operator,
    metrics: &str,
    after: Duration,
) -> Figures {
    let (cpu_seconds, peak_rss_mib) = cpu_and_peak_rss(operator.pid());
    Figures {
        roles,
        files: DAYS as usize * FILES_PER_DAY,
        files_read: sample(metrics, "iam_tailor_trail_files_read_total").unwrap_or(0.0),
        analyzed_after: after,
        cpu_seconds,
        peak_rss_mib,
    }
}

/// The first analysis of `roles` resources, and the second after a restart.
async fn run(roles: usize) -> (Figures, Figures) {
    let cluster = Cluster::start().await;
    let iam = cluster.aws.iam();
    let setup = Instant::now();
    for i in 0..roles {
        broad_role(&iam, &role(i)).await;
    }
    let s3 = cluster.aws.s3();
    put_fleet_trail(&s3, roles).await;
    s3.create_bucket()
        .bucket("iam-tailor-facts")
        .send()
        .await
        .unwrap();
    let trail: ClusterTrail = serde_norway::from_str(&format!(
        "apiVersion: iamtailor.dev/v1alpha1\nkind: ClusterTrail\nmetadata: {{name: org}}\n\
         spec: {{s3: {{bucket: {BUCKET}}}, store: {{location: 's3://iam-tailor-facts/org/'}}, \
         namespaces: [{NS}]}}\n"
    ))
    .unwrap();
    (Api::<ClusterTrail>::all(cluster.kube.clone()))
        .create(&PostParams::default(), &trail)
        .await
        .unwrap();
    eprintln!("N={roles}: roles and trail in {:?}", setup.elapsed());
    let args = ["--aws-rate-limit", "0", "--concurrency", "16"];
    let mut operator = cluster.operator(&args, &[]);
    operator.wait_up().await;
    let api: Api<LeastPrivilegeRole> = Api::namespaced(cluster.kube.clone(), NS);
    let started = Instant::now();
    for i in 0..roles {
        let name = role(i);
        let spec =
            format!("  roleName: {name}\n  mode: Observe\n  cloudTrail: {{clusterTrail: org}}\n");
        api.create(&PostParams::default(), &lpr(&name, &spec))
            .await
            .unwrap();
    }
    let first = all_analyzed(&api, roles, &Default::default()).await;
    let metrics = operator.get("/metrics").await.1;
    let cold = figures(roles, &operator, &metrics, started.elapsed());

    // A new operator; a new window for every resource, so each is analyzed again.
    operator.kill();
    let operator = cluster.operator(&args, &[]);
    operator.wait_up().await;
    let started = Instant::now();
    let window = Patch::Merge(serde_json::json!({"spec": {"window": "89d"}}));
    for i in 0..roles {
        api.patch(&role(i), &PatchParams::default(), &window)
            .await
            .unwrap();
    }
    all_analyzed(&api, roles, &first).await;
    let metrics = operator.get("/metrics").await.1;
    let warm = figures(roles, &operator, &metrics, started.elapsed());
    (cold, warm)
}

fn print(title: &str, rows: &[&Figures]) {
    println!("{title}");
    println!("roles\tfiles\tGETs/file\tall Analyzed (s)\toperator CPU (s)\tpeak RSS (MiB)");
    for f in rows {
        println!(
            "{}\t{}\t{:.2}\t{:.1}\t{:.1}\t{:.0}",
            f.roles,
            f.files,
            f.files_read / f.files as f64,
            f.analyzed_after.as_secs_f64(),
            f.cpu_seconds,
            f.peak_rss_mib
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; the rest are role counts.
    let mut counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if counts.is_empty() {
        counts = vec![1, 100];
    }
    let mut rows = Vec::new();
    for roles in counts {
        rows.push(run(roles).await);
    }
    print(
        "first analysis",
        &rows.iter().map(|(cold, _)| cold).collect::<Vec<_>>(),
    );
    print(
        "after a restart, every window changed (answered from the fact store)",
        &rows.iter().map(|(_, warm)| warm).collect::<Vec<_>>(),
    );
}
