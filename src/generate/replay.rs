//! Replaying calls against a policy: which of the calls a role made would it deny?
//!
//! The check users judge a proposal by: `iam-tailor replay` over next fortnight's trail, and
//! (to come) the gate before an apply and the shadow period. Calls come as [`Usage`]: each
//! (action, resource) seen, with its count, evaluated as a request with no context keys, so a
//! statement that needs a condition key counts as not matching (a would-be denial, never a
//! hidden grant) — except the keys a use itself was made under (the service a role was passed
//! to): it is asked once for each of their values, and denied if any is. An action used
//! without a resource is asked on `*`.

use crate::policy::{Context, Decision, PolicySet, Request};
use crate::usage::{Conditions, Seen, Usage};
use serde::Serialize;

/// One (action, resource) the policy would deny, with how often and when it was last called.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WouldDeny {
    pub action: String,
    pub resource: String,
    pub decision: Decision,
    pub count: u64,
    pub last_seen: String,
}

/// What a replay found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replay {
    /// Calls replayed.
    pub calls: u64,
    /// Calls the policy would deny.
    pub denied_calls: u64,
    /// Sorted by action, then resource.
    pub would_deny: Vec<WouldDeny>,
}

/// Evaluates every call in `usage` against `policies`.
pub fn replay(usage: &Usage, policies: &PolicySet) -> Replay {
    let mut out = Replay::default();
    for (action, used) in &usage.actions {
        let star = ("*".to_string(), used.seen.clone());
        let calls: Vec<(&String, &Seen)> = if used.resources.is_empty() {
            vec![(&star.0, &star.1)]
        } else {
            used.resources.iter().collect()
        };
        for (pattern, seen) in calls {
            out.calls = out.calls.saturating_add(seen.count);
            // The resource the call named (a key `a*` is kept as the pattern `a${*}`).
            let resource = &*crate::wildcard::unescape_literal(pattern);
            let decision = contexts(used.conditions.get(resource))
                .iter()
                .map(|context| {
                    let principal = None;
                    let request = Request {
                        action,
                        resource,
                        principal,
                        context,
                    };
                    policies.evaluate(&request).decision
                })
                .find(|d| *d != Decision::Allowed)
                .unwrap_or(Decision::Allowed);
            if decision != Decision::Allowed {
                out.denied_calls = out.denied_calls.saturating_add(seen.count);
                out.would_deny.push(WouldDeny {
                    action: action.clone(),
                    resource: pattern.clone(),
                    decision,
                    count: seen.count,
                    last_seen: seen.last_seen.clone(),
                });
            }
        }
    }
    out
}

/// One request context per combination of the values a use was made under (one context
/// without keys for an unconditional use).
fn contexts(conditions: Option<&Conditions>) -> Vec<Context> {
    let mut out = vec![Context::new()];
    for (key, values) in conditions.into_iter().flatten() {
        out = (out.iter())
            .flat_map(|context| {
                values.iter().map(move |value| {
                    let mut next = context.clone();
                    next.insert(key, value.clone());
                    next
                })
            })
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    const T: &str = "2026-11-20T10:00:00Z";

    #[test]
    fn counts_calls_and_names_what_would_be_denied() {
        let mut usage = Usage::default();
        for _ in 0..3 {
            usage.record_use("s3:GetObject", "arn:aws:s3:::b/orders/2026/12/01/x", T);
        }
        usage.record_use("s3:GetObject", "arn:aws:s3:::other/x", T);
        usage.record_use("s3:ListAllMyBuckets", "*", T);
        let policy = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
                "Action":["s3:GetObject"],"Resource":"arn:aws:s3:::b/orders/*"},
                {"Effect":"Deny","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#,
        )
        .unwrap();
        let set = PolicySet::builder().identity(policy).build();
        let r = replay(&usage, &set);
        assert_eq!((r.calls, r.denied_calls), (5, 2));
        let denied: Vec<(&str, &str, Decision)> = (r.would_deny.iter())
            .map(|w| (w.action.as_str(), w.resource.as_str(), w.decision))
            .collect();
        assert_eq!(
            denied,
            [
                (
                    "s3:GetObject",
                    "arn:aws:s3:::other/x",
                    Decision::ImplicitlyDenied
                ),
                ("s3:ListAllMyBuckets", "*", Decision::ExplicitlyDenied),
            ]
        );
    }
}
