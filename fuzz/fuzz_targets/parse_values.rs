//! Any text through every small parser: dates, durations, `--since`, principals, ARNs, CIDRs,
//! numbers, `keep` entries. Each returns a value or an error, never panics. And as an ARN to
//! generalize: never a panic, and every resource it stands for still matches a pattern.
#![no_main]

use iam_tailor::catalog::catalog;
use iam_tailor::catalog::collapse::generalize;
use iam_tailor::catalog::volatile::first_volatile;
use iam_tailor::cloudtrail::PrincipalFilter;
use iam_tailor::generate::Keep;
use iam_tailor::policy::values::{Cidr, parse_number};
use iam_tailor::time::{parse_date, parse_duration, parse_since};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_date(text);
    let _ = parse_duration(text, "smhdw");
    let _ = parse_since(text, 1_800_000_000_000_000_000);
    let _ = PrincipalFilter::parse(text);
    let _ = catalog().resource_type_of_arn(text);
    let _ = Cidr::parse(text);
    let _ = parse_number(text);
    let _ = text.parse::<Keep>();
    let _ = first_volatile(text);
    let arns = std::collections::BTreeSet::from([text.to_string()]);
    for action in [
        "s3:GetObject",
        "lambda:InvokeFunction",
        "logs:PutLogEvents",
        "ecs:RunTask",
    ] {
        let patterns = generalize(action, &arns, 0);
        for (pattern, p) in &patterns {
            for source in &p.sources {
                assert!(
                    patterns
                        .keys()
                        .any(|k| iam_tailor::wildcard::matches(k, source)),
                    "{source} is not covered by {patterns:?} (via {pattern})"
                );
            }
        }
    }
});
