//! `iam-tailor replay`: the calls a trail shows, evaluated against a policy — would the
//! policy have denied any of them? Exit status 1 when it would.

use super::trail::{TrailArgs, summary};
use super::{Format, read_policies, read_policy};
use crate::generate::replay;
use crate::policy::PolicySet;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The policy documents to replay against (a proposal, or the role's policies); a file
    /// may hold one document or a JSON array of them, as `generate` prints.
    #[arg(long = "policy", value_name = "FILE", required = true)]
    policies: Vec<PathBuf>,
    /// A permissions boundary that applies too.
    #[arg(long, value_name = "FILE")]
    boundary: Option<PathBuf>,
    #[command(flatten)]
    trail: TrailArgs,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let mut builder = PolicySet::builder();
    for path in &args.policies {
        for (i, policy) in read_policies(path)?.into_iter().enumerate() {
            builder = builder.identity_labeled(policy, format!("{}[{i}]", path.display()));
        }
    }
    if let Some(path) = &args.boundary {
        builder = builder.boundary_labeled(read_policy(path)?, path.display().to_string());
    }
    let usage = args.trail.scan()?;
    let result = replay(&usage, &builder.build());
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&result)?),
        Format::Text => {
            println!(
                "{} calls replayed, {} would be denied",
                result.calls, result.denied_calls
            );
            for w in &result.would_deny {
                println!(
                    "  {} {} {} ×{} (last {})",
                    w.decision, w.action, w.resource, w.count, w.last_seen
                );
            }
        }
    }
    eprintln!("iam-tailor: {}", summary(&usage));
    Ok(if result.would_deny.is_empty() { 0 } else { 1 })
}
