//! Plan tests of the shadow gate.

use super::*;

fn shadowing(period: &str, max_would_deny: u64) -> LeastPrivilegeRoleSpec {
    let mut s = spec(Mode::Enforce, Approval::Automatic);
    s.enforce = Some(crate::controller::crd::EnforceSpec {
        shadow_for: period.to_string(),
        max_would_deny,
    });
    s
}

/// An analysis at `now` whose shadow replay sees `calls` (action, resource, count).
fn shadow_analysis(
    policies: Vec<Policy>,
    calls: &[(&str, &str, u64)],
    now: &str,
) -> AnalysisResult {
    let mut usage = crate::usage::Usage::default();
    for (action, resource, count) in calls {
        for _ in 0..*count {
            usage.record_use(action, resource, now);
        }
    }
    let mut result = analysis(policies);
    result.analysis.window_end = now.to_string();
    result.shadow_usage = Some(usage);
    result
}

/// The first plan of `s`: its first analysis proposes `get_orders`.
fn first_proposal(s: &LeastPrivilegeRoleSpec) -> Plan {
    let result = analysis(vec![get_orders()]);
    plan(
        s,
        &observed(Default::default(), original_role(), Some(result)),
    )
}

#[test]
fn the_shadow_gate_holds_the_proposal_until_its_period_is_replayed() {
    let s = shadowing("7d", 0);
    let first = first_proposal(&s);
    let shadow = first
        .status
        .shadow
        .clone()
        .expect("the first proposal begins the period");
    assert_eq!((shadow.since.as_str(), shadow.calls), (T0, 0));
    assert_condition(&first, "Approved", FALSE, "ShadowPeriod");
    assert!(first.operations.is_empty());
    // Looked at again when the period ends, and then due for a replay.
    assert!(matches!(first.requeue, Requeue::After(secs) if secs <= 7 * 86_400));
    let spec_valid = |raw| validate(raw, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap();
    let at = |t: &str| crate::time::parse_date(t).unwrap();
    let eight_days = "2025-01-09T00:00:00Z";
    assert!(analysis_due(&spec_valid(&s), &first.status, at(eight_days)));
    assert_eq!(
        shadow_since(&spec_valid(&s), &first.status),
        Some(at(T0)),
        "the shell asks for the calls since the period began"
    );
    // A day in, with calls the proposal allows: still shadowing.
    let mut o = next(&first, original_role());
    o.analysis = Some(shadow_analysis(
        vec![get_orders()],
        &[("s3:GetObject", "arn:aws:s3:::orders/a", 5)],
        T1,
    ));
    let day_one = plan(&s, &o);
    let shadow = day_one.status.shadow.clone().unwrap();
    assert_eq!(
        (
            shadow.since.as_str(),
            shadow.checked_at.as_str(),
            shadow.calls
        ),
        (T0, T1, 5)
    );
    assert_condition(&day_one, "Approved", FALSE, "ShadowPeriod");
    assert!(day_one.operations.is_empty());
    // Replayed after its period without a would-be denial: applied.
    let mut o = next(&day_one, original_role());
    o.now = eight_days.to_string();
    o.analysis = Some(shadow_analysis(
        vec![get_orders()],
        &[("s3:GetObject", "arn:aws:s3:::orders/b", 9)],
        eight_days,
    ));
    let applied = plan(&s, &o);
    assert_eq!(applied.status.shadow.as_ref().unwrap().since, T0);
    assert_condition(&applied, "Approved", TRUE, "Approved");
    assert!(!applied.operations.is_empty());
}

#[test]
fn a_would_be_denial_restarts_the_shadow_with_a_proposal_that_includes_it() {
    let s = shadowing("7d", 0);
    let first = first_proposal(&s);
    // The role reads a table the proposal does not grant (its policies do): the analysis
    // proposes it, the period starts again, and a Warning names the call.
    let wider = vec![
        get_orders(),
        doc(
            "dynamodb:GetItem",
            "arn:aws:dynamodb:us-east-1:111122223333:table/t",
        ),
    ];
    let mut o = next(&first, original_role());
    o.analysis = Some(shadow_analysis(
        wider.clone(),
        &[
            ("s3:GetObject", "arn:aws:s3:::orders/a", 5),
            (
                "dynamodb:GetItem",
                "arn:aws:dynamodb:us-east-1:111122223333:table/t",
                2,
            ),
            // Not allowed by the role's policies either: never a would-be denial.
            ("sqs:SendMessage", "arn:aws:sqs:us-east-1:111122223333:q", 4),
        ],
        T1,
    ));
    let restarted = plan(&s, &o);
    let shadow = restarted.status.shadow.clone().unwrap();
    let proposal = restarted.status.proposal.clone().unwrap();
    assert_eq!(shadow.revision, proposal.revision);
    assert_ne!(
        proposal.revision,
        first.status.proposal.as_ref().unwrap().revision
    );
    assert_eq!((shadow.since.as_str(), shadow.restarts), (T1, 1));
    let denied: Vec<(&str, u64)> = (shadow.would_deny.iter())
        .map(|w| (w.action.as_str(), w.count))
        .collect();
    assert_eq!(denied, [("dynamodb:GetItem", 2)]);
    assert!(
        restarted
            .events
            .iter()
            .any(|e| e.reason == "WouldDeny" && e.note.contains("dynamodb:GetItem"))
    );
    assert_condition(&restarted, "Approved", FALSE, "ShadowPeriod");
    // Up to maxWouldDeny calls are tolerated: the period goes on.
    let tolerant = shadowing("7d", 2);
    let first = first_proposal(&tolerant);
    let mut o = next(&first, original_role());
    o.analysis = Some(shadow_analysis(
        wider,
        &[(
            "dynamodb:GetItem",
            "arn:aws:dynamodb:us-east-1:111122223333:table/t",
            2,
        )],
        T1,
    ));
    let shadow = plan(&tolerant, &o).status.shadow.unwrap();
    assert_eq!(
        (
            shadow.since.as_str(),
            shadow.would_deny_calls,
            shadow.restarts
        ),
        (T0, 2, 0)
    );
}

#[test]
fn a_forged_shadow_never_opens_the_gate_on_its_own_terms() {
    let s = shadowing("7d", 0);
    let first = first_proposal(&s);
    let revision = first.status.proposal.as_ref().unwrap().revision.clone();
    let forged = |since: &str, checked_at: &str, revision: &str| {
        let mut p = first.clone();
        p.status.shadow = Some(crate::controller::crd::Shadow {
            revision: revision.to_string(),
            since: since.to_string(),
            checked_at: checked_at.to_string(),
            ..Default::default()
        });
        plan(&s, &next(&p, original_role()))
    };
    // Checked in the future, checked before it began, unreadable, another revision: each
    // period starts again now, and nothing is applied.
    for (since, checked_at, rev) in [
        (T0, "2099-01-01T00:00:00Z", revision.as_str()),
        (T1, T0, revision.as_str()),
        ("yesterday", T1, revision.as_str()),
        ("2000-01-01T00:00:00Z", T1, "sha256:other"),
    ] {
        let p = forged(since, checked_at, rev);
        assert!(
            p.operations.is_empty(),
            "{since} {checked_at}: {:#?}",
            p.operations
        );
        assert_condition(&p, "Approved", FALSE, "ShadowPeriod");
        let shadow = p.status.shadow.unwrap();
        assert_eq!(
            (shadow.since.as_str(), shadow.revision.as_str()),
            (T1, revision.as_str())
        );
    }
    // A period that began long ago and was checked since reads as done: the owner of the
    // resource can shorten their own wait (as by removing enforce.shadowFor), but the apply
    // is still proven never to widen the role, and still replays the window first.
    let p = forged("2000-01-01T00:00:00Z", T1, &revision);
    assert_condition(&p, "Approved", TRUE, "Approved");
    let role = apply(&original_role(), &p.operations, &mut BTreeMap::new());
    assert!(
        crate::role::proof::prove_each_state(&original_role(), &p.operations).is_ok(),
        "{role:#?}"
    );
}
