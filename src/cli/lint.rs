use super::{Format, read};
use crate::aws::access_analyzer::{self, AccessAnalyzer, RemoteFinding};
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
    /// Also run IAM Access Analyzer's ValidatePolicy (AWS credentials and region from the
    /// environment); its ERROR and SECURITY_WARNING findings fail the run too.
    #[arg(long)]
    remote: bool,
}

/// ValidatePolicy's findings for `text`.
fn remote_findings(text: &str, kind: PolicyType) -> anyhow::Result<Vec<RemoteFinding>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = crate::aws::sdk_config(None).await;
        let analyzer = AccessAnalyzer::new(&config, Default::default());
        Ok(access_analyzer::validate_policy(&analyzer, text, kind).await?)
    })
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let text = read(&args.file)?;
    let findings = lint(&text, args.kind);
    let remote = if args.remote {
        remote_findings(&text, args.kind)?
    } else {
        Vec::new()
    };
    match args.format {
        Format::Json if args.remote => println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "local": findings, "accessAnalyzer": remote })
            )?
        ),
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
            for f in &remote {
                println!(
                    "{}: {} {} (Access Analyzer) at {}: {}",
                    args.file.display(),
                    f.severity,
                    f.code,
                    if f.locations.is_empty() {
                        "document".to_string()
                    } else {
                        f.locations.join(", ")
                    },
                    f.message
                );
            }
            if findings.is_empty() && remote.is_empty() {
                println!("{}: no findings", args.file.display());
            }
        }
    }
    let remote_blocks = remote.iter().any(|f| f.severity.blocks());
    Ok(if has_blocking(&findings) || remote_blocks {
        1
    } else {
        0
    })
}
