//! Plan tests of the analysis, its sources and the Analyzed and LastAccessedAvailable conditions.

use super::*;

#[test]
fn invalid_spec_lists_every_reason_and_writes_nothing() {
    let mut s = spec(Mode::Enforce, Approval::Automatic);
    s.role_arn = Some(ROLE_ARN.to_string());
    s.window = "90x".to_string();
    s.drift.interval = "0m".to_string();
    s.cloud_trail.s3 = None;
    let p = plan(&s, &observed(Default::default(), original_role(), None));
    assert!(p.operations.is_empty());
    assert_eq!(p.requeue, Requeue::AwaitChange);
    assert_condition(&p, "Ready", FALSE, "InvalidSpec");
    let message = condition(&p, "Ready").message.clone().unwrap_or_default();
    for needle in ["not both", "window", "drift.interval", "cloudTrail.s3"] {
        assert!(message.contains(needle), "{needle} missing from {message}");
    }
    assert_eq!(p.status.observed_generation, Some(1));
}

#[test]
fn role_not_found_retries_slowly() {
    let mut o = observed(Default::default(), original_role(), None);
    o.role = RoleState::NotFound;
    let p = plan(&spec(Mode::Enforce, Approval::Automatic), &o);
    assert!(p.operations.is_empty());
    assert_condition(&p, "Ready", FALSE, "RoleNotFound");
    assert_eq!(p.requeue, Requeue::After(ROLE_NOT_FOUND_RETRY_SECS));
}

#[test]
fn observe_publishes_the_analysis_only() {
    let o = observed(
        Default::default(),
        original_role(),
        Some(analysis(vec![get_orders()])),
    );
    let p = plan(&spec(Mode::Observe, Approval::Automatic), &o);
    assert!(p.operations.is_empty());
    assert_eq!(p.status.analysis.as_ref().unwrap().unused_actions, 199);
    assert!(p.status.proposal.is_none());
    assert_condition(&p, "Analyzed", TRUE, "Analyzed");
    assert_condition(&p, "Approved", FALSE, "NotEnforcing");
    assert_condition(&p, "Ready", TRUE, "Ready");
    // 5m drift interval < 24h regeneration.
    assert_eq!(p.requeue, Requeue::After(300));
    // Without a new analysis the previous one stays.
    let again = plan(
        &spec(Mode::Observe, Approval::Automatic),
        &next(&p, original_role()),
    );
    assert_eq!(again.status.analysis, p.status.analysis);
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("90d", "mhdw"), Some(90 * 86_400));
    assert_eq!(parse_duration("2w", "mhdw"), Some(14 * 86_400));
    assert_eq!(parse_duration("30s", "smhd"), Some(30));
    for bad in [
        "",
        "d",
        "0d",
        "+5d",
        "5",
        "5s",
        "5 d",
        "99999999999999999999d",
    ] {
        assert_eq!(parse_duration(bad, "mhdw"), None, "{bad}");
    }
}

#[test]
fn keep_actions_and_dates_are_validated() {
    let mut s = spec(Mode::Recommend, Approval::Manual);
    s.keep = vec![crate::controller::crd::KeepRule {
        actions: vec!["s3:DeleteObjekt".to_string()],
        resources: Vec::new(),
        reason: "purge".to_string(),
        expires: Some("2027-13-01".to_string()),
    }];
    let message = validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap_err();
    assert!(message.contains("keep[0].actions"), "{message}");
    assert!(
        message.contains("s3:DeleteObject"),
        "a suggestion: {message}"
    );
    assert!(message.contains("keep[0].expires"), "{message}");
    s.keep[0].actions = vec!["s3:DeleteObject".to_string()];
    s.keep[0].expires = Some("2027-03-01".to_string());
    assert_eq!(
        validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).map(|_| ()),
        Ok(())
    );
}

#[test]
fn analysis_runs_when_new_stale_or_inputs_change_but_not_on_approval() {
    let day = 86_400 * 1_000_000_000i128;
    let t0 = crate::time::parse_date(T0).unwrap();
    let mut s = spec(Mode::Enforce, Approval::Manual);
    assert!(analysis_due(
        &validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap(),
        &Default::default(),
        t0
    ));
    let mut status = LeastPrivilegeRoleStatus::default();
    let mut a = analysis(vec![get_orders()]).analysis;
    a.inputs = Some(analysis_inputs(&s));
    status.analysis = Some(a);
    assert!(!analysis_due(
        &validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap(),
        &status,
        t0 + day / 2
    ));
    assert!(
        analysis_due(
            &validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap(),
            &status,
            t0 + day
        ),
        "regenerateEvery 24h elapsed"
    );
    s.approved_revision = Some(format!("sha256:{}", "0".repeat(64)));
    s.drift.interval = "10m".to_string();
    assert!(
        !analysis_due(
            &validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap(),
            &status,
            t0 + day / 2
        ),
        "approving does not regenerate"
    );
    s.forbid = vec!["iam:*".to_string()];
    assert!(
        analysis_due(
            &validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap(),
            &status,
            t0 + day / 2
        ),
        "forbid changed"
    );
    let mut observe = spec(Mode::Observe, Approval::Manual);
    observe.approved_revision = s.approved_revision.clone();
    assert_ne!(
        analysis_inputs(&observe),
        analysis_inputs(&spec(Mode::Recommend, Approval::Manual))
    );
    assert_eq!(
        analysis_inputs(&spec(Mode::Recommend, Approval::Manual)),
        analysis_inputs(&spec(Mode::Enforce, Approval::Automatic)),
        "Recommend → Enforce keeps the reviewed proposal"
    );
}

fn job(id: &str) -> AnalysisJob {
    AnalysisJob {
        source: JobSource::AccessAnalyzer,
        job_id: id.to_string(),
        started_at: T0.to_string(),
        inputs: "sha256:inputs".to_string(),
        ..AnalysisJob::default()
    }
}

/// Athena's queries share the job model: kept in status with the days answered so far, looked
/// at again within seconds (not at Access Analyzer's poll), and the last analysis stands
/// while a regeneration's queries run.
#[test]
fn running_athena_queries_are_a_job_in_status_looked_at_within_seconds() {
    let queries = AnalysisJob {
        source: JobSource::Athena,
        job_id: "q-1 q-2".to_string(),
        days_answered: Some(88),
        days: Some(91),
        ..job("")
    };
    let mut o = observed(Default::default(), original_role(), None);
    o.analyzer = Some(Generation::Running(queries.clone()));
    o.analyzer_poll_secs = 60;
    let p = plan(&spec(Mode::Recommend, Approval::Manual), &o);
    assert_eq!(p.status.job, Some(queries.clone()));
    assert_condition(&p, "Analyzed", UNKNOWN, "AthenaQueriesRunning");
    assert_eq!(
        condition(&p, "Analyzed").message.as_deref(),
        Some(
            format!("88 of 91 days answered; Athena queries running since {T0}: q-1 q-2").as_str()
        )
    );
    assert_eq!(p.requeue, Requeue::After(ATHENA_LOOK_SECS));
    let done = plan(
        &spec(Mode::Recommend, Approval::Manual),
        &Observed {
            analysis: Some(analysis(vec![get_orders()])),
            ..next(&p, original_role())
        },
    );
    assert_eq!(done.status.job, None);
    let mut again = next(&done, original_role());
    again.analyzer = Some(Generation::Running(queries.clone()));
    let regenerating = plan(&spec(Mode::Recommend, Approval::Manual), &again);
    assert_condition(&regenerating, "Analyzed", TRUE, "Analyzed");
    assert_eq!(regenerating.status.job, Some(queries));
    assert_eq!(regenerating.requeue, Requeue::After(ATHENA_LOOK_SECS));
}

#[test]
fn unresolved_placeholders_are_never_applied() {
    let mut result = analysis(vec![get_orders()]);
    result.unresolved = vec![Unresolved {
        action: "dynamodb:Query".to_string(),
        resource: "arn:aws:dynamodb:${Region}:${Account}:table/${TableName}".to_string(),
        placeholders: vec!["Region".into(), "Account".into(), "TableName".into()],
    }];
    let p = held_whatever_the_approval(result, "UnresolvedPlaceholders");
    let message = condition(&p, "Approved").message.clone().unwrap();
    assert!(
        message.contains("Region, Account, TableName in dynamodb:Query"),
        "{message}"
    );
    let proposal = p.status.proposal.as_ref().unwrap();
    assert_eq!(proposal.unresolved_placeholders.len(), 1);
}

/// Plans `result` in Enforce: nothing applied, `Approved` and `Ready` False for `reason`,
/// automatically and even when a human approves that revision. The first plan.
fn held_whatever_the_approval(result: AnalysisResult, reason: &str) -> Plan {
    let o = observed(Default::default(), original_role(), Some(result));
    let p = plan(&spec(Mode::Enforce, Approval::Automatic), &o);
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_condition(&p, "ProposalReady", TRUE, "ProposalReady");
    assert_condition(&p, "Approved", FALSE, reason);
    assert_condition(&p, "Ready", FALSE, reason);
    let mut manual = spec(Mode::Enforce, Approval::Manual);
    manual.approved_revision = Some(p.status.proposal.as_ref().unwrap().revision.clone());
    let again = plan(&manual, &next(&p, original_role()));
    assert!(again.operations.is_empty());
    assert_condition(&again, "Approved", FALSE, reason);
    p
}

/// A proposal without PassRole for a profile the role passed would break its next launch.
#[test]
fn unresolved_instance_profiles_are_never_applied() {
    let mut result = analysis(vec![get_orders()]);
    result.unresolved_profiles = vec![UnresolvedInstanceProfile {
        instance_profile: "arn:aws:iam::444455556666:instance-profile/web".to_string(),
        reason: "not of the role's account".to_string(),
    }];
    let p = held_whatever_the_approval(result, "UnresolvedInstanceProfiles");
    let message = condition(&p, "Approved").message.clone().unwrap();
    assert!(
        message.contains("instance-profile/web (not of"),
        "{message}"
    );
    assert!(message.contains("spec.instanceProfiles"), "{message}");
    let proposal = p.status.proposal.as_ref().unwrap();
    assert_eq!(proposal.unresolved_instance_profiles_count, 1);
}

/// An analysis made without IAM's last-accessed data (moto, an operator role without
/// GenerateServiceLastAccessedDetails).
fn without_last_accessed() -> AnalysisResult {
    let mut result = analysis(vec![get_orders()]);
    result.analysis.last_accessed = None;
    result.analysis.last_accessed_unavailable =
        Some("GenerateServiceLastAccessedDetails: AccessDenied".to_string());
    result
}

#[test]
fn without_last_accessed_data_observe_and_recommend_report_and_enforce_waits() {
    for mode in [Mode::Observe, Mode::Recommend] {
        let o = observed(
            Default::default(),
            original_role(),
            Some(without_last_accessed()),
        );
        let p = plan(&spec(mode, Approval::Manual), &o);
        assert!(p.operations.is_empty());
        assert_condition(&p, "Analyzed", TRUE, "Analyzed");
        assert_condition(&p, "LastAccessedAvailable", FALSE, "LastAccessedFailed");
        let message = condition(&p, "LastAccessedAvailable")
            .message
            .clone()
            .unwrap();
        assert!(message.contains("AccessDenied"), "{message}");
        assert!(
            (p.events.iter())
                .any(|e| e.type_ == EventType::Warning && e.reason == "LastAccessedUnavailable"),
            "{:?}",
            p.events
        );
        assert_eq!(p.status.proposal.is_some(), mode == Mode::Recommend);
        assert_condition(&p, "Ready", TRUE, "Ready");
    }
    // Enforce, Automatic: the proposal stands and says so, but is not applied.
    let o = observed(
        Default::default(),
        original_role(),
        Some(without_last_accessed()),
    );
    let p = plan(&spec(Mode::Enforce, Approval::Automatic), &o);
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    let proposal = p.status.proposal.clone().unwrap();
    assert!(proposal.last_accessed_unavailable.is_some());
    assert_condition(&p, "Approved", FALSE, "LastAccessedUnavailable");
    assert_condition(&p, "Ready", FALSE, "LastAccessedUnavailable");
    // A human's approval of that revision does not apply it either.
    let mut manual = spec(Mode::Enforce, Approval::Manual);
    manual.approved_revision = Some(proposal.revision.clone());
    let again = plan(&manual, &next(&p, original_role()));
    assert!(again.operations.is_empty());
    assert_condition(&again, "Approved", FALSE, "LastAccessedUnavailable");
    // The Warning is not repeated for the same analysis.
    assert!(!(again.events.iter()).any(|e| e.reason == "LastAccessedUnavailable"));
    // Opting out applies it.
    manual.last_accessed.required = false;
    let applied = plan(&manual, &next(&p, original_role()));
    assert!(!applied.operations.is_empty());
    assert_condition(&applied, "Approved", TRUE, "Approved");
    // An analysis with the data lifts the gate.
    let o = observed(
        Default::default(),
        original_role(),
        Some(analysis(vec![get_orders()])),
    );
    let with = plan(&spec(Mode::Enforce, Approval::Automatic), &o);
    assert_condition(
        &with,
        "LastAccessedAvailable",
        TRUE,
        "LastAccessedAvailable",
    );
    assert!(!with.operations.is_empty());
}

#[test]
fn enforce_without_last_accessed_data_asks_again_soon() {
    let t0 = crate::time::parse_date(T0).unwrap();
    let minute = 60 * 1_000_000_000i128;
    let status = |result: AnalysisResult, s: &LeastPrivilegeRoleSpec| {
        let mut a = result.analysis;
        a.inputs = Some(analysis_inputs(s));
        LeastPrivilegeRoleStatus {
            analysis: Some(a),
            ..Default::default()
        }
    };
    let mut enforce = spec(Mode::Enforce, Approval::Automatic);
    let due = |s: &LeastPrivilegeRoleSpec, status: &LeastPrivilegeRoleStatus, at| {
        analysis_due(
            &validate(s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap(),
            status,
            at,
        )
    };
    let lacking = status(without_last_accessed(), &enforce);
    assert!(!due(&enforce, &lacking, t0 + 14 * minute));
    assert!(due(&enforce, &lacking, t0 + 15 * minute));
    let full = status(analysis(vec![get_orders()]), &enforce);
    assert!(!due(&enforce, &full, t0 + 15 * minute), "regenerateEvery");
    let recommend = spec(Mode::Recommend, Approval::Manual);
    let lacking = status(without_last_accessed(), &recommend);
    assert!(
        !due(&recommend, &lacking, t0 + 15 * minute),
        "nothing waits"
    );
    enforce.last_accessed.required = false;
    let lacking = status(without_last_accessed(), &enforce);
    assert!(!due(&enforce, &lacking, t0 + 15 * minute), "nothing waits");
}

#[test]
fn a_running_job_is_kept_in_status_and_polled_soon() {
    let mut o = observed(Default::default(), original_role(), None);
    o.analyzer = Some(Generation::Running(job("j-1")));
    o.analyzer_poll_secs = 7;
    let p = plan(&spec(Mode::Recommend, Approval::Manual), &o);
    assert_eq!(p.status.job, Some(job("j-1")));
    assert_condition(&p, "Analyzed", UNKNOWN, "GenerationRunning");
    assert_condition(&p, "Ready", TRUE, "Ready");
    assert_eq!(p.requeue, Requeue::After(7));
    assert!(p.operations.is_empty());

    // Its result clears the job; a regeneration under way keeps the last analysis.
    let done = plan(
        &spec(Mode::Recommend, Approval::Manual),
        &Observed {
            analysis: Some(analysis(vec![get_orders()])),
            ..next(&p, original_role())
        },
    );
    assert_eq!(done.status.job, None);
    assert_condition(&done, "Analyzed", TRUE, "Analyzed");
    let mut again = next(&done, original_role());
    again.analyzer = Some(Generation::Running(job("j-2")));
    let regenerating = plan(&spec(Mode::Recommend, Approval::Manual), &again);
    assert_condition(&regenerating, "Analyzed", TRUE, "Analyzed");
    assert_eq!(regenerating.status.proposal, done.status.proposal);
    assert_eq!(regenerating.status.job, Some(job("j-2")));
    assert_eq!(regenerating.requeue, Requeue::After(30));
}

#[test]
fn waiting_for_the_account_is_not_a_problem_but_the_quota_is() {
    let mut o = observed(Default::default(), original_role(), None);
    o.analyzer = Some(Generation::Queued {
        message: "1 other resource(s) of account 123456789012 first".to_string(),
    });
    let p = plan(&spec(Mode::Recommend, Approval::Manual), &o);
    assert_condition(&p, "Analyzed", UNKNOWN, "WaitingForAccessAnalyzer");
    assert_condition(&p, "Ready", TRUE, "Ready");
    assert_eq!(p.requeue, Requeue::After(30));

    let mut o = observed(Default::default(), original_role(), None);
    o.now = "2025-01-01T23:00:00Z".to_string();
    o.analyzer = Some(Generation::QuotaExceeded {
        message: "ServiceQuotaExceededException: daily limit".to_string(),
    });
    // Drift checks go on meanwhile; with them hours apart, the next look is at 00:00 UTC.
    let mut s = spec(Mode::Recommend, Approval::Manual);
    s.drift.interval = "2h".to_string();
    let p = plan(&s, &o);
    assert_condition(&p, "Analyzed", FALSE, "QuotaExceeded");
    assert_condition(&p, "Ready", FALSE, "QuotaExceeded");
    assert_eq!(p.requeue, Requeue::After(3_600), "until 00:00 UTC");
}

#[test]
fn a_failed_job_is_reported_once_and_kept() {
    let failed = AnalysisJob {
        failure: Some("FAILED: SERVICE_ERROR: trail unreadable".to_string()),
        ..job("j-1")
    };
    let mut o = observed(Default::default(), original_role(), None);
    o.analyzer = Some(Generation::Failed(failed.clone()));
    let p = plan(&spec(Mode::Recommend, Approval::Manual), &o);
    assert_condition(&p, "Analyzed", FALSE, "GenerationFailed");
    assert_condition(&p, "Ready", FALSE, "GenerationFailed");
    assert_eq!(p.status.job, Some(failed.clone()));
    assert!(p.events.iter().any(|e| e.reason == "GenerationFailed"));
    let mut again = next(&p, original_role());
    again.analyzer = Some(Generation::Failed(failed));
    let p = plan(&spec(Mode::Recommend, Approval::Manual), &again);
    assert!(!p.events.iter().any(|e| e.reason == "GenerationFailed"));
}

#[test]
fn access_analyzer_sources_are_checked() {
    let mut s = spec(Mode::Recommend, Approval::Manual);
    s.cloud_trail.s3 = None;
    s.cloud_trail.access_analyzer = Some(crate::controller::crd::AccessAnalyzerSource {
        trail_arn: "arn:aws:cloudtrail:us-east-1:123456789012:trail/main".into(),
        access_role_arn: "arn:aws:iam::123456789012:role/aa".into(),
        regions: vec![],
        all_regions: false,
    });
    s.window = "91d".to_string();
    let message = validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).unwrap_err();
    assert!(message.contains("regions or allRegions"), "{message}");
    assert!(message.contains("at most 90 days"), "{message}");
    s.window = "90d".to_string();
    s.cloud_trail.access_analyzer.as_mut().unwrap().all_regions = true;
    assert_eq!(
        validate(&s, &Limits::default(), &NO_CLUSTER_TRAIL).map(|_| ()),
        Ok(())
    );
}

fn validated(findings: Vec<(&str, &str)>, no_new: bool, not_granted: Option<bool>) -> Validation {
    use crate::controller::crd::{CheckResult, ValidationFinding};
    Validation {
        findings: findings
            .into_iter()
            .map(|(severity, code)| ValidationFinding {
                severity: severity.to_string(),
                code: code.to_string(),
                message: "m".to_string(),
                locations: vec!["Statement[0].Resource (1:2)".to_string()],
            })
            .collect(),
        no_new_access: CheckResult {
            passed: no_new,
            reasons: vec!["New access in the statement with index: 0.".to_string()],
        },
        access_not_granted: not_granted.map(|passed| CheckResult {
            passed,
            reasons: vec!["iam:PassRole".to_string()],
        }),
    }
}

#[test]
fn access_analyzer_gates_block_an_approved_apply() {
    let mut s = spec(Mode::Enforce, Approval::Automatic);
    s.validation.access_analyzer = true;
    let run = |s: &LeastPrivilegeRoleSpec, validation: Option<Validation>| {
        let mut result = analysis(vec![get_orders()]);
        result.validation = validation;
        plan(
            s,
            &observed(Default::default(), original_role(), Some(result)),
        )
    };
    let cases = [
        (None, "AwaitingValidation"),
        (
            Some(validated(
                vec![("SECURITY_WARNING", "PASS_ROLE_WITH_STAR_IN_RESOURCE")],
                true,
                None,
            )),
            "ValidationFindings",
        ),
        (
            Some(validated(vec![("WARNING", "MISSING_VERSION")], false, None)),
            "AccessAnalyzerDisagrees",
        ),
        (
            Some(validated(vec![], true, Some(false))),
            "ForbiddenAccessGranted",
        ),
    ];
    for (validation, reason) in cases {
        let p = run(&s, validation);
        assert!(p.operations.is_empty(), "{reason}: {:#?}", p.operations);
        assert_condition(&p, "Approved", FALSE, reason);
        assert_condition(&p, "Ready", FALSE, reason);
        assert!(
            p.events
                .iter()
                .any(|e| e.reason == reason && e.type_ == EventType::Warning),
            "{reason}: {:?}",
            p.events
        );
    }
    let p = run(
        &s,
        Some(validated(
            vec![("SECURITY_WARNING", "PASS_ROLE_WITH_STAR_IN_RESOURCE")],
            true,
            None,
        )),
    );
    let message = condition(&p, "Approved").message.clone().unwrap();
    assert!(
        message.contains(
            "SECURITY_WARNING PASS_ROLE_WITH_STAR_IN_RESOURCE at Statement[0].Resource (1:2)"
        ),
        "{message}"
    );
    // An allowed code, warnings and passing checks: applied.
    s.validation.allow = vec!["PASS_ROLE_WITH_STAR_IN_RESOURCE".to_string()];
    let p = run(
        &s,
        Some(validated(
            vec![
                ("SECURITY_WARNING", "PASS_ROLE_WITH_STAR_IN_RESOURCE"),
                ("WARNING", "W"),
            ],
            true,
            Some(true),
        )),
    );
    assert_condition(&p, "Approved", TRUE, "Approved");
    assert!(!p.operations.is_empty());
    // Without spec.validation the verdicts are not consulted.
    let p = run(&spec(Mode::Enforce, Approval::Automatic), None);
    assert_condition(&p, "Approved", TRUE, "Approved");
}
