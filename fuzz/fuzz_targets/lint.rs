//! Any text, as each kind of policy: the linter returns findings, never panics; as a role's
//! trust policy, the trust analysis answers within its bounds.
#![no_main]

use iam_tailor::policy::lint::{PolicyType, lint};
use iam_tailor::policy::trust::{MAX_CONDITION_CHARS, MAX_CONDITIONS_SHOWN, analyze};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for kind in [
        PolicyType::Identity,
        PolicyType::Resource,
        PolicyType::Trust,
    ] {
        let _ = lint(text, kind);
    }
    let allowed = BTreeSet::from(["444455556666".to_string()]);
    if let Ok(trust) = analyze(text, "arn:aws:iam::111122223333:role/app", Some(&allowed)) {
        for p in &trust.principals {
            assert!(p.conditions.len() <= MAX_CONDITIONS_SHOWN + 1);
            assert!(
                (p.conditions.iter()).all(|c| c.chars().count() <= MAX_CONDITION_CHARS + 1)
            );
            assert!(!p.actions.is_empty());
        }
    }
});
