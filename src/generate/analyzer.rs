//! Access Analyzer's generated policy → [`Usage`], so its output goes through the same cut,
//! `keep`, `forbid` and layout as the built-in engine's.
//!
//! Access Analyzer writes placeholders where it knows the service but not the resource
//! (`arn:aws:s3:::${BucketName}/${ObjectName}`), and service-level templates where it has no
//! action-level data (`ec2:${Action}`). A placeholder is never granted as written: it is
//! filled from the given values, or (hybrid) the resource is taken from the built-in engine's
//! ARNs for that action that fit the template; whatever is left is reported as [`Unresolved`]
//! and kept out of the usage.

use crate::catalog::catalog;
use crate::policy::{ActionBlock, Effect, Policy, ResourceBlock};
use crate::usage::Usage;
use crate::wildcard::matches_ignore_case;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// An action/resource pair of the generated policy whose placeholders nothing resolved.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct Unresolved {
    pub action: String,
    pub resource: String,
    /// The placeholder names left, e.g. `BucketName`.
    pub placeholders: Vec<String>,
}

/// What Access Analyzer's policies amount to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnalyzerUsage {
    /// The resolved grants, as uses seen at the job's completion time.
    pub usage: Usage,
    pub unresolved: Vec<Unresolved>,
}

/// The placeholder names in `text`: `${Name}` where `Name` has no `:` (those with one, such
/// as `${aws:username}`, are IAM policy variables and stay as they are).
pub fn placeholders(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start + 2..].find('}') else {
            break;
        };
        let name = &rest[start + 2..start + 2 + len];
        if !name.contains(':') && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
        rest = &rest[start + 2 + len + 1..];
    }
    names
}

/// `text` with each placeholder that `values` names filled in.
fn fill(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for name in placeholders(text) {
        if let Some(value) = values.get(&name) {
            out = out.replace(&format!("${{{name}}}"), value);
        }
    }
    out
}

/// The template as a wildcard pattern: every placeholder becomes `*`.
fn template_pattern(text: &str) -> String {
    let mut out = text.to_string();
    for name in placeholders(text) {
        out = out.replace(&format!("${{{name}}}"), "*");
    }
    out
}

/// Reads Access Analyzer's generated `policies` (document texts). `values` fill placeholders
/// by name (`spec.placeholders`); `logs`, when the trail's S3 files were also read, supplies
/// resource ARNs for templates the values leave open. `seen_at` (RFC 3339) dates the uses.
pub fn from_generated(
    policies: &[String],
    values: &BTreeMap<String, String>,
    logs: Option<&Usage>,
    seen_at: &str,
) -> Result<AnalyzerUsage, String> {
    let cat = catalog();
    let mut out = AnalyzerUsage::default();
    let mut unresolved = BTreeSet::new();
    for (n, text) in policies.iter().enumerate() {
        let policy = Policy::parse(text)
            .map_err(|e| format!("Access Analyzer's generated policy {}: {e}", n + 1))?;
        for statement in &policy.statements {
            let (
                Effect::Allow,
                Some(ActionBlock::Action(actions)),
                Some(ResourceBlock::Resource(resources)),
            ) = (&statement.effect, &statement.action, &statement.resource)
            else {
                out.usage.notes.insert(format!(
                    "generated policy {}: a statement other than Allow Action/Resource is ignored",
                    n + 1
                ));
                continue;
            };
            for action in actions {
                let action = fill(action, values);
                if !placeholders(&action).is_empty() {
                    for resource in resources {
                        unresolved.insert(Unresolved {
                            placeholders: [placeholders(&action), placeholders(resource)].concat(),
                            action: action.clone(),
                            resource: resource.clone(),
                        });
                    }
                    continue;
                }
                let names: Vec<String> =
                    cat.expand(&action).iter().map(|a| a.full_name()).collect();
                if names.is_empty() {
                    out.usage.notes.insert(format!(
                        "{action} is not in the catalog, so it is not granted"
                    ));
                }
                for name in names {
                    for resource in resources {
                        let filled = fill(resource, values);
                        let left = placeholders(&filled);
                        if left.is_empty() {
                            out.usage.record_use(&name, &filled, seen_at);
                            continue;
                        }
                        let pattern = template_pattern(&filled);
                        let arns: Vec<&String> = logs
                            .and_then(|l| l.actions.get(&name))
                            .map(|a| {
                                a.resources
                                    .keys()
                                    .filter(|arn| matches_ignore_case(&pattern, arn))
                                    .collect()
                            })
                            .unwrap_or_default();
                        if arns.is_empty() {
                            unresolved.insert(Unresolved {
                                action: name.clone(),
                                resource: resource.clone(),
                                placeholders: left,
                            });
                        }
                        for arn in arns {
                            out.usage.record_use(&name, arn, seen_at);
                        }
                    }
                }
            }
        }
    }
    out.unresolved = unresolved.into_iter().collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERATED: &str = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::${BucketName}/${ObjectName}"},
        {"Effect":"Allow","Action":"dynamodb:Query","Resource":"arn:aws:dynamodb:${Region}:${Account}:table/${TableName}"},
        {"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}"#;

    fn resources(u: &AnalyzerUsage, action: &str) -> Vec<String> {
        u.usage.actions[action].resources.keys().cloned().collect()
    }

    #[test]
    fn finds_placeholder_names_but_not_policy_variables() {
        assert_eq!(
            placeholders("arn:aws:s3:::${BucketName}/${aws:username}/${ObjectName}/${BucketName}"),
            vec!["BucketName", "ObjectName"]
        );
        assert!(placeholders("arn:aws:s3:::b/${unclosed").is_empty());
    }

    #[test]
    fn without_values_or_logs_every_template_is_unresolved() {
        let u = from_generated(
            &[GENERATED.into()],
            &BTreeMap::new(),
            None,
            "2026-11-01T00:00:00Z",
        )
        .unwrap();
        assert_eq!(
            u.usage.actions.keys().collect::<Vec<_>>(),
            ["sts:GetCallerIdentity"]
        );
        let left: Vec<(&str, &[String])> = u
            .unresolved
            .iter()
            .map(|x| (x.action.as_str(), x.placeholders.as_slice()))
            .collect();
        assert_eq!(
            left,
            [
                (
                    "dynamodb:Query",
                    &["Region".to_string(), "Account".into(), "TableName".into()][..]
                ),
                (
                    "s3:GetObject",
                    &["BucketName".to_string(), "ObjectName".into()][..]
                ),
                (
                    "s3:PutObject",
                    &["BucketName".to_string(), "ObjectName".into()][..]
                ),
            ]
        );
    }

    #[test]
    fn values_fill_placeholders_by_name() {
        let values = BTreeMap::from([
            ("BucketName".to_string(), "orders".to_string()),
            ("ObjectName".into(), "incoming/*".into()),
            ("Region".into(), "us-east-1".into()),
            ("Account".into(), "111122223333".into()),
        ]);
        let u = from_generated(&[GENERATED.into()], &values, None, "2026-11-01T00:00:00Z").unwrap();
        assert_eq!(
            resources(&u, "s3:GetObject"),
            ["arn:aws:s3:::orders/incoming/*"]
        );
        // TableName has no value: that template alone stays unresolved.
        assert_eq!(u.unresolved.len(), 1);
        assert_eq!(u.unresolved[0].placeholders, ["TableName"]);
        assert!(!u.usage.actions.contains_key("dynamodb:Query"));
    }

    #[test]
    fn hybrid_takes_the_logs_arns_that_fit_the_template() {
        let mut logs = Usage::default();
        let t = "2026-10-01T00:00:00Z";
        logs.record_use("s3:GetObject", "arn:aws:s3:::orders/a.json", t);
        logs.record_use("s3:GetObject", "arn:aws:s3:::orders/b.json", t);
        // Another account's table does not fit a template filled with this account.
        logs.record_use(
            "dynamodb:Query",
            "arn:aws:dynamodb:us-east-1:999999999999:table/t",
            t,
        );
        let values = BTreeMap::from([("Account".to_string(), "111122223333".to_string())]);
        let u = from_generated(
            &[GENERATED.into()],
            &values,
            Some(&logs),
            "2026-11-01T00:00:00Z",
        )
        .unwrap();
        assert_eq!(
            resources(&u, "s3:GetObject"),
            ["arn:aws:s3:::orders/a.json", "arn:aws:s3:::orders/b.json"]
        );
        let left: Vec<&str> = u.unresolved.iter().map(|x| x.action.as_str()).collect();
        assert_eq!(left, ["dynamodb:Query", "s3:PutObject"]);
    }

    #[test]
    fn service_level_templates_are_unresolved_unless_a_value_names_the_action() {
        let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:${Ec2Action}","Resource":"*"}]}"#;
        let u = from_generated(
            &[text.into()],
            &BTreeMap::new(),
            None,
            "2026-11-01T00:00:00Z",
        )
        .unwrap();
        assert!(u.usage.actions.is_empty());
        assert_eq!(u.unresolved[0].action, "ec2:${Ec2Action}");
        let values = BTreeMap::from([("Ec2Action".to_string(), "DescribeInstances".to_string())]);
        let u = from_generated(&[text.into()], &values, None, "2026-11-01T00:00:00Z").unwrap();
        assert_eq!(resources(&u, "ec2:DescribeInstances"), ["*"]);
        assert!(u.unresolved.is_empty());
    }

    #[test]
    fn wildcard_actions_expand_and_bad_documents_are_named() {
        let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:ReceiveMessage*","Resource":"*"},{"Effect":"Allow","Action":"nosuch:Thing","Resource":"*"}]}"#;
        let u = from_generated(
            &[text.into()],
            &BTreeMap::new(),
            None,
            "2026-11-01T00:00:00Z",
        )
        .unwrap();
        assert!(u.usage.actions.contains_key("sqs:ReceiveMessage"));
        assert!(u.usage.notes.iter().any(|n| n.contains("nosuch:Thing")));
        let err = from_generated(&["{".into()], &BTreeMap::new(), None, "t").unwrap_err();
        assert!(err.contains("generated policy 1"), "{err}");
    }
}
