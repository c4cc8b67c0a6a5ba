//! The TrustOK condition: who can assume the role, from the trust policy IAM has now
//! ([`crate::policy::trust`]), checked against `spec.trust.allowedAccounts` or the tenancy
//! configuration's accounts. Observation only: nothing here writes to IAM.

use super::EventType;
use super::builder::{Builder, ConditionType, FALSE, TRUE, UNKNOWN};
use crate::controller::crd::{REPORT_LIMIT, TrustFinding, TrustReport, TrustedPrincipal};
use crate::controller::spec::ValidSpec;
use crate::policy::trust::{Trust, analyze};
use crate::role::LiveRole;
use std::collections::BTreeSet;

/// At most this many new findings are spelled out in the Warning Event (whose note Kubernetes
/// caps at 1 kB); the status lists them all.
const MAX_FINDINGS_NOTED: usize = 3;

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

pub(super) fn trust_ok(b: &mut Builder, spec: &ValidSpec, live: &LiveRole) {
    let Some(text) = &live.trust_policy else {
        b.status.trust = None;
        b.set(
            ConditionType::TrustOK,
            UNKNOWN,
            "TrustPolicyUnread",
            "IAM returned no trust policy for the role",
        );
        return;
    };
    let (allowed, from) =
        allowed_accounts(&spec.trust.allowed_accounts, &b.observed.trusted_accounts);
    let trust = match analyze(text, &live.arn, from.map(|_| &allowed)) {
        Ok(trust) => trust,
        Err(e) => {
            b.status.trust = None;
            let message = format!("the role's trust policy could not be analyzed: {e}");
            b.set(
                ConditionType::TrustOK,
                UNKNOWN,
                "TrustPolicyNotAnalyzed",
                message,
            );
            return;
        }
    };
    let report = report(&trust, from);
    let before: BTreeSet<(String, String)> = (b.observed.previous.trust.iter())
        .flat_map(|t| &t.findings)
        .map(|f| (f.code.clone(), f.message.clone()))
        .collect();
    let new: Vec<&TrustFinding> = (report.findings.iter())
        .filter(|f| !before.contains(&(f.code.clone(), f.message.clone())))
        .collect();
    // One Event for all that is new: Kubernetes folds Events of one reason into one anyway.
    if !new.is_empty() {
        let listed: Vec<String> = (new.iter().take(MAX_FINDINGS_NOTED))
            .map(|f| format!("{}: {}", f.code, f.message))
            .collect();
        let more = match new.len().saturating_sub(MAX_FINDINGS_NOTED) {
            0 => String::new(),
            n => format!("; {n} more in status.trust.findings"),
        };
        let note = format!(
            "{} new in the role's trust policy: {}{more}",
            plural(new.len(), "finding"),
            listed.join("; ")
        );
        b.event(EventType::Warning, "TrustFinding", note);
    }
    let who: Vec<String> = (report.principals.iter().take(3))
        .map(|p| format!("{} {}", p.kind, p.principal))
        .collect();
    let more = if report.principals_count > 3 {
        ", …"
    } else {
        ""
    };
    if report.findings.is_empty() {
        let message = format!(
            "{} principals may assume the role: {}{more}",
            report.principals_count,
            who.join(", ")
        );
        b.set(ConditionType::TrustOK, TRUE, "TrustOK", message);
    } else {
        let codes: BTreeSet<&str> = report.findings.iter().map(|f| f.code.as_str()).collect();
        let message = format!(
            "{} findings in the role's trust policy ({}); see status.trust",
            report.findings_count,
            codes.into_iter().collect::<Vec<_>>().join(", ")
        );
        b.set(ConditionType::TrustOK, FALSE, "TrustFindings", message);
    }
    b.status.trust = Some(report);
}

/// The accounts the trust policy may name besides the role's own, and where that list comes
/// from (`None`: no list). The tenancy configuration's `trustedAccounts` are the cluster's
/// zone of trust: a namespace's `spec.trust.allowedAccounts` may narrow it, never widen it
/// (an account only the spec names is still a finding).
fn allowed_accounts(
    spec: &[String],
    tenancy: &[String],
) -> (BTreeSet<String>, Option<&'static str>) {
    let tenancy: BTreeSet<String> = tenancy.iter().cloned().collect();
    let spec: BTreeSet<String> = spec.iter().cloned().collect();
    match (spec.is_empty(), tenancy.is_empty()) {
        (true, true) => (BTreeSet::new(), None),
        (true, false) => (tenancy, Some("tenancy trustedAccounts")),
        (false, true) => (spec, Some("spec.trust.allowedAccounts")),
        (false, false) => (
            spec.intersection(&tenancy).cloned().collect(),
            Some("spec.trust.allowedAccounts within tenancy trustedAccounts"),
        ),
    }
}

fn report(trust: &Trust, allowed_from: Option<&str>) -> TrustReport {
    TrustReport {
        principals: (trust.principals.iter().take(REPORT_LIMIT))
            .map(|p| TrustedPrincipal {
                kind: p.kind.as_str().to_string(),
                principal: p.principal.clone(),
                account: p.account.clone(),
                actions: p.actions.clone(),
                conditions: p.conditions.clone(),
                unconditional: p.unconditional,
            })
            .collect(),
        principals_count: trust.principals.len() as u64,
        findings: (trust.findings.iter().take(REPORT_LIMIT))
            .map(|f| TrustFinding {
                severity: f.severity.as_str().to_string(),
                code: f.code.to_string(),
                message: f.message.clone(),
                path: f.path.clone(),
            })
            .collect(),
        findings_count: trust.findings.len() as u64,
        allowed_accounts_from: allowed_from.map(str::to_string),
    }
}
