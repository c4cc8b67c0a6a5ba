use super::{Format, read_policy};
use crate::policy::analysis::allowed_actions;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Policy documents (JSON) attached together.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let policies = args
        .files
        .iter()
        .map(|f| read_policy(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let allowed = allowed_actions(&policies);
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&allowed)?),
        Format::Text => {
            let mut out = String::new();
            for a in &allowed {
                out.push_str(&format!("{}\t{}\n", a.action, a.access_level));
            }
            print!("{out}");
        }
    }
    Ok(0)
}
