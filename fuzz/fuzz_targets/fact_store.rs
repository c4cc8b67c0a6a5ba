//! Any bytes as a fact store partition object: the store's bucket is as untrusted as the trail.
//! Decoded into bounded usage, or refused as malformed (naming the object), never a panic; and
//! what decodes writes back to an object that decodes to the same usage.
#![no_main]

use iam_tailor::sources::store::{decode, encode};
use libfuzzer_sys::fuzz_target;

static UNWIND: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    // `decode` turns a panic of the Parquet reader into the object's error: let it unwind to
    // there (the default hook) instead of libFuzzer's hook aborting first. Any other panic still
    // unwinds to libfuzzer-sys, which aborts.
    UNWIND.call_once(|| drop(std::panic::take_hook()));
    let key = "account=111122223333/day=2026-11-20/facts.parquet";
    match decode(key, data.to_vec()) {
        Err(error) => assert_eq!(error.key, key),
        Ok(principals) => {
            let again = decode(key, encode(&principals)).expect("what was written reads back");
            assert_eq!(again, principals);
        }
    }
});
