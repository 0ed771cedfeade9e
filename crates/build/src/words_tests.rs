//! Tables ported from BuildKit's `frontend/dockerfile/shell/lex_test.go`
//! and its `envVarTest` / `wordsTest` data (Unix rows).

use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `envVarTest`: PWD=/home SHELL=bash KOREAN=한국어 NULL=; "error" means
/// the word must be refused.
const ENV_VAR_TEST: &[(&str, &str)] = &[
    ("hello", "hello"),
    ("he'll'o", "hello"),
    ("he'llo", "error"),
    ("he\\'llo", "he'llo"),
    ("he\\\\'llo", "error"),
    ("abc\\tdef", "abctdef"),
    ("\"abc\\tdef\"", "abc\\tdef"),
    ("\"abc\\\\tdef\"", "abc\\tdef"),
    ("'abc\\tdef'", "abc\\tdef"),
    ("hello\\", "hello"),
    ("hello\\\\", "hello\\"),
    ("\"hello", "error"),
    ("\"hello\\\"", "error"),
    ("\"hel'lo\"", "hel'lo"),
    ("'hello", "error"),
    ("'hello\\'", "hello\\"),
    ("'hello\\there'", "hello\\there"),
    ("'hello\\\\there'", "hello\\\\there"),
    ("\"''\"", "''"),
    ("$.", "$."),
    ("he$1x", "hex"),
    ("he$.x", "he$.x"),
    ("he$pwd.", "he."),
    ("he$PWD", "he/home"),
    ("he\\$PWD", "he$PWD"),
    ("he\\\\$PWD", "he\\/home"),
    ("\"he\\$PWD\"", "he$PWD"),
    ("\"he\\\\$PWD\"", "he\\/home"),
    ("\\${}", "${}"),
    ("\\${}aaa", "${}aaa"),
    ("he\\${}", "he${}"),
    ("he\\${}xx", "he${}xx"),
    ("${}", "error"),
    ("${}aaa", "error"),
    ("he${}", "error"),
    ("he${}xx", "error"),
    ("he${hi}", "he"),
    ("he${hi}xx", "hexx"),
    ("he${PWD}", "he/home"),
    ("he${.}", "error"),
    ("he${XXX:-000}xx", "he000xx"),
    ("he${PWD:-000}xx", "he/homexx"),
    ("he${XXX:-$PWD}xx", "he/homexx"),
    ("he${XXX:-${PWD:-yyy}}xx", "he/homexx"),
    ("he${XXX:-${YYY:-yyy}}xx", "heyyyxx"),
    ("he${XXX:YYY}", "error"),
    ("he${XXX?}", "error"),
    ("he${XXX:?}", "error"),
    ("he${PWD?}", "he/home"),
    ("he${PWD:?}", "he/home"),
    ("he${NULL?}", "he"),
    ("he${NULL:?}", "error"),
    ("he${XXX:+${PWD}}xx", "hexx"),
    ("he${PWD:+${XXX}}xx", "hexx"),
    ("he${PWD:+${SHELL}}xx", "hebashxx"),
    ("he${XXX:+000}xx", "hexx"),
    ("he${PWD:+000}xx", "he000xx"),
    ("'he${XX}'", "he${XX}"),
    ("\"he${PWD}\"", "he/home"),
    ("\"he'$PWD'\"", "he'/home'"),
    ("\"$PWD\"", "/home"),
    ("'$PWD'", "$PWD"),
    ("'\\$PWD'", "\\$PWD"),
    ("'\"hello\"'", "\"hello\""),
    ("'he\\$PWD'", "he\\$PWD"),
    ("he${PWD", "error"),
    ("he${PWD=000}xx", "error"),
    ("he${PWD+${PWD}}xx", "he/homexx"),
    ("he${PWD-${PWD}}xx", "he/homexx"),
    ("he${XXX+${PWD}}xx", "hexx"),
    ("he${XXX-${PWD}}xx", "he/homexx"),
    ("he${XXX=000}xx", "error"),
    ("${XXX:-\\$PWD:}xx", "$PWD:xx"),
    ("${XXX:-\\${PWD}z}xx", "${PWDz}xx"),
    ("$KOREAN", "한국어"),
    ("안녕$KOREAN", "안녕한국어"),
    ("${{aaa}", "error"),
    ("${aaa}}", "}"),
    ("${aaa}}}", "}}"),
    ("${aaa:-bbb}}", "bbb}"),
    ("${aaa:-bbb}}}", "bbb}}"),
    ("${aaa:-}}", "}"),
    ("${aaa:-}}}}", "}}}"),
    ("${:}", "error"),
    ("${::}", "error"),
    ("${:-}", "error"),
    ("${:+}", "error"),
];

#[test]
fn env_var_test_table() {
    let env = env(&[
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]);
    for (source, expected) in ENV_VAR_TEST {
        let got = expand(source, &env);
        if *expected == "error" {
            assert!(got.is_err(), "{source:?} gave {got:?}, want an error");
        } else {
            assert_eq!(got.as_deref(), Ok(*expected), "{source:?}");
        }
    }
}

/// `wordsTest`: `ENV` lines accumulate; each row is `word | w1,w2,…`.
const WORDS_TEST: &str = "hello | hello
hello${hi}bye | hellobye
ENV hi=hi
hello${hi}bye | hellohibye
ENV space=abc  def
hello${space}bye | helloabc,defbye
hello\"${space}\"bye | helloabc  defbye
hello \"${space}\"bye | hello,abc  defbye
ENV leading=  ab c
hello${leading}def | hello,ab,cdef
hello\"${leading}\" def | hello  ab c,def
hello\"${leading}\" | hello  ab c
hello${leading} | hello,ab,c
ENV trailing=ab c   
hello${trailing} | helloab,c
hello${trailing}d | helloab,c,d
hello\"${trailing}\"d | helloab c   d
hel\"lo${trailing}\" | helloab c   
hello\" there  \" | hello there  
hello there     | hello,there
hello\\ there | hello there
hello\" there | error
hello\\\" there | hello\",there
hello\"\\\\there\" | hello\\there
hello\"\\there\" | hello\\there
hello'\\\\there' | hello\\\\there
hello'\\there' | hello\\there
hello'$there' | hello$there";

#[test]
fn words_test_table() {
    let mut env = BTreeMap::new();
    for line in WORDS_TEST.lines() {
        if let Some(kv) = line.strip_prefix("ENV ") {
            let (k, v) = kv.trim_start().split_once('=').unwrap();
            env.insert(k.to_owned(), v.to_owned());
            continue;
        }
        let (test, expected) = line.split_once('|').unwrap();
        let expected: Vec<&str> = expected.trim_start().split(',').collect();
        let got = match expand_words(test.trim(), &env) {
            Ok(words) => words,
            Err(_) => vec!["error".to_owned()],
        };
        assert_eq!(got, expected, "{test:?}");
    }
}

#[test]
fn mandatory_vars() {
    let set = env(&[("VAR", "plain"), ("ARG", "x")]);
    let empty = env(&[("VAR", ""), ("ARG", "x")]);
    let unset = env(&[("ARG", "x")]);
    let no_empty = "${VAR:?message here$ARG}";
    let no_unset = "${VAR?message here$ARG}";
    assert_eq!(expand(no_empty, &set).unwrap(), "plain");
    let want = WordError::Required {
        name: "VAR".into(),
        message: "message herex".into(),
    };
    assert_eq!(expand(no_empty, &empty), Err(want.clone()));
    assert_eq!(expand(no_empty, &unset), Err(want.clone()));
    assert_eq!(expand(no_unset, &set).unwrap(), "plain");
    assert_eq!(expand(no_unset, &empty).unwrap(), "");
    assert_eq!(expand(no_unset, &unset), Err(want));
    assert_eq!(
        expand("${VAR:?}", &empty).unwrap_err().to_string(),
        "VAR: is not allowed to be empty"
    );
    assert_eq!(
        expand("${VAR?}", &unset).unwrap_err().to_string(),
        "VAR: is not allowed to be unset"
    );
}

struct Case {
    input: &'static str,
    envs: &'static [(&'static str, &'static str)],
    expected: Option<&'static str>,
    matches: &'static [&'static str],
    unmatched: &'static [&'static str],
}

const fn ok(
    input: &'static str,
    envs: &'static [(&'static str, &'static str)],
    expected: &'static str,
    matches: &'static [&'static str],
    unmatched: &'static [&'static str],
) -> Case {
    Case {
        input,
        envs,
        expected: Some(expected),
        matches,
        unmatched,
    }
}

const fn err(input: &'static str, envs: &'static [(&'static str, &'static str)]) -> Case {
    Case {
        input,
        envs,
        expected: None,
        matches: &[],
        unmatched: &[],
    }
}

const FB: &[(&str, &str)] = &[("FOO", "xxx"), ("BAR", "")];

/// `TestProcessWithMatches`.
const WITH_MATCHES: &[Case] = &[
    ok("x", &[("DUMMY", "dummy")], "x", &[], &[]),
    ok("x ${UNUSED}", &[("DUMMY", "dummy")], "x ", &[], &["UNUSED"]),
    ok("x ${FOO}", &[("FOO", "y")], "x y", &["FOO"], &[]),
    ok(
        "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}",
        FB,
        "xxx  ccc",
        &["FOO", "BAR"],
        &["BAZ"],
    ),
    ok(
        "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}",
        FB,
        "xxx bbb ccc",
        &["FOO", "BAR"],
        &["BAZ"],
    ),
    ok("${FOO:-}", FB, "xxx", &["FOO"], &[]),
    ok("${FOO:-}", &[], "", &[], &["FOO"]),
    ok(
        "${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}",
        FB,
        "aaa bbb ",
        &["FOO", "BAR"],
        &["BAZ"],
    ),
    ok(
        "${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}",
        FB,
        "aaa  ",
        &["FOO", "BAR"],
        &["BAZ"],
    ),
    ok("${FOO?aaa}", FB, "xxx", &["FOO"], &[]),
    ok("${BAR?bbb}", FB, "", &["BAR"], &[]),
    err("${BAZ?ccc}", FB),
    ok("${FOO:?aaa}", FB, "xxx", &["FOO"], &[]),
    err("${BAR:?bbb}", FB),
    err("${BAZ:?ccc}", FB),
    err("${BAZ:?}", FB),
    err("${FOO=aaa}", FB),
    err("${FOO=:aaa}", FB),
    err("${FOO=}", &[]),
    ok(
        "${FOO#()[]{\\}^$.\\*\\?|\\\\}",
        &[("FOO", "()[]{}^$.*?|\\x")],
        "x",
        &["FOO"],
        &[],
    ),
    ok("${FOO%%\\**}", &[("FOO", "xx**")], "xx", &["FOO"], &[]),
    ok("${FOO#*x*y}", &[("FOO", "xxyy")], "y", &["FOO"], &[]),
    ok("${FOO#*}", &[("FOO", "xxyy")], "xxyy", &["FOO"], &[]),
    ok(
        "${FOO#$BAR}",
        &[("FOO", "xxyy"), ("BAR", "x")],
        "xyy",
        &["FOO", "BAR"],
        &[],
    ),
    ok(
        "${FOO#$BAR}",
        &[("FOO", "xxyy"), ("BAR", "")],
        "xxyy",
        &["FOO", "BAR"],
        &[],
    ),
    ok("${FOO#}", &[("FOO", "xxyy")], "xxyy", &["FOO"], &[]),
    ok("${FOO##*x}", &[("FOO", "xxyy")], "yy", &["FOO"], &[]),
    ok("${FOO##}", &[("FOO", "xxyy")], "xxyy", &["FOO"], &[]),
    ok("${FOO#?\\?}", &[("FOO", "???y")], "?y", &["FOO"], &[]),
    ok(
        "${ABC:-.}${FOO%x}${ABC:-.}",
        &[("FOO", "xxyy")],
        ".xxyy.",
        &["FOO"],
        &["ABC"],
    ),
    ok("${FOO%%\\**\\*}", &[("FOO", "a***yy*")], "a", &["FOO"], &[]),
    ok("${FOO%}", &[("FOO", "xxyy")], "xxyy", &["FOO"], &[]),
    ok(
        "${FOO%%$BAR}",
        &[("FOO", "xxyy"), ("BAR", "")],
        "xxyy",
        &["FOO", "BAR"],
        &[],
    ),
    ok(
        "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
        &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")],
        "/foo.*/*.txt - /foo..*.txt",
        &["FOO", "NEEDLE"],
        &[],
    ),
    ok(
        "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
        &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
        "/tmp/bar.txt - /bar.txt",
        &["FOO", "NEEDLE"],
        &[],
    ),
    ok(
        "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
        &[
            ("FOO", "/a/foo/b/c.txt"),
            ("NEEDLE", "/?/"),
            ("REPLACEMENT", "/"),
        ],
        "/foo/b/c.txt - /foo/c.txt",
        &["FOO", "NEEDLE", "REPLACEMENT"],
        &[],
    ),
    ok(
        "${FOO/$NEEDLE/$REPLACEMENT}",
        &[
            ("FOO", "http://google.de"),
            ("NEEDLE", "http://"),
            ("REPLACEMENT", "https://"),
        ],
        "https://google.de",
        &["FOO", "NEEDLE", "REPLACEMENT"],
        &[],
    ),
    ok(
        "${FOO//\\//\\/}",
        &[("FOO", "/tmp/foo.txt")],
        "\\/tmp\\/foo.txt",
        &["FOO"],
        &[],
    ),
    ok(
        "${FOO/$BAR/ww}",
        &[("FOO", "xxyy"), ("BAR", "")],
        "wwxxyy",
        &["FOO", "BAR"],
        &[],
    ),
    err("${FOO//ww}", &[("FOO", "xxyy")]),
    err("${FOO//}", &[("FOO", "xxyy")]),
    ok("${FOO///}", &[("FOO", "xxyy")], "xxyy", &["FOO"], &[]),
    ok("${FOO///}", &[], "", &[], &["FOO"]),
];

#[test]
fn process_with_matches() {
    for case in WITH_MATCHES {
        let got = Lexer::new('\\').process(case.input, &env(case.envs));
        let Some(expected) = case.expected else {
            assert!(got.is_err(), "{:?} gave {got:?}", case.input);
            continue;
        };
        let got = got.unwrap_or_else(|e| panic!("{:?}: {e}", case.input));
        assert_eq!(got.word, expected, "{:?}", case.input);
        let set = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(got.matched, set(case.matches), "{:?}", case.input);
        assert_eq!(got.unmatched, set(case.unmatched), "{:?}", case.input);
    }
}

#[test]
fn release_file_name() {
    let release =
        "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz";
    let mut e = env(&[
        ("VERSION", "v1.2.3"),
        ("TARGETOS", "linux"),
        ("TARGETARCH", "arm"),
        ("TARGETVARIANT", "v7"),
    ]);
    assert_eq!(
        expand(release, &e).unwrap(),
        "something-v1.2.3.linux-arm-v7.tar.gz"
    );
    e.remove("TARGETVARIANT");
    e.insert("TARGETARCH".into(), "amd64".into());
    assert_eq!(
        expand(release, &e).unwrap(),
        "something-v1.2.3.linux-amd64.tar.gz"
    );
}

#[test]
fn shell_pattern_to_regex() {
    let cases = [
        ("*", "^.*"),
        ("?", "^."),
        ("\\*", "^\\*"),
        (
            "(()[]{\\}^$.\\*\\?|\\\\",
            "^\\(\\(\\)\\[\\]\\{\\}\\^\\$\\.\\*\\?\\|\\\\",
        ),
    ];
    for (pattern, expected) in cases {
        assert_eq!(
            pattern_regex(pattern, true, true).unwrap().as_str(),
            expected
        );
    }
    for pattern in ["\\", "\\x", "\\\\\\"] {
        assert!(pattern_regex(pattern, true, true).is_err(), "{pattern:?}");
    }
}

#[test]
fn reverse_patterns() {
    let cases = [
        ("a\\*c", "c\\*a"),
        ("\\\\\\ab", "b\\a\\\\"),
        ("ab\\", "\\ba"),
        ("👽\\🚀🖖", "🖖\\🚀👽"),
        ("\\\\b", "b\\\\"),
    ];
    for (pattern, expected) in cases {
        assert_eq!(reverse_pattern(pattern), expected, "{pattern:?}");
    }
}

#[test]
fn error_messages_are_buildkits() {
    let e = BTreeMap::new();
    let msg = |w: &str| expand(w, &e).unwrap_err().to_string();
    assert_eq!(
        msg("'abc"),
        "unexpected end of statement while looking for matching single-quote"
    );
    assert_eq!(
        msg("\"abc"),
        "unexpected end of statement while looking for matching double-quote"
    );
    assert_eq!(msg("${"), "syntax error: missing '}'");
    assert_eq!(msg("${A:-x"), "syntax error: missing '}'");
    assert_eq!(msg("${A/x"), "syntax error: missing '/' in ${}");
    assert_eq!(msg("${}"), "syntax error: bad substitution");
    assert_eq!(msg("${A=x}"), "unsupported modifier (=) in substitution");
    assert_eq!(msg("${A:x}"), "unsupported modifier (:x) in substitution");
}

#[test]
fn escape_directive_backtick() {
    let e = env(&[("A", "1")]);
    let lexer = Lexer::new('`');
    let got = lexer.process("C:\\dir `$A $A", &e).unwrap();
    assert_eq!(got.word, "C:\\dir $A 1");
    assert_eq!(got.words, ["C:\\dir", "$A", "1"]);
    assert_eq!(
        lexer.process("\"a`\"b\"", &e).unwrap().word,
        "a\"b",
        "` escapes a quote inside double quotes"
    );
}

#[test]
fn skip_unset_keeps_references() {
    let mut lexer = Lexer::new('\\');
    lexer.skip_unset = true;
    lexer.raw_quotes = true;
    let e = env(&[("A", "1")]);
    let got = lexer.process("$A $B ${C} ${D:-x} '$A'", &e).unwrap();
    assert_eq!(got.word, "1 $B ${C} ${D:-x} '$A'");
}

#[test]
fn split_raw_keeps_quotes() {
    let cases: &[(&str, &[&str])] = &[
        ("a=b c=d", &["a=b", "c=d"]),
        ("a=\"b c\" d='e f'", &["a=\"b c\"", "d='e f'"]),
        ("a=b\\ c d", &["a=b\\ c", "d"]),
        ("  x  ", &["x"]),
        ("a=\"\"", &["a=\"\""]),
        ("k='it\\'", &["k='it\\'"]),
    ];
    for (rest, want) in cases {
        assert_eq!(split_raw(rest, '\\'), *want, "{rest:?}");
    }
}
