//! Any `simulate --batch` line (policies of every kind × one request with its context): the
//! evaluator decides or the line is refused, never a panic.
#![no_main]

use iam_tailor::cli::evaluate_json_line;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = evaluate_json_line(line);
    }
});
