//! Table and size formatting the way Docker prints them.

use chrono::{DateTime, Utc};

/// Docker's sizes: SI units, three significant digits ("77.6MB", "1.09MB").
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    let digits = if unit == 0 || v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[unit])
}

/// Go's `time.Time.String()` in UTC, as `docker ps` prints CreatedAt.
pub fn docker_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S +0000 UTC")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// "3 seconds ago", "2 weeks ago", as `docker images` writes CREATED.
pub fn ago(when: &str, now: DateTime<Utc>) -> String {
    let Ok(t) = DateTime::parse_from_rfc3339(when) else {
        return "N/A".into();
    };
    let secs = (now - t.with_timezone(&Utc)).num_seconds().max(0);
    let (n, unit) = match secs {
        0..=1 => return "Less than a second ago".into(),
        2..=59 => (secs, "second"),
        60..=3599 => (secs / 60, "minute"),
        3600..=86_399 => (secs / 3600, "hour"),
        86_400..=1_209_599 => (secs / 86_400, "day"),
        1_209_600..=5_183_999 => (secs / 604_800, "week"),
        5_184_000..=31_535_999 => (secs / 2_592_000, "month"),
        _ => (secs / 31_536_000, "year"),
    };
    if n == 1 {
        let article = if unit == "hour" { "An" } else { "A" };
        return format!("{article} {unit} ago");
    }
    format!("{n} {unit}s ago")
}

/// `s` with every control character (C0, DEL, C1) written as `\xNN`, so
/// text from a container or an image (a command line, a name) cannot move
/// the cursor, retitle the window or fake rows on the user's terminal.
pub fn escape_controls(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\x{:02x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Left-aligned columns separated by at least three spaces, header first.
/// Cells are printed with [`escape_controls`].
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| escape_controls(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == last {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        for (b, s) in [
            (0, "0B"),
            (999, "999B"),
            (1_090_000, "1.09MB"),
            (77_600_000, "77.6MB"),
            (231_200_000, "231MB"),
            (2_000_000_000, "2GB"),
        ] {
            assert_eq!(human_size(b), s);
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("plain é"), "plain é");
        assert_eq!(
            escape_controls("\u{1b}]0;owned\u{7}\r\n\u{7f}\u{9b}"),
            "\\x1b]0;owned\\x07\\x0d\\x0a\\x7f\\x9b"
        );
        let t = table(&["A"], &[vec!["\u{1b}[2J".into()]]);
        assert_eq!(t, "A\n\\x1b[2J\n");
    }

    #[test]
    fn ages_like_docker() {
        let now = DateTime::parse_from_rfc3339("2026-01-15T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(ago("2026-01-14T23:59:57Z", now), "3 seconds ago");
        assert_eq!(ago("2026-01-14T23:00:00Z", now), "An hour ago");
        assert_eq!(ago("2026-01-01T00:00:00Z", now), "2 weeks ago");
        assert_eq!(ago("2025-05-20T00:00:00Z", now), "8 months ago");
        assert_eq!(ago("garbage", now), "N/A");
    }
}
