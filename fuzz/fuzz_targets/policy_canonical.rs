//! Any text: the policy parser returns a document or an error, never panics; a parsed
//! document's canonical JSON parses again to the same canonical JSON (the revision is stable).
#![no_main]

use iam_tailor::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = Policy::parse(text) else {
        return;
    };
    let canonical = policy.canonical_json();
    let again = Policy::parse(&canonical).expect("canonical JSON parses");
    assert_eq!(
        again.canonical_json(),
        canonical,
        "canonical form is a fixed point"
    );
});
