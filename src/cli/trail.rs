//! The CloudTrail arguments `generate` and `unused` share, and scanning the sources they name.

use crate::aws::s3::{self, S3Location};
use crate::cloudtrail::{PrincipalFilter, ScanOptions};
use crate::time::{Day, parse_since};
use crate::time::{Instant, parse_date};
use crate::usage::{Usage, trail};
use anyhow::{Context, bail};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct TrailArgs {
    /// CloudTrail logs: files, directories (recursive; .json and .json.gz) or s3://bucket/prefix.
    /// Optional with `generate --engine access-analyzer`, where they only supply resource ARNs.
    #[arg(long = "cloudtrail", value_name = "PATH|s3://BUCKET/PREFIX")]
    sources: Vec<String>,
    /// Whose activity: a role ARN (matches its assumed-role sessions), a bare role name, or an
    /// IAM user ARN. Without it every record counts.
    #[arg(long)]
    principal: Option<String>,
    /// Look back this far from now: 90d, 12h, 2w.
    #[arg(long, conflicts_with = "from")]
    since: Option<String>,
    /// Window start, RFC 3339 (inclusive).
    #[arg(long)]
    from: Option<String>,
    /// Window end, RFC 3339 (exclusive).
    #[arg(long)]
    to: Option<String>,
    /// Fail on the first malformed file or record instead of counting and skipping it.
    #[arg(long)]
    strict: bool,
    /// Threads for reading files (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// AWS region for the S3 client (default: the environment's, else us-east-1).
    #[arg(long)]
    region: Option<String>,
}

fn instant(flag: &str, text: &str) -> anyhow::Result<Instant> {
    parse_date(text)
        .with_context(|| format!("--{flag} {text:?}: expected RFC 3339, e.g. 2026-08-01T00:00:00Z"))
}

impl TrailArgs {
    fn options(&self) -> anyhow::Result<ScanOptions> {
        let principal = self
            .principal
            .as_deref()
            .map(PrincipalFilter::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--principal: {e}"))?;
        let from = match (&self.since, &self.from) {
            (Some(since), _) => Some(
                parse_since(since, crate::time::now())
                    .map_err(|e| anyhow::anyhow!("--since: {e}"))?,
            ),
            (None, Some(from)) => Some(instant("from", from)?),
            (None, None) => None,
        };
        let to = self.to.as_deref().map(|t| instant("to", t)).transpose()?;
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            bail!("the window is empty: --from/--since is not before --to");
        }
        Ok(ScanOptions {
            principal,
            from,
            to,
            strict: self.strict,
            threads: self.threads,
            progress: std::io::stderr().is_terminal(),
        })
    }

    /// The principal to analyse, as given.
    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// Whether any log source was given.
    pub fn has_sources(&self) -> bool {
        !self.sources.is_empty()
    }

    /// The window's bounds (nanoseconds since the epoch) as given, each `None` when open.
    pub fn window(&self) -> anyhow::Result<(Option<Instant>, Option<Instant>)> {
        let options = self.options()?;
        Ok((options.from, options.to))
    }

    /// Scans every source into one `Usage`.
    pub fn scan(&self) -> anyhow::Result<Usage> {
        if self.sources.is_empty() {
            bail!("--cloudtrail PATH|s3://BUCKET/PREFIX is required");
        }
        let options = self.options()?;
        let (s3_sources, local): (Vec<&String>, Vec<&String>) =
            self.sources.iter().partition(|s| s.starts_with("s3://"));
        let mut usage = if local.is_empty() {
            Usage::default()
        } else {
            let paths: Vec<PathBuf> = local.iter().map(PathBuf::from).collect();
            trail::scan_local(&paths, &options)?
        };
        if !s3_sources.is_empty() {
            let locations = s3_sources
                .iter()
                .map(|s| s.parse::<S3Location>().map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let parallel = if options.threads == 0 {
                std::thread::available_parallelism().map_or(4, |n| n.get()) * 2
            } else {
                options.threads
            };
            let region = self.region.as_deref();
            usage.merge(runtime.block_on(async {
                let config = crate::aws::sdk_config(region).await;
                let client = s3::client(&config);
                let days = options
                    .from
                    .map(|from| Day::range(from, options.to.unwrap_or_else(crate::time::now)));
                let scope = s3::TrailScope::default();
                trail::scan_s3(
                    &client,
                    &locations,
                    days.as_deref(),
                    &scope,
                    &options,
                    parallel,
                )
                .await
                .map(|scan| scan.usage)
            })?);
        }
        Ok(usage)
    }
}

/// The one-line summary every scan prints on stderr.
pub fn summary(usage: &Usage) -> String {
    let s = &usage.stats;
    let skipped: u64 = s.skipped.values().sum();
    let denied: u64 = usage.denied.values().map(|d| d.count).sum();
    let unmapped: u64 = usage.unmapped.values().map(|d| d.count).sum();
    format!(
        "{} files, {} records scanned, {} matched, {} skipped; {} actions used, {} denied attempts, {} unmapped calls",
        s.files_scanned,
        s.records_scanned,
        s.records_matched,
        skipped,
        usage.actions.len(),
        denied,
        unmapped
    )
}
