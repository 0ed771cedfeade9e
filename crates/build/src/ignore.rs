//! `.dockerignore` with Docker's exact semantics (moby/patternmatcher and
//! its `ignorefile` reader).
//!
//! Reading: a UTF-8 BOM is dropped, lines starting with `#` are comments,
//! blanks are trimmed, `!` marks an exception, each pattern is cleaned like
//! Go's `filepath.Clean` and a leading `/` is dropped (so `/a`, `./a` and
//! `a` are the same). Matching: `*` and `?` stay within one path element,
//! `**` spans any number of them, `[...]` is a class and `\` escapes. A
//! path is excluded when the last pattern that matches it, or matches one
//! of its parent directories, is not an exception. Patterns are regular
//! expressions built exactly as patternmatcher builds them, with shortcuts
//! for exact names, `dir/**` prefixes and `**/name` suffixes.

use std::path::{Path, PathBuf};

use regex::Regex;

use crate::Error;

/// A compiled list of patterns.
#[derive(Debug, Clone)]
pub struct Matcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

#[derive(Debug, Clone)]
struct Pattern {
    cleaned: String,
    exclusion: bool,
    how: How,
}

#[derive(Debug, Clone)]
enum How {
    Exact,
    Prefix,
    Suffix,
    Regex(Regex),
}

impl Matcher {
    /// Compiles patterns (as [`read_patterns`] returns them).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, String> {
        let mut m = Matcher {
            patterns: Vec::new(),
            exclusions: false,
        };
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut p = clean(p);
            let exclusion = p.starts_with('!');
            if exclusion {
                if p.len() == 1 {
                    return Err("illegal exclusion pattern: \"!\"".into());
                }
                p.remove(0);
                m.exclusions = true;
            }
            if !valid_glob(&p) {
                return Err(format!("syntax error in pattern {p:?}"));
            }
            let how = compile(&p).map_err(|e| format!("syntax error in pattern {p:?}: {e}"))?;
            m.patterns.push(Pattern {
                cleaned: p,
                exclusion,
                how,
            });
        }
        Ok(m)
    }

    /// Whether some pattern is an exception (`!…`): then a walker must
    /// look inside excluded directories for re-included paths.
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded,
    /// by a pattern matching it or one of its parents
    /// (`MatchesOrParentMatches`). The context itself is never excluded.
    pub fn matches(&self, path: &str) -> bool {
        let file = clean(path);
        if file == "." {
            return false;
        }
        let parents: Vec<&str> = match file.rfind('/') {
            Some(i) => file[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let hit =
                p.matches(&file) || (1..=parents.len()).any(|k| p.matches(&parents[..k].join("/")));
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether `path` itself matches, parents not considered
    /// (`MatchesExact`).
    pub fn matches_exact(&self, path: &str) -> bool {
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            if p.matches(path) {
                matched = !p.exclusion;
            }
        }
        matched
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        let c = &self.cleaned;
        match &self.how {
            How::Exact => path == c,
            How::Prefix => path.starts_with(&c[..c.len() - 2]),
            How::Suffix => {
                let suffix = &c[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            How::Regex(re) => re.is_match(path),
        }
    }
}

/// patternmatcher's `compile`: the pattern as a regular expression, or a
/// shortcut when no regular expression is needed.
fn compile(pattern: &str) -> Result<How, regex::Error> {
    let mut re = String::from("^");
    let mut kind = 0; // 0 exact, 1 prefix, 2 suffix, 3 regex
    let mut in_class = false;
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        if ch == '*' && !in_class {
            if chars.get(i) == Some(&'*') {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if kind == 0 {
                        kind = 1;
                    } else {
                        re.push_str(".*");
                        kind = 3;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = 3;
                }
                if first {
                    kind = 2;
                }
            } else {
                re.push_str("[^/]*");
                kind = 3;
            }
        } else if ch == '?' && !in_class {
            re.push_str("[^/]");
            kind = 3;
        } else if ".+()|{}$".contains(ch) {
            re.push('\\');
            re.push(ch);
        } else if ch == '\\' {
            match chars.get(i) {
                Some(&next) => {
                    re.push('\\');
                    re.push(next);
                    i += 1;
                    kind = 3;
                }
                None => re.push_str("\\\\"),
            }
        } else if ch == '[' || ch == ']' {
            match (ch, in_class) {
                ('[', true) => re.push_str("\\["),
                (']', false) => re.push_str("\\]"),
                _ => {
                    re.push(ch);
                    in_class = ch == '[';
                }
            }
            kind = 3;
        } else if in_class && (ch == '&' || ch == '~') {
            // Set operators in Rust's classes; literal in Go's.
            re.push('\\');
            re.push(ch);
        } else {
            re.push(ch);
        }
        first = false;
    }
    Ok(match kind {
        0 => How::Exact,
        1 => How::Prefix,
        2 => How::Suffix,
        _ => {
            re.push('$');
            How::Regex(Regex::new(&re)?)
        }
    })
}

/// Go's `filepath.Match` syntax check: classes closed and non-empty, no
/// `-` or `]` where a class character is expected, no trailing `\`.
fn valid_glob(p: &str) -> bool {
    let c: Vec<char> = p.chars().collect();
    let esc = |i: &mut usize| -> bool {
        match c.get(*i) {
            None | Some('-' | ']') => false,
            Some('\\') => {
                *i += 2;
                *i <= c.len()
            }
            Some(_) => {
                *i += 1;
                true
            }
        }
    };
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '\\' if i + 1 >= c.len() => return false,
            '\\' => i += 2,
            '[' => {
                i += 1;
                if c.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut ranges = 0;
                loop {
                    if ranges > 0 && c.get(i) == Some(&']') {
                        i += 1;
                        break;
                    }
                    if !esc(&mut i) {
                        return false;
                    }
                    if c.get(i) == Some(&'-') {
                        i += 1;
                        if !esc(&mut i) {
                            return false;
                        }
                    }
                    ranges += 1;
                }
            }
            _ => i += 1,
        }
    }
    true
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// The patterns of an ignore file with their 1-based lines
/// (`ignorefile.ReadAll`).
pub fn read_patterns(content: &str) -> Vec<(usize, String)> {
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    let mut out = Vec::new();
    for (n, line) in content.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        let mut p = line.trim();
        if p.is_empty() {
            continue;
        }
        let invert = p.starts_with('!');
        if invert {
            p = p[1..].trim();
        }
        let mut p = if p.is_empty() {
            String::new()
        } else {
            clean(p)
        };
        if p.len() > 1 && p.starts_with('/') {
            p.remove(0);
        }
        out.push((n + 1, if invert { format!("!{p}") } else { p }));
    }
    out
}

/// Reads an ignore file's text into a matcher; a bad pattern is an error
/// naming `file` and its line.
pub fn parse_ignore_file(file: &str, content: &str) -> Result<Matcher, Error> {
    let patterns = read_patterns(content);
    for (line, p) in &patterns {
        Matcher::new(&[p]).map_err(|message| Error::Ignore {
            file: file.to_owned(),
            line: *line,
            message,
        })?;
    }
    let all: Vec<&String> = patterns.iter().map(|(_, p)| p).collect();
    Matcher::new(&all).map_err(|message| Error::Ignore {
        file: file.to_owned(),
        line: 0,
        message,
    })
}

/// Which ignore file applies: `FILE.dockerignore` beside the Dockerfile
/// given with `-f FILE` when it exists, else `CONTEXT/.dockerignore` when
/// it exists. `exists` is the file-system test (a parameter so this stays
/// pure).
pub fn ignore_file_for(
    context: &Path,
    dockerfile: Option<&Path>,
    exists: impl Fn(&Path) -> bool,
) -> Option<PathBuf> {
    if let Some(df) = dockerfile
        && let Some(name) = df.file_name()
    {
        let mut beside = name.to_os_string();
        beside.push(".dockerignore");
        let candidate = df.with_file_name(beside);
        if exists(&candidate) {
            return Some(candidate);
        }
    }
    let default = context.join(".dockerignore");
    exists(&default).then_some(default)
}

#[cfg(test)]
#[path = "ignore_tests.rs"]
mod tests;
