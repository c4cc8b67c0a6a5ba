//! The parts of a resource name that change with time or instance: dates, UUIDs, long ids.
//!
//! A usage-based policy that lists `orders/2026/11/20/*` denies the application on the 21st.
//! [`first_volatile`] finds where such a part starts in a resource path, so the generator can
//! keep the stable text before it (`orders/`, `dt=`, `ecs/web/`) and grant `*` from there.
//! Recognition works on runs of ASCII letters and digits; everything else separates them.
//! It is deliberately narrow: a part it does not recognize stays as seen (a denial the shadow
//! period or the restore catches), never a wider grant than the data supports.

use serde::Serialize;
use std::ops::Range;

/// What kind of changing part a resource name held; listed in the report for the reviewer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Volatile {
    /// `2026/11/20`, `2026-11-20`, `dt=…`, `year=2026/month=11`, `20261120T1530Z`, epoch times.
    Date,
    /// `8-4-4-4-12` hex.
    Uuid,
    /// 16 or more hex digits (ECS task ids, hashes).
    HexId,
    /// 5 or more decimal digits, except 12 (an account id is a boundary, never generalized).
    NumericId,
    /// `i-…`, `vol-…`, `eni-…`.
    Ec2Id,
    /// A Lambda function's version or alias.
    LambdaQualifier,
    /// A revision number after a resource's name (`task-definition/app:12`).
    Revision,
}

impl Volatile {
    /// The reviewer's words for it.
    pub fn describe(self) -> &'static str {
        match self {
            Volatile::Date => "date segments",
            Volatile::Uuid => "UUIDs",
            Volatile::HexId => "hex ids",
            Volatile::NumericId => "numeric ids",
            Volatile::Ec2Id => "EC2 resource ids",
            Volatile::LambdaQualifier => "Lambda qualifiers",
            Volatile::Revision => "revision numbers",
        }
    }
}

/// Keys whose value is a time, whatever its shape: `dt=2026-11-20`, `hour=05`.
const TIME_KEYS: &[&str] = &[
    "date",
    "day",
    "dt",
    "ds",
    "hour",
    "minute",
    "month",
    "time",
    "timestamp",
    "ts",
    "week",
    "year",
];

/// EC2 id prefixes treated as instance-like: created and replaced as the workload runs.
const EC2_ID_PREFIXES: &[&str] = &["eni", "i", "vol"];

/// Where the first changing part of `path` starts, and what it is.
pub fn first_volatile(path: &str) -> Option<(usize, Volatile)> {
    let runs = runs(path);
    (0..runs.len()).find_map(|k| classify(path, &runs, k).map(|v| (runs[k].start, v)))
}

/// Is `name` (a whole resource name, `i-0abc…`) an instance-like EC2 id?
pub fn is_ec2_id(name: &str) -> bool {
    let runs = runs(name);
    runs.len() == 2
        && runs[0].start == 0
        && runs[1].end == name.len()
        && matches!(classify(name, &runs, 0), Some(Volatile::Ec2Id))
}

/// The alphanumeric runs of `s`.
fn runs(s: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, b) in s.bytes().enumerate() {
        match (b.is_ascii_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(st)) => {
                out.push(st..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(st) = start {
        out.push(st..s.len());
    }
    out
}

/// What run `k` starts, if it starts a changing part.
fn classify(s: &str, runs: &[Range<usize>], k: usize) -> Option<Volatile> {
    let run = &s[runs[k].clone()];
    let sep_before = &s[..runs[k].start];
    let between = |a: usize| &s[runs[a].end..runs[a + 1].start];
    let next = |a: usize| runs.get(a + 1).map(|r| &s[r.clone()]);
    // `key=value` where the key names a time.
    if sep_before.ends_with('=') && k > 0 && runs[k - 1].end + 1 == runs[k].start {
        let key = &s[runs[k - 1].clone()];
        if TIME_KEYS.iter().any(|t| t.eq_ignore_ascii_case(key)) {
            return Some(Volatile::Date);
        }
    }
    if is_compact_date(run) {
        return Some(Volatile::Date);
    }
    if is_year(run) {
        // A year followed by a month (`2026/11`, `2026-11-20`), or a path segment of its own.
        let month_follows = next(k).is_some_and(is_month) && between(k).len() == 1;
        let own_segment = sep_before.is_empty() || sep_before.ends_with(['/', ':']);
        let segment_ends = s[runs[k].end..].is_empty() || s[runs[k].end..].starts_with('/');
        if month_follows || (own_segment && segment_ends) {
            return Some(Volatile::Date);
        }
    }
    if is_uuid_at(s, runs, k) {
        return Some(Volatile::Uuid);
    }
    if EC2_ID_PREFIXES.contains(&run)
        && next(k).is_some_and(|id| is_hex(id) && matches!(id.len(), 8 | 17))
        && between(k) == "-"
    {
        return Some(Volatile::Ec2Id);
    }
    let digits = run.bytes().all(|b| b.is_ascii_digit());
    if digits && is_epoch(run) {
        return Some(Volatile::Date);
    }
    if digits && run.len() >= 5 && run.len() != 12 {
        return Some(Volatile::NumericId);
    }
    if run.len() >= 16 && is_hex(run) && run.bytes().any(|b| b.is_ascii_digit()) {
        return Some(Volatile::HexId);
    }
    None
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn number(s: &str) -> Option<u64> {
    (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn is_year(s: &str) -> bool {
    s.len() == 4 && number(s).is_some_and(|y| (1990..=2099).contains(&y))
}

fn is_month(s: &str) -> bool {
    (1..=2).contains(&s.len()) && number(s).is_some_and(|m| (1..=12).contains(&m))
}

/// `20261120`, `20261120T1530Z`, `202611201530`: a date, perhaps with a time.
fn is_compact_date(s: &str) -> bool {
    let (Some(date), rest) = (s.get(..8), s.get(8..).unwrap_or("")) else {
        return false;
    };
    let valid = is_year(&date[..4])
        && is_month(&date[4..6])
        && number(&date[6..8]).is_some_and(|d| (1..=31).contains(&d));
    let time = rest.strip_prefix(['T', 't']).unwrap_or(rest);
    let time = time.strip_suffix(['Z', 'z']).unwrap_or(time);
    valid && (time.is_empty() || (time.len() <= 6 && number(time).is_some()))
}

/// Seconds or milliseconds since 1970 between 2001 and 2100.
fn is_epoch(s: &str) -> bool {
    match (s.len(), number(s)) {
        (10, Some(n)) => (1_000_000_000..4_102_444_800).contains(&n),
        (13, Some(n)) => (1_000_000_000_000..4_102_444_800_000).contains(&n),
        _ => false,
    }
}

/// Runs `k..k+5` spell `8-4-4-4-12` hex joined by single dashes.
fn is_uuid_at(s: &str, runs: &[Range<usize>], k: usize) -> bool {
    let Some(parts) = runs.get(k..k + 5) else {
        return false;
    };
    let lens = [8, 4, 4, 4, 12];
    parts
        .iter()
        .zip(lens)
        .all(|(r, n)| r.len() == n && is_hex(&s[r.clone()]))
        && parts.windows(2).all(|w| &s[w[0].end..w[1].start] == "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(path: &str) -> Option<(&str, Volatile)> {
        first_volatile(path).map(|(i, v)| (&path[..i], v))
    }

    #[test]
    fn dates_in_the_common_layouts() {
        for (path, stable) in [
            ("orders/2026/11/20/a.json", "orders/"),
            ("ingest/2026/12/x", "ingest/"),
            ("ingest/dt=2026-12-31/part.parquet", "ingest/dt="),
            ("t/year=2026/month=11/day=20/f", "t/year="),
            ("exports/20261120T1530Z.csv", "exports/"),
            ("exports/report-2026-11-20.csv", "exports/report-"),
            ("reports/2026/annual.pdf", "reports/"),
            ("snap/1764633600/x", "snap/"),
            ("snap/1764633600123.json", "snap/"),
            ("hourly/hour=07/x", "hourly/hour="),
        ] {
            assert_eq!(cut(path), Some((stable, Volatile::Date)), "{path}");
        }
    }

    #[test]
    fn ids_of_instances_and_tasks() {
        let uuid = "logs/3f2b8c1e-9d4a-4e6f-8a7b-1c2d3e4f5a6b/out";
        assert_eq!(cut(uuid), Some(("logs/", Volatile::Uuid)));
        let task = "ecs/web/0f1e2d3c4b5a69788796a5b4c3d2e1f0";
        assert_eq!(cut(task), Some(("ecs/web/", Volatile::HexId)));
        assert_eq!(
            cut("agent/i-0123456789abcdef0"),
            Some(("agent/", Volatile::Ec2Id))
        );
        assert_eq!(
            cut("batch/part-00042.gz"),
            Some(("batch/part-", Volatile::NumericId))
        );
        assert!(is_ec2_id("i-0123456789abcdef0"));
        assert!(is_ec2_id("vol-0123abcd"));
        assert!(!is_ec2_id("sg-0123abcd"), "security groups are stable");
        assert!(!is_ec2_id("i-0123456789abcdef0x"));
    }

    #[test]
    fn stable_names_stay() {
        for path in [
            "static/index.html",
            "config/app.yaml",
            // An account id in a key is an account boundary.
            "AWSLogs/111122223333/CloudTrail/x",
            // Short numbers, versions and words that happen to be hex.
            "v2/api/1234/x",
            "deadbeef/cafe",
            "release-1.2.3/x",
            // A year inside a name is not a date part.
            "model2026x/y",
            "port/2026x",
        ] {
            assert_eq!(cut(path), None, "{path}");
        }
    }
}
