use super::trail::{TrailArgs, summary};
use super::{Format, read_policy};
use crate::generate::{render_unused, unused};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The principal's policies: what it is granted.
    #[arg(long = "policy", required = true, value_name = "FILE")]
    policies: Vec<PathBuf>,
    #[command(flatten)]
    trail: TrailArgs,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let policies = args
        .policies
        .iter()
        .map(|f| read_policy(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let usage = args.trail.scan()?;
    let result = unused(&policies, &usage);
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&result)?),
        Format::Text => print!("{}", render_unused(&result)),
    }
    eprintln!("iam-tailor: {}", summary(&usage));
    Ok(0)
}
