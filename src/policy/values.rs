//! Typed condition values: dates, numbers and IP ranges, parsed the way IAM parses them.

use std::net::IpAddr;

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

/// Parses a numeric condition value (integer or decimal).
pub fn parse_number(text: &str) -> Option<f64> {
    let v: f64 = text.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

/// An IPv4 or IPv6 network (`10.0.0.0/8`, `2001:db8::/32`); a bare address is a /32 or /128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr.trim().parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Cidr { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                prefix_eq(u32::from(n) as u128, u32::from(a) as u128, self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                prefix_eq(u128::from(n), u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn prefix_eq(network: u128, addr: u128, prefix: u8, width: u32) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = width - prefix as u32;
    (network >> shift) == (addr >> shift)
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
    fn cidrs_v4_and_v6() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(c.contains("203.0.113.77".parse().unwrap()));
        assert!(!c.contains("203.0.114.1".parse().unwrap()));
        let c6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!c6.contains("2001:db9::1".parse().unwrap()));
        assert!(!c6.contains("10.0.0.1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(
            Cidr::parse("10.0.0.1")
                .unwrap()
                .contains("10.0.0.1".parse().unwrap())
        );
    }
}
