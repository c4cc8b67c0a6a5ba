//! Listing and getting CloudTrail log files in S3 (scanning them is `sources::trail`'s).
//!
//! Trails write `AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/…json.gz`. Listing a
//! large trail bucket is the slow part of a scan, so the walk descends the layout level by
//! level with `/`-delimited listings and, given a time window, lists only the day prefixes
//! inside it.

use super::sdk_message;
use crate::cloudtrail::MAX_FILE_BYTES;
use crate::time::Day;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// `s3://bucket/prefix`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct S3Location {
    pub bucket: String,
    /// Empty, or ending in `/` after normalization unless it names a deeper key prefix.
    pub prefix: String,
}

impl FromStr for S3Location {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{s:?}: expected s3://bucket/prefix"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{s:?}: the bucket name is empty"));
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// A failed S3 call, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{operation} s3://{bucket}/{key}: {message}")]
pub struct S3Error {
    pub operation: &'static str,
    pub bucket: String,
    pub key: String,
    pub message: String,
    /// S3's error code when S3 answered (`AccessDenied`, `NoSuchBucket`, …).
    pub code: Option<String>,
}

/// Codes that retrying will not change: someone has to grant access (to the bucket, or to the
/// KMS key its objects are encrypted with) or fix the bucket's name.
const PERMANENT_CODES: [&str; 5] = [
    "AccessDenied",
    "AllAccessDisabled",
    "NoSuchBucket",
    "InvalidObjectState",
    "KMS.DisabledException",
];

impl S3Error {
    /// Whether retrying cannot help: access denied (also by KMS), no such bucket, an archived
    /// object. Everything else (throttling, timeouts, 5xx) is worth retrying.
    pub fn is_permanent(&self) -> bool {
        let code = self.code.as_deref().unwrap_or("");
        PERMANENT_CODES.contains(&code) || (code.starts_with("KMS.") && !code.contains("Throttl"))
    }
}

/// An S3 client for `config`; path-style addressing when an endpoint is configured
/// (`AWS_ENDPOINT_URL`), which S3-compatible servers such as moto need.
pub fn client(config: &aws_config::SdkConfig) -> Client {
    let builder =
        aws_sdk_s3::config::Builder::from(config).force_path_style(config.endpoint_url().is_some());
    Client::from_conf(builder.build())
}

/// One `/`-delimited listing level: (sub-prefixes, object keys).
async fn list_level(
    client: &Client,
    bucket: &str,
    prefix: &str,
    delimiter: bool,
) -> Result<(Vec<String>, Vec<String>), S3Error> {
    let (mut prefixes, mut keys) = (Vec::new(), Vec::new());
    let mut token: Option<String> = None;
    loop {
        let mut request = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.take());
        if delimiter {
            request = request.delimiter("/");
        }
        let page = request.send().await.map_err(|e| S3Error {
            operation: "ListObjectsV2",
            bucket: bucket.to_string(),
            key: prefix.to_string(),
            message: sdk_message(&e),
            code: e.code().map(str::to_string),
        })?;
        prefixes.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_string)),
        );
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        match page.next_continuation_token() {
            Some(next) if page.is_truncated().unwrap_or(false) => token = Some(next.to_string()),
            _ => break,
        }
    }
    Ok((prefixes, keys))
}

/// What a walk listed: the day (or deeper) prefixes it read in full, and the log files found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TrailListing {
    pub listed_prefixes: Vec<String>,
    pub keys: Vec<String>,
    /// Digest and Insight folders passed over.
    pub skipped_folders: Vec<String>,
}

fn is_account(segment: &str) -> bool {
    segment.len() == 12 && segment.bytes().all(|b| b.is_ascii_digit())
}

/// Which accounts' and regions' logs a walk reads; empty lists read all.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrailScope {
    /// Account ids under `AWSLogs/` (or `AWSLogs/o-ORG/`): a role's calls are logged in its
    /// own account, so the operator reads only that one.
    pub accounts: Vec<String>,
    /// Regions under `…/CloudTrail/`.
    pub regions: Vec<String>,
}

impl TrailScope {
    fn admits(list: &[String], name: &str) -> bool {
        list.is_empty() || list.iter().any(|l| l == name)
    }
}

/// Finds the trail's log files under `location`: only the days of `days` when given, and
/// only the accounts and regions of `scope` (never listing the others), skipping the day
/// prefixes in `complete` (already read in full: nothing new can appear there).
pub async fn list_trail(
    client: &Client,
    location: &S3Location,
    days: Option<&[Day]>,
    scope: &TrailScope,
    complete: &BTreeSet<String>,
) -> Result<TrailListing, S3Error> {
    let mut listing = TrailListing::default();
    let mut pending = vec![location.prefix.clone()];
    let mut full: Vec<String> = Vec::new();
    while let Some(prefix) = pending.pop() {
        // Where in the layout this prefix is: the segments after the last `AWSLogs/`.
        let Some(at) = prefix.rfind("AWSLogs/") else {
            let (children, _) = list_level(client, &location.bucket, &prefix, true).await?;
            let logs: Vec<String> = children
                .into_iter()
                .filter(|c| c.ends_with("AWSLogs/"))
                .collect();
            if logs.is_empty() {
                // Not the CloudTrail layout: read everything under it.
                full.push(prefix);
            } else {
                pending.extend(logs);
            }
            continue;
        };
        let segments: Vec<&str> = prefix[at + "AWSLogs/".len()..]
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let after_account = segments.iter().position(|s| is_account(s));
        match (after_account, segments.len()) {
            // AWSLogs/ or AWSLogs/o-ORG/: descend to organizations and accounts.
            (None, n) if n <= 1 => {
                let (children, _) = list_level(client, &location.bucket, &prefix, true).await?;
                for child in children {
                    let name = child.trim_end_matches('/').rsplit('/').next().unwrap_or("");
                    let account = is_account(name) && TrailScope::admits(&scope.accounts, name);
                    if account || (n == 0 && name.starts_with("o-")) {
                        pending.push(child);
                    }
                }
            }
            // …/ACCOUNT/: only CloudTrail/, never the digest or insight folders.
            (Some(i), n) if n == i + 1 => {
                let (children, _) = list_level(client, &location.bucket, &prefix, true).await?;
                for child in children {
                    if child.ends_with("/CloudTrail/") {
                        pending.push(child);
                    } else {
                        listing.skipped_folders.push(child);
                    }
                }
            }
            // …/ACCOUNT/CloudTrail/: one prefix per region (those of the scope).
            (Some(i), n) if n == i + 2 && segments[i + 1] == "CloudTrail" => {
                if scope.regions.is_empty() {
                    let (children, _) = list_level(client, &location.bucket, &prefix, true).await?;
                    pending.extend(children);
                } else {
                    pending.extend(scope.regions.iter().map(|r| format!("{prefix}{r}/")));
                }
            }
            // …/CloudTrail/REGION/: the days of the window, or everything.
            (Some(i), n) if n == i + 3 && segments[i + 1] == "CloudTrail" => match days {
                Some(days) => full.extend(
                    days.iter()
                        .map(|d| format!("{prefix}{}", d.path()))
                        .filter(|p| !complete.contains(p)),
                ),
                None => full.push(prefix),
            },
            // Deeper, or a layout this walk does not know: read it all.
            _ => full.push(prefix),
        }
    }
    full.sort();
    for prefix in full {
        let (_, keys) = list_level(client, &location.bucket, &prefix, false).await?;
        listing.keys.extend(keys.into_iter().filter(|k| {
            (k.ends_with(".json.gz") || k.ends_with(".json"))
                && !k.contains("/CloudTrail-Digest/")
                && !k.contains("/CloudTrail-Insight/")
        }));
        listing.listed_prefixes.push(prefix);
    }
    listing.keys.sort();
    listing.skipped_folders.sort();
    Ok(listing)
}

/// Downloads one object.
/// The object's bytes, or `None` (not downloaded) when it is larger than
/// [`MAX_FILE_BYTES`]: a trail file is untrusted, whatever its size.
pub async fn get_object(
    client: &Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, S3Error> {
    let fetched = get_capped(client, bucket, key, MAX_FILE_BYTES).await?;
    Ok(fetched.map(|f| f.bytes))
}

/// An object's bytes and the ETag they had.
#[derive(Debug)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub etag: String,
}

/// Downloads one object of at most `max_bytes` (`None` when it is larger: not downloaded).
pub async fn get_capped(
    client: &Client,
    bucket: &str,
    key: &str,
    max_bytes: u64,
) -> Result<Option<Fetched>, S3Error> {
    let error = |message: String, code: Option<&str>| S3Error {
        operation: "GetObject",
        bucket: bucket.to_string(),
        key: key.to_string(),
        message,
        code: code.map(str::to_string),
    };
    let output = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| error(sdk_message(&e), e.code()))?;
    if output
        .content_length()
        .is_some_and(|n| n as u64 > max_bytes)
    {
        return Ok(None);
    }
    let etag = output.e_tag().unwrap_or_default().to_string();
    let body = output
        .body
        .collect()
        .await
        .map_err(|e| error(e.to_string(), None))?;
    // The length header may lie; the body is what counts.
    let bytes = body.into_bytes();
    if bytes.len() as u64 > max_bytes {
        return Ok(None);
    }
    Ok(Some(Fetched {
        bytes: bytes.to_vec(),
        etag,
    }))
}

/// Uploads one object; its ETag.
pub async fn put_object(
    client: &Client,
    bucket: &str,
    key: &str,
    bytes: Vec<u8>,
) -> Result<String, S3Error> {
    let output = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(bytes.into())
        .send()
        .await
        .map_err(|e| S3Error {
            operation: "PutObject",
            bucket: bucket.to_string(),
            key: key.to_string(),
            message: sdk_message(&e),
            code: e.code().map(str::to_string),
        })?;
    Ok(output.e_tag().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_and_missing_are_permanent_the_rest_is_retried() {
        let error = |code: Option<&str>| S3Error {
            operation: "GetObject",
            bucket: "trail".to_string(),
            key: "k".to_string(),
            message: String::new(),
            code: code.map(str::to_string),
        };
        for code in [
            "AccessDenied",
            "NoSuchBucket",
            "KMS.DisabledException",
            "KMS.NotFoundException",
        ] {
            assert!(error(Some(code)).is_permanent(), "{code}");
        }
        for code in [
            Some("SlowDown"),
            Some("InternalError"),
            Some("KMS.ThrottlingException"),
            None,
        ] {
            assert!(!error(code).is_permanent(), "{code:?}");
        }
    }

    #[test]
    fn locations_parse() {
        let l: S3Location = "s3://trail-logs/org/".parse().unwrap();
        assert_eq!(l.bucket, "trail-logs");
        assert_eq!(l.prefix, "org/");
        assert_eq!("s3://b".parse::<S3Location>().unwrap().prefix, "");
        assert!("https://b/x".parse::<S3Location>().is_err());
        assert!("s3:///x".parse::<S3Location>().is_err());
    }
}
