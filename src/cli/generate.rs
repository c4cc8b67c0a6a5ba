use super::read_policy;
use super::trail::{TrailArgs, summary};
use crate::generate::{
    GenerateOptions, Granularity, Keep, generate, report, to_cloudformation, to_json, to_terraform,
};
use anyhow::Context;
use std::path::PathBuf;

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
    /// Write a JSON report (scan counts, used actions, denied, unmapped, dropped) here.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let current = args
        .current
        .iter()
        .map(|f| read_policy(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let usage = args.trail.scan()?;
    let options = GenerateOptions {
        granularity: args.granularity,
        collapse_threshold: args.collapse_threshold,
        max_size: args.max_size,
        keep: args.keep,
        forbid: args.forbid,
        current,
    };
    let generated = generate(&usage, &options)?;
    let output = match args.format {
        PolicyFormat::Json => to_json(&generated),
        PolicyFormat::Terraform => to_terraform(&generated),
        PolicyFormat::Cloudformation => to_cloudformation(&generated),
    };
    print!("{output}");
    if !output.ends_with('\n') {
        println!();
    }
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report(&usage, &generated))?;
        std::fs::write(path, json + "\n").with_context(|| format!("{}", path.display()))?;
    }
    eprintln!(
        "iam-tailor: {} → {} polic{} ({} dropped, {} forbidden uses)",
        summary(&usage),
        generated.policies.len(),
        if generated.policies.len() == 1 {
            "y"
        } else {
            "ies"
        },
        generated.dropped.len(),
        generated.forbidden_used.len()
    );
    Ok(0)
}
