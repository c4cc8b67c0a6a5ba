//! Any bytes as a signal queue message: whoever can send to the queue controls them. Read as
//! an event or refused with a reason, never a panic; a refused call is never use, and what it
//! asked for stays within the usage bounds.
#![no_main]

use iam_tailor::cloudtrail::event::{Signal, read_event};
use iam_tailor::usage::MAX_DISTINCT_CALLS;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A fixed clock: the same input is read the same way on every run.
    let now = iam_tailor::time::parse_date("2026-12-01T00:00:00Z").unwrap();
    match read_event(text, now) {
        Ok(Signal::Refused { principal, usage }) => {
            assert!(principal.contains(":role/"), "{principal}");
            assert!(usage.actions.is_empty(), "a refusal counted as use");
            assert!(usage.denied_grants.len() <= MAX_DISTINCT_CALLS);
        }
        Ok(_) => {}
        Err(reason) => assert!(!reason.is_empty()),
    }
});
