//! ERRORs IAM would raise that the kind-agnostic parser lets through, plus the raw-JSON
//! warnings the model cannot see (unknown condition operators with empty bodies).

use super::{Doc, Finding, Item, PolicyType, Severity, finding, policy_size, size_limit};
use crate::policy::document::{ConditionOperator, Version};
use serde_json::Value;
use std::collections::HashMap;

/// Partitions IAM accepts in resource ARNs.
const PARTITIONS: [&str; 8] = [
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

/// What an IAM resource (`arn:aws:iam::ACCOUNT:…`) may start with.
const IAM_RESOURCE_PREFIXES: [&str; 13] = [
    "user/",
    "federated-user/",
    "role/",
    "group/",
    "instance-profile/",
    "mfa/",
    "server-certificate/",
    "policy/",
    "sms-mfa/",
    "saml-provider/",
    "oidc-provider/",
    "report/",
    "access-report/",
];

pub(super) fn check(doc: &Doc<'_>, text: &str, out: &mut Vec<Finding>) {
    check_version(doc, out);
    check_size(doc.kind, text, out);
    check_duplicate_sids(doc, out);
    for s in &doc.statements {
        check_required_elements(doc.kind, s, out);
        for item in s.action_items() {
            if let Some(problem) = action_problem(item.value) {
                out.push(error("INVALID_ACTION", item, problem));
            }
        }
        for item in s.resource_items() {
            if let Some((code, problem)) = resource_problem(item.value) {
                out.push(error(code, item, problem));
            }
        }
        check_unknown_operators(s, out);
    }
}

fn error(code: &'static str, item: Item<'_>, message: String) -> Finding {
    finding(Severity::Error, code, item.path, message)
}

/// IAM rejects identity policies without Version 2012-10-17; elsewhere 2008-10-17 only costs
/// policy variables, so it is a suggestion.
fn check_version(doc: &Doc<'_>, out: &mut Vec<Finding>) {
    let version = doc.policy.version;
    if version == Some(Version::V2012_10_17) {
        return;
    }
    let written = version.map_or("no Version (2008-10-17 rules)".to_string(), |v| {
        format!("Version {}", v.as_str())
    });
    let (severity, code, message) = if doc.kind == PolicyType::Identity {
        (
            Severity::Error,
            "INVALID_VERSION",
            format!("identity policies must be Version 2012-10-17; this one has {written}"),
        )
    } else {
        (
            Severity::Suggestion,
            "OUTDATED_VERSION",
            format!(
                "this policy has {written}; use Version 2012-10-17 so policy variables such as \
                 ${{aws:username}} are substituted"
            ),
        )
    };
    out.push(finding(severity, code, "Version".to_string(), message));
}

fn check_size(kind: PolicyType, text: &str, out: &mut Vec<Finding>) {
    let size = policy_size(text);
    let limit = size_limit(kind);
    if size > limit {
        let what = match kind {
            PolicyType::Identity => "an identity policy",
            PolicyType::Trust => "a trust policy",
            PolicyType::Resource => "a resource policy",
        };
        // Access Analyzer warns on an identity policy's size (the quota differs for inline and
        // managed policies); iam-tailor's own code errs for trust and resource policies.
        let (severity, code) = match kind {
            PolicyType::Identity => (
                Severity::Warning,
                "POLICY_SIZE_EXCEEDS_IDENTITY_POLICY_QUOTA",
            ),
            _ => (Severity::Error, "POLICY_SIZE_EXCEEDED"),
        };
        out.push(finding(
            severity,
            code,
            String::new(),
            format!(
                "the policy is {size} characters without white space; the limit for {what} \
                 is {limit}"
            ),
        ));
    }
}

/// IAM requires non-empty Sids to be unique within its policies (identity and trust); other
/// services only recommend it. The second use is the finding.
fn check_duplicate_sids(doc: &Doc<'_>, out: &mut Vec<Finding>) {
    let (severity, code) = match doc.kind {
        PolicyType::Identity | PolicyType::Trust => (Severity::Error, "UNIQUE_SIDS_REQUIRED"),
        PolicyType::Resource => (Severity::Warning, "UNIQUE_SIDS_RECOMMENDED"),
    };
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for s in &doc.statements {
        let Some(sid) = s.st.sid.as_deref().filter(|sid| !sid.is_empty()) else {
            continue;
        };
        if let Some(first) = seen.get(sid) {
            out.push(finding(
                severity,
                code,
                s.field("Sid"),
                format!("Sid \"{sid}\" is already used by {first}; Sids must be unique"),
            ));
        } else {
            seen.insert(sid, &s.path);
        }
    }
}

fn check_required_elements(kind: PolicyType, s: &super::StatementView<'_>, out: &mut Vec<Finding>) {
    let mut push = |code, path, message: &str| {
        out.push(finding(Severity::Error, code, path, message.to_string()));
    };
    let actions = match &s.st.action {
        Some(crate::policy::ActionBlock::Action(l) | crate::policy::ActionBlock::NotAction(l)) => {
            Some(l)
        }
        None => None,
    };
    match (s.action_element(), actions) {
        (None, _) => push(
            "MISSING_ACTION",
            s.path.clone(),
            "the statement has neither Action nor NotAction",
        ),
        (Some(e), Some(l)) if l.is_empty() => push(
            "MISSING_ACTION",
            s.field(e),
            "the statement's action list is empty",
        ),
        _ => {}
    }

    let resources = match &s.st.resource {
        Some(
            crate::policy::ResourceBlock::Resource(l)
            | crate::policy::ResourceBlock::NotResource(l),
        ) => Some(l),
        None => None,
    };
    match (kind, s.resource_element(), resources) {
        (PolicyType::Trust, Some(e), _) => push(
            "RESOURCE_NOT_ALLOWED",
            s.field(e),
            "a trust policy has no Resource: the resource is the role itself",
        ),
        (PolicyType::Identity | PolicyType::Resource, None, _) => push(
            "MISSING_RESOURCE",
            s.path.clone(),
            "the statement has neither Resource nor NotResource",
        ),
        (_, Some(e), Some(l)) if l.is_empty() => push(
            "MISSING_RESOURCE",
            s.field(e),
            "the statement's resource list is empty",
        ),
        _ => {}
    }

    let principal = s.st.principal.as_ref().map(|p| match p {
        crate::policy::PrincipalBlock::Principal(_) => "Principal",
        crate::policy::PrincipalBlock::NotPrincipal(_) => "NotPrincipal",
    });
    match (kind, principal) {
        (PolicyType::Identity, Some(e)) => push(
            "UNSUPPORTED_PRINCIPAL",
            s.field(e),
            "identity policies apply to the identity they are attached to and cannot name a \
             principal",
        ),
        (PolicyType::Trust | PolicyType::Resource, None) => push(
            "MISSING_PRINCIPAL",
            s.path.clone(),
            "the statement must say who it applies to with Principal or NotPrincipal",
        ),
        _ => {}
    }
}

/// `*`, or `vendor:action` with exactly one colon and a vendor of letters, digits, `.` and `-`
/// (`*:*` is accepted too). Unknown vendors and names are only warnings: IAM accepts them.
fn action_problem(action: &str) -> Option<String> {
    if action == "*" {
        return None;
    }
    let Some((vendor, name)) = action.split_once(':') else {
        return Some(format!(
            "action \"{action}\" must be \"*\" or prefixed by a service, such as s3:GetObject"
        ));
    };
    if name.contains(':') {
        return Some(format!("action \"{action}\" may contain only one colon"));
    }
    let vendor_ok = vendor == "*"
        || (!vendor.is_empty()
            && vendor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
    if !vendor_ok {
        return Some(format!(
            "service prefix \"{vendor}\" in \"{action}\" may contain only letters, digits, \
             '.' and '-'"
        ));
    }
    if name.is_empty() {
        return Some(format!(
            "action \"{action}\" has no action name after the colon"
        ));
    }
    None
}

/// `*`, or `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE` as IAM checks it: a known partition
/// (or a wildcard matching one), a service, no region for IAM and S3 buckets, IAM resource
/// types (plus `root`, which IAM accepts), and IAM's legacy rule that a short ARN must not contain an empty component (`::`).
/// The problem comes with Access Analyzer's issue code for it.
fn resource_problem(resource: &str) -> Option<(&'static str, String)> {
    if resource == "*" {
        return None;
    }
    let parts: Vec<&str> = resource.split(':').collect();
    if parts.len() < 2 || parts[0] != "arn" {
        return Some((
            "INVALID_ARN_PREFIX",
            format!("resource \"{resource}\" must be \"*\" or an ARN (arn:partition:service:…)"),
        ));
    }
    let partition = parts[1];
    let partition_ok = PARTITIONS
        .iter()
        .any(|p| crate::wildcard::matches(partition, p));
    if !partition_ok {
        return Some((
            "INVALID_PARTITION",
            format!(
                "partition \"{partition}\" in \"{resource}\" is not one of {}",
                PARTITIONS.join(", ")
            ),
        ));
    }
    if parts.len() < 3 {
        return Some((
            "MISSING_ARN_FIELD",
            format!("resource \"{resource}\" has no service: the service must be fully qualified"),
        ));
    }
    if parts.len() < 6 && resource.contains("::") {
        return Some((
            "MISSING_ARN_FIELD",
            format!(
                "resource \"{resource}\" is malformed: an ARN has six colon-separated parts \
                 (arn:partition:service:region:account:resource)"
            ),
        ));
    }
    let service = parts[2];
    if service.is_empty() {
        return Some((
            "MISSING_ARN_FIELD",
            format!("resource \"{resource}\" has an empty service"),
        ));
    }
    let region = parts.get(3).copied().unwrap_or("");
    let account = parts.get(4).copied().unwrap_or("");
    let rest = if parts.len() > 5 {
        parts[5..].join(":")
    } else {
        String::new()
    };
    match service {
        "iam" => {
            if !region.is_empty() {
                return Some((
                    "ARN_REGION_NOT_ALLOWED",
                    format!("IAM resource \"{resource}\" cannot contain a region: IAM is global"),
                ));
            }
            // `root` names the account's root user (AWS's own managed policies use it).
            let type_ok = rest.starts_with('*')
                || rest == "root"
                || IAM_RESOURCE_PREFIXES.iter().any(|p| rest.starts_with(p));
            if parts.len() > 5 && !type_ok {
                return Some((
                    "INVALID_ARN_RESOURCE",
                    format!(
                        "IAM resource \"{resource}\" must be \"*\" or start with {}",
                        IAM_RESOURCE_PREFIXES.join(", ")
                    ),
                ));
            }
        }
        // Buckets and objects are global; access points, jobs and the like carry an account
        // and may carry a region.
        "s3" if !region.is_empty() && account.is_empty() => {
            return Some((
                "ARN_REGION_NOT_ALLOWED",
                format!(
                    "S3 resource \"{resource}\" cannot contain a region: bucket and object ARNs \
                     are arn:aws:s3:::bucket/key"
                ),
            ));
        }
        _ => {}
    }
    None
}

/// The parser silently skips an unknown operator whose body is empty; it tests nothing, which
/// Access Analyzer reports as an ERROR.
fn check_unknown_operators(s: &super::StatementView<'_>, out: &mut Vec<Finding>) {
    let Some(Value::Object(ops)) = s.raw.get("Condition") else {
        return;
    };
    for name in ops.keys() {
        if ConditionOperator::parse(name).is_none() {
            out.push(finding(
                Severity::Error,
                "INVALID_CONDITION_OPERATOR",
                format!("{}.{name}", s.field("Condition")),
                format!("\"{name}\" is not a condition operator; this empty block tests nothing"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PolicyType, lint};
    use super::*;

    fn codes(text: &str, kind: PolicyType) -> Vec<(Severity, &'static str, String)> {
        lint(text, kind)
            .into_iter()
            .map(|f| (f.severity, f.code, f.path))
            .collect()
    }

    fn has(text: &str, kind: PolicyType, code: &str, path: &str) -> bool {
        codes(text, kind)
            .iter()
            .any(|(_, c, p)| *c == code && p == path)
    }

    #[test]
    fn identity_policies_need_2012_version() {
        let body = r#""Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#;
        let no_version = format!("{{{body}}}");
        let old = format!("{{\"Version\":\"2008-10-17\",{body}}}");
        let new = format!("{{\"Version\":\"2012-10-17\",{body}}}");
        assert!(has(
            &no_version,
            PolicyType::Identity,
            "INVALID_VERSION",
            "Version"
        ));
        assert!(has(
            &old,
            PolicyType::Identity,
            "INVALID_VERSION",
            "Version"
        ));
        assert!(codes(&new, PolicyType::Identity).is_empty());
        let bucket = r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#;
        let f = lint(bucket, PolicyType::Resource);
        assert!(
            f.iter()
                .any(|f| f.code == "OUTDATED_VERSION" && f.severity == Severity::Suggestion)
        );
        assert!(!f.iter().any(|f| f.severity == Severity::Error), "{f:?}");
    }

    #[test]
    fn required_elements_depend_on_kind() {
        let no_action =
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}"#;
        assert!(has(
            no_action,
            PolicyType::Identity,
            "MISSING_ACTION",
            "Statement[0]"
        ));
        let empty_action = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotAction":[],"Resource":"*"}}"#;
        assert!(has(
            empty_action,
            PolicyType::Identity,
            "MISSING_ACTION",
            "Statement.NotAction"
        ));

        let no_resource =
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject"}}"#;
        assert!(has(
            no_resource,
            PolicyType::Identity,
            "MISSING_RESOURCE",
            "Statement"
        ));
        let null_resource = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":[null]}}"#;
        assert!(has(
            null_resource,
            PolicyType::Identity,
            "MISSING_RESOURCE",
            "Statement.Resource"
        ));

        let with_principal = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}}"#;
        assert!(has(
            with_principal,
            PolicyType::Identity,
            "UNSUPPORTED_PRINCIPAL",
            "Statement.Principal"
        ));
        assert!(!has(
            with_principal,
            PolicyType::Trust,
            "MISSING_RESOURCE",
            "Statement"
        ));
        assert!(has(
            with_principal,
            PolicyType::Resource,
            "MISSING_RESOURCE",
            "Statement"
        ));
        assert!(has(
            no_resource,
            PolicyType::Trust,
            "MISSING_PRINCIPAL",
            "Statement"
        ));
        assert!(has(
            no_resource,
            PolicyType::Resource,
            "MISSING_PRINCIPAL",
            "Statement"
        ));

        let trust_with_resource = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole","Resource":"*"}}"#;
        assert!(has(
            trust_with_resource,
            PolicyType::Trust,
            "RESOURCE_NOT_ALLOWED",
            "Statement.Resource"
        ));
    }

    #[test]
    fn duplicate_sids_are_reported_once_at_the_second_use() {
        let text = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"A","Effect":"Allow","Action":"s3:GetObject","Resource":"*"},
            {"Sid":"","Effect":"Allow","Action":"s3:PutObject","Resource":"*"},
            {"Sid":"","Effect":"Allow","Action":"s3:ListBucket","Resource":"*"},
            {"Sid":"A","Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}"#;
        let dups: Vec<_> = codes(text, PolicyType::Identity)
            .into_iter()
            .filter(|(_, c, _)| c.starts_with("UNIQUE_SIDS"))
            .collect();
        assert_eq!(
            dups,
            vec![(
                Severity::Error,
                "UNIQUE_SIDS_REQUIRED",
                "Statement[3].Sid".to_string()
            )]
        );
        // Other services only recommend unique Sids.
        let resource = text.replace(
            r#""Sid":"A","Effect":"Deny""#,
            r#""Sid":"A","Effect":"Deny","Principal":"*""#,
        );
        let recommended: Vec<_> = codes(&resource, PolicyType::Resource)
            .into_iter()
            .filter(|(_, c, _)| c.starts_with("UNIQUE_SIDS"))
            .collect();
        assert_eq!(
            recommended,
            vec![(
                Severity::Warning,
                "UNIQUE_SIDS_RECOMMENDED",
                "Statement[3].Sid".to_string()
            )]
        );
    }

    #[test]
    fn action_format() {
        for ok in [
            "*",
            "*:*",
            "s3:GetObject",
            "s3:Get*",
            "s3-s:x",
            "s3.s:x",
            "iam: asdf safdsf af ",
        ] {
            assert_eq!(action_problem(ok), None, "{ok}");
        }
        for bad in [
            "invalid",
            "",
            "a a:ListBucket",
            "s3:List:Bucket",
            "s:3:x",
            "s3:",
            ":Get",
            "s3*:Get",
        ] {
            assert!(action_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn resource_format() {
        for ok in [
            "*",
            "arn:aws:s3:::example_bucket",
            "arn:aws:fdsasf",
            "arn:aws:s33:::x",
            "arn:aws:iam:::user/example_bucket",
            "arn:aws:iam::*:*",
            "arn:aws:iam::*:root",
            "arn:aws:s3:us-west-2:123456789012:accesspoint/x",
            "arn:aws:ec2:us-east-1::example_bucket",
            "arn:aws-cn:s3:::b",
            "arn:*:s3:::b",
            "arn:aws:rds:region:*:*",
        ] {
            assert_eq!(resource_problem(ok), None, "{ok}");
        }
        for bad in [
            "invalid resource",
            "",
            "a:bsdfdsafsad",
            "arn:error:s3:::example_bucket",
            "aws:s3:::example_bucket",
            "arn:aws",
            "arn:aws:s3::example_bucket",
            "arn:aws::fdsasf",
            "arn:aws::::example_bucket",
            "arn:aws:iam:::example_bucket",
            "arn:aws:iam:us-east-1::user/x",
            "arn:aws:iam::111122223333:rooted",
            "arn:aws:s3:us-east-1::example_bucket",
        ] {
            assert!(resource_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn format_errors_name_the_item() {
        let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:a:b"],"NotResource":[null,"arn:aws:s3::x"]}]}"#;
        assert!(has(
            text,
            PolicyType::Identity,
            "INVALID_ACTION",
            "Statement[0].Action[1]"
        ));
        assert!(has(
            text,
            PolicyType::Identity,
            "MISSING_ARN_FIELD",
            "Statement[0].NotResource[1]"
        ));
    }

    #[test]
    fn size_limits_by_kind() {
        let filler = "x".repeat(2_100);
        let text = format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Sid":"{filler}","Effect":"Allow","Principal":{{"Service":"ec2.amazonaws.com"}},"Action":"sts:AssumeRole"}}}}"#
        );
        let f = lint(&text, PolicyType::Trust);
        let size = f
            .iter()
            .find(|f| f.code == "POLICY_SIZE_EXCEEDED")
            .unwrap_or_else(|| panic!("{f:?}"));
        assert!(
            size.message.contains(&policy_size(&text).to_string()),
            "{}",
            size.message
        );
        assert!(size.message.contains("2048"), "{}", size.message);
        assert!(
            !lint(&text, PolicyType::Resource)
                .iter()
                .any(|f| f.code == "POLICY_SIZE_EXCEEDED")
        );
        // White space does not count.
        let spaced = text.replace(',', " ,\n    ");
        assert_eq!(policy_size(&spaced), policy_size(&text));
    }

    #[test]
    fn unknown_empty_operator_is_an_error() {
        let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringEqualz":{},"DateGreaterThan":{}}}}"#;
        let f = lint(text, PolicyType::Identity);
        let unknown: Vec<_> = f
            .iter()
            .filter(|f| f.code == "INVALID_CONDITION_OPERATOR")
            .collect();
        assert_eq!(unknown.len(), 1, "{f:?}");
        assert_eq!(unknown[0].path, "Statement.Condition.StringEqualz");
        assert_eq!(unknown[0].severity, Severity::Error);
    }
}
