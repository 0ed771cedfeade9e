//! Go's `time.Duration` syntax, the one parser and printer den uses for
//! durations that Docker and compose users write (`--health-interval 1m30s`,
//! compose's `interval: 500ms`, a Dockerfile's `HEALTHCHECK --timeout=3s`).
//!
//! [`parse`] is Go's `time.ParseDuration` and [`format`] Go's
//! `Duration.String`, both on Go's value, a signed count of nanoseconds
//! ([`GoDuration`]), ported from Go's `time/format.go` with its test tables
//! (so `1.5h`, `.5s`, `1h2m3s4ms5us6ns`, overflow past ±2^63 ns and the
//! exact fractions are Go's). [`parse_std`] and [`format_std`] are the
//! same for [`std::time::Duration`], refusing negative values.
//!
//! No crate on crates.io follows Go exactly: `humantime` takes spaces and
//! other units (`1day`) and prints `1h 30m`; the Go ports differ on
//! fractions of hours and overflow. The algorithm is ~100 lines.

use std::time::Duration;

/// Go's `time.Duration`: nanoseconds, signed.
pub type GoDuration = i64;

/// Why a duration was refused; the messages are Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("time: invalid duration {0:?}")]
    Invalid(String),
    #[error("time: missing unit in duration {0:?}")]
    MissingUnit(String),
    #[error("time: unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit { unit: String, input: String },
    /// Only from [`parse_std`]: a valid Go duration below zero.
    #[error("duration {0:?} is negative")]
    Negative(String),
}

const NANOSECOND: u64 = 1;
const MICROSECOND: u64 = 1000 * NANOSECOND;
const MILLISECOND: u64 = 1000 * MICROSECOND;
const SECOND: u64 = 1000 * MILLISECOND;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
const LIMIT: u64 = 1 << 63;

fn unit(u: &str) -> Option<u64> {
    Some(match u {
        "ns" => NANOSECOND,
        // U+00B5 (micro sign) and U+03BC (Greek mu), as Go accepts both.
        "us" | "\u{b5}s" | "\u{3bc}s" => MICROSECOND,
        "ms" => MILLISECOND,
        "s" => SECOND,
        "m" => MINUTE,
        "h" => HOUR,
        _ => return None,
    })
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or `0`.
pub fn parse(s: &str) -> Result<GoDuration, ParseError> {
    let invalid = || ParseError::Invalid(s.to_owned());
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut d: u64 = 0;
    while !rest.is_empty() {
        let (v, r) = term(rest, s)?;
        rest = r;
        d = d
            .checked_add(v)
            .filter(|&d| d <= LIMIT)
            .ok_or_else(invalid)?;
    }
    if neg {
        // -2^63 is representable; wrapping gives exactly it.
        return Ok((d as i64).wrapping_neg());
    }
    i64::try_from(d).map_err(|_| invalid())
}

/// One `number unit` term of `orig`: its nanoseconds and the rest.
fn term<'a>(s: &'a str, orig: &str) -> Result<(u64, &'a str), ParseError> {
    let invalid = || ParseError::Invalid(orig.to_owned());
    if !s.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
        return Err(invalid());
    }
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let v = leading_int(&s[..digits]).ok_or_else(invalid)?;
    let mut rest = &s[digits..];
    let (mut f, mut scale, mut post) = (0u64, 1f64, false);
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        (f, scale) = leading_fraction(&r[..n]);
        post = n > 0;
        rest = &r[n..];
    }
    if digits == 0 && !post {
        return Err(invalid());
    }
    let u = rest
        .find(|c: char| c == '.' || c.is_ascii_digit())
        .unwrap_or(rest.len());
    if u == 0 {
        return Err(ParseError::MissingUnit(orig.to_owned()));
    }
    let scale_ns = unit(&rest[..u]).ok_or_else(|| ParseError::UnknownUnit {
        unit: rest[..u].to_owned(),
        input: orig.to_owned(),
    })?;
    if v > LIMIT / scale_ns {
        return Err(invalid());
    }
    let mut v = v * scale_ns;
    if f > 0 {
        // float64, as Go: nanosecond-exact for fractions of an hour.
        v += (f as f64 * (scale_ns as f64 / scale)) as u64;
        if v > LIMIT {
            return Err(invalid());
        }
    }
    Ok((v, &rest[u..]))
}

/// Go's `leadingInt` on a run of digits: `None` past 2^63.
fn leading_int(digits: &str) -> Option<u64> {
    digits.bytes().try_fold(0u64, |x, c| {
        if x > LIMIT / 10 {
            return None;
        }
        Some(x * 10 + u64::from(c - b'0')).filter(|&x| x <= LIMIT)
    })
}

/// Go's `leadingFraction`: the digits as an integer and its scale,
/// precision dropped (not an error) once it would overflow.
fn leading_fraction(digits: &str) -> (u64, f64) {
    let (mut x, mut scale) = (0u64, 1f64);
    for c in digits.bytes() {
        if x > (LIMIT - 1) / 10 {
            break;
        }
        let y = x * 10 + u64::from(c - b'0');
        if y > LIMIT {
            break;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale)
}

/// [`parse`] for a [`std::time::Duration`]: a negative value is refused.
pub fn parse_std(s: &str) -> Result<Duration, ParseError> {
    let d = parse(s)?;
    let ns = u64::try_from(d).map_err(|_| ParseError::Negative(s.to_owned()))?;
    Ok(Duration::from_nanos(ns))
}

/// Go's `Duration.String`: `1h0m0s`, `1m30s`, `1.5s`, `500ms`, `1.1µs`, `0s`.
pub fn format(d: GoDuration) -> String {
    let sign = if d < 0 { "-" } else { "" };
    let u = d.unsigned_abs();
    if u < SECOND {
        let (prec, unit) = match u {
            0 => return "0s".into(),
            _ if u < MICROSECOND => (0, "ns"),
            _ if u < MILLISECOND => (3, "\u{b5}s"),
            _ => (6, "ms"),
        };
        return format!("{sign}{}{unit}", decimal(u, prec));
    }
    let secs = decimal(u % MINUTE, 9);
    let minutes = u / MINUTE;
    match (minutes / 60, minutes % 60) {
        (0, 0) => format!("{sign}{secs}s"),
        (0, m) => format!("{sign}{m}m{secs}s"),
        (h, m) => format!("{sign}{h}h{m}m{secs}s"),
    }
}

/// `v / 10^prec` with the fraction's trailing zeros (and a bare point) dropped.
fn decimal(v: u64, prec: u32) -> String {
    let p = 10u64.pow(prec);
    let (int, frac) = (v / p, v % p);
    if frac == 0 {
        return int.to_string();
    }
    let frac = format!("{frac:0width$}", width = prec as usize);
    format!("{int}.{}", frac.trim_end_matches('0'))
}

/// [`format`] for a [`std::time::Duration`] (saturating past Go's range).
pub fn format_std(d: Duration) -> String {
    format(to_go(d))
}

/// Go's nanosecond count of `d`, as Docker writes durations in JSON
/// (saturating at `i64::MAX`).
pub fn to_go(d: Duration) -> GoDuration {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
