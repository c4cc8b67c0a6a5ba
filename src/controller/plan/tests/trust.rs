//! Plan tests of the trust policy (TrustOK).

use super::*;

#[test]
fn trust_is_reported_and_a_new_finding_warned_once() {
    let s = spec(Mode::Observe, Approval::Manual);
    let p = plan(&s, &observed(Default::default(), original_role(), None));
    assert_condition(&p, "TrustOK", TRUE, "TrustOK");
    let trust = p.status.trust.clone().unwrap();
    assert_eq!(trust.principals[0].principal, "ec2.amazonaws.com");
    assert_eq!(trust.allowed_accounts_from, None);
    assert!(p.operations.is_empty());

    // Trust to another account without an ExternalId: a finding, a Warning, no write.
    let mut role = original_role();
    role.trust_policy = Some(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"sts:AssumeRole"}]}"#
            .to_string(),
    );
    let mut o = observed(p.status.clone(), role.clone(), None);
    o.trusted_accounts = vec!["777788889999".to_string()];
    let p = plan(&spec(Mode::Enforce, Approval::Automatic), &o);
    assert_condition(&p, "TrustOK", FALSE, "TrustFindings");
    let trust = p.status.trust.clone().unwrap();
    let codes: Vec<&str> = trust.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(
        codes,
        ["ACCOUNT_NOT_ALLOWED", "CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID"]
    );
    assert_eq!(
        trust.allowed_accounts_from.as_deref(),
        Some("tenancy trustedAccounts")
    );
    let warned = |p: &Plan| {
        (p.events.iter())
            .filter(|e| e.type_ == EventType::Warning && e.reason == "TrustFinding")
            .count()
    };
    assert_eq!(warned(&p), 1, "{:?}", p.events);
    let note = &(p.events.iter())
        .find(|e| e.reason == "TrustFinding")
        .unwrap()
        .note;
    assert!(
        note.starts_with("2 findings new in the role's trust policy: ACCOUNT_NOT_ALLOWED: "),
        "{note}"
    );
    assert!(
        !(p.operations.iter()).any(|op| format!("{op:?}").contains("AssumeRole")),
        "the trust policy is never written"
    );
    // The same findings next time: no new Warning.
    let mut again = next(&p, role.clone());
    again.trusted_accounts = o.trusted_accounts.clone();
    let q = plan(&spec(Mode::Enforce, Approval::Automatic), &again);
    assert_condition(&q, "TrustOK", FALSE, "TrustFindings");
    assert_eq!(warned(&q), 0, "{:?}", q.events);
    // The attack: a namespace user lists the account to silence the finding. The tenancy's
    // accounts are the cluster's zone of trust; the spec may only narrow them.
    let mut listed = spec(Mode::Observe, Approval::Manual);
    listed.trust.allowed_accounts = vec!["444455556666".to_string()];
    let codes_of = |p: &Plan| -> Vec<String> {
        let trust = p.status.trust.as_ref().unwrap();
        trust.findings.iter().map(|f| f.code.clone()).collect()
    };
    let from_of = |p: &Plan| -> Option<String> {
        let trust = p.status.trust.as_ref().unwrap();
        trust.allowed_accounts_from.clone()
    };
    let r = plan(&listed, &again);
    assert_eq!(
        codes_of(&r),
        ["ACCOUNT_NOT_ALLOWED", "CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID"]
    );
    assert_eq!(
        from_of(&r).as_deref(),
        Some("spec.trust.allowedAccounts within tenancy trustedAccounts")
    );
    // Within the tenancy's accounts the spec's list decides, narrowing them.
    let mut both = again.clone();
    both.trusted_accounts = vec!["444455556666".to_string(), "777788889999".to_string()];
    assert_eq!(
        codes_of(&plan(&listed, &both)),
        ["CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID"]
    );
    let mut narrower = listed.clone();
    narrower.trust.allowed_accounts = vec!["777788889999".to_string()];
    assert_eq!(
        codes_of(&plan(&narrower, &both)),
        ["ACCOUNT_NOT_ALLOWED", "CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID"]
    );
    // Without a tenancy list, the spec's own is the list.
    let mut alone = again.clone();
    alone.trusted_accounts = Vec::new();
    let r = plan(&listed, &alone);
    assert_eq!(codes_of(&r), ["CROSS_ACCOUNT_WITHOUT_EXTERNAL_ID"]);
    assert_eq!(from_of(&r).as_deref(), Some("spec.trust.allowedAccounts"));
}

#[test]
fn an_unreadable_trust_policy_is_unknown_not_a_failure() {
    let mut role = original_role();
    role.trust_policy = Some("{not json".to_string());
    let p = plan(
        &spec(Mode::Observe, Approval::Manual),
        &observed(Default::default(), role.clone(), None),
    );
    assert_condition(&p, "TrustOK", UNKNOWN, "TrustPolicyNotAnalyzed");
    assert_condition(&p, "Ready", TRUE, "Ready");
    assert!(p.status.trust.is_none());
    role.trust_policy = None;
    let p = plan(
        &spec(Mode::Observe, Approval::Manual),
        &observed(Default::default(), role, None),
    );
    assert_condition(&p, "TrustOK", UNKNOWN, "TrustPolicyUnread");
    // A bad allow-list is the spec's error.
    let mut s = spec(Mode::Observe, Approval::Manual);
    s.trust.allowed_accounts = vec!["4444".to_string()];
    let p = plan(&s, &observed(Default::default(), original_role(), None));
    let message = condition(&p, "Ready").message.clone().unwrap();
    assert!(
        message.contains("trust.allowedAccounts[0] \"4444\" is not a 12-digit account id"),
        "{message}"
    );
}
