use super::trail::{TrailArgs, summary};
use super::{Format, read_policy};
use crate::generate::{render_unused, unused};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The principal's policies: what it is granted.
    #[arg(
        long = "policy",
        value_name = "FILE",
        required_unless_present = "policy_dir"
    )]
    policies: Vec<PathBuf>,
    /// Several principals' policies, each in `DIR/NAME.json` or the `*.json` files of
    /// `DIR/NAME/`, NAME as `generate --out-dir` names them (the role or user name;
    /// `ACCOUNT-NAME` with `--all-roles`). Needs --out-dir.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "policies",
        requires = "out_dir"
    )]
    policy_dir: Option<PathBuf>,
    /// One answer per principal, from one read of the logs: DIR/NAME.json (or .txt).
    #[arg(long, value_name = "DIR", requires = "policy_dir")]
    out_dir: Option<PathBuf>,
    #[command(flatten)]
    trail: TrailArgs,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    if let (Some(policy_dir), Some(out_dir)) = (&args.policy_dir, &args.out_dir) {
        return run_each(&args, policy_dir, out_dir);
    }
    let policies = args
        .policies
        .iter()
        .map(|f| read_policy(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let usage = args.trail.scan()?;
    print!("{}", render(&args, &policies, &usage)?);
    eprintln!("iam-tailor: {}", summary(&usage));
    Ok(0)
}

/// What one principal's answer prints.
fn render(
    args: &Args,
    policies: &[crate::policy::Policy],
    usage: &crate::usage::Usage,
) -> anyhow::Result<String> {
    let result = unused(policies, usage);
    Ok(match args.format {
        Format::Json => serde_json::to_string_pretty(&result)? + "\n",
        Format::Text => render_unused(&result),
    })
}

/// Every principal from one read of the logs, each against its own policies.
fn run_each(args: &Args, policy_dir: &Path, out_dir: &Path) -> anyhow::Result<i32> {
    let answers = args.trail.scan_each()?;
    if answers.is_empty() {
        bail!("--out-dir needs --principal (repeatable) or --all-roles, and logs that show them");
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("{}", out_dir.display()))?;
    let extension = match args.format {
        Format::Json => "json",
        Format::Text => "txt",
    };
    for (name, usage) in &answers {
        let policies = policies_of(policy_dir, name)?
            .iter()
            .map(|f| read_policy(f))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let path = out_dir.join(format!("{name}.{extension}"));
        std::fs::write(&path, render(args, &policies, usage)?)
            .with_context(|| format!("{}", path.display()))?;
    }
    if let Some(usage) = answers.values().next() {
        eprintln!(
            "iam-tailor: {} principals from one read: {}",
            answers.len(),
            summary(usage)
        );
    }
    Ok(0)
}

/// `DIR/NAME.json`, or the `*.json` files of `DIR/NAME/` (sorted).
fn policies_of(dir: &Path, name: &str) -> anyhow::Result<Vec<PathBuf>> {
    let file = dir.join(format!("{name}.json"));
    if file.is_file() {
        return Ok(vec![file]);
    }
    let folder = dir.join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .with_context(|| {
            format!(
                "{name}: neither {} nor {} holds its policies",
                file.display(),
                folder.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    if files.is_empty() {
        bail!("{name}: {} holds no .json policy", folder.display());
    }
    files.sort();
    Ok(files)
}
