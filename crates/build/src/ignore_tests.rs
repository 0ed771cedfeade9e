//! Tables ported from moby/patternmatcher's `patternmatcher_test.go` and
//! `ignorefile/ignorefile_test.go`.

use super::*;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Pass {
    Fail,
    Exact,
    Inexact,
}
use Pass::*;

/// `TestMatches`: (pattern, text, result).
const MATCHES: &[(&str, &str, Pass)] = &[
    ("**", "file", Exact),
    ("**", "file/", Exact),
    ("**/", "file", Exact),
    ("**/", "file/", Exact),
    ("**", "/", Exact),
    ("**/", "/", Exact),
    ("**", "dir/file", Exact),
    ("**/", "dir/file", Exact),
    ("**", "dir/file/", Exact),
    ("**/", "dir/file/", Exact),
    ("**/**", "dir/file", Exact),
    ("**/**", "dir/file/", Exact),
    ("dir/**", "dir/file", Exact),
    ("dir/**", "dir/file/", Exact),
    ("dir/**", "dir/dir2/file", Exact),
    ("dir/**", "dir/dir2/file/", Exact),
    ("**/dir", "dir", Exact),
    ("**/dir", "dir/file", Inexact),
    ("**/dir2/*", "dir/dir2/file", Exact),
    ("**/dir2/*", "dir/dir2/file/", Inexact),
    ("**/dir2/**", "dir/dir2/dir3/file", Exact),
    ("**/dir2/**", "dir/dir2/dir3/file/", Exact),
    ("**file", "file", Exact),
    ("**file", "dir/file", Exact),
    ("**/file", "dir/file", Exact),
    ("**file", "dir/dir/file", Exact),
    ("**/file", "dir/dir/file", Exact),
    ("**/file*", "dir/dir/file", Exact),
    ("**/file*", "dir/dir/file.txt", Exact),
    ("**/file*txt", "dir/dir/file.txt", Exact),
    ("**/file*.txt", "dir/dir/file.txt", Exact),
    ("**/file*.txt*", "dir/dir/file.txt", Exact),
    ("**/**/*.txt", "dir/dir/file.txt", Exact),
    ("**/**/*.txt2", "dir/dir/file.txt", Fail),
    ("**/*.txt", "file.txt", Exact),
    ("**/**/*.txt", "file.txt", Exact),
    ("a**/*.txt", "a/file.txt", Exact),
    ("a**/*.txt", "a/dir/file.txt", Exact),
    ("a**/*.txt", "a/dir/dir/file.txt", Exact),
    ("a/*.txt", "a/dir/file.txt", Fail),
    ("a/*.txt", "a/file.txt", Exact),
    ("a/*.txt**", "a/file.txt", Exact),
    ("a[b-d]e", "ae", Fail),
    ("a[b-d]e", "ace", Exact),
    ("a[b-d]e", "aae", Fail),
    ("a[^b-d]e", "aze", Exact),
    (".*", ".foo", Exact),
    (".*", "foo", Fail),
    ("abc.def", "abcdef", Fail),
    ("abc.def", "abc.def", Exact),
    ("abc.def", "abcZdef", Fail),
    ("abc?def", "abcZdef", Exact),
    ("abc?def", "abcdef", Fail),
    ("**/foo/bar", "foo/bar", Exact),
    ("**/foo/bar", "dir/foo/bar", Exact),
    ("**/foo/bar", "dir/dir2/foo/bar", Exact),
    ("abc/**", "abc", Fail),
    ("abc/**", "abc/def", Exact),
    ("abc/**", "abc/def/ghi", Exact),
    ("**/.foo", ".foo", Exact),
    ("**/.foo", "bar.foo", Fail),
    ("a(b)c/def", "a(b)c/def", Exact),
    ("a(b)c/def", "a(b)c/xyz", Fail),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", Exact),
    (
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        Exact,
    ),
    (
        "dist/*.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        Exact,
    ),
    ("a\\\\", "a\\", Exact),
    ("a\\*b", "a*b", Exact),
];

/// Multi-pattern rows of `TestMatches`.
const MULTI: &[(&[&str], &str, Pass)] = &[
    (&["**", "!util/docker/web"], "util/docker/web/foo", Fail),
    (
        &["**", "!util/docker/web", "util/docker/web/foo"],
        "util/docker/web/foo",
        Exact,
    ),
    (
        &[
            "**",
            "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        ],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        Fail,
    ),
    (
        &["**", "!dist/*.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        Fail,
    ),
];

#[test]
fn matches_exact() {
    for (pattern, text, pass) in MATCHES {
        let m = Matcher::new(&[pattern]).unwrap();
        assert_eq!(
            m.matches_exact(text),
            *pass == Exact,
            "pattern={pattern:?} text={text:?}"
        );
    }
}

#[test]
fn matches_or_parent_matches() {
    for (pattern, text, pass) in MATCHES {
        let m = Matcher::new(&[pattern]).unwrap();
        assert_eq!(
            m.matches(text),
            *pass != Fail,
            "pattern={pattern:?} text={text:?}"
        );
    }
    for (patterns, text, pass) in MULTI {
        let m = Matcher::new(patterns).unwrap();
        assert_eq!(m.matches(text), *pass != Fail, "{patterns:?} {text:?}");
    }
}

/// `matchTests` (from Go's `filepath.Match` tests): (pattern, path,
/// matches, bad pattern).
const MATCH_TESTS: &[(&str, &str, bool, bool)] = &[
    ("abc", "abc", true, false),
    ("*", "abc", true, false),
    ("*c", "abc", true, false),
    ("a*", "a", true, false),
    ("a*", "abc", true, false),
    ("a*", "ab/c", true, false),
    ("a*/b", "abc/b", true, false),
    ("a*/b", "a/c/b", false, false),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", true, false),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true, false),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false, false),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false, false),
    ("a*b?c*x", "abxbbxdbxebxczzx", true, false),
    ("a*b?c*x", "abxbbxdbxebxczzy", false, false),
    ("ab[c]", "abc", true, false),
    ("ab[b-d]", "abc", true, false),
    ("ab[e-g]", "abc", false, false),
    ("ab[^c]", "abc", false, false),
    ("ab[^b-d]", "abc", false, false),
    ("ab[^e-g]", "abc", true, false),
    ("a\\*b", "a*b", true, false),
    ("a\\*b", "ab", false, false),
    ("a?b", "a☺b", true, false),
    ("a[^a]b", "a☺b", true, false),
    ("a???b", "a☺b", false, false),
    ("a[^a][^a][^a]b", "a☺b", false, false),
    ("[a-ζ]*", "α", true, false),
    ("*[a-ζ]", "A", false, false),
    ("a?b", "a/b", false, false),
    ("a*b", "a/b", false, false),
    ("[\\]a]", "]", true, false),
    ("[\\-]", "-", true, false),
    ("[x\\-]", "x", true, false),
    ("[x\\-]", "-", true, false),
    ("[x\\-]", "z", false, false),
    ("[\\-x]", "x", true, false),
    ("[\\-x]", "-", true, false),
    ("[\\-x]", "a", false, false),
    ("[]a]", "]", false, true),
    ("[-]", "-", false, true),
    ("[x-]", "x", false, true),
    ("[x-]", "-", false, true),
    ("[x-]", "z", false, true),
    ("[-x]", "x", false, true),
    ("[-x]", "-", false, true),
    ("[-x]", "a", false, true),
    ("\\", "a", false, true),
    ("[a-b-c]", "a", false, true),
    ("[", "a", false, true),
    ("[^", "a", false, true),
    ("[^bc", "a", false, true),
    ("a[", "a", false, true),
    ("a[", "ab", false, true),
    ("*x", "xxx", true, false),
];

#[test]
fn filepath_match_table() {
    for (pattern, s, want, bad) in MATCH_TESTS {
        match Matcher::new(&[pattern]) {
            Err(_) => assert!(bad, "{pattern:?} refused"),
            Ok(m) => {
                assert!(!bad, "{pattern:?} accepted");
                assert_eq!(m.matches(s), *want, "{pattern:?} {s:?}");
            }
        }
    }
}

#[test]
fn small_cases() {
    let m = |p: &[&str], f: &str| Matcher::new(p).unwrap().matches(f);
    assert!(m(&["*"], "fileutils.go"));
    assert!(m(&["*.go"], "fileutils.go"));
    assert!(m(&["!fileutils.go", "*.go"], "fileutils.go"));
    assert!(!m(&["docs", "!docs/README.md"], "docs/README.md"));
    assert!(!m(&["docs/", "!docs/README.md"], "docs/README.md"));
    assert!(!m(&["docs/*", "!docs/README.md"], "docs/README.md"));
    assert!(!m(&["*.go", "!fileutils.go"], "fileutils.go"));
    assert!(!m(&["*.go"], "."), "the context itself is never excluded");
    assert!(!m(&[], "/any/path/there"));
    let file = parse_ignore_file("f", "/a/b\n./c\n").unwrap();
    assert!(file.matches("a/b/x"), "leading / dropped by the reader");
    assert!(file.matches("c"), "leading ./ cleaned");
    assert!(m(&["./c"], "c"));
    assert_eq!(
        Matcher::new(&["!"]).unwrap_err(),
        "illegal exclusion pattern: \"!\""
    );
    assert!(Matcher::new(&["["]).is_err());
    let with = Matcher::new(&["docs", "  !docs/README.md  "]).unwrap();
    assert!(with.has_exclusions());
    assert!(!Matcher::new(&["docs", ""]).unwrap().has_exclusions());
}

#[test]
fn compile_kinds() {
    let kind = |p: &str| match compile(p).unwrap() {
        How::Exact => "exact".to_owned(),
        How::Prefix => "prefix".to_owned(),
        How::Suffix => "suffix".to_owned(),
        How::Regex(r) => r.as_str().to_owned(),
    };
    let cases = [
        ("*", "^[^/]*$"),
        ("file*", "^file[^/]*$"),
        ("*file", "^[^/]*file$"),
        ("a*/b", "^a[^/]*/b$"),
        ("**", "suffix"),
        ("**/**", "^(.*/)?.*$"),
        ("dir/**", "prefix"),
        ("**/dir", "suffix"),
        ("**/dir2/*", "^(.*/)?dir2/[^/]*$"),
        ("**/dir2/**", "^(.*/)?dir2/.*$"),
        ("**file", "suffix"),
        ("**/file*txt", "^(.*/)?file[^/]*txt$"),
        ("**/**/*.txt", "^(.*/)?(.*/)?[^/]*\\.txt$"),
        ("a[b-d]e", "^a[b-d]e$"),
        (".*", "^\\.[^/]*$"),
        ("abc.def", "exact"),
    ];
    for (p, want) in cases {
        assert_eq!(kind(p), want, "{p:?}");
    }
}

#[test]
fn read_all() {
    let content =
        "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
    let got: Vec<String> = read_patterns(content).into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        got,
        [
            "test1",
            "test2",
            "a/file/here",
            "lastfile",
            "!inverted/abs/path",
            "!",
            "!"
        ]
    );
    let lines: Vec<usize> = read_patterns("\u{feff}a\n#c\n\n./b/../c\n")
        .into_iter()
        .map(|(l, _)| l)
        .collect();
    assert_eq!(lines, [1, 4]);
    assert_eq!(read_patterns("./b/../c")[0].1, "c");
}

#[test]
fn ignore_file_errors_name_the_line() {
    let e = parse_ignore_file(".dockerignore", "a\n# x\n[\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        ".dockerignore:3: syntax error in pattern \"[\""
    );
    let e = parse_ignore_file("x.dockerignore", "a\n!\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "x.dockerignore:2: illegal exclusion pattern: \"!\""
    );
    assert!(parse_ignore_file("f", "node_modules\n**/*.pyc\n!keep.pyc\n").is_ok());
}

#[test]
fn which_ignore_file() {
    let ctx = Path::new("/ctx");
    let has =
        |files: &'static [&'static str]| move |p: &Path| files.iter().any(|f| Path::new(f) == p);
    let df = Path::new("/src/build/app.Dockerfile");
    assert_eq!(
        ignore_file_for(
            ctx,
            Some(df),
            has(&[
                "/src/build/app.Dockerfile.dockerignore",
                "/ctx/.dockerignore"
            ])
        ),
        Some(PathBuf::from("/src/build/app.Dockerfile.dockerignore"))
    );
    assert_eq!(
        ignore_file_for(ctx, Some(df), has(&["/ctx/.dockerignore"])),
        Some(PathBuf::from("/ctx/.dockerignore"))
    );
    assert_eq!(
        ignore_file_for(ctx, None, has(&["/ctx/.dockerignore"])),
        Some(PathBuf::from("/ctx/.dockerignore"))
    );
    assert_eq!(ignore_file_for(ctx, Some(df), has(&[])), None);
}

#[test]
fn go_clean() {
    let cases = [
        ("", "."),
        ("a/b/../c", "a/c"),
        ("/../a", "/a"),
        ("../a", "../a"),
        ("a/../..", ".."),
        ("./a//b/", "a/b"),
        ("/", "/"),
        (".", "."),
    ];
    for (p, want) in cases {
        assert_eq!(clean(p), want, "{p:?}");
    }
}
