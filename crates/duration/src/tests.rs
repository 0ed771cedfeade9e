//! Go's own tables from `time/time_test.go` (parseDurationTests,
//! parseDurationErrorTests, durationTests).

use super::*;

const NS: i64 = 1;
const US: i64 = 1000 * NS;
const MS: i64 = 1000 * US;
const S: i64 = 1000 * MS;
const M: i64 = 60 * S;
const H: i64 = 60 * M;

#[test]
fn parses_go_parse_duration_tests() {
    let table: &[(&str, i64)] = &[
        ("0", 0),
        ("5s", 5 * S),
        ("30s", 30 * S),
        ("1478s", 1478 * S),
        ("-5s", -5 * S),
        ("+5s", 5 * S),
        ("-0", 0),
        ("+0", 0),
        ("5.0s", 5 * S),
        ("5.6s", 5 * S + 600 * MS),
        ("5.s", 5 * S),
        (".5s", 500 * MS),
        ("1.0s", S),
        ("1.00s", S),
        ("1.004s", S + 4 * MS),
        ("1.0040s", S + 4 * MS),
        ("100.00100s", 100 * S + MS),
        ("10ns", 10 * NS),
        ("11us", 11 * US),
        ("12\u{b5}s", 12 * US),
        ("12\u{3bc}s", 12 * US),
        ("13ms", 13 * MS),
        ("14s", 14 * S),
        ("15m", 15 * M),
        ("16h", 16 * H),
        ("3h30m", 3 * H + 30 * M),
        ("10.5s4m", 4 * M + 10 * S + 500 * MS),
        ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
        (
            "1h2m3s4ms5us6ns",
            H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS,
        ),
        ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
        ("52763797000ns", 52763797000 * NS),
        ("0.3333333333333333333h", 20 * M),
        ("9007199254740993ns", (1 << 53) + 1),
        ("9223372036854775807ns", i64::MAX),
        ("9223372036854775.807us", i64::MAX),
        ("9223372036s854ms775us807ns", i64::MAX),
        ("-9223372036854775808ns", i64::MIN),
        ("-9223372036854775.808us", i64::MIN),
        ("-9223372036s854ms775us808ns", i64::MIN),
        ("-2562047h47m16.854775808s", i64::MIN),
        ("0.100000000000000000000h", 6 * M),
        ("0.830103483285477580700h", 49 * M + 48 * S + 372539827 * NS),
    ];
    for &(s, want) in table {
        assert_eq!(parse(s), Ok(want), "{s}");
    }
}

#[test]
fn refuses_go_parse_duration_error_tests() {
    for s in [
        "",
        "3",
        "-",
        "s",
        ".",
        "-.",
        ".s",
        "+.s",
        "1d",
        "\u{fffd}",
        "\u{fffd} hello \u{fffd} world",
        "9223372036854775810ns",
        "9223372036854775808ns",
        "-9223372036854775809ns",
        "9223372036854776us",
        "3000000h",
        "9223372036854775.808us",
        "9223372036854ms775us808ns",
        " 5s",
    ] {
        let e = parse(s).unwrap_err().to_string();
        assert!(e.contains(&format!("{s:?}")), "{s}: {e}");
    }
    assert_eq!(
        parse("3").unwrap_err().to_string(),
        "time: missing unit in duration \"3\""
    );
    assert_eq!(
        parse("1d").unwrap_err().to_string(),
        "time: unknown unit \"d\" in duration \"1d\""
    );
    assert_eq!(
        parse("").unwrap_err().to_string(),
        "time: invalid duration \"\""
    );
}

#[test]
fn formats_like_go_duration_string() {
    let table: &[(&str, i64)] = &[
        ("0s", 0),
        ("1ns", NS),
        ("1.1\u{b5}s", 1100 * NS),
        ("2.2ms", 2200 * US),
        ("3.3s", 3300 * MS),
        ("4m5s", 4 * M + 5 * S),
        ("4m5.001s", 4 * M + 5001 * MS),
        ("5h6m7.001s", 5 * H + 6 * M + 7001 * MS),
        ("8m0.000000001s", 8 * M + NS),
        ("2562047h47m16.854775807s", i64::MAX),
        ("-2562047h47m16.854775808s", i64::MIN),
        // The examples den's help and docs use.
        ("1m30s", 90 * S),
        ("500ms", 500 * MS),
        ("1h0m0s", H),
        ("-1.5s", -1500 * MS),
    ];
    for &(want, d) in table {
        assert_eq!(format(d), want, "{d}");
        assert_eq!(parse(want), Ok(d), "{want} round trip");
    }
}

#[test]
fn std_durations_refuse_negatives_and_saturate() {
    assert_eq!(parse_std("1m30s"), Ok(Duration::from_secs(90)));
    assert_eq!(
        parse_std("-1s").unwrap_err().to_string(),
        "duration \"-1s\" is negative"
    );
    assert_eq!(parse_std("-0"), Ok(Duration::ZERO));
    assert_eq!(format_std(Duration::from_millis(90_500)), "1m30.5s");
    assert_eq!(to_go(Duration::from_secs(30)), 30_000_000_000);
    assert_eq!(to_go(Duration::MAX), i64::MAX);
}
