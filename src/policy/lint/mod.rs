//! The policy linter: findings in the spirit of AWS Access Analyzer's `ValidatePolicy`.
//!
//! The parser ([`Policy::parse`]) only rejects what is malformed for every kind of policy; the
//! rules that depend on where a policy is attached (an identity policy needs `Resource`, a trust
//! policy needs `Principal`) and everything that is legal but dubious live here. Each check runs
//! on the parsed model next to the raw JSON, so findings can name the exact JSON path the user
//! wrote (`Statement[2].Action[1]`), which the model loses (null members, string-or-array).
//! A check that is one of Access Analyzer's carries its issue code and finding type (AWS's "IAM
//! policy validation check reference"); `docs/lint-checks.md` maps them all.

mod catalog_checks;
mod redundancy;
mod security;
mod structure;

use crate::policy::document::{ActionBlock, Policy, ResourceBlock, Statement};
use crate::wildcard;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// How bad a finding is, most severe first (the derived `Ord` sorts that way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    /// IAM (or the service) would reject the policy, or part of it cannot work (Access
    /// Analyzer's ERROR: an action, service, condition key or operator that does not exist).
    Error,
    /// Accepted, but grants more than anyone likely meant.
    SecurityWarning,
    /// Accepted, but probably does not do what was meant.
    Warning,
    /// Harmless; the policy could be simpler.
    Suggestion,
}

impl Severity {
    /// Whether a finding of this severity stops a policy from being applied.
    pub fn blocks(self) -> bool {
        matches!(self, Severity::Error | Severity::SecurityWarning)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::SecurityWarning => "SECURITY_WARNING",
            Severity::Warning => "WARNING",
            Severity::Suggestion => "SUGGESTION",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the policy is attached; decides which elements are required or forbidden.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyType {
    /// Attached to a user, group or role (managed or inline).
    Identity,
    /// A role's assume-role policy.
    Trust,
    /// Attached to a resource (bucket policy, key policy, queue policy, …).
    Resource,
}

impl FromStr for PolicyType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "identity" => Ok(PolicyType::Identity),
            "trust" => Ok(PolicyType::Trust),
            "resource" => Ok(PolicyType::Resource),
            other => Err(format!(
                "unknown policy type \"{other}\"; expected identity, trust or resource"
            )),
        }
    }
}

/// One problem found in a policy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable UPPER_SNAKE identifier of the check, for filtering and suppression.
    pub code: &'static str,
    pub message: String,
    /// JSON path of the offending element (`Statement[2].Action[1]`); empty for the document.
    pub path: String,
}

/// What the linter cannot know from the document alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LintOptions<'a> {
    /// The account owning the role; principals in it are not "another account".
    pub account: Option<&'a str>,
}

/// Size limits in characters, not counting white space (IAM quotas; the trust policy limit is
/// the default quota, which can be raised to 4,096).
const IDENTITY_POLICY_LIMIT: usize = 6_144;
const TRUST_POLICY_LIMIT: usize = 2_048;
const RESOURCE_POLICY_LIMIT: usize = 20_480;
const INLINE_POLICIES_LIMIT: usize = 10_240;

/// Lints policy JSON text; findings sorted deterministically (by path order in the document,
/// then severity, then code).
pub fn lint(text: &str, kind: PolicyType) -> Vec<Finding> {
    lint_with(text, kind, &LintOptions::default())
}

/// [`lint`] with knowledge about the policy's surroundings.
pub fn lint_with(text: &str, kind: PolicyType, options: &LintOptions<'_>) -> Vec<Finding> {
    let parse_error = |code: &'static str, e: crate::policy::ParseError| Finding {
        severity: Severity::Error,
        code,
        message: e.message,
        path: e.path,
    };
    // A document that does not parse has no statements to check further.
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Policy::parse(text)
            .err()
            .map(|e| parse_error("JSON_SYNTAX_ERROR", e))
            .into_iter()
            .collect();
    };
    let policy = match Policy::from_value(&value) {
        Ok(p) => p,
        Err(e) => return vec![parse_error("PARSE_ERROR", e)],
    };
    let doc = Doc::new(&policy, &value, kind, *options);
    let mut out = Vec::new();
    structure::check(&doc, text, &mut out);
    catalog_checks::check(&doc, &mut out);
    security::check(&doc, &mut out);
    redundancy::check(&doc, &mut out);
    sort(&mut out);
    out
}

/// Does any finding stop a policy from being applied as is?
pub fn has_blocking(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity.blocks())
}

/// The size IAM checks against its quotas: every character that is not white space.
///
/// IAM documents that it "does not count white space"; we read that literally and also skip
/// white space inside strings (a space in a `Sid` does not count), so a minified document and
/// a pretty-printed one have the same size.
pub fn policy_size(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

/// IAM limits a role's inline policies to 10,240 characters together (sum of [`policy_size`]).
pub fn inline_policies_size_finding(total_chars: usize) -> Option<Finding> {
    (total_chars > INLINE_POLICIES_LIMIT).then(|| Finding {
        severity: Severity::Error,
        code: "INLINE_POLICIES_SIZE_EXCEEDED",
        message: format!(
            "the role's inline policies total {total_chars} characters without white space; \
             IAM allows {INLINE_POLICIES_LIMIT}"
        ),
        path: String::new(),
    })
}

fn size_limit(kind: PolicyType) -> usize {
    match kind {
        PolicyType::Identity => IDENTITY_POLICY_LIMIT,
        PolicyType::Trust => TRUST_POLICY_LIMIT,
        PolicyType::Resource => RESOURCE_POLICY_LIMIT,
    }
}

/// The policy under check: the model, the raw JSON it came from, and where it is attached.
struct Doc<'a> {
    policy: &'a Policy,
    kind: PolicyType,
    options: LintOptions<'a>,
    statements: Vec<StatementView<'a>>,
}

impl<'a> Doc<'a> {
    fn new(
        policy: &'a Policy,
        value: &'a Value,
        kind: PolicyType,
        options: LintOptions<'a>,
    ) -> Self {
        // The parser accepted the document, so `Statement` is an object or an array of them, in
        // the same order as `policy.statements`.
        let raw: Vec<(String, &Map<String, Value>)> = match value.get("Statement") {
            Some(Value::Object(s)) => vec![("Statement".to_string(), s)],
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some((format!("Statement[{i}]"), v.as_object()?)))
                .collect(),
            _ => Vec::new(),
        };
        let statements = policy
            .statements
            .iter()
            .zip(raw)
            .map(|(st, (path, raw))| StatementView { st, raw, path })
            .collect();
        Doc {
            policy,
            kind,
            options,
            statements,
        }
    }
}

/// A parsed statement with its raw JSON, for paths.
struct StatementView<'a> {
    st: &'a Statement,
    raw: &'a Map<String, Value>,
    /// `Statement` or `Statement[i]`.
    path: String,
}

/// A string in the document with its JSON path.
struct Item<'a> {
    path: String,
    value: &'a str,
}

impl<'a> StatementView<'a> {
    fn field(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    /// The strings of a string-or-array element, with their paths (null members skipped, as the
    /// parser does, but keeping their index).
    fn items(&self, name: &str) -> Vec<Item<'a>> {
        self.raw
            .get(name)
            .map(|v| string_items(v, &self.field(name)))
            .unwrap_or_default()
    }

    /// `Action` or `NotAction`, whichever the statement has.
    fn action_element(&self) -> Option<&'static str> {
        self.st.action.as_ref().map(|a| match a {
            ActionBlock::Action(_) => "Action",
            ActionBlock::NotAction(_) => "NotAction",
        })
    }

    fn resource_element(&self) -> Option<&'static str> {
        self.st.resource.as_ref().map(|r| match r {
            ResourceBlock::Resource(_) => "Resource",
            ResourceBlock::NotResource(_) => "NotResource",
        })
    }

    fn action_items(&self) -> Vec<Item<'a>> {
        self.action_element()
            .map(|e| self.items(e))
            .unwrap_or_default()
    }

    fn resource_items(&self) -> Vec<Item<'a>> {
        self.resource_element()
            .map(|e| self.items(e))
            .unwrap_or_default()
    }

    /// The first `Action` item granting `action`, or the `NotAction` element when it does not
    /// exclude it; `None` when the statement does not cover the action.
    fn granting_path(&self, action: &str) -> Option<String> {
        match self.st.action.as_ref()? {
            ActionBlock::Action(_) => self
                .items("Action")
                .into_iter()
                .find(|i| wildcard::matches_ignore_case(i.value, action))
                .map(|i| i.path),
            ActionBlock::NotAction(list) => (!list
                .iter()
                .any(|p| wildcard::matches_ignore_case(p, action)))
            .then(|| self.field("NotAction")),
        }
    }
}

fn string_items<'a>(v: &'a Value, path: &str) -> Vec<Item<'a>> {
    match v {
        Value::String(s) => vec![Item {
            path: path.to_string(),
            value: s,
        }],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                Some(Item {
                    path: format!("{path}[{i}]"),
                    value: v.as_str()?,
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Does the statement test `key` in a way that narrows who or what matches? Negated operators,
/// `…IfExists` and `Null` let requests without the key through, so they do not count.
fn has_restricting_condition(st: &Statement, key: &str) -> bool {
    st.conditions.iter().any(|c| {
        c.key.eq_ignore_ascii_case(key)
            && !c.operator.base.is_negated()
            && !c.operator.if_exists
            && c.operator.base != crate::policy::BaseOperator::Null
    })
}

fn finding(severity: Severity, code: &'static str, path: String, message: String) -> Finding {
    Finding {
        severity,
        code,
        message,
        path,
    }
}

/// Sorts by document position, then severity, then code (message last, for determinism).
fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        compare_paths(&a.path, &b.path)
            .then(a.severity.cmp(&b.severity))
            .then(a.code.cmp(b.code))
            .then(a.message.cmp(&b.message))
    });
}

/// Orders paths the way the elements appear in a conventionally written policy: statements and
/// array members by index, elements in their usual order (`Sid`, `Effect`, `Principal`, …).
/// serde_json does not keep object key order, so the written order of keys is not available.
fn compare_paths(a: &str, b: &str) -> Ordering {
    let key = |p: &str| -> Vec<(usize, String, Option<usize>)> {
        if p.is_empty() {
            return Vec::new();
        }
        p.split('.')
            .map(|seg| {
                let (name, index) = match seg.strip_suffix(']').and_then(|s| s.rsplit_once('[')) {
                    Some((name, i)) => (name, i.parse().ok()),
                    None => (seg, None),
                };
                (element_rank(name), name.to_string(), index)
            })
            .collect()
    };
    key(a).cmp(&key(b))
}

fn element_rank(name: &str) -> usize {
    const ORDER: [&str; 12] = [
        "Version",
        "Id",
        "Statement",
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    ];
    ORDER.iter().position(|e| *e == name).unwrap_or(ORDER.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_names_and_order() {
        assert_eq!(Severity::SecurityWarning.to_string(), "SECURITY_WARNING");
        assert_eq!(
            serde_json::to_string(&Severity::SecurityWarning).unwrap(),
            "\"SECURITY_WARNING\""
        );
        assert_eq!(
            serde_json::to_string(&Severity::Error).unwrap(),
            "\"ERROR\""
        );
        assert!(Severity::Error < Severity::Suggestion);
    }

    #[test]
    fn policy_type_from_str() {
        assert_eq!("trust".parse::<PolicyType>(), Ok(PolicyType::Trust));
        assert_eq!("identity".parse::<PolicyType>(), Ok(PolicyType::Identity));
        assert_eq!("resource".parse::<PolicyType>(), Ok(PolicyType::Resource));
        assert!("Trust".parse::<PolicyType>().is_err());
    }

    #[test]
    fn parse_errors_stop_linting() {
        let f = lint("not json", PolicyType::Identity);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, "JSON_SYNTAX_ERROR");
        assert!(f[0].message.contains("invalid JSON"), "{}", f[0].message);

        let f = lint(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Foo":1}}"#,
            PolicyType::Identity,
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].code, f[0].path.as_str()),
            ("PARSE_ERROR", "Statement.Foo")
        );
    }

    #[test]
    fn blocking_means_error_or_security_warning() {
        let mk = |severity| finding(severity, "X", String::new(), String::new());
        assert!(has_blocking(&[
            mk(Severity::Warning),
            mk(Severity::SecurityWarning)
        ]));
        assert!(has_blocking(&[mk(Severity::Error)]));
        assert!(!has_blocking(&[
            mk(Severity::Warning),
            mk(Severity::Suggestion)
        ]));
    }

    #[test]
    fn size_ignores_white_space() {
        assert_eq!(policy_size("{ \"a\" :\n\t\"b c\" }"), 10);
        assert!(inline_policies_size_finding(10_240).is_none());
        let f = inline_policies_size_finding(10_241).unwrap();
        assert_eq!(f.code, "INLINE_POLICIES_SIZE_EXCEEDED");
        assert!(
            f.message.contains("10241") && f.message.contains("10240"),
            "{}",
            f.message
        );
    }

    #[test]
    fn paths_sort_in_document_order() {
        let mut paths = vec![
            "Statement[10].Action",
            "Statement[2].Resource[1]",
            "Statement[2].Action[3]",
            "",
            "Statement[2].Action",
            "Version",
            "Statement[2].Condition.StringEquals.aws:SourceVpc",
        ];
        paths.sort_by(|a, b| compare_paths(a, b));
        assert_eq!(
            paths,
            vec![
                "",
                "Version",
                "Statement[2].Action",
                "Statement[2].Action[3]",
                "Statement[2].Resource[1]",
                "Statement[2].Condition.StringEquals.aws:SourceVpc",
                "Statement[10].Action",
            ]
        );
    }

    #[test]
    fn items_keep_indices_past_nulls() {
        let value: Value = serde_json::from_str(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":[null,"arn:aws:s3:::b/*"]}]}"#,
        )
        .unwrap();
        let policy = Policy::from_value(&value).unwrap();
        let doc = Doc::new(
            &policy,
            &value,
            PolicyType::Identity,
            LintOptions::default(),
        );
        let s = &doc.statements[0];
        let r = s.resource_items();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].path, "Statement[0].Resource[1]");
        assert_eq!(s.action_items()[0].path, "Statement[0].Action");
        assert_eq!(
            s.granting_path("S3:getobject").as_deref(),
            Some("Statement[0].Action")
        );
        assert_eq!(s.granting_path("s3:PutObject"), None);
    }
}
