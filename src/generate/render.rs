//! The generated documents as JSON, Terraform and CloudFormation, each deterministic.

use super::Generated;
use crate::policy::{ActionBlock, Policy, ResourceBlock, Statement};
use std::fmt::Write;

/// One canonical pretty JSON document when there is one policy, else a JSON array of them.
pub fn to_json(g: &Generated) -> String {
    let canonical: Vec<Policy> = g.policies.iter().map(Policy::canonical).collect();
    let mut out = match canonical.as_slice() {
        [one] => serde_json::to_string_pretty(one),
        many => serde_json::to_string_pretty(many),
    }
    .expect("policies serialize");
    out.push('\n');
    out
}

/// A JSON string literal: valid in HCL and as a YAML double-quoted scalar alike.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// An HCL string: JSON escapes, plus `$${` / `%%{` so IAM policy variables such as
/// `${aws:username}` reach IAM instead of being taken for Terraform interpolation.
fn hcl_string(s: &str) -> String {
    quoted(s).replace("${", "$${").replace("%{", "%%{")
}

fn statement_lists(st: &Statement) -> (&[String], &[String]) {
    let actions = match &st.action {
        Some(ActionBlock::Action(v)) => v.as_slice(),
        _ => &[],
    };
    let resources = match &st.resource {
        Some(ResourceBlock::Resource(v)) => v.as_slice(),
        _ => &[],
    };
    (actions, resources)
}

/// One `aws_iam_policy_document` data source per document: `iam_tailor`, `iam_tailor_2`, …
/// Generated statements are always Allow with Action and Resource, which is all this renders.
pub fn to_terraform(g: &Generated) -> String {
    let mut out = String::new();
    for (i, policy) in g.policies.iter().map(Policy::canonical).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let name = match i {
            0 => "iam_tailor".to_string(),
            n => format!("iam_tailor_{}", n + 1),
        };
        let _ = writeln!(out, "# iam-tailor revision {}", policy.revision());
        let _ = writeln!(out, "data \"aws_iam_policy_document\" \"{name}\" {{");
        if let Some(version) = policy.version {
            let _ = writeln!(out, "  version = \"{}\"", version.as_str());
        }
        for st in &policy.statements {
            let (actions, resources) = statement_lists(st);
            out.push_str("\n  statement {\n");
            if let Some(sid) = &st.sid {
                let _ = writeln!(out, "    sid       = {}", hcl_string(sid));
            }
            let _ = writeln!(out, "    effect    = \"{}\"", st.effect.as_str());
            for (key, items) in [("actions  ", actions), ("resources", resources)] {
                let _ = writeln!(out, "    {key} = [");
                for item in items {
                    let _ = writeln!(out, "      {},", hcl_string(item));
                }
                out.push_str("    ]\n");
            }
            out.push_str("  }\n");
        }
        out.push_str("}\n");
    }
    out
}

/// A CloudFormation template with one `AWS::IAM::ManagedPolicy` per document:
/// `IamTailorPolicy`, `IamTailorPolicy2`, … Every scalar is double-quoted, so ARNs with `*`
/// and `:` and versions that look like dates stay strings.
pub fn to_cloudformation(g: &Generated) -> String {
    if g.policies.is_empty() {
        return "Resources: {}\n".to_string();
    }
    let mut out = String::from("Resources:\n");
    for (i, policy) in g.policies.iter().map(Policy::canonical).enumerate() {
        let name = match i {
            0 => "IamTailorPolicy".to_string(),
            n => format!("IamTailorPolicy{}", n + 1),
        };
        let _ = writeln!(out, "  # iam-tailor revision {}", policy.revision());
        let _ = writeln!(out, "  {name}:");
        out.push_str("    Type: AWS::IAM::ManagedPolicy\n");
        out.push_str("    Properties:\n");
        out.push_str("      PolicyDocument:\n");
        if let Some(version) = policy.version {
            let _ = writeln!(out, "        Version: {}", quoted(version.as_str()));
        }
        out.push_str("        Statement:\n");
        for st in &policy.statements {
            let (actions, resources) = statement_lists(st);
            let mut first = true;
            let mut field = |out: &mut String, key: &str| {
                let lead = if std::mem::take(&mut first) {
                    "- "
                } else {
                    "  "
                };
                let _ = write!(out, "          {lead}{key}:");
            };
            if let Some(sid) = &st.sid {
                field(&mut out, "Sid");
                let _ = writeln!(out, " {}", quoted(sid));
            }
            field(&mut out, "Effect");
            let _ = writeln!(out, " {}", quoted(st.effect.as_str()));
            for (key, items) in [("Action", actions), ("Resource", resources)] {
                field(&mut out, key);
                out.push('\n');
                for item in items {
                    let _ = writeln!(out, "              - {}", quoted(item));
                }
            }
        }
    }
    out
}
