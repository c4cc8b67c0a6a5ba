//! SUGGESTIONs: statements and list items that grant nothing the rest of the policy does not
//! already grant. Removing them changes nothing and makes the policy easier to review.

use super::{Doc, Finding, Item, Severity, StatementView, finding};
use crate::policy::document::{ActionBlock, Condition, ResourceBlock, Statement};
use crate::wildcard;

pub(super) fn check(doc: &Doc<'_>, out: &mut Vec<Finding>) {
    for s in &doc.statements {
        check_items(s.action_items(), true, "ACTION", out);
        check_items(s.resource_items(), false, "RESOURCE", out);
    }
    check_statements(&doc.statements, out);
}

/// Does pattern `p` match everything `q` matches? Exact when `q` is literal. When `q` has
/// wildcards we read it as text: if `p` (without `?`) matches that text, each of `q`'s `*`
/// lies inside one of `p`'s `*`, which then absorbs whatever `q`'s `*` stands for. A `?` in `p`
/// could pair with a `*` of `q`, so then only equality counts.
fn covers(p: &str, q: &str, ignore_case: bool) -> bool {
    let matches = |p: &str, t: &str| {
        if ignore_case {
            wildcard::matches_ignore_case(p, t)
        } else {
            wildcard::matches(p, t)
        }
    };
    if wildcard::is_literal(q) || !p.contains('?') {
        matches(p, q)
    } else if ignore_case {
        p.eq_ignore_ascii_case(q)
    } else {
        p == q
    }
}

fn all_covered(by: &[String], items: &[String], ignore_case: bool) -> bool {
    items
        .iter()
        .all(|q| by.iter().any(|p| covers(p, q, ignore_case)))
}

/// Duplicates and items another item of the same list already matches (`REDUNDANT_*`, e.g.
/// `s3:GetObject` next to `s3:*`), as Access Analyzer reports both.
fn check_items(items: Vec<Item<'_>>, ignore_case: bool, what: &str, out: &mut Vec<Finding>) {
    let code = match what {
        "ACTION" => "REDUNDANT_ACTION",
        _ => "REDUNDANT_RESOURCE",
    };
    let same = |a: &str, b: &str| {
        if ignore_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    for (k, item) in items.iter().enumerate() {
        if let Some(first) = items[..k].iter().find(|o| same(o.value, item.value)) {
            out.push(finding(
                Severity::Suggestion,
                code,
                item.path.clone(),
                format!("\"{}\" is already listed at {}", item.value, first.path),
            ));
            continue;
        }
        // Mutually covering items are reported only once, at the later one.
        let by = items.iter().enumerate().find(|(l, o)| {
            *l != k
                && !same(o.value, item.value)
                && covers(o.value, item.value, ignore_case)
                && (!covers(item.value, o.value, ignore_case) || *l < k)
        });
        if let Some((_, o)) = by {
            out.push(finding(
                Severity::Suggestion,
                code,
                item.path.clone(),
                format!(
                    "\"{}\" is already covered by \"{}\" at {}",
                    item.value, o.value, o.path
                ),
            ));
        }
    }
}

fn sorted_conditions(st: &Statement) -> Vec<&Condition> {
    let mut c: Vec<&Condition> = st.conditions.iter().collect();
    c.sort();
    c
}

/// Does statement `a` allow (or deny) everything `b` does, under the same conditions?
/// Only `Action`/`Resource` statements are compared: `Not…` blocks do not compose simply.
fn statement_covers(a: &Statement, b: &Statement) -> bool {
    if a.effect != b.effect
        || a.principal != b.principal
        || sorted_conditions(a) != sorted_conditions(b)
    {
        return false;
    }
    let (Some(ActionBlock::Action(aa)), Some(ActionBlock::Action(ba))) = (&a.action, &b.action)
    else {
        return false;
    };
    let resources = match (&a.resource, &b.resource) {
        (Some(ResourceBlock::Resource(ar)), Some(ResourceBlock::Resource(br))) => {
            !br.is_empty() && all_covered(ar, br, false)
        }
        (None, None) => true,
        _ => false,
    };
    resources && !ba.is_empty() && all_covered(aa, ba, true)
}

fn check_statements(statements: &[StatementView<'_>], out: &mut Vec<Finding>) {
    for (j, b) in statements.iter().enumerate() {
        let by = statements.iter().enumerate().find(|(i, a)| {
            *i != j && statement_covers(a.st, b.st) && (!statement_covers(b.st, a.st) || *i < j)
        });
        if let Some((_, a)) = by {
            out.push(finding(
                Severity::Suggestion,
                "REDUNDANT_STATEMENT",
                b.path.clone(),
                format!(
                    "{} already {} every action on every resource of this statement under the \
                     same principal and conditions",
                    a.path,
                    match a.st.effect {
                        crate::policy::Effect::Allow => "allows",
                        crate::policy::Effect::Deny => "denies",
                    }
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PolicyType, lint};
    use super::*;

    fn found(text: &str, code: &str) -> Vec<String> {
        lint(text, PolicyType::Identity)
            .into_iter()
            .filter(|f| f.code == code)
            .map(|f| f.path)
            .collect()
    }

    #[test]
    fn pattern_coverage() {
        assert!(covers("s3:*", "s3:GetObject", true));
        assert!(covers("s3:*", "S3:Get*", true));
        assert!(covers("s3:Get*", "s3:GetObject*", true));
        assert!(!covers("s3:GetObject", "s3:Get*", true));
        assert!(!covers("s3:Get?", "s3:Get*", true));
        assert!(covers("s3:Get?", "s3:Get?", true));
        assert!(covers(
            "arn:aws:s3:::b/*",
            "arn:aws:s3:::b/${aws:username}",
            false
        ));
        assert!(!covers("arn:aws:s3:::B/*", "arn:aws:s3:::b/x", false));
        assert!(covers("*", "arn:aws:s3:::b?", false));
    }

    #[test]
    fn redundant_statement_reported_once() {
        let text = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"s3:Get*","Resource":"arn:aws:s3:::b/*"},
            {"Effect":"Allow","Action":["s3:GetObject","s3:GetObjectTagging"],"Resource":"arn:aws:s3:::b/k"},
            {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::c/k"},
            {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/k","Condition":{"Bool":{"aws:SecureTransport":"true"}}},
            {"Effect":"Allow","Action":"S3:GET*","Resource":"arn:aws:s3:::b/*"}]}"#;
        assert_eq!(
            found(text, "REDUNDANT_STATEMENT"),
            vec!["Statement[1]", "Statement[4]"]
        );
    }

    #[test]
    fn deny_and_allow_do_not_cover_each_other() {
        let text = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"s3:*","Resource":"*"},
            {"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}"#;
        assert!(found(text, "REDUNDANT_STATEMENT").is_empty());
    }

    #[test]
    fn duplicate_and_covered_items() {
        let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow",
            "Action":["s3:GetObject","s3:getobject","s3:Get*","s3:PutObject"],
            "Resource":["arn:aws:s3:::b/*","arn:aws:s3:::b/*","arn:aws:s3:::B/x","*"]}}"#;
        assert_eq!(
            found(text, "REDUNDANT_ACTION"),
            vec!["Statement.Action[0]", "Statement.Action[1]"]
        );
        assert_eq!(
            found(text, "REDUNDANT_RESOURCE"),
            vec![
                "Statement.Resource[0]",
                "Statement.Resource[1]",
                "Statement.Resource[2]"
            ]
        );
    }
}
