use super::read_policy;
use super::trail::{TrailArgs, summary};
use crate::aws::access_analyzer::{self, AccessAnalyzer, GenerationJob, TrailSource, Window};
use crate::generate::analyzer::{Unresolved, from_generated};
use crate::generate::boundary::{BoundaryGrain, boundary};
use crate::generate::profiles::{profile_hints, resolve_instance_profiles};
use crate::generate::{
    GenerateOptions, Generated, Granularity, Keep, generate, report, to_cloudformation, to_json,
    to_terraform,
};
use crate::time::rfc3339;
use crate::usage::Usage;
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Access Analyzer reads at most this much of a trail.
const MAX_ANALYZER_WINDOW_SECONDS: i64 = 90 * 86_400;

/// Where the used actions come from.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Engine {
    /// iam-tailor's own: reads the CloudTrail log files.
    #[default]
    Builtin,
    /// AWS IAM Access Analyzer's policy generation over a trail. Log files given with
    /// --cloudtrail then only supply resource ARNs for its placeholders.
    AccessAnalyzer,
}

/// The Access Analyzer engine's settings.
#[derive(clap::Args, Debug)]
struct AnalyzerArgs {
    /// The trail Access Analyzer reads: arn:aws:cloudtrail:REGION:ACCOUNT:trail/NAME.
    #[arg(long, value_name = "ARN")]
    trail_arn: Option<String>,
    /// The role Access Analyzer assumes to read the trail and its bucket.
    #[arg(long, value_name = "ARN")]
    access_role_arn: Option<String>,
    /// A region whose events count (repeatable); without it, every region.
    #[arg(long = "trail-region", value_name = "REGION")]
    trail_regions: Vec<String>,
    /// A value for a placeholder of the generated policy (repeatable), e.g. BucketName=orders.
    #[arg(long, value_name = "NAME=VALUE")]
    placeholder: Vec<String>,
    /// Seconds between polls of the generation job.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    poll_seconds: u64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PolicyFormat {
    #[default]
    Json,
    /// A Terraform `aws_iam_policy_document` data source.
    Terraform,
    /// A CloudFormation `AWS::IAM::ManagedPolicy` (YAML).
    Cloudformation,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    trail: TrailArgs,
    /// builtin: read the log files; access-analyzer: run an Access Analyzer generation job
    /// (exit status 1 when placeholders stay unresolved; the output leaves them out).
    #[arg(long, value_enum, default_value_t)]
    engine: Engine,
    #[command(flatten)]
    analyzer: AnalyzerArgs,
    /// exact: every ARN as seen; prefix: many ARNs under one parent become parent/*;
    /// service: actions only, on every resource.
    #[arg(long, value_enum, default_value_t)]
    granularity: Granularity,
    /// Under prefix granularity, how many ARNs under one parent before they collapse.
    #[arg(long, default_value_t = 10)]
    collapse_threshold: usize,
    /// Largest document, in characters without white space; larger output is split.
    #[arg(long, default_value_t = 6144)]
    max_size: usize,
    /// Always grant this, used or not: ACTION or ACTION=ARN (e.g. the monthly purge).
    #[arg(long, value_name = "ACTION[=ARN]")]
    keep: Vec<Keep>,
    /// Never grant actions matching this pattern (e.g. iam:*); uses are reported.
    #[arg(long, value_name = "PATTERN")]
    forbid: Vec<String>,
    /// The role's current policies: the output is cut to what they provably grant.
    #[arg(long, value_name = "FILE")]
    current: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    format: PolicyFormat,
    /// Propose a permissions boundary instead of a policy: every action of each used service
    /// at the access levels used there (access-level), or the whole service (service), on any
    /// resource; --forbid patterns become a Deny, --keep actions count as used.
    #[arg(long, value_enum, value_name = "GRAIN")]
    boundary_from: Option<BoundaryGrain>,
    /// The role an EC2 instance profile holds (repeatable): NAME=ROLE_ARN, the profile by name
    /// or ARN. A call that passed the profile then grants iam:PassRole on the role, to EC2
    /// only; profiles neither a hint nor the trail's AddRoleToInstanceProfile calls resolve
    /// are reported, not granted.
    #[arg(long, value_name = "NAME=ROLE_ARN")]
    instance_profile: Vec<String>,
    /// Write a JSON report (scan counts, used actions, denied, unmapped, dropped) here.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// One policy per principal (several --principal, or --all-roles), from one read of the
    /// logs: DIR/NAME.json (.tf, .yaml by --format) and DIR/NAME.report.json.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    if args.out_dir.is_some() || args.trail.fleet() {
        return run_each(&args);
    }
    let current = args
        .current
        .iter()
        .map(|f| read_policy(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let profiles = profile_hints(&args.instance_profile).map_err(anyhow::Error::msg)?;
    let (mut usage, unresolved) = match args.engine {
        Engine::Builtin => {
            if args.analyzer.trail_arn.is_some() {
                bail!("--trail-arn needs --engine access-analyzer");
            }
            (args.trail.scan()?, Vec::new())
        }
        Engine::AccessAnalyzer => analyzer_usage(&args)?,
    };
    resolve_instance_profiles(&mut usage, &profiles);
    if let Some(grain) = args.boundary_from {
        return print_boundary(&args, &usage, grain);
    }
    let options = GenerateOptions {
        granularity: args.granularity,
        collapse_threshold: args.collapse_threshold,
        max_size: args.max_size,
        keep: args.keep,
        forbid: args.forbid,
        current,
    };
    let generated = generate(&usage, &options)?;
    let output = render(args.format, &generated);
    print!("{output}");
    if !output.ends_with('\n') {
        println!();
    }
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report(&usage, &generated))?;
        std::fs::write(path, json + "\n").with_context(|| format!("{}", path.display()))?;
    }
    print_unmapped(&usage);
    for (profile, seen) in &usage.instance_profiles {
        eprintln!(
            "iam-tailor: instance profile {profile} was passed {} times and its role is unknown: \
             iam:PassRole for it is not granted; give --instance-profile NAME=ROLE_ARN",
            seen.count
        );
    }
    for u in &unresolved {
        eprintln!(
            "iam-tailor: unresolved {} in {} on {}: give --placeholder NAME=VALUE, or --cloudtrail logs with its ARNs",
            u.placeholders.join(", "),
            u.action,
            u.resource
        );
    }
    let source = match args.engine {
        Engine::Builtin => summary(&usage),
        Engine::AccessAnalyzer => format!(
            "Access Analyzer: {} actions, {} unresolved",
            usage.actions.len(),
            unresolved.len()
        ),
    };
    eprintln!(
        "iam-tailor: {} → {} polic{} ({} generalized, {} dropped, {} forbidden uses, {} would be denied)",
        source,
        generated.policies.len(),
        if generated.policies.len() == 1 {
            "y"
        } else {
            "ies"
        },
        generated.generalized.len(),
        generated.dropped.len(),
        generated.forbidden_used.len(),
        generated.would_deny.len()
    );
    Ok(if unresolved.is_empty() { 0 } else { 1 })
}

/// `--boundary-from`: the boundary document, in `--format`, and what it covers on stderr.
fn print_boundary(args: &Args, usage: &Usage, grain: BoundaryGrain) -> anyhow::Result<i32> {
    if !args.current.is_empty() || args.report.is_some() {
        bail!("--boundary-from takes neither --current nor --report");
    }
    let b = boundary(usage, &args.keep, &args.forbid, grain, args.max_size)
        .map_err(|e| anyhow::anyhow!("--boundary-from: {e}"))?;
    let generated = Generated {
        policies: vec![b.policy],
        generalized: Vec::new(),
        would_deny: Vec::new(),
        dropped: Vec::new(),
        forbidden_used: Vec::new(),
        notes: Vec::new(),
    };
    let output = render(args.format, &generated);
    print!("{output}");
    if !output.ends_with('\n') {
        println!();
    }
    for (service, levels) in &b.levels {
        let levels: Vec<&str> = levels.iter().map(|l| l.as_str()).collect();
        eprintln!("iam-tailor: boundary: {service} at {}", levels.join(", "));
    }
    if !b.coarsened.is_empty() {
        eprintln!(
            "iam-tailor: boundary: whole service to fit {} characters: {}",
            args.max_size,
            b.coarsened.join(", ")
        );
    }
    Ok(0)
}

fn render(format: PolicyFormat, generated: &Generated) -> String {
    match format {
        PolicyFormat::Json => to_json(generated),
        PolicyFormat::Terraform => to_terraform(generated),
        PolicyFormat::Cloudformation => to_cloudformation(generated),
    }
}

/// Unmapped calls shown on stderr, most frequent first.
const UNMAPPED_SHOWN: usize = 10;

/// The calls no catalog action was found for, with how often and a hint: what the policy
/// cannot cover, so the user can `--keep` it.
fn print_unmapped(usage: &Usage) {
    let mut calls: Vec<(&(String, String), u64)> = (usage.unmapped.iter())
        .map(|(call, seen)| (call, seen.count))
        .collect();
    calls.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    for ((source, name), count) in calls.iter().take(UNMAPPED_SHOWN) {
        let hint = crate::cloudtrail::mapping::unmapped_hint(source, name);
        eprintln!("iam-tailor: unmapped {source} {name} ({count} calls): {hint}");
    }
    if calls.len() > UNMAPPED_SHOWN {
        let more = calls.len() - UNMAPPED_SHOWN;
        eprintln!("iam-tailor: {more} more unmapped calls in the report (--report)");
    }
}

/// Fleet mode: the logs read once, one policy and report per principal into `--out-dir`.
fn run_each(args: &Args) -> anyhow::Result<i32> {
    let Some(dir) = &args.out_dir else {
        bail!("several principals (--principal more than once, or --all-roles) need --out-dir");
    };
    if args.engine != Engine::Builtin {
        bail!("--engine access-analyzer generates for one --principal at a time");
    }
    if !args.current.is_empty() {
        bail!("--current holds one role's policies: not with several principals");
    }
    let profiles = profile_hints(&args.instance_profile).map_err(anyhow::Error::msg)?;
    let mut answers = args.trail.scan_each()?;
    for usage in answers.values_mut() {
        resolve_instance_profiles(usage, &profiles);
    }
    if answers.is_empty() {
        bail!("--out-dir needs --principal (repeatable) or --all-roles, and logs that show them");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    let extension = match args.format {
        PolicyFormat::Json => "json",
        PolicyFormat::Terraform => "tf",
        PolicyFormat::Cloudformation => "yaml",
    };
    let options = GenerateOptions {
        granularity: args.granularity,
        collapse_threshold: args.collapse_threshold,
        max_size: args.max_size,
        keep: args.keep.clone(),
        forbid: args.forbid.clone(),
        current: Vec::new(),
    };
    for (name, usage) in &answers {
        let generated = generate(usage, &options).with_context(|| name.clone())?;
        let write = |file: String, text: String| {
            let path = dir.join(file);
            std::fs::write(&path, text).with_context(|| format!("{}", path.display()))
        };
        let mut output = render(args.format, &generated);
        if !output.ends_with('\n') {
            output.push('\n');
        }
        write(format!("{name}.{extension}"), output)?;
        let report = serde_json::to_string_pretty(&report(usage, &generated))?;
        write(format!("{name}.report.json"), report + "\n")?;
        eprintln!(
            "iam-tailor: {name}: {} actions used → {} polic{}",
            usage.actions.len(),
            generated.policies.len(),
            if generated.policies.len() == 1 {
                "y"
            } else {
                "ies"
            }
        );
    }
    if let Some(usage) = answers.values().next() {
        let s = &usage.stats;
        eprintln!(
            "iam-tailor: {} principals from one read: {} files, {} records",
            answers.len(),
            s.files_scanned,
            s.records_scanned
        );
    }
    Ok(0)
}

/// Runs an Access Analyzer generation job to its end and reads its policies, resolving
/// placeholders from `--placeholder` values and the `--cloudtrail` logs' ARNs.
fn analyzer_usage(args: &Args) -> anyhow::Result<(Usage, Vec<Unresolved>)> {
    let a = &args.analyzer;
    let needs = |flag: &str| format!("--engine access-analyzer needs {flag}");
    let trail = TrailSource {
        trail_arn: a.trail_arn.clone().with_context(|| needs("--trail-arn"))?,
        access_role_arn: a
            .access_role_arn
            .clone()
            .with_context(|| needs("--access-role-arn"))?,
        all_regions: a.trail_regions.is_empty(),
        regions: a.trail_regions.clone(),
    };
    let principal = args
        .trail
        .principal()
        .filter(|p| p.starts_with("arn:"))
        .with_context(|| needs("--principal ROLE_ARN"))?;
    let mut values = BTreeMap::new();
    for pair in &a.placeholder {
        let (name, value) = pair
            .split_once('=')
            .with_context(|| format!("--placeholder {pair:?}: expected NAME=VALUE"))?;
        values.insert(name.to_string(), value.to_string());
    }
    let (from, to) = args.trail.window()?;
    let seconds = |nanos: i128| (nanos / 1_000_000_000) as i64;
    let end = seconds(to.unwrap_or_else(crate::time::now));
    let start = from.map_or(end - MAX_ANALYZER_WINDOW_SECONDS, seconds);
    if end - start > MAX_ANALYZER_WINDOW_SECONDS {
        bail!("Access Analyzer reads at most 90 days of a trail: shorten --since/--from");
    }
    let logs = if args.trail.has_sources() {
        Some(args.trail.scan()?)
    } else {
        None
    };
    let region = args.trail.region();
    let poll = std::time::Duration::from_secs(a.poll_seconds.max(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let policies = runtime.block_on(async {
        let config = crate::aws::sdk_config(region).await;
        let analyzer = AccessAnalyzer::new(&config, Default::default());
        let window = Window { start, end };
        let job =
            access_analyzer::start_policy_generation(&analyzer, principal, &trail, window).await?;
        eprintln!("iam-tailor: Access Analyzer policy generation job {job} started");
        loop {
            match access_analyzer::get_generated_policy(&analyzer, &job).await? {
                GenerationJob::InProgress => tokio::time::sleep(poll).await,
                GenerationJob::Succeeded { policies } => break anyhow::Ok(policies),
                GenerationJob::Ended { status, reason } => {
                    bail!("Access Analyzer job {job} ended {status}: {reason}")
                }
            }
        }
    })?;
    let generated = from_generated(
        &policies,
        &values,
        logs.as_ref(),
        &rfc3339(crate::time::now()),
    )
    .map_err(anyhow::Error::msg)?;
    Ok((generated.usage, generated.unresolved))
}
