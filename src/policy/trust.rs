//! Who can assume a role: its trust policy read the way IAM Access Analyzer reads a role for
//! external access. Each principal an Allow statement admits, for which `sts:AssumeRole*`
//! actions, under which conditions, and whether the evaluator lets it in with no condition
//! met; then the trust linter's findings, and trust to accounts outside an allow-list.
//! Observation only: nothing here edits a trust policy.

use super::eval::{Decision, PolicySet, Request};
use super::lint::{LintOptions, PolicyType, Severity, lint_with};
use super::{ActionBlock, Context, Effect, Policy, PrincipalBlock, PrincipalType, Principals};
use crate::wildcard;
use std::collections::BTreeSet;

/// The actions that assume a role (IAM User Guide, "Role trust policies").
pub const ASSUME_ACTIONS: [&str; 3] = [
    "sts:AssumeRole",
    "sts:AssumeRoleWithSAML",
    "sts:AssumeRoleWithWebIdentity",
];
/// A condition's text is cut (with `…`) to this many characters in the report.
pub const MAX_CONDITION_CHARS: usize = 256;
/// At most this many conditions are shown per principal; the rest are counted.
pub const MAX_CONDITIONS_SHOWN: usize = 4;
/// A trust policy longer than this is not analyzed (IAM allows at most 4,096 characters).
pub const MAX_TRUST_POLICY_BYTES: usize = 16 * 1024;

/// The linter's checks that are about who can assume the role, and [`ACCOUNT_NOT_ALLOWED`].
pub const TRUST_CODES: [&str; 8] = [
    "ACCOUNT_NOT_ALLOWED",
    "ALLOW_WITH_NOT_PRINCIPAL",
    "ANY_PRINCIPAL",
    "CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID",
    "EKS_WITHOUT_SUBJECT",
    "SAML_WITHOUT_AUDIENCE",
    "WEB_IDENTITY_WITHOUT_AUDIENCE",
    "WEB_IDENTITY_WITHOUT_SUBJECT",
];
/// Trust to an AWS account neither the role's own nor on the allow-list.
pub const ACCOUNT_NOT_ALLOWED: &str = "ACCOUNT_NOT_ALLOWED";

/// What kind of principal a trust statement names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum PrincipalKind {
    /// `"*"`, `{"AWS": "*"}`, or an Allow with `NotPrincipal`.
    Everyone,
    /// An account id or `arn:aws:iam::ACCOUNT:root`: whoever that account lets assume roles.
    Account,
    Role,
    User,
    /// Another AWS principal ARN (an STS session, a federated user).
    AwsPrincipal,
    Service,
    /// An OIDC provider (IRSA, GitHub Actions) or a web identity provider (Cognito, Google…).
    WebIdentity,
    Saml,
    CanonicalUser,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Everyone => "Everyone",
            PrincipalKind::Account => "Account",
            PrincipalKind::Role => "Role",
            PrincipalKind::User => "User",
            PrincipalKind::AwsPrincipal => "AwsPrincipal",
            PrincipalKind::Service => "Service",
            PrincipalKind::WebIdentity => "WebIdentity",
            PrincipalKind::Saml => "Saml",
            PrincipalKind::CanonicalUser => "CanonicalUser",
        }
    }
}

/// One principal one Allow statement admits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trusted {
    pub kind: PrincipalKind,
    /// As written (`*` for everyone; `* except …` for `NotPrincipal`).
    pub principal: String,
    /// The AWS account it belongs to, when its form says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Of [`ASSUME_ACTIONS`], those the statement allows.
    pub actions: Vec<String>,
    /// The statement's conditions, all of which must hold: `Operator key: value, value`.
    pub conditions: Vec<String>,
    /// The evaluator lets it assume the role with an empty request context: no condition
    /// stands in its way.
    pub unconditional: bool,
}

/// A finding about who can assume the role.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct TrustFinding {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    /// Where in the trust policy (`Statement[0].Principal.AWS`).
    pub path: String,
}

/// A trust policy's analysis; both lists sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Trust {
    pub principals: Vec<Trusted>,
    pub findings: Vec<TrustFinding>,
}

/// Analyzes the trust policy `text` of the role `role_arn`. `allowed_accounts` (`None`: no
/// list; an empty list allows none) are accounts beside the role's own that may be trusted.
/// `Err` when the text is not a policy.
pub fn analyze(
    text: &str,
    role_arn: &str,
    allowed_accounts: Option<&BTreeSet<String>>,
) -> Result<Trust, String> {
    if text.len() > MAX_TRUST_POLICY_BYTES {
        return Err(format!(
            "the trust policy is {} bytes, over the {MAX_TRUST_POLICY_BYTES} analyzed",
            text.len()
        ));
    }
    let policy = Policy::parse(text).map_err(|e| e.to_string())?;
    let own = role_arn.split(':').nth(4).unwrap_or_default();
    let set = PolicySet::builder()
        // The caller's own side allows everything: what is left is the trust policy's word.
        .identity(Policy::parse(ALLOW_ALL).expect("a valid policy"))
        .resource_policy(policy.clone())
        .build();
    let context = Context::new();
    let mut principals = BTreeSet::new();
    for st in policy
        .statements
        .iter()
        .filter(|s| s.effect == Effect::Allow)
    {
        let actions: Vec<String> = ASSUME_ACTIONS
            .iter()
            .filter(|a| allows_action(st.action.as_ref(), a))
            .map(|a| a.to_string())
            .collect();
        if actions.is_empty() {
            continue;
        }
        let mut conditions: Vec<String> = (st.conditions.iter())
            .take(MAX_CONDITIONS_SHOWN)
            .map(condition_text)
            .collect();
        if st.conditions.len() > MAX_CONDITIONS_SHOWN {
            let more = st.conditions.len() - MAX_CONDITIONS_SHOWN;
            conditions.push(format!("… {more} more"));
        }
        let entries = match &st.principal {
            Some(PrincipalBlock::Principal(p)) => entries(p),
            Some(PrincipalBlock::NotPrincipal(p)) => {
                let listed: Vec<String> = entries(p).into_iter().map(|e| e.1).collect();
                vec![(
                    PrincipalKind::Everyone,
                    format!("* except {}", listed.join(", ")),
                )]
            }
            None => continue,
        };
        for (kind, principal) in entries {
            let account = account_of(kind, &principal);
            let caller = caller_for(kind, &principal, own);
            let unconditional = actions.iter().any(|action| {
                set.decide(&Request {
                    action,
                    resource: role_arn,
                    principal: Some(&caller),
                    context: &context,
                }) == Decision::Allowed
            });
            principals.insert(Trusted {
                kind,
                principal,
                account,
                actions: actions.clone(),
                conditions: conditions.clone(),
                unconditional,
            });
        }
    }
    let options = LintOptions { account: Some(own) };
    let mut findings: BTreeSet<TrustFinding> = lint_with(text, PolicyType::Trust, &options)
        .into_iter()
        .filter(|f| TRUST_CODES.contains(&f.code))
        .map(|f| TrustFinding {
            severity: f.severity,
            code: f.code,
            message: f.message,
            path: f.path,
        })
        .collect();
    if let Some(allowed_accounts) = allowed_accounts {
        for t in &principals {
            let Some(account) = &t.account else { continue };
            if account != own && !allowed_accounts.contains(account) {
                findings.insert(TrustFinding {
                    severity: Severity::SecurityWarning,
                    code: ACCOUNT_NOT_ALLOWED,
                    message: format!(
                        "{} ({}) may assume this role, and account {account} is not among the \
                         allowed accounts",
                        t.principal,
                        t.kind.as_str()
                    ),
                    path: String::new(),
                });
            }
        }
    }
    Ok(Trust {
        principals: principals.into_iter().collect(),
        findings: findings.into_iter().collect(),
    })
}

const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

fn allows_action(block: Option<&ActionBlock>, action: &str) -> bool {
    match block {
        Some(ActionBlock::Action(list)) => list
            .iter()
            .any(|p| wildcard::matches_ignore_case(p, action)),
        Some(ActionBlock::NotAction(list)) => !list
            .iter()
            .any(|p| wildcard::matches_ignore_case(p, action)),
        None => false,
    }
}

/// Each principal of a `Principal` element with its kind, in document order.
fn entries(principals: &Principals) -> Vec<(PrincipalKind, String)> {
    match principals {
        Principals::Any => vec![(PrincipalKind::Everyone, "*".to_string())],
        Principals::Specific(map) => map
            .iter()
            .flat_map(|(ty, values)| values.iter().map(move |v| (kind_of(*ty, v), v.clone())))
            .collect(),
    }
}

fn kind_of(ty: PrincipalType, value: &str) -> PrincipalKind {
    match ty {
        PrincipalType::Aws if value == "*" => PrincipalKind::Everyone,
        PrincipalType::Aws if crate::policy::context::is_account_id(value) => {
            PrincipalKind::Account
        }
        PrincipalType::Aws => match value.splitn(6, ':').nth(5) {
            Some("root") => PrincipalKind::Account,
            Some(r) if r.starts_with("role/") => PrincipalKind::Role,
            Some(r) if r.starts_with("user/") => PrincipalKind::User,
            _ => PrincipalKind::AwsPrincipal,
        },
        PrincipalType::Service => PrincipalKind::Service,
        PrincipalType::Federated if value.contains(":saml-provider/") => PrincipalKind::Saml,
        PrincipalType::Federated => PrincipalKind::WebIdentity,
        PrincipalType::CanonicalUser => PrincipalKind::CanonicalUser,
    }
}

/// The account of an AWS principal or an IAM identity provider, from its form.
fn account_of(kind: PrincipalKind, principal: &str) -> Option<String> {
    match kind {
        PrincipalKind::Everyone | PrincipalKind::Service | PrincipalKind::CanonicalUser => None,
        _ if crate::policy::context::is_account_id(principal) => Some(principal.to_string()),
        _ => principal
            .split(':')
            .nth(4)
            .filter(|a| crate::policy::context::is_account_id(a))
            .map(str::to_string),
    }
}

/// Who asks, for the evaluator: the principal itself; for an account, its root (the account
/// as a whole); for everyone, a caller in an account that is not the role's.
fn caller_for(kind: PrincipalKind, principal: &str, own: &str) -> String {
    match kind {
        PrincipalKind::Account => {
            let account = account_of(kind, principal).unwrap_or_default();
            format!("arn:aws:iam::{account}:root")
        }
        PrincipalKind::Everyone => {
            let stranger = if own == "000000000000" {
                "000000000001"
            } else {
                "000000000000"
            };
            format!("arn:aws:iam::{stranger}:user/anyone")
        }
        _ => principal.to_string(),
    }
}

/// `StringEquals sts:ExternalId: a, b`, cut to [`MAX_CONDITION_CHARS`].
fn condition_text(c: &super::Condition) -> String {
    let text = format!("{} {}: {}", c.operator, c.key, c.values.join(", "));
    match text.char_indices().nth(MAX_CONDITION_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests;
