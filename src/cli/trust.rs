use super::{Format, read};
use crate::policy::trust::analyze;
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The role's trust policy (JSON), as `aws iam get-role` shows AssumeRolePolicyDocument.
    file: PathBuf,
    /// The role's ARN: its account is the one trust need not guard against.
    #[arg(long)]
    role_arn: String,
    /// Accounts besides the role's own its trust policy may name (repeat, or comma-separated);
    /// any other is an ACCOUNT_NOT_ALLOWED finding.
    #[arg(long = "allowed-account", value_delimiter = ',')]
    allowed_accounts: Vec<String>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Who can assume the role, and the findings; exit 1 when there are any.
pub fn run(args: Args) -> anyhow::Result<i32> {
    if !args.role_arn.starts_with("arn:") || !args.role_arn.contains(":role/") {
        anyhow::bail!("--role-arn {:?} is not a role ARN", args.role_arn);
    }
    for account in &args.allowed_accounts {
        if !crate::policy::context::is_account_id(account) {
            anyhow::bail!("--allowed-account {account:?} is not a 12-digit account id");
        }
    }
    let text = read(&args.file)?;
    let allowed: BTreeSet<String> = args.allowed_accounts.iter().cloned().collect();
    let list = (!allowed.is_empty()).then_some(&allowed);
    let trust = analyze(&text, &args.role_arn, list)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&trust)?),
        Format::Text => {
            let file = args.file.display();
            for p in &trust.principals {
                let conditions = if p.conditions.is_empty() {
                    "no condition".to_string()
                } else {
                    p.conditions.join(" AND ")
                };
                println!(
                    "{file}: {} {} may {}{}: {conditions}",
                    p.kind.as_str(),
                    p.principal,
                    p.actions.join(", "),
                    if p.unconditional {
                        " (unconditionally)"
                    } else {
                        ""
                    }
                );
            }
            for f in &trust.findings {
                let at = if f.path.is_empty() {
                    "document"
                } else {
                    &f.path
                };
                println!("{file}: {} {} at {at}: {}", f.severity, f.code, f.message);
            }
            if trust.principals.is_empty() {
                println!("{file}: no principal may assume the role");
            }
        }
    }
    Ok(if trust.findings.is_empty() { 0 } else { 1 })
}
