//! Time, in one place: the crate's one timestamp type ([`Instant`], nanoseconds since the
//! epoch), its one date parser (IAM's condition-date rules, which also read CloudTrail's
//! `eventTime`), its one duration parser, the UTC [`Day`], and RFC 3339 output.

/// Nanoseconds since the Unix epoch (i128: IAM accepts years from -292275054 to 292278993).
pub type Instant = i128;

const NANOS: i128 = 1_000_000_000;

/// Parses a condition date: ISO 8601 (`2017-07-01T00:00:00Z`, `2016-12-13T21:20:37.593194+00:00`,
/// a bare `2019-07-01`) or epoch seconds (`1500000000`). Anything else is `None`.
pub fn parse_date(text: &str) -> Option<Instant> {
    // Every form is ASCII; the parts below are cut by byte offsets.
    if !text.is_ascii() {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains('t') || lower.contains('-') {
        parse_iso8601(&lower)
    } else {
        let secs: i64 = text.parse().ok()?;
        (secs >= 0).then(|| secs as i128 * NANOS)
    }
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 18 {
        return None;
    }
    s.parse().ok()
}

fn parse_iso8601(s: &str) -> Option<Instant> {
    let (date, time) = match s.split_once('t') {
        Some((d, t)) => (d, t),
        None => (s, ""),
    };
    let (negative, date) = match date.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, date),
    };
    let mut parts = date.split('-');
    let year = digits(parts.next()?)?;
    let year = if negative { -year } else { year };
    if !(-292_275_054..=292_278_993).contains(&year) {
        return None;
    }
    let month = parts.next().map_or(Some(1), digits)?;
    let day = parts.next().map_or(Some(1), digits)?;
    if parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }

    // Time zone: `z`, or `+HH`, `-HH`, `+HH:MM`, `+HHMM` at the end of the time part.
    let (clock, offset_secs) = if let Some(c) = time.strip_suffix('z') {
        (c, 0)
    } else if let Some(pos) = time.rfind(['+', '-']) {
        let sign = if time.as_bytes()[pos] == b'-' { -1 } else { 1 };
        let tz = &time[pos + 1..];
        let (h, m) = match tz.len() {
            2 => (tz, "00"),
            4 => (&tz[..2], &tz[2..]),
            5 if tz.as_bytes()[2] == b':' => (&tz[..2], &tz[3..]),
            _ => return None,
        };
        let (h, m) = (digits(h)?, digits(m)?);
        if h > 23 || m > 59 {
            return None;
        }
        (&time[..pos], sign * (h * 3600 + m * 60))
    } else {
        (time, 0)
    };

    let mut clock_parts = clock.split(':');
    let hours = match clock_parts.next() {
        None | Some("") => 0,
        Some(h) => digits(h)?,
    };
    let minutes = clock_parts.next().map_or(Some(0), digits)?;
    let (seconds, nanos) = match clock_parts.next() {
        None => (0, 0),
        Some(sec) => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
            let nanos = if frac.is_empty() {
                0
            } else if frac.len() <= 9 {
                digits(frac)? * 10i64.pow(9 - frac.len() as u32)
            } else {
                return None;
            };
            (digits(whole)?, nanos)
        }
    };
    if clock_parts.next().is_some() || hours > 23 || minutes > 59 || seconds > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day) as i128;
    let secs = days * 86_400 + (hours * 3600 + minutes * 60 + seconds - offset_secs) as i128;
    Some(secs * NANOS + nanos as i128)
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The time now.
pub fn now() -> Instant {
    k8s_openapi::jiff::Timestamp::now().as_nanosecond()
}

/// `nanos` as RFC 3339 to the second (`2026-11-20T10:00:00Z`), what statuses and reports show.
pub fn rfc3339(nanos: Instant) -> String {
    k8s_openapi::jiff::Timestamp::from_nanosecond(nanos)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// `90d`, `5m`, … in seconds; `units` lists the suffixes allowed. Zero is not a duration.
pub fn parse_duration(text: &str, units: &str) -> Option<u64> {
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || !units.contains(unit) {
        return None;
    }
    let per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    digits
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)?
        .checked_mul(per)
}

/// The instant `text` (`90d`, `12h`, `30m`, `2w`) before `now`.
pub fn parse_since(text: &str, now: Instant) -> Result<Instant, String> {
    let text = text.trim();
    parse_duration(text, "mhdw")
        .and_then(|seconds| now.checked_sub(i128::from(seconds) * NANOS))
        .ok_or_else(|| format!("`{text}` is not a duration like 90d, 12h, 30m or 2w"))
}

/// A calendar day (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

impl Day {
    /// The UTC day containing `nanos` since the epoch.
    pub fn of(nanos: i128) -> Day {
        let days = nanos.div_euclid(86_400 * 1_000_000_000) as i64;
        // H. Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Day { year, month, day }
    }

    /// The days from the one containing `from` to the one containing `to` (exclusive bound).
    pub fn range(from: i128, to: i128) -> Vec<Day> {
        const DAY: i128 = 86_400 * 1_000_000_000;
        let mut out = Vec::new();
        let mut t = from.div_euclid(DAY) * DAY;
        while t < to {
            out.push(Day::of(t));
            t += DAY;
        }
        out
    }

    /// `YYYY/MM/DD/`, as CloudTrail's keys and Hive-less layouts name a day.
    pub fn path(&self) -> String {
        format!("{:04}/{:02}/{:02}/", self.year, self.month, self.day)
    }

    /// The day of a CloudTrail `eventTime`: read straight from CloudTrail's fixed
    /// `YYYY-MM-DDTHH:MM:SSZ` form (checked field by field, without the general parser, since
    /// every record of a trail goes through here), else parsed as any date; `None` when it is
    /// not one.
    pub fn of_event_time(time: &str) -> Option<Day> {
        let b = time.as_bytes();
        let fixed = b.len() == 20
            && (b[4], b[7], b[10], b[13], b[16], b[19]) == (b'-', b'-', b'T', b':', b':', b'Z');
        if !fixed {
            return parse_date(time).map(Day::of);
        }
        let number = |at: usize, len: usize| -> Option<u32> {
            let digits = &b[at..at + len];
            digits
                .iter()
                .all(u8::is_ascii_digit)
                .then(|| (digits.iter()).fold(0, |n, d| n * 10 + u32::from(d - b'0')))
        };
        let (year, month, day) = (number(0, 4)?, number(5, 2)?, number(8, 2)?);
        let (hour, minute, second) = (number(11, 2)?, number(14, 2)?, number(17, 2)?);
        let leap =
            year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (day >= 1 && day <= days_in_month && hour < 24 && minute < 60 && second < 60).then_some(
            Day {
                year: i64::from(year),
                month,
                day,
            },
        )
    }

    /// The day's first instant.
    pub fn start(&self) -> Instant {
        i128::from(self.since_epoch()) * 86_400 * NANOS
    }

    /// Days since 1970-01-01.
    pub fn since_epoch(&self) -> i64 {
        days_from_civil(self.year, i64::from(self.month), i64::from(self.day))
    }

    /// `YYYY-MM-DD`.
    pub fn iso(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_follow_iam_rules() {
        let z = parse_date("2017-07-01T00:00:00Z").unwrap();
        assert_eq!(z, 1_498_867_200 * NANOS);
        assert_eq!(parse_date("1498867200"), Some(z));
        assert_eq!(parse_date("2017-07-01T02:00:00+02:00"), Some(z));
        assert_eq!(parse_date("2017-06-30T19:00:00-05:00"), Some(z));
        assert_eq!(parse_date("2017-07-01"), Some(z));
        assert!(parse_date("2016-12-13T21:20:37.593194+00:00").is_some());
        assert!(parse_date("2016-12-13t2:00:00.593194+23").is_some());
        assert!(parse_date("01T").is_some());
        assert!(parse_date("-292275054").is_some());
        for bad in [
            "sdfdsf",
            "234-13",
            "2016-12-13t2:00:00.593194+1",
            "2016-12-13t2:00:00.1999999999+10:59",
            "9223372036854775808",
            "2017-07-01T24:00:00Z",
            // Multi-byte characters where the parser cuts by offset (once a panic).
            "2026-11-01T00:00:00+aé1",
            "2026-11-01T00:00:00+é:1",
            "2026-11-01T00:00:0é",
            "é",
        ] {
            assert!(parse_date(bad).is_none(), "{bad} should be rejected");
        }
    }

    #[test]
    fn days_cover_the_window() {
        let d = |s: &str| parse_date(s).unwrap();
        let days = Day::range(d("2024-02-28T23:00:00Z"), d("2024-03-01T00:00:01Z"));
        let names: Vec<String> = days.iter().map(Day::path).collect();
        assert_eq!(names, ["2024/02/28/", "2024/02/29/", "2024/03/01/"]);
        assert_eq!(
            Day::of(d("1969-12-31T23:59:59Z")),
            Day {
                year: 1969,
                month: 12,
                day: 31
            }
        );
        assert!(Day::range(d("2024-01-02T00:00:00Z"), d("2024-01-02T00:00:00Z")).is_empty());
        assert_eq!(days[1].iso(), "2024-02-29");
    }

    #[test]
    fn event_time_days_agree_with_the_parser() {
        for time in [
            "2026-11-20T23:59:59Z",
            "2024-02-29T00:00:00Z",
            "1999-12-31T12:00:00Z",
            "2026-11-20T23:59:59+01:00",
            "2026-11-20",
        ] {
            assert_eq!(
                Day::of_event_time(time),
                parse_date(time).map(Day::of),
                "{time}"
            );
        }
        for bad in [
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-11-20T24:00:00Z",
            "2026-11-20T23:60:00Z",
            "2026-11-2xT23:00:00Z",
            "2026-11-20T23:00:0éZ",
            "",
        ] {
            assert_eq!(Day::of_event_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn since_counts_back_from_now() {
        let now = parse_date("2026-11-20T00:00:00Z").unwrap();
        assert_eq!(parse_since("90d", now), Ok(now - 90 * 86_400 * NANOS));
        assert_eq!(parse_since(" 12h ", now), Ok(now - 12 * 3_600 * NANOS));
        assert_eq!(parse_since("2w", now), Ok(now - 14 * 86_400 * NANOS));
        assert_eq!(parse_since("30m", now), Ok(now - 30 * 60 * NANOS));
        for bad in [
            "",
            "d",
            "90",
            "0d",
            "5s",
            "-1d",
            "1.5d",
            "90 d",
            "3y",
            "é",
            "99999999999999999999d",
        ] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
        assert_eq!(rfc3339(now), "2026-11-20T00:00:00Z");
        assert_eq!(Day::of(now + 5 * NANOS).start(), now);
    }
}
