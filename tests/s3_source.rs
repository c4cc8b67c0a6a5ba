//! The S3 trail walk against a real S3 API (moto): layout discovery, day prefixes inside the
//! window only, digest folders skipped, object download.

mod moto;

use iam_tailor::aws::s3::{S3Location, TrailScope, get_object, list_trail};
use iam_tailor::time::Day;
use iam_tailor::time::parse_date;

async fn put(client: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8]) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn walks_the_trail_layout_and_lists_only_days_in_the_window() {
    let server = moto::Moto::start();
    let s3 = server.s3();
    s3.create_bucket().bucket("trail").send().await.unwrap();
    let acct = "AWSLogs/111122223333";
    let keys = [
        format!("{acct}/CloudTrail/us-east-1/2024/07/30/a.json.gz"),
        format!("{acct}/CloudTrail/us-east-1/2024/07/31/b.json.gz"),
        format!("{acct}/CloudTrail/eu-west-1/2024/07/31/c.json.gz"),
        format!("{acct}/CloudTrail/us-east-1/2024/08/02/d.json.gz"),
        format!("{acct}/CloudTrail/us-east-1/2024/07/31/readme.txt"),
        format!("{acct}/CloudTrail-Digest/us-east-1/2024/07/31/digest.json.gz"),
        "AWSLogs/o-abc123def4/444455556666/CloudTrail/us-east-1/2024/07/31/e.json.gz".to_string(),
    ];
    for key in &keys {
        put(&s3, "trail", key, key.as_bytes()).await;
    }
    let location: S3Location = "s3://trail/".parse().unwrap();
    let days = Day::range(
        parse_date("2024-07-31T00:00:00Z").unwrap(),
        parse_date("2024-08-01T00:00:00Z").unwrap(),
    );
    let listing = list_trail(
        &s3,
        &location,
        Some(&days),
        &TrailScope::default(),
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        listing.keys,
        [keys[2].clone(), keys[1].clone(), keys[6].clone()]
    );
    assert_eq!(
        listing.listed_prefixes,
        [
            "AWSLogs/111122223333/CloudTrail/eu-west-1/2024/07/31/",
            "AWSLogs/111122223333/CloudTrail/us-east-1/2024/07/31/",
            "AWSLogs/o-abc123def4/444455556666/CloudTrail/us-east-1/2024/07/31/",
        ]
    );
    assert_eq!(
        listing.skipped_folders,
        ["AWSLogs/111122223333/CloudTrail-Digest/"]
    );

    // Scoped to one account (here inside an organization trail) and region: nothing else is
    // listed, let alone read.
    let scope = TrailScope {
        accounts: vec!["444455556666".to_string()],
        regions: vec!["us-east-1".to_string()],
    };
    let scoped = list_trail(&s3, &location, Some(&days), &scope, &Default::default())
        .await
        .unwrap();
    assert_eq!(scoped.keys, [keys[6].clone()]);
    assert_eq!(
        scoped.listed_prefixes,
        ["AWSLogs/o-abc123def4/444455556666/CloudTrail/us-east-1/2024/07/31/"]
    );
    let other_region = TrailScope {
        accounts: vec!["111122223333".to_string()],
        regions: vec!["eu-west-1".to_string()],
    };
    let scoped = list_trail(
        &s3,
        &location,
        Some(&days),
        &other_region,
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(scoped.keys, [keys[2].clone()]);

    // Without a window every log file is found; the digest never is.
    let all = list_trail(
        &s3,
        &location,
        None,
        &TrailScope::default(),
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(all.keys.len(), 5, "{:?}", all.keys);
    assert!(
        all.keys
            .iter()
            .all(|k| !k.contains("Digest") && k.ends_with(".json.gz"))
    );

    // A prefix below the account level works too.
    let region: S3Location = format!("s3://trail/{acct}/CloudTrail/us-east-1/")
        .parse()
        .unwrap();
    let listing = list_trail(
        &s3,
        &region,
        Some(&days),
        &TrailScope::default(),
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(listing.keys, [keys[1].clone()]);

    assert_eq!(
        get_object(&s3, "trail", &keys[1]).await.unwrap().as_deref(),
        Some(keys[1].as_bytes())
    );
    // An object over the size cap is not downloaded.
    let huge = vec![b' '; iam_tailor::cloudtrail::MAX_FILE_BYTES as usize + 1];
    s3.put_object()
        .bucket("trail")
        .key("huge.json")
        .body(huge.into())
        .send()
        .await
        .unwrap();
    assert_eq!(get_object(&s3, "trail", "huge.json").await.unwrap(), None);
    let missing = get_object(&s3, "trail", "nope").await.unwrap_err();
    assert!(
        missing.to_string().contains("GetObject s3://trail/nope"),
        "{missing}"
    );
}
