//! The `iam-tailor` command line: a thin shell over the library.
//!
//! Exit codes: 0 success, 1 the command's "bad" outcome (lint found an ERROR or
//! SECURITY_WARNING, trust found anything), 2 usage or I/O error.

mod controller;
mod expand;
mod generate;
mod lint;
mod replay;
mod simulate;
mod trail;
mod trust;
mod unused;

pub use simulate::evaluate_json_line_each_way;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "iam-tailor",
    version,
    about = "Shrink AWS IAM roles to what they actually use"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a policy document like IAM Access Analyzer's ValidatePolicy.
    Lint(lint::Args),
    /// Who can assume a role, from its trust policy: principals, conditions and findings.
    Trust(trust::Args),
    /// Evaluate one request (or a JSON Lines batch) against policies as AWS would.
    Simulate(Box<simulate::Args>),
    /// List the catalog actions a policy allows, with their access level.
    Expand(expand::Args),
    /// Generate a least-privilege policy from a principal's CloudTrail activity.
    Generate(Box<generate::Args>),
    /// List the granted actions a principal did not use.
    Unused(Box<unused::Args>),
    /// Replay a principal's calls from CloudTrail against a policy: which would it deny?
    Replay(Box<replay::Args>),
    /// Print the CustomResourceDefinitions (LeastPrivilegeRole, ClusterTrail) as one YAML
    /// stream, or write each to its file in `--out-dir`.
    Crd {
        #[arg(long)]
        out_dir: Option<std::path::PathBuf>,
    },
    /// Run the operator: reconcile LeastPrivilegeRoles against IAM.
    Controller(Box<controller::Args>),
}

/// Output format shared by the commands.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Runs the command and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Lint(args) => lint::run(args),
        Command::Trust(args) => trust::run(args),
        Command::Simulate(args) => simulate::run(*args),
        Command::Expand(args) => expand::run(args),
        Command::Generate(args) => generate::run(*args),
        Command::Unused(args) => unused::run(*args),
        Command::Replay(args) => replay::run(*args),
        Command::Controller(args) => controller::run(*args),
        Command::Crd { out_dir: None } => {
            print!("{}", crate::controller::crd::crd_yaml());
            Ok(0)
        }
        Command::Crd { out_dir: Some(dir) } => crate::controller::crd::crds()
            .into_iter()
            .try_for_each(|(file, yaml)| {
                let path = dir.join(file);
                std::fs::write(&path, yaml).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
            })
            .map(|()| 0),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("iam-tailor: {e:#}");
            2
        }
    }
}

/// Reads a file, naming it in the error.
fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Reads and parses a policy file, naming the file and JSON path on error.
fn read_policy(path: &std::path::Path) -> anyhow::Result<crate::policy::Policy> {
    let text = read(path)?;
    crate::policy::Policy::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// One policy document, or a JSON array of them (what `generate` prints when it splits).
fn read_policies(path: &std::path::Path) -> anyhow::Result<Vec<crate::policy::Policy>> {
    let text = read(path)?;
    if !text.trim_start().starts_with('[') {
        return Ok(vec![read_policy(path)?]);
    }
    let documents: Vec<&serde_json::value::RawValue> = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a JSON array of policies: {e}", path.display()))?;
    (documents.iter().enumerate())
        .map(|(i, raw)| {
            crate::policy::Policy::parse(raw.get())
                .map_err(|e| anyhow::anyhow!("{}: document [{i}]: {e}", path.display()))
        })
        .collect()
}
