use super::{Format, read};
use crate::policy::lint::{PolicyType, has_blocking, lint};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Policy document (JSON).
    file: PathBuf,
    /// What the document is attached as: identity (role/user/managed), trust, or resource policy.
    #[arg(long, default_value = "identity")]
    kind: PolicyType,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let text = read(&args.file)?;
    let findings = lint(&text, args.kind);
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&findings)?),
        Format::Text => {
            for f in &findings {
                let at = if f.path.is_empty() {
                    "document"
                } else {
                    &f.path
                };
                println!(
                    "{}: {} {} at {}: {}",
                    args.file.display(),
                    f.severity,
                    f.code,
                    at,
                    f.message
                );
            }
            if findings.is_empty() {
                println!("{}: no findings", args.file.display());
            }
        }
    }
    Ok(if has_blocking(&findings) { 1 } else { 0 })
}
