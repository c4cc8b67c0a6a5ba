//! Any bytes as a CloudTrail file (plain or gzip; `Records`, an array or JSON Lines): read,
//! selected and mapped to usage, or refused with an error, never a panic. Scanned with and
//! without a principal filter and time window, so selection and mapping both run; and into the
//! operator's facts (usage by day and principal), which must answer each principal in them as
//! a scan for that principal alone does.
#![no_main]

use iam_tailor::cloudtrail::{PrincipalFilter, ScanOptions, scan_file_bytes};
use iam_tailor::time::Day;
use iam_tailor::usage::Usage;
use iam_tailor::sources::facts::FileFacts;
use libfuzzer_sys::fuzz_target;

/// Every window the facts can answer: all of CloudTrail's years.
const FROM: i128 = 0;
const TO: i128 = 4_102_444_800_000_000_000; // 2100-01-01

fuzz_target!(|data: &[u8]| {
    let everything = ScanOptions {
        principal: None,
        from: None,
        to: None,
        strict: false,
        threads: 1,
        progress: false,
        ..ScanOptions::default()
    };
    let one_role = ScanOptions {
        principal: Some(PrincipalFilter::parse("arn:aws:iam::123456789012:role/app").unwrap()),
        from: Some(1_600_000_000_000_000_000),
        to: Some(1_900_000_000_000_000_000),
        strict: true,
        // Records past it are from the future: skipped, counted.
        not_after: Some(1_800_000_000_000_000_000),
        ..everything.clone()
    };
    for options in [&everything, &one_role] {
        let mut usage = Usage::default();
        let _ = scan_file_bytes("fuzz.json", data, options, &mut usage);
    }
    let mut facts = FileFacts::default();
    if scan_file_bytes("fuzz.json", data, &everything, &mut facts).is_err() {
        return;
    }
    for key in facts.principals().into_iter().take(4) {
        let Ok(principal) = PrincipalFilter::parse(key) else {
            continue;
        };
        let alone = ScanOptions {
            principal: Some(principal.clone()),
            from: Some(FROM),
            to: Some(TO),
            ..everything.clone()
        };
        let mut scanned = Usage::default();
        scan_file_bytes("fuzz.json", data, &alone, &mut scanned).unwrap();
        // The facts' days inside the window, as the operator answers a window.
        let mut answered = Usage::default();
        let days = Day::of(FROM)..Day::of(TO);
        for principals in facts.days.range(days).map(|(_, p)| p) {
            for (_, found) in principals.iter().filter(|(k, _)| principal.matches_key(k)) {
                answered.merge(found.clone());
            }
        }
        // Past the bounds, collapses depend on how usage was split: not comparable.
        let bounded = |u: &Usage| {
            u.stats.skipped.keys().any(|k| k.starts_with("too-many"))
                || u.notes.iter().any(|n| n.contains("distinct resources"))
        };
        if bounded(&scanned) || bounded(&answered) {
            continue;
        }
        assert_eq!(answered.actions, scanned.actions, "{key}");
        assert_eq!(answered.denied, scanned.denied, "{key}");
        assert_eq!(answered.unmapped, scanned.unmapped, "{key}");
        assert_eq!(answered.notes, scanned.notes, "{key}");
        assert_eq!(
            answered.stats.records_matched, scanned.stats.records_matched,
            "{key}"
        );
    }
});
