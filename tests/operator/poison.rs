//! Poison pills, end to end: the `iam-tailor controller` binary against a real kube-apiserver and
//! moto, with hostile files in the trail and hostile resources beside good ones. Each pill ends as
//! a named skip count or an `InvalidSpec` condition; the process stays up and the good resource
//! is analyzed meanwhile.
//!
//! - In the trail, beside `app`'s good files: a gzip bomb (expands past 128 MiB), a record over
//!   1 MiB, a record whose `eventTime` once crashed the date parser (`+aé1`), a file of plain
//!   garbage, and a file over 32 MiB.
//! - Resources: `window: 401d` and `drift.interval: 2d` (out of range), beside `app` (Observe).

use crate::operator_env;

use flate2::Compression;
use flate2::write::GzEncoder;
use iam_tailor::cloudtrail::{MAX_DECOMPRESSED_BYTES, MAX_FILE_BYTES, MAX_RECORD_BYTES};
use iam_tailor::controller::LeastPrivilegeRole;
use kube::api::{Api, PostParams};
use operator_env::{
    ACCOUNT, BUCKET, Cluster, NS, broad_role, condition, condition_message, lpr, put_trail, record,
    wait_for,
};
use std::io::Write;

/// Puts `body` as a trail file of yesterday, named `name`.
async fn put_file(s3: &aws_sdk_s3::Client, name: &str, body: Vec<u8>) {
    let day = k8s_openapi::jiff::Timestamp::now()
        .checked_sub(k8s_openapi::jiff::SignedDuration::from_hours(24))
        .unwrap()
        .strftime("%Y/%m/%d")
        .to_string();
    s3.put_object()
        .bucket(BUCKET)
        .key(format!(
            "AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{day}/{ACCOUNT}_CloudTrail_us-east-1_{name}"
        ))
        .body(body.into())
        .send()
        .await
        .unwrap();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_pills_are_counted_or_refused_and_the_rest_goes_on() {
    let cluster = Cluster::start().await;
    let (aws, kube) = (&cluster.aws, cluster.kube.clone());
    broad_role(&aws.iam(), "app").await;
    let s3 = aws.s3();
    put_trail(&s3).await;
    let yesterday = k8s_openapi::jiff::Timestamp::now()
        .checked_sub(k8s_openapi::jiff::SignedDuration::from_hours(24))
        .unwrap()
        .strftime("%Y-%m-%dT12:00:00Z")
        .to_string();
    let good = |name: &str| {
        record(
            "app",
            &yesterday,
            "s3",
            name,
            serde_json::json!({"bucketName": "orders", "key": "a"}),
        )
    };
    // A gzip bomb: one small member expanding to a MiB, repeated past the cap.
    let member = gzip(&vec![b' '; 1 << 20]);
    put_file(
        &s3,
        "bomb.json.gz",
        member.repeat((MAX_DECOMPRESSED_BYTES >> 20) + 1),
    )
    .await;
    // A record over the cap between two good ones.
    let mut huge = good("GetObject");
    huge["requestParameters"]["key"] = "k".repeat(MAX_RECORD_BYTES).into();
    let records = serde_json::json!({"Records": [good("GetObject"), huge, good("PutObject")]});
    put_file(
        &s3,
        "huge-record.json.gz",
        gzip(records.to_string().as_bytes()),
    )
    .await;
    // The eventTime that once crashed the process.
    let mut poison = good("DeleteObject");
    poison["eventTime"] = "2026-11-01T00:00:00+aé1".into();
    let records = serde_json::json!({"Records": [poison]});
    put_file(
        &s3,
        "poison-time.json.gz",
        gzip(records.to_string().as_bytes()),
    )
    .await;
    put_file(&s3, "garbage.json.gz", b"\x1f\x8bnot gzip at all".to_vec()).await;
    put_file(&s3, "too-big.json", vec![b' '; MAX_FILE_BYTES as usize + 1]).await;

    let operator = cluster.operator(&[], &[]);
    let roles: Api<LeastPrivilegeRole> = Api::namespaced(kube.clone(), NS);
    let trail = "  cloudTrail: {s3: {bucket: org-trail-logs}}\n";
    for (name, extra) in [
        ("bad-window", "  window: 401d\n"),
        ("bad-drift", "  drift: {interval: 2d}\n"),
        ("app", ""),
    ] {
        let spec = format!("  roleName: app\n{trail}{extra}");
        roles
            .create(&PostParams::default(), &lpr(name, &spec))
            .await
            .unwrap();
    }
    for (name, field) in [("bad-window", "window"), ("bad-drift", "drift.interval")] {
        let status = wait_for(&roles, name, "InvalidSpec", |s| {
            condition(s, "Ready") == Some(("False", "InvalidSpec"))
        })
        .await;
        let message = condition_message(&status, "Ready");
        assert!(
            message.contains(field) && message.contains("outside"),
            "{message}"
        );
        assert!(status.analysis.is_none(), "nothing read for {name}");
    }
    let app = wait_for(&roles, "app", "the analysis", |s| {
        condition(s, "Analyzed").is_some_and(|(status, _)| status == "True")
    })
    .await;
    let analysis = app.analysis.expect("analyzed");
    for (reason, count) in [
        ("decompressed-too-large", 1),
        ("record-too-large", 1),
        ("invalid-event-time", 1),
        ("malformed-file", 1),
        ("file-too-large", 1),
    ] {
        assert_eq!(
            analysis.skipped.get(reason),
            Some(&count),
            "{reason}: {:?}",
            analysis.skipped
        );
    }
    // The good records beside the oversized one were read: `app`'s 8 in each of the two good
    // files (put_trail, its denied call included), and the two around the big record.
    assert_eq!(analysis.events_matched, 8 * 2 + 2, "{analysis:?}");
    // The operator is still the one process it was, serving probes.
    assert_eq!(operator.get("/healthz").await.0, 200);
}
