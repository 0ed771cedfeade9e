//! Cases after compose-go's `dotenv/godotenv_test.go` and its fixtures.

use super::*;

fn os(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/u".into()),
        "INHERITED" => Some("from-os".into()),
        _ => None,
    }
}

fn parsed(text: &str) -> Vec<(String, String)> {
    parse(".env", text, &os).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn one(text: &str) -> String {
    let env = parsed(text);
    assert_eq!(env.len(), 1, "{text:?} gave {env:?}");
    env[0].1.clone()
}

#[test]
fn values() {
    let cases: &[(&str, &str)] = &[
        ("FOO=bar", "bar"),
        ("FOO =bar", "bar"),
        ("FOO= bar", "bar"),
        ("FOO=bar  ", "bar"),
        ("FOO: bar", "bar"),
        ("export FOO=bar", "bar"),
        ("FOO=", ""),
        ("FOO=\"\"", ""),
        ("FOO=''", ""),
        ("FOO=bar # a comment", "bar"),
        ("FOO=bar#baz", "bar#baz"),
        ("FOO=\"bar # not a comment\"", "bar # not a comment"),
        ("FOO='bar'  # comment", "bar"),
        ("FOO=\"bar\\nbaz\"", "bar\nbaz"),
        ("FOO='bar\\nbaz'", "bar\\nbaz"),
        ("FOO=\"a \\\"quoted\\\" b\"", "a \"quoted\" b"),
        ("FOO=\"multi\nline\"", "multi\nline"),
        ("FOO='multi\nline'", "multi\nline"),
        ("FOO=a=b", "a=b"),
        ("FOO=$HOME/x", "/home/u/x"),
        ("FOO=\"${HOME}/x\"", "/home/u/x"),
        ("FOO='${HOME}/x'", "${HOME}/x"),
        ("FOO=\"\\$HOME\"", "$HOME"),
        ("FOO=$$HOME", "$HOME"),
        ("FOO=${UNSET:-def}", "def"),
        ("FOO.BAR-1=x", "x"),
        ("INHERITED", "from-os"),
    ];
    for (text, want) in cases {
        assert_eq!(one(text), *want, "{text:?}");
    }
}

#[test]
fn file_order_comments_and_reuse() {
    let text = "# leading comment\n\nA=1\n  # indented comment\nexport B=${A}2\nC=\"${B}3\"\nA=9\nUNKNOWN_BARE\nexportD=4\n";
    let env = parsed(text);
    let want = [("A", "9"), ("B", "12"), ("C", "123"), ("exportD", "4")];
    assert_eq!(env, want.map(|(k, v)| (k.to_owned(), v.to_owned())));
    assert_eq!(get(&env, "B"), Some("12"));
    assert_eq!(get(&env, "Z"), None);
}

#[test]
fn the_environment_wins_in_interpolation() {
    // compose-go looks a variable up in the environment before the file.
    let env = parsed("HOME=/x\nP=$HOME\n");
    assert_eq!(get(&env, "P"), Some("/home/u"));
}

#[test]
fn errors_name_file_line_and_fix() {
    let cases = [
        (
            "A=1\nB=\"open\n",
            ".env:2: unterminated quoted value \"open: close it with \"",
        ),
        (
            "A=1\n\nBAD KEY=1\n",
            ".env:3: unexpected character ' ' in variable name \"BAD KEY\": names may hold letters, digits, '_', '.' and '-'",
        ),
        (
            "=1\n",
            ".env:1: a line has no variable name before '=': write NAME=VALUE",
        ),
        (
            "A=\"x\" y\n",
            ".env:1: unexpected text \"y\" after a quoted value: put it inside the quotes or after a #",
        ),
        (
            "A=${B:?B is needed}\n",
            ".env:1: required variable B is missing a value: B is needed",
        ),
        (
            "A=$ 1\n",
            ".env:1: Invalid template: \"$ 1\" (write $$ for a literal $)",
        ),
    ];
    for (text, want) in cases {
        let err = parse(".env", text, &os).unwrap_err();
        assert_eq!(err.to_string(), want, "{text:?}");
    }
}
