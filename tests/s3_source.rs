//! The S3 trail walk against a real S3 API (moto): layout discovery, day prefixes inside the
//! window only, digest folders skipped, object download.

use crate::moto;

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

/// A fact store prefix that already holds another trail's checkpoint is left alone: the
/// ingester reads the trail, answers from memory, counts the refusal and writes nothing there
/// (so two trails pointed at one prefix never clobber each other). Against moto.
#[tokio::test]
async fn a_fact_store_of_another_trail_is_left_alone() {
    use iam_tailor::cloudtrail::PrincipalFilter;
    use iam_tailor::sources::ingest::{FactStore, Ingester};
    let server = moto::Moto::start();
    let s3 = server.s3();
    for bucket in ["trail", "facts"] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    let record = r#"{"Records":[{"eventTime":"2024-07-31T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/app/s","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/app"}}}}]}"#;
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/07/31/a.json";
    put(&s3, "trail", key, record.as_bytes()).await;
    let other = r#"{"format":1,"trail":"s3://someone-else/ region=- reader=operator","complete":[],"read":{},"present":[],"files":{},"partitions":{}}"#;
    let checkpoint = "shared/reader=operator/checkpoint.json";
    put(&s3, "facts", checkpoint, other.as_bytes()).await;

    let trail: S3Location = "s3://trail/".parse().unwrap();
    let store: S3Location = "s3://facts/shared".parse().unwrap();
    let mut ingester = Ingester::new(trail.clone()).with_store(FactStore::new(
        s3.clone(),
        &store,
        &trail,
        None,
        None,
    ));
    let day = Day::of(parse_date("2024-07-31T00:00:00Z").unwrap());
    let app = PrincipalFilter::parse("arn:aws:iam::111122223333:role/app").unwrap();
    let now = parse_date("2024-08-05T00:00:00Z").unwrap();
    let scan = ingester
        .usage(&s3, &TrailScope::default(), &[day], &app, now, 4)
        .await
        .unwrap();
    assert!(scan.usage.actions.contains_key("s3:ListAllMyBuckets"));
    assert_eq!((ingester.files_read(), ingester.store_errors()), (1, 1));
    let listed = s3.list_objects_v2().bucket("facts").send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [checkpoint], "nothing written beside it");
    let kept = get_object(&s3, "facts", checkpoint).await.unwrap().unwrap();
    assert_eq!(kept, other.as_bytes(), "not overwritten");

    // The same trail with a store of its own saves there, and a second ingester (a restart)
    // answers from it without reading the file.
    let own: S3Location = "s3://facts/own/".parse().unwrap();
    let with_store = || {
        Ingester::new(trail.clone()).with_store(FactStore::new(
            s3.clone(),
            &own,
            &trail,
            None,
            None,
        ))
    };
    let mut first = with_store();
    first
        .usage(&s3, &TrailScope::default(), &[day], &app, now, 4)
        .await
        .unwrap();
    let mut second = with_store();
    let again = second
        .usage(&s3, &TrailScope::default(), &[day], &app, now, 4)
        .await
        .unwrap();
    assert_eq!((first.files_read(), second.files_read()), (1, 0));
    assert_eq!(second.store_errors(), 0);
    assert_eq!(again.usage, scan.usage);
    assert!(again.days_without_files.is_empty());
}
