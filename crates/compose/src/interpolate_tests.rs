//! Tables ported from compose-go's `template/template_test.go`
//! (mapping FOO=first, BAR="" and nothing else).

use super::*;

fn lookup(name: &str) -> Option<String> {
    match name {
        "FOO" => Some("first".into()),
        "BAR" => Some(String::new()),
        _ => None,
    }
}

fn sub(t: &str) -> Result<String, TemplateError> {
    substitute(t, &lookup).map(|i| i.value)
}

/// (template, expected value).
const OK: &[(&str, &str)] = &[
    // TestEscaped, TestSubstituteNoMatch, TestNonBraced
    ("$${foo}", "${foo}"),
    ("foo", "foo"),
    ("$FOO-bar", "first-bar"),
    // TestNoValueNoDefault, TestValueNoDefault
    ("This ${missing} var", "This  var"),
    ("This ${BAR} var", "This  var"),
    ("This $FOO var", "This first var"),
    ("This ${FOO} var", "This first var"),
    // TestNoValueWithDefault, soft/hard defaults
    ("ok ${missing:-def}", "ok def"),
    ("ok ${missing-def}", "ok def"),
    ("ok ${BAR:-def}", "ok def"),
    ("ok ${FOO:-def}", "ok first"),
    ("ok ${BAR-def}", "ok "),
    ("ok ${BAR:-/non:-alphanumeric}", "ok /non:-alphanumeric"),
    // TestDefaultsWithNestedExpansion
    ("ok ${UNSET_VAR-$FOO}", "ok first"),
    ("ok ${UNSET_VAR-${FOO}}", "ok first"),
    ("ok ${UNSET_VAR-${FOO} ${FOO}}", "ok first first"),
    ("ok ${BAR:-$FOO}", "ok first"),
    ("ok ${BAR:-${FOO}}", "ok first"),
    ("ok ${BAR:-${FOO} ${FOO}}", "ok first first"),
    // TestDefaultsForMandatoryVariables
    ("ok ${FOO:?err}", "ok first"),
    ("ok ${FOO?err}", "ok first"),
    ("ok ${BAR?err}", "ok "),
    // TestPrecedence
    ("${UNSET_VAR-myerror?msg}", "myerror?msg"),
    ("${FOO?bar-baz}", "first"),
    (
        "${BAR:-default_value_for_empty_var}",
        "default_value_for_empty_var",
    ),
    (
        "${UNSET_VAR-default_value_for_unset_var}",
        "default_value_for_unset_var",
    ),
    // alternative values (compose-go TestSubstitutionFunctionChoice operators)
    ("${FOO:+alt}", "alt"),
    ("${BAR:+alt}", ""),
    ("${missing:+alt}", ""),
    ("${FOO+alt}", "alt"),
    ("${BAR+alt}", "alt"),
    ("${missing+alt}", ""),
    ("${FOO:+va:?lu:-e}", "va:?lu:-e"),
    ("${missing-va:-lu:?e}", "va:-lu:?e"),
    ("${FOO+${FOO}-x}", "first-x"),
    // text around and after nested braces
    ("a${missing:-${FOO}}b${FOO}c", "afirstbfirstc"),
    ("$$FOO $$$FOO", "$FOO $first"),
    ("${foo_1:-x}", "x"),
];

#[test]
fn substitutes_like_compose_go() {
    for (template, want) in OK {
        assert_eq!(sub(template).as_deref(), Ok(*want), "{template}");
    }
}

#[test]
fn invalid_templates() {
    // TestInvalid plus a lone $.
    for t in [
        "${", "$}", "${}", "${ }", "${ foo}", "${foo }", "${foo!}", "a $ b", "$1", "$",
    ] {
        assert_eq!(
            sub(t),
            Err(TemplateError::Invalid { template: t.into() }),
            "{t}"
        );
        assert!(
            sub(t)
                .unwrap_err()
                .to_string()
                .starts_with("Invalid template: ")
        );
    }
}

#[test]
fn required_variables() {
    // TestMandatoryVariableErrors(+WithNestedExpansion), TestPrecedence.
    let cases = [
        (
            "not ok ${UNSET_VAR:?Mandatory Variable Unset}",
            "required variable UNSET_VAR is missing a value: Mandatory Variable Unset",
        ),
        (
            "not ok ${BAR:?Mandatory Variable Empty}",
            "required variable BAR is missing a value: Mandatory Variable Empty",
        ),
        (
            "not ok ${UNSET_VAR:?}",
            "required variable UNSET_VAR is missing a value",
        ),
        (
            "not ok ${UNSET_VAR?Mandatory Variable Unset}",
            "required variable UNSET_VAR is missing a value: Mandatory Variable Unset",
        ),
        (
            "not ok ${UNSET_VAR?}",
            "required variable UNSET_VAR is missing a value",
        ),
        (
            "not ok ${UNSET_VAR:?Mandatory Variable ${FOO}}",
            "required variable UNSET_VAR is missing a value: Mandatory Variable first",
        ),
        (
            "not ok ${UNSET_VAR?Mandatory Variable ${FOO}}",
            "required variable UNSET_VAR is missing a value: Mandatory Variable first",
        ),
        (
            "${UNSET_VAR?bar-baz}",
            "required variable UNSET_VAR is missing a value: bar-baz",
        ),
        (
            "${missing:-${NEEDED:?set it}}",
            "required variable NEEDED is missing a value: set it",
        ),
    ];
    for (t, want) in cases {
        let err = sub(t).unwrap_err();
        assert!(matches!(err, TemplateError::Required { .. }), "{t}");
        assert_eq!(err.to_string(), want, "{t}");
    }
}

#[test]
fn reports_unset_variables_once() {
    let got = substitute("$A ${A} ${B} ${C:-x} ${FOO} ${BAR}", &lookup).unwrap();
    assert_eq!(got.value, "   x first ");
    assert_eq!(got.unset, ["A", "B"]);
}
