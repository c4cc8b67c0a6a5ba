//! Any text, as each kind of policy: the linter returns findings, never panics.
#![no_main]

use iam_tailor::policy::lint::{PolicyType, lint};
use libfuzzer_sys::fuzz_target;

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
});
