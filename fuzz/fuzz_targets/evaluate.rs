//! Any `simulate --requests` line (policies of every kind × one request with its context): the
//! evaluator decides or the line is refused, never a panic; and the fast path (documents new,
//! then known by their bytes) agrees with the serde path wherever it takes the line.
#![no_main]

use iam_tailor::cli::evaluate_json_line_each_way;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        let (cold, warm, slow) = evaluate_json_line_each_way(line);
        for fast in [cold, warm].into_iter().flatten() {
            match (&fast, &slow) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{line}"),
                (Err(_), Err(_)) => {}
                _ => panic!("fast {fast:?} but serde {slow:?}: {line}"),
            }
        }
    }
});
