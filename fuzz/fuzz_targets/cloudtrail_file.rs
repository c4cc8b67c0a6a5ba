//! Any bytes as a CloudTrail file (plain or gzip; `Records`, an array or JSON Lines): read,
//! selected and mapped to usage, or refused with an error, never a panic. Scanned with and
//! without a principal filter and time window, so selection and mapping both run.
#![no_main]

use iam_tailor::cloudtrail::{PrincipalFilter, ScanOptions, scan_file_bytes};
use iam_tailor::usage::Usage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let everything = ScanOptions {
        principal: None,
        from: None,
        to: None,
        strict: false,
        threads: 1,
        progress: false,
    };
    let one_role = ScanOptions {
        principal: Some(PrincipalFilter::parse("arn:aws:iam::123456789012:role/app").unwrap()),
        from: Some(1_600_000_000_000_000_000),
        to: Some(1_900_000_000_000_000_000),
        strict: true,
        ..everything.clone()
    };
    for options in [&everything, &one_role] {
        let mut usage = Usage::default();
        let _ = scan_file_bytes("fuzz.json", data, options, &mut usage);
    }
});
