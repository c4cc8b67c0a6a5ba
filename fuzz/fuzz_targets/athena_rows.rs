//! Any text as an Athena result (rows of the usage query's columns, each value any string or
//! NULL): a table's contents are as untrusted as the files behind it. Turned into usage, or
//! counted as malformed, never a panic; and a row's calls count as that many identical calls.
#![no_main]

use iam_tailor::aws::athena::ResultRows;
use iam_tailor::cloudtrail::ScanOptions;
use iam_tailor::usage::Usage;
use iam_tailor::sources::athena::{COLUMNS, add_rows};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Rows separated by newlines, values by tabs; `\N` is NULL.
    let rows: Vec<Vec<Option<String>>> = text
        .lines()
        .map(|line| {
            let mut values: Vec<Option<String>> = line
                .split('\t')
                .map(|v| (v != "\\N").then(|| v.to_string()))
                .collect();
            values.resize(COLUMNS.len(), None);
            values
        })
        .collect();
    let result = ResultRows {
        columns: COLUMNS.iter().map(|c| c.to_string()).collect(),
        rows,
    };
    let mut usage = Usage::default();
    add_rows(&result, &ScanOptions::default(), &mut usage).unwrap();
    let calls: u64 = (result.rows.iter())
        .map(|row| {
            (row[12].as_deref())
                .and_then(|c| c.parse::<u64>().ok())
                .filter(|c| *c > 0)
                .unwrap_or(1)
        })
        .fold(0u64, |a, b| a.saturating_add(b));
    // Every call is scanned, whether it was read or skipped.
    if calls < u64::MAX / 2 {
        assert_eq!(usage.stats.records_scanned, calls);
    }
});
