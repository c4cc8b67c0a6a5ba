//! The CloudTrail arguments `generate` and `unused` share, and scanning the sources they name.

use crate::aws::athena;
use crate::aws::s3::{self, S3Location};
use crate::cloudtrail::{PrincipalFilter, ScanOptions, Sink, scan_paths_into};
use crate::sources::facts::FileFacts;
use crate::sources::trail;
use crate::time::{Day, parse_since};
use crate::time::{Instant, parse_date};
use crate::usage::Usage;
use anyhow::{Context, anyhow, bail};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct TrailArgs {
    /// CloudTrail logs: files, directories (recursive; .json and .json.gz) or s3://bucket/prefix.
    /// Optional with `generate --engine access-analyzer`, where they only supply resource ARNs.
    #[arg(long = "cloudtrail", value_name = "PATH|s3://BUCKET/PREFIX")]
    sources: Vec<String>,
    /// Whose activity: a role ARN (matches its assumed-role sessions), a bare role name, or an
    /// IAM user ARN. Without it every record counts. Repeatable (`generate --out-dir`): the
    /// logs are read once for all of them.
    #[arg(long)]
    principal: Vec<String>,
    /// Every role whose sessions the logs show, each on its own (`generate --out-dir`).
    #[arg(long, conflicts_with = "principal")]
    all_roles: bool,
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
    /// AWS region for the S3 and Athena clients (default: the environment's, else us-east-1).
    #[arg(long)]
    region: Option<String>,
    /// Ask Athena instead of reading files: the table over the trail (`DATABASE.TABLE`, as in
    /// examples/athena/cloudtrail-table.sql). One query per account and day for the named
    /// principals (role or user ARNs); the window is whole UTC days.
    #[arg(long, value_name = "DATABASE.TABLE", conflicts_with_all = ["sources", "all_roles"])]
    athena_table: Option<String>,
    /// The Athena workgroup the queries run in.
    #[arg(long, default_value = "primary", requires = "athena_table")]
    athena_workgroup: String,
    /// Where Athena writes results (s3://BUCKET/PREFIX/), unless the workgroup sets it.
    #[arg(long, value_name = "s3://BUCKET/PREFIX/", requires = "athena_table")]
    athena_output: Option<String>,
}

fn instant(flag: &str, text: &str) -> anyhow::Result<Instant> {
    parse_date(text)
        .with_context(|| format!("--{flag} {text:?}: expected RFC 3339, e.g. 2026-08-01T00:00:00Z"))
}

impl TrailArgs {
    /// The options for one principal (or none: every record).
    fn options(&self) -> anyhow::Result<ScanOptions> {
        let principal = match &self.principal[..] {
            [] => None,
            [one] => Some(PrincipalFilter::parse(one).map_err(|e| anyhow!("--principal: {e}"))?),
            _ => bail!("several --principal values are answered each on its own: give --out-dir"),
        };
        Ok(ScanOptions {
            principal,
            ..self.window_options()?
        })
    }

    /// The window and reading options, for every principal.
    fn window_options(&self) -> anyhow::Result<ScanOptions> {
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
            principal: None,
            from,
            to,
            strict: self.strict,
            threads: self.threads,
            progress: std::io::stderr().is_terminal(),
            ..ScanOptions::default()
        })
    }

    /// The principal to analyse, when one was given.
    pub fn principal(&self) -> Option<&str> {
        match &self.principal[..] {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Whether several principals are asked for (`--principal` more than once, or
    /// `--all-roles`): each is answered on its own.
    pub fn fleet(&self) -> bool {
        self.all_roles || self.principal.len() > 1
    }

    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// Whether any log source was given.
    pub fn has_sources(&self) -> bool {
        !self.sources.is_empty() || self.athena_table.is_some()
    }

    /// The window's bounds (nanoseconds since the epoch) as given, each `None` when open.
    pub fn window(&self) -> anyhow::Result<(Option<Instant>, Option<Instant>)> {
        let options = self.window_options()?;
        Ok((options.from, options.to))
    }

    /// Reads every source once and answers each principal asked for (each `--principal`, or
    /// with `--all-roles` every role the logs show), by name: the role or user name, or with
    /// `--all-roles` `ACCOUNT-NAME` (the same name may exist in several accounts).
    pub fn scan_each(&self) -> anyhow::Result<BTreeMap<String, Usage>> {
        let filters = (self.principal.iter())
            .map(|p| PrincipalFilter::parse(p).map_err(|e| anyhow!("--principal: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let facts: FileFacts = self.read(&self.window_options()?)?;
        let mut answers = BTreeMap::new();
        if self.all_roles {
            for key in facts.principals() {
                let Ok(filter @ PrincipalFilter::Role { .. }) = PrincipalFilter::parse(key) else {
                    continue;
                };
                let account = key.split(':').nth(4).unwrap_or_default();
                let name = key.rsplit('/').next().unwrap_or_default();
                answers.insert(format!("{account}-{name}"), facts.usage_of(&filter));
            }
        }
        for (given, filter) in self.principal.iter().zip(&filters) {
            let name = given.rsplit(['/', ':']).next().unwrap_or(given).to_string();
            if answers
                .insert(name.clone(), facts.usage_of(filter))
                .is_some()
            {
                bail!("two --principal values are both named {name:?}: give them in separate runs");
            }
        }
        Ok(answers)
    }

    /// Scans every source into one `Usage`.
    pub fn scan(&self) -> anyhow::Result<Usage> {
        let options = self.options()?;
        self.read(&options)
    }

    /// Reads every source once into `S`.
    fn read<S: Sink + Sync>(&self, options: &ScanOptions) -> anyhow::Result<S> {
        if let Some(table) = &self.athena_table {
            return self.ask_athena(table, options);
        }
        if self.sources.is_empty() {
            bail!("--cloudtrail PATH|s3://BUCKET/PREFIX is required");
        }
        let options = options.clone();
        let (s3_sources, local): (Vec<&String>, Vec<&String>) =
            self.sources.iter().partition(|s| s.starts_with("s3://"));
        let mut found = if local.is_empty() {
            S::default()
        } else {
            let paths: Vec<PathBuf> = local.iter().map(PathBuf::from).collect();
            scan_paths_into::<S>(&paths, &options)?
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
            found.merge(runtime.block_on(async {
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
        Ok(found)
    }
}

impl TrailArgs {
    /// One query per account (of the principals) and day of the window, for every principal.
    fn ask_athena<S: Sink>(&self, table: &str, options: &ScanOptions) -> anyhow::Result<S> {
        let Some(from) = options.from else {
            bail!("--athena-table needs a window: --since or --from");
        };
        if self.principal.is_empty() {
            bail!("--athena-table needs --principal ARN: Athena is asked about named principals");
        }
        // Whole UTC days: a grouped row stands for all of its day's identical calls.
        let to = options.to.unwrap_or_else(crate::time::now);
        let days = Day::range(from, to);
        if days.len() > MAX_ATHENA_DAYS {
            bail!(
                "--athena-table: the window spans {} days; at most {MAX_ATHENA_DAYS} (one query per account and day)",
                days.len()
            );
        }
        let first = days.first().copied().unwrap_or(Day::of(from));
        let last = days.last().copied().unwrap_or(first);
        let options = ScanOptions {
            from: Some(first.start()),
            to: Some(last.start() + DAY_NANOS),
            ..options.clone()
        };
        let principals: Vec<&str> = self.principal.iter().map(String::as_str).collect();
        let accounts: std::collections::BTreeSet<String> = (principals.iter())
            .map(|p| p.split(':').nth(4).unwrap_or_default().to_string())
            .collect();
        let accounts: Vec<String> = accounts.into_iter().collect();
        let workgroup = athena::Workgroup {
            workgroup: self.athena_workgroup.clone(),
            database: None,
            output_location: self.athena_output.clone(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let config = crate::aws::sdk_config(self.region.as_deref()).await;
            let client = athena::client(&config);
            let sink = crate::sources::athena::scan::<S>(
                &client,
                &workgroup,
                table,
                &accounts,
                &days,
                &principals,
                &options,
            )
            .await?;
            Ok(sink)
        })
    }
}

const DAY_NANOS: Instant = 86_400 * 1_000_000_000;
/// Days one Athena scan may ask about: IAM's own 400 days of history.
const MAX_ATHENA_DAYS: usize = 400;

/// The one-line summary every scan prints on stderr.
pub fn summary(usage: &Usage) -> String {
    let s = &usage.stats;
    let skipped: u64 = s.skipped.values().sum();
    let denied: u64 = usage
        .denied
        .values()
        .fold(0u64, |n, d| n.saturating_add(d.count));
    let unmapped: u64 = usage
        .unmapped
        .values()
        .fold(0u64, |n, d| n.saturating_add(d.count));
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
