//! Checks that need to know AWS's services: unknown services and actions, and condition keys no
//! service defines (ERRORs, as Access Analyzer has them), actions that cannot apply to the listed
//! resources, condition keys the actions never set, and operators that do not fit the key's
//! type (WARNINGs). IAM accepts all of these, but they silently match nothing.

use super::{Doc, Finding, Severity, StatementView, finding};
use crate::catalog::{Catalog, catalog};
use crate::policy::document::{ActionBlock, BaseOperator, Condition, ResourceBlock};
use crate::wildcard;

pub(super) fn check(doc: &Doc<'_>, out: &mut Vec<Finding>) {
    let cat = catalog();
    for s in &doc.statements {
        check_action_names(cat, s, out);
        check_resource_types(cat, s, out);
        check_condition_keys(cat, s, out);
    }
}

fn warn(code: &'static str, path: String, message: String) -> Finding {
    finding(Severity::Warning, code, path, message)
}

fn error(code: &'static str, path: String, message: String) -> Finding {
    finding(Severity::Error, code, path, message)
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!("; did you mean \"{s}\"?"))
}

/// Malformed names are already ERRORs, so only well-formed `vendor:name` items are looked up.
fn check_action_names(cat: &Catalog, s: &StatementView<'_>, out: &mut Vec<Finding>) {
    for item in s.action_items() {
        let Some((vendor, name)) = item.value.split_once(':') else {
            continue;
        };
        if name.contains(':') {
            continue;
        }
        if wildcard::is_literal(vendor) && !cat.has_service(vendor) {
            out.push(error(
                "INVALID_SERVICE_IN_ACTION",
                item.path,
                format!(
                    "\"{vendor}\" is not a known service prefix{}",
                    did_you_mean(cat.suggest_service(vendor))
                ),
            ));
        } else if wildcard::is_literal(item.value) {
            if !cat.action_exists(item.value) {
                out.push(error(
                    "INVALID_ACTION",
                    item.path,
                    format!(
                        "\"{}\" is not a known action{}",
                        item.value,
                        did_you_mean(cat.suggest_action(item.value).as_deref())
                    ),
                ));
            }
        } else if cat.expand(item.value).is_empty() {
            out.push(error(
                "INVALID_ACTION",
                item.path,
                format!("\"{}\" matches no known action", item.value),
            ));
        }
    }
}

/// Can `action` apply to resource pattern `r`? Actions without resource types are authorized
/// against `*`, so only patterns matching the text `*` reach them.
fn applies(cat: &Catalog, action: &str, r: &str) -> bool {
    match cat.resource_types_of(action) {
        Some(types) if types.is_empty() => wildcard::matches(r, "*"),
        Some(_) => {
            wildcard::matches(r, "*") || !cat.resource_types_for_action_arn(action, r).is_empty()
        }
        None => true,
    }
}

/// An action item none of whose actions can apply to any listed resource grants nothing.
fn check_resource_types(cat: &Catalog, s: &StatementView<'_>, out: &mut Vec<Finding>) {
    let Some(ResourceBlock::Resource(resources)) = &s.st.resource else {
        return;
    };
    if resources.is_empty() || !matches!(s.st.action, Some(ActionBlock::Action(_))) {
        return;
    }
    for item in s.action_items() {
        let actions = cat.expand(item.value);
        if actions.is_empty() {
            continue; // Unknown: reported by check_action_names.
        }
        let any = actions.iter().any(|a| {
            let name = a.full_name();
            resources.iter().any(|r| applies(cat, &name, r))
        });
        if !any {
            let only_star = actions.iter().all(|a| {
                cat.resource_types_of(&a.full_name())
                    .is_some_and(|t| t.is_empty())
            });
            let why = if only_star {
                "only supports Resource \"*\"".to_string()
            } else {
                let mut types: Vec<String> = actions
                    .iter()
                    .flat_map(|a| a.resource_types().map(|t| t.resource_type.name.to_string()))
                    .collect();
                types.sort();
                types.dedup();
                format!("applies to {} resources", types.join(", "))
            };
            out.push(warn(
                "ACTION_RESOURCE_MISMATCH",
                item.path,
                format!(
                    "\"{}\" {why}, and none of the statement's resources is one, so it grants \
                     nothing here",
                    item.value
                ),
            ));
        }
    }
}

/// Keys of web identity and SAML providers (`accounts.google.com:aud`, `SAML:aud`) are set by
/// STS but are not in the service catalog.
fn is_provider_key(key: &str) -> bool {
    key.split_once(':')
        .is_some_and(|(prefix, _)| prefix.contains('.') || prefix.eq_ignore_ascii_case("saml"))
}

/// The type a condition operator compares as, when it is not a string operator.
fn operator_type(base: BaseOperator) -> Option<&'static str> {
    use BaseOperator::*;
    match base {
        DateEquals
        | DateNotEquals
        | DateLessThan
        | DateLessThanEquals
        | DateGreaterThan
        | DateGreaterThanEquals => Some("Date"),
        NumericEquals
        | NumericNotEquals
        | NumericLessThan
        | NumericLessThanEquals
        | NumericGreaterThan
        | NumericGreaterThanEquals => Some("Numeric"),
        Bool => Some("Bool"),
        IpAddress | NotIpAddress => Some("IPAddress"),
        _ => None,
    }
}

fn condition_path(s: &StatementView<'_>, c: &Condition) -> String {
    format!("{}.{}.{}", s.field("Condition"), c.operator, c.key)
}

/// A key no listed action sets is never present, so the condition never (or always) holds.
fn check_condition_keys(cat: &Catalog, s: &StatementView<'_>, out: &mut Vec<Finding>) {
    // Expanding `*` or a NotAction would mean every action: then only ask whether the key
    // exists at all.
    let actions: Option<Vec<String>> = match &s.st.action {
        Some(ActionBlock::Action(list))
            if list.iter().all(|a| {
                a.split_once(':')
                    .is_some_and(|(vendor, _)| wildcard::is_literal(vendor))
            }) =>
        {
            Some(
                list.iter()
                    .flat_map(|a| cat.expand(a))
                    .map(|a| a.full_name())
                    .collect(),
            )
        }
        _ => None,
    };
    for c in &s.st.conditions {
        if c.operator.base == BaseOperator::Null || is_provider_key(&c.key) {
            // Null only tests presence, which is meaningful for any key.
            continue;
        }
        let key_type = cat.condition_key_type(&c.key);
        let known = match &actions {
            Some(a) if !a.is_empty() => a
                .iter()
                .any(|a| cat.is_condition_key_known_for_action(a, &c.key)),
            // No known action: the unknown action is the problem, reported elsewhere.
            Some(_) => true,
            None => key_type.is_some(),
        };
        if key_type.is_none() {
            let global = c
                .key
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case("aws:"));
            let code = if global {
                "INVALID_GLOBAL_CONDITION_KEY"
            } else {
                "INVALID_SERVICE_CONDITION_KEY"
            };
            out.push(error(
                code,
                condition_path(s, c),
                format!(
                    "\"{}\" is not a known condition key, so this condition never sees a value",
                    c.key
                ),
            ));
        } else if !known {
            out.push(warn(
                "CONDITION_KEY_NOT_SET",
                condition_path(s, c),
                format!(
                    "\"{}\" is not set for any action of this statement, so this condition \
                     never sees a value",
                    c.key
                ),
            ));
        }
        let (Some(key_type), Some(wanted)) = (key_type, operator_type(c.operator.base)) else {
            continue;
        };
        let key_type = key_type.strip_prefix("ArrayOf").unwrap_or(key_type);
        if !key_type.eq_ignore_ascii_case(wanted) {
            out.push(warn(
                "TYPE_MISMATCH",
                condition_path(s, c),
                format!(
                    "{} compares values as {wanted}, but \"{}\" is of type {key_type}",
                    c.operator, c.key
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PolicyType, lint};

    fn found(text: &str, kind: PolicyType) -> Vec<(&'static str, String, String)> {
        lint(text, kind)
            .into_iter()
            .map(|f| (f.code, f.path, f.message))
            .collect()
    }

    fn identity(statement: &str) -> String {
        format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#)
    }

    fn codes_at(text: &str, code: &str) -> Vec<String> {
        found(text, PolicyType::Identity)
            .into_iter()
            .filter(|(c, _, _)| *c == code)
            .map(|(_, p, _)| p)
            .collect()
    }

    #[test]
    fn unknown_services_and_actions_with_suggestions() {
        let text = identity(
            r#"{"Effect":"Allow","Action":["s3:GetObjekt","s4:GetObject","s3:Frob*","s3:Get*","fsx:ListBucket"],"Resource":"*"}"#,
        );
        let f = found(&text, PolicyType::Identity);
        let get = |path: &str, code: &str| {
            f.iter()
                .find(|(c, p, _)| *c == code && p == path)
                .map(|(_, _, m)| m.clone())
                .unwrap_or_else(|| panic!("no {code} at {path}: {f:?}"))
        };
        // Access Analyzer: an action or service that does not exist is an ERROR.
        assert!(get("Statement[0].Action[0]", "INVALID_ACTION").contains("s3:GetObject"));
        let service = get("Statement[0].Action[1]", "INVALID_SERVICE_IN_ACTION");
        assert!(service.contains("did you mean"));
        get("Statement[0].Action[2]", "INVALID_ACTION");
        get("Statement[0].Action[4]", "INVALID_ACTION");
        let errors = lint(&text, PolicyType::Identity)
            .into_iter()
            .filter(|f| f.severity == super::super::Severity::Error)
            .count();
        assert_eq!(errors, 4);
        assert!(
            !f.iter().any(|(_, p, _)| p == "Statement[0].Action[3]"),
            "{f:?}"
        );
    }

    #[test]
    fn action_resource_mismatch() {
        let text = identity(
            r#"{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket","s3:ListAllMyBuckets","s3:Get*"],"Resource":"arn:aws:s3:::bucket"}"#,
        );
        assert_eq!(
            codes_at(&text, "ACTION_RESOURCE_MISMATCH"),
            vec!["Statement[0].Action[0]", "Statement[0].Action[2]"]
        );
        let fine = identity(
            r#"{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::bucket/${aws:username}/*"]}"#,
        );
        assert!(codes_at(&fine, "ACTION_RESOURCE_MISMATCH").is_empty());
    }

    #[test]
    fn condition_keys_must_fit_the_actions() {
        let text = identity(
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{
                "StringEquals":{"s3:prefix":"home/","aws:SourceVpc":"vpc-1","ec2:Region":"us-east-1","aws:Nonsense":"x"},
                "DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z","aws:SourceIp":"2020-01-01"}}}"#,
        );
        let mut not_set = codes_at(&text, "CONDITION_KEY_NOT_SET");
        not_set.sort();
        assert_eq!(
            not_set,
            vec![
                "Statement[0].Condition.StringEquals.ec2:Region",
                "Statement[0].Condition.StringEquals.s3:prefix",
            ]
        );
        assert_eq!(
            codes_at(&text, "INVALID_GLOBAL_CONDITION_KEY"),
            vec!["Statement[0].Condition.StringEquals.aws:Nonsense"]
        );
        let service_key = identity(
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"s3:Nonsense":"x"}}}"#,
        );
        assert_eq!(
            codes_at(&service_key, "INVALID_SERVICE_CONDITION_KEY"),
            vec!["Statement[0].Condition.StringEquals.s3:Nonsense"]
        );
        assert_eq!(
            codes_at(&text, "TYPE_MISMATCH"),
            vec!["Statement[0].Condition.DateGreaterThan.aws:SourceIp"]
        );
    }

    #[test]
    fn provider_keys_in_trust_policies_are_not_unknown() {
        let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow",
            "Principal":{"Federated":"cognito-identity.amazonaws.com"},
            "Action":"sts:AssumeRoleWithWebIdentity",
            "Condition":{"StringEquals":{"cognito-identity.amazonaws.com:aud":"us-east-1:abc"}}}}"#;
        let f = found(text, PolicyType::Trust);
        assert!(f.is_empty(), "{f:?}");
    }
}
