//! SECURITY_WARNINGs: grants that are legal but hand out far more than intended — admin access,
//! privilege escalation through IAM, and trust policies anyone (or any account) can satisfy.

use super::{
    Doc, Finding, PolicyType, Severity, StatementView, finding, has_restricting_condition,
};
use crate::policy::document::{
    ActionBlock, Effect, PrincipalBlock, PrincipalType, Principals, ResourceBlock, Statement,
};
use crate::wildcard;

/// Actions that let a principal grant itself (or a user it controls) more permissions.
const ESCALATION_ACTIONS: [&str; 13] = [
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:AttachRolePolicy",
    "iam:AttachUserPolicy",
    "iam:AttachGroupPolicy",
    "iam:PutRolePolicy",
    "iam:PutUserPolicy",
    "iam:PutGroupPolicy",
    "iam:UpdateAssumeRolePolicy",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:AddUserToGroup",
];

/// Actions that run code as a role passed with iam:PassRole, acquiring that role's permissions.
const PASS_ROLE_TARGETS: [&str; 5] = [
    "lambda:CreateFunction",
    "ec2:RunInstances",
    "cloudformation:CreateStack",
    "glue:CreateDevEndpoint",
    "datapipeline:CreatePipeline",
];

/// Condition keys that confine a `"*"` principal to an organization, account or source.
const PRINCIPAL_RESTRICTING_KEYS: [&str; 11] = [
    "aws:PrincipalOrgID",
    "aws:PrincipalOrgPaths",
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:SourceAccount",
    "aws:SourceArn",
    "aws:SourceOwner",
    "aws:SourceOrgID",
    "aws:SourceOrgPaths",
    "aws:SourceVpc",
    "aws:SourceVpce",
];

/// Web identity providers named without an ARN, and the key that carries their audience.
const WEB_IDENTITY_PROVIDERS: [(&str, &str); 4] = [
    (
        "cognito-identity.amazonaws.com",
        "cognito-identity.amazonaws.com:aud",
    ),
    ("accounts.google.com", "accounts.google.com:aud"),
    ("graph.facebook.com", "graph.facebook.com:app_id"),
    ("www.amazon.com", "www.amazon.com:app_id"),
];

pub(super) fn check(doc: &Doc<'_>, out: &mut Vec<Finding>) {
    let allows: Vec<&StatementView<'_>> = doc
        .statements
        .iter()
        .filter(|s| s.st.effect == Effect::Allow)
        .collect();
    for s in &allows {
        check_not_elements(s, out);
        check_admin(s, out);
        check_pass_role_everywhere(s, out);
        check_escalation(s, out);
        if matches!(doc.kind, PolicyType::Trust | PolicyType::Resource) {
            check_any_principal(s, out);
            check_allow_with_not_principal(s, out);
        }
        if doc.kind == PolicyType::Trust {
            check_cross_account(s, doc.options.account, out);
            check_federated(s, out);
        }
    }
    check_pass_role_with_compute(&allows, out);
}

fn warn(code: &'static str, path: String, message: String) -> Finding {
    finding(Severity::SecurityWarning, code, path, message)
}

/// `Allow` + `NotAction`/`NotResource` grants everything not listed, including services and
/// resources created later.
fn check_not_elements(s: &StatementView<'_>, out: &mut Vec<Finding>) {
    if matches!(s.st.action, Some(ActionBlock::NotAction(_))) {
        out.push(warn(
            "ALLOW_WITH_NOT_ACTION",
            s.field("NotAction"),
            "Allow with NotAction grants every action not listed, in every service, including \
             future ones; list the allowed actions instead"
                .to_string(),
        ));
    }
    if matches!(s.st.resource, Some(ResourceBlock::NotResource(_))) {
        out.push(warn(
            "ALLOW_WITH_NOT_RESOURCE",
            s.field("NotResource"),
            "Allow with NotResource grants access to every resource not listed, including \
             future ones; list the allowed resources instead"
                .to_string(),
        ));
    }
}

/// `Allow` + `NotPrincipal` grants every principal not listed, anonymous ones included.
fn check_allow_with_not_principal(s: &StatementView<'_>, out: &mut Vec<Finding>) {
    if matches!(s.st.principal, Some(PrincipalBlock::NotPrincipal(_))) {
        out.push(warn(
            "ALLOW_WITH_NOT_PRINCIPAL",
            s.field("NotPrincipal"),
            "Allow with NotPrincipal grants every principal not listed, anonymous users \
             included; name the principals in Principal instead"
                .to_string(),
        ));
    }
}

fn check_admin(s: &StatementView<'_>, out: &mut Vec<Finding>) {
    for item in s
        .action_element()
        .filter(|e| *e == "Action")
        .map(|e| s.items(e))
        .unwrap_or_default()
    {
        if item.value == "*" || item.value == "*:*" {
            out.push(warn(
                "FULL_ACCESS",
                item.path,
                format!("\"{}\" allows every action in every service", item.value),
            ));
        }
    }
}

/// `Resource: "*"`, or `NotResource`, which reaches every resource but a few.
fn on_all_resources(st: &Statement) -> bool {
    match &st.resource {
        Some(ResourceBlock::Resource(list)) => list.iter().any(|r| r == "*"),
        Some(ResourceBlock::NotResource(_)) => true,
        None => false,
    }
}

/// Could the statement's resources include an IAM role? PassRole on a bucket ARN passes
/// nothing.
fn may_name_a_role(st: &Statement) -> bool {
    match &st.resource {
        Some(ResourceBlock::Resource(list)) => list.iter().any(|r| match r.split(':').nth(2) {
            Some(service) => wildcard::matches(service, "iam"),
            None => wildcard::matches(r, "arn:aws:iam::1:role/x"),
        }),
        Some(ResourceBlock::NotResource(_)) => true,
        None => false,
    }
}

/// Access Analyzer's issue code for PassRole on every role, by how the statement says it.
fn pass_role_code(st: &Statement) -> &'static str {
    let not_resource = matches!(st.resource, Some(ResourceBlock::NotResource(_)));
    match &st.action {
        Some(ActionBlock::NotAction(_)) if not_resource => {
            "PASS_ROLE_WITH_NOT_ACTION_AND_NOT_RESOURCE"
        }
        Some(ActionBlock::NotAction(_)) => "PASS_ROLE_WITH_STAR_IN_RESOURCE_AND_NOT_ACTION",
        Some(ActionBlock::Action(list))
            if list.iter().any(|a| a.eq_ignore_ascii_case("iam:PassRole")) =>
        {
            if not_resource {
                "PASS_ROLE_WITH_NOT_RESOURCE"
            } else {
                "PASS_ROLE_WITH_STAR_IN_RESOURCE"
            }
        }
        _ if not_resource => "PASS_ROLE_WITH_STAR_IN_ACTION_AND_NOT_RESOURCE",
        _ => "PASS_ROLE_WITH_STAR_IN_ACTION_AND_RESOURCE",
    }
}

/// PassRole on every role lets the holder hand any role, admin included, to a service.
fn check_pass_role_everywhere(s: &StatementView<'_>, out: &mut Vec<Finding>) {
    if !on_all_resources(s.st) || has_restricting_condition(s.st, "iam:PassedToService") {
        return;
    }
    if let Some(path) = s.granting_path("iam:PassRole") {
        out.push(warn(
            pass_role_code(s.st),
            path,
            "iam:PassRole on all resources without an iam:PassedToService condition lets the \
             holder pass any role, including administrator roles, to any service; name the \
             roles and add iam:PassedToService"
                .to_string(),
        ));
    }
}

/// IAM write actions on `*` let the holder grant itself anything; one finding per statement
/// element that grants them.
fn check_escalation(s: &StatementView<'_>, out: &mut Vec<Finding>) {
    if !on_all_resources(s.st) {
        return;
    }
    let mut granted: Vec<(String, &str)> = ESCALATION_ACTIONS
        .iter()
        .filter_map(|a| Some((s.granting_path(a)?, *a)))
        .collect();
    granted.sort();
    let mut i = 0;
    while i < granted.len() {
        let path = granted[i].0.clone();
        let actions: Vec<&str> = granted[i..]
            .iter()
            .take_while(|(p, _)| *p == path)
            .map(|(_, a)| *a)
            .collect();
        i += actions.len();
        out.push(warn(
            "PRIVILEGE_ESCALATION",
            path,
            format!(
                "grants {} on all resources, which lets the holder escalate its own privileges",
                actions.join(", ")
            ),
        ));
    }
}

/// PassRole plus a service that runs code as the passed role gives the holder that role's
/// permissions.
fn check_pass_role_with_compute(allows: &[&StatementView<'_>], out: &mut Vec<Finding>) {
    let Some(pass_path) = allows
        .iter()
        .filter(|s| may_name_a_role(s.st))
        .find_map(|s| s.granting_path("iam:PassRole"))
    else {
        return;
    };
    let compute: Vec<&str> = PASS_ROLE_TARGETS
        .iter()
        .copied()
        .filter(|a| allows.iter().any(|s| s.granting_path(a).is_some()))
        .collect();
    if !compute.is_empty() {
        out.push(warn(
            "PASS_ROLE_PRIVILEGE_ESCALATION",
            pass_path,
            format!(
                "iam:PassRole together with {} lets the holder run code with the permissions \
                 of any role it may pass",
                compute.join(", ")
            ),
        ));
    }
}

fn principals(st: &Statement) -> Option<&Principals> {
    match st.principal.as_ref()? {
        PrincipalBlock::Principal(p) => Some(p),
        PrincipalBlock::NotPrincipal(_) => None,
    }
}

fn restricted_to_known_callers(st: &Statement) -> bool {
    PRINCIPAL_RESTRICTING_KEYS
        .iter()
        .any(|k| has_restricting_condition(st, k))
}

/// `Principal: "*"` or `{"AWS": "*"}` lets anyone in (for buckets, anonymous callers too).
fn check_any_principal(s: &StatementView<'_>, out: &mut Vec<Finding>) {
    let path = match principals(s.st) {
        Some(Principals::Any) => s.field("Principal"),
        Some(Principals::Specific(map)) => {
            let any_aws = map
                .get(&PrincipalType::Aws)
                .is_some_and(|l| l.iter().any(|p| p == "*"));
            if !any_aws {
                return;
            }
            aws_items(s)
                .into_iter()
                .find(|i| i.value == "*")
                .map_or_else(|| s.field("Principal"), |i| i.path)
        }
        None => return,
    };
    if !restricted_to_known_callers(s.st) {
        out.push(warn(
            "ANY_PRINCIPAL",
            path,
            "the statement applies to any principal in any account; restrict it with a \
             condition such as aws:PrincipalOrgID, aws:PrincipalAccount or aws:SourceArn"
                .to_string(),
        ));
    }
}

fn aws_items<'a>(s: &StatementView<'a>) -> Vec<super::Item<'a>> {
    match s.raw.get("Principal") {
        Some(serde_json::Value::Object(m)) => m
            .get("AWS")
            .map(|v| super::string_items(v, &format!("{}.AWS", s.field("Principal"))))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The account of an AWS principal: `123456789012`, `arn:aws:iam::123456789012:root`,
/// `…:role/x`, `arn:aws:sts::123456789012:assumed-role/…`.
fn principal_account(principal: &str) -> Option<&str> {
    if principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit()) {
        return Some(principal);
    }
    let account = principal.split(':').nth(4)?;
    (!account.is_empty()).then_some(account)
}

/// Trusting another account without sts:ExternalId invites the confused-deputy problem: anyone
/// the other account lets assume roles can use this one.
fn check_cross_account(s: &StatementView<'_>, own: Option<&str>, out: &mut Vec<Finding>) {
    if s.granting_path("sts:AssumeRole").is_none()
        || has_restricting_condition(s.st, "sts:ExternalId")
    {
        return;
    }
    for item in aws_items(s) {
        if item.value == "*" {
            continue; // ANY_PRINCIPAL covers it.
        }
        let account = principal_account(item.value);
        if own.is_some() && account == own {
            continue;
        }
        let who = account.map_or_else(|| item.value.to_string(), |a| format!("account {a}"));
        out.push(warn(
            "CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID",
            item.path,
            format!(
                "{who} may assume this role without an sts:ExternalId condition; add one to \
                 guard against the confused-deputy problem"
            ),
        ));
    }
}

/// Federated principals without an audience condition accept tokens minted for any
/// application of the provider.
fn check_federated(s: &StatementView<'_>, out: &mut Vec<Finding>) {
    let items = match s.raw.get("Principal") {
        Some(serde_json::Value::Object(m)) => m
            .get("Federated")
            .map(|v| super::string_items(v, &format!("{}.Federated", s.field("Principal"))))
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    for item in items {
        let provider = item.value;
        if provider.contains(":saml-provider/") {
            if s.granting_path("sts:AssumeRoleWithSAML").is_some()
                && !has_restricting_condition(s.st, "SAML:aud")
            {
                out.push(warn(
                    "SAML_WITHOUT_AUDIENCE",
                    item.path,
                    "trusts a SAML provider without a SAML:aud condition; require the sign-in \
                     endpoint (https://signin.aws.amazon.com/saml) as audience"
                        .to_string(),
                ));
            }
            continue;
        }
        if s.granting_path("sts:AssumeRoleWithWebIdentity").is_none() {
            continue;
        }
        let (host, aud_key) = match provider.split_once(":oidc-provider/") {
            Some((_, host)) => (host.to_string(), format!("{host}:aud")),
            None => match WEB_IDENTITY_PROVIDERS.iter().find(|(p, _)| *p == provider) {
                Some((p, key)) => (p.to_string(), key.to_string()),
                None => continue,
            },
        };
        if !has_restricting_condition(s.st, &aud_key) {
            out.push(warn(
                "WEB_IDENTITY_WITHOUT_AUDIENCE",
                item.path.clone(),
                format!(
                    "trusts {host} without a {aud_key} condition, so tokens issued to any \
                     application of the provider can assume the role"
                ),
            ));
        }
        let sub_key = format!("{host}:sub");
        if has_restricting_condition(s.st, &sub_key) {
            continue;
        }
        if host == "token.actions.githubusercontent.com" {
            out.push(warn(
                "WEB_IDENTITY_WITHOUT_SUBJECT",
                item.path,
                format!(
                    "trusts GitHub Actions without a {sub_key} condition, so a workflow in any \
                     GitHub repository can assume the role; require repo:OWNER/REPO:…"
                ),
            ));
        } else if wildcard::matches("oidc.eks.*.amazonaws.com/id/*", &host) {
            out.push(finding(
                Severity::Suggestion,
                "EKS_WITHOUT_SUBJECT",
                item.path,
                format!(
                    "trusts every service account of the EKS cluster; add a {sub_key} condition \
                     such as system:serviceaccount:NAMESPACE:NAME"
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{LintOptions, PolicyType, lint, lint_with};
    use super::*;

    fn at(text: &str, kind: PolicyType, code: &str) -> Vec<String> {
        lint(text, kind)
            .into_iter()
            .filter(|f| f.code == code)
            .map(|f| f.path)
            .collect()
    }

    fn identity(statements: &str) -> String {
        format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
    }

    fn trust(statement: &str) -> String {
        format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#)
    }

    #[test]
    fn not_action_and_not_resource_in_allow() {
        let text = identity(
            r#"{"Effect":"Allow","NotAction":"iam:*","NotResource":"arn:aws:s3:::b"},
               {"Effect":"Deny","NotAction":"s3:*","NotResource":"arn:aws:s3:::b"}"#,
        );
        let i = PolicyType::Identity;
        assert_eq!(
            at(&text, i, "ALLOW_WITH_NOT_ACTION"),
            vec!["Statement[0].NotAction"]
        );
        assert_eq!(
            at(&text, i, "ALLOW_WITH_NOT_RESOURCE"),
            vec!["Statement[0].NotResource"]
        );
    }

    #[test]
    fn full_access_only_for_allow() {
        let text = identity(
            r#"{"Effect":"Allow","Action":["s3:GetObject","*:*"],"Resource":"arn:aws:s3:::b/*"},
               {"Effect":"Deny","Action":"*","Resource":"*"}"#,
        );
        assert_eq!(
            at(&text, PolicyType::Identity, "FULL_ACCESS"),
            vec!["Statement[0].Action[1]"]
        );
    }

    #[test]
    fn pass_role_on_star_needs_passed_to_service() {
        let open =
            identity(r#"{"Effect":"Allow","Action":["s3:GetObject","iam:Pass*"],"Resource":"*"}"#);
        let star_action = "PASS_ROLE_WITH_STAR_IN_ACTION_AND_RESOURCE";
        assert_eq!(
            at(&open, PolicyType::Identity, star_action),
            vec!["Statement[0].Action[1]"]
        );
        let star_resource = "PASS_ROLE_WITH_STAR_IN_RESOURCE";
        let scoped = identity(
            r#"{"Effect":"Allow","Action":"iam:PassRole","Resource":"*","Condition":{"StringEquals":{"iam:PassedToService":"ec2.amazonaws.com"}}}"#,
        );
        assert!(at(&scoped, PolicyType::Identity, star_resource).is_empty());
        let negated = identity(
            r#"{"Effect":"Allow","Action":"iam:PassRole","Resource":"*","Condition":{"StringNotEquals":{"iam:PassedToService":"ec2.amazonaws.com"}}}"#,
        );
        assert_eq!(at(&negated, PolicyType::Identity, star_resource).len(), 1);
        let one_role = identity(
            r#"{"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::111122223333:role/app"}"#,
        );
        assert!(at(&one_role, PolicyType::Identity, star_resource).is_empty());
        // Access Analyzer's code names the form the grant takes.
        for (statement, code) in [
            (
                r#"{"Effect":"Allow","Action":"iam:PassRole","NotResource":"arn:aws:iam::1:role/x"}"#,
                "PASS_ROLE_WITH_NOT_RESOURCE",
            ),
            (
                r#"{"Effect":"Allow","Action":"iam:*","NotResource":"arn:aws:iam::1:role/x"}"#,
                "PASS_ROLE_WITH_STAR_IN_ACTION_AND_NOT_RESOURCE",
            ),
            (
                r#"{"Effect":"Allow","NotAction":"s3:*","Resource":"*"}"#,
                "PASS_ROLE_WITH_STAR_IN_RESOURCE_AND_NOT_ACTION",
            ),
            (
                r#"{"Effect":"Allow","NotAction":"s3:*","NotResource":"arn:aws:s3:::b"}"#,
                "PASS_ROLE_WITH_NOT_ACTION_AND_NOT_RESOURCE",
            ),
        ] {
            assert_eq!(
                at(&identity(statement), PolicyType::Identity, code).len(),
                1,
                "{statement}"
            );
        }
    }

    #[test]
    fn allow_with_not_principal_reaches_everyone_else() {
        let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
        assert_eq!(
            at(text, PolicyType::Resource, "ALLOW_WITH_NOT_PRINCIPAL"),
            vec!["Statement[0].NotPrincipal"]
        );
    }

    #[test]
    fn escalation_actions_grouped_per_item() {
        let text = identity(
            r#"{"Effect":"Allow","Action":["iam:Put*Policy","iam:CreateAccessKey","iam:Get*"],"Resource":"*"},
               {"Effect":"Allow","Action":"iam:AttachRolePolicy","Resource":"arn:aws:iam::111122223333:role/x"}"#,
        );
        let f: Vec<_> = lint(&text, PolicyType::Identity)
            .into_iter()
            .filter(|f| f.code == "PRIVILEGE_ESCALATION")
            .collect();
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].path, "Statement[0].Action[0]");
        assert!(
            f[0].message
                .contains("iam:PutGroupPolicy, iam:PutRolePolicy, iam:PutUserPolicy on"),
            "{}",
            f[0].message
        );
        assert!(
            !f[0].message.contains("CreateAccessKey"),
            "{}",
            f[0].message
        );
        assert_eq!(f[1].path, "Statement[0].Action[1]");
    }

    #[test]
    fn pass_role_with_compute_across_statements() {
        let text = identity(
            r#"{"Effect":"Allow","Action":"lambda:CreateFunction","Resource":"*"},
               {"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::111122223333:role/fn"}"#,
        );
        let f: Vec<_> = lint(&text, PolicyType::Identity)
            .into_iter()
            .filter(|f| f.code == "PASS_ROLE_PRIVILEGE_ESCALATION")
            .collect();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "Statement[1].Action");
        assert!(f[0].message.contains("lambda:CreateFunction"));
        let bucket_only =
            identity(r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b"}"#);
        assert!(
            at(
                &bucket_only,
                PolicyType::Identity,
                "PASS_ROLE_PRIVILEGE_ESCALATION"
            )
            .is_empty()
        );
        let denied = identity(
            r#"{"Effect":"Deny","Action":"lambda:CreateFunction","Resource":"*"},
               {"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::111122223333:role/fn"}"#,
        );
        assert!(
            at(
                &denied,
                PolicyType::Identity,
                "PASS_ROLE_PRIVILEGE_ESCALATION"
            )
            .is_empty()
        );
    }

    #[test]
    fn any_principal_needs_a_restricting_condition() {
        let t = PolicyType::Trust;
        let star = trust(r#"{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}"#);
        assert_eq!(
            at(&star, t, "ANY_PRINCIPAL"),
            vec!["Statement[0].Principal"]
        );
        let aws_star = trust(
            r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","*"]},"Action":"sts:AssumeRole"}"#,
        );
        assert_eq!(
            at(&aws_star, t, "ANY_PRINCIPAL"),
            vec!["Statement[0].Principal.AWS[1]"]
        );
        let org = trust(
            r#"{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc"}}}"#,
        );
        assert!(at(&org, t, "ANY_PRINCIPAL").is_empty());
        let bucket = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#;
        assert_eq!(
            at(bucket, PolicyType::Resource, "ANY_PRINCIPAL"),
            vec!["Statement.Principal"]
        );
    }

    #[test]
    fn cross_account_needs_external_id_unless_own_account() {
        let text = trust(
            r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","444455556666","arn:aws:iam::111122223333:role/ci"]},"Action":"sts:AssumeRole"}"#,
        );
        assert_eq!(
            at(
                &text,
                PolicyType::Trust,
                "CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID"
            ),
            vec![
                "Statement[0].Principal.AWS[0]",
                "Statement[0].Principal.AWS[1]",
                "Statement[0].Principal.AWS[2]"
            ]
        );
        let own = LintOptions {
            account: Some("111122223333"),
        };
        let f: Vec<_> = lint_with(&text, PolicyType::Trust, &own)
            .into_iter()
            .filter(|f| f.code == "CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID")
            .map(|f| f.path)
            .collect();
        assert_eq!(f, vec!["Statement[0].Principal.AWS[1]"]);
        let with_id = trust(
            r#"{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"x"}}}"#,
        );
        assert!(
            at(
                &with_id,
                PolicyType::Trust,
                "CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID"
            )
            .is_empty()
        );
        assert_eq!(
            principal_account("arn:aws:sts::444455556666:assumed-role/r/s"),
            Some("444455556666")
        );
    }

    #[test]
    fn federated_principals_need_audience() {
        let t = PolicyType::Trust;
        let eks = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC";
        let bare = trust(&format!(
            r#"{{"Effect":"Allow","Principal":{{"Federated":"{eks}"}},"Action":"sts:AssumeRoleWithWebIdentity"}}"#
        ));
        assert_eq!(
            at(&bare, t, "WEB_IDENTITY_WITHOUT_AUDIENCE"),
            vec!["Statement[0].Principal.Federated"]
        );
        assert_eq!(
            at(&bare, t, "EKS_WITHOUT_SUBJECT"),
            vec!["Statement[0].Principal.Federated"]
        );
        let full = trust(&format!(
            r#"{{"Effect":"Allow","Principal":{{"Federated":"{eks}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"oidc.eks.us-east-1.amazonaws.com/id/ABC:aud":"sts.amazonaws.com","oidc.eks.us-east-1.amazonaws.com/id/ABC:sub":"system:serviceaccount:ns:sa"}}}}}}"#
        ));
        assert!(lint(&full, t).is_empty(), "{:?}", lint(&full, t));

        let github = trust(
            r#"{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com"}}}"#,
        );
        assert!(at(&github, t, "WEB_IDENTITY_WITHOUT_AUDIENCE").is_empty());
        assert_eq!(at(&github, t, "WEB_IDENTITY_WITHOUT_SUBJECT").len(), 1);

        let cognito = trust(
            r#"{"Effect":"Allow","Principal":{"Federated":"cognito-identity.amazonaws.com"},"Action":"sts:AssumeRoleWithWebIdentity"}"#,
        );
        assert_eq!(at(&cognito, t, "WEB_IDENTITY_WITHOUT_AUDIENCE").len(), 1);

        let saml = trust(
            r#"{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:saml-provider/Okta"},"Action":"sts:AssumeRoleWithSAML"}"#,
        );
        assert_eq!(
            at(&saml, t, "SAML_WITHOUT_AUDIENCE"),
            vec!["Statement[0].Principal.Federated"]
        );
        let saml_ok = trust(
            r#"{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:saml-provider/Okta"},"Action":"sts:AssumeRoleWithSAML","Condition":{"StringEquals":{"SAML:aud":"https://signin.aws.amazon.com/saml"}}}"#,
        );
        assert!(lint(&saml_ok, t).is_empty(), "{:?}", lint(&saml_ok, t));
    }
}
