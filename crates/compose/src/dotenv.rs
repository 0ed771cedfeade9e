//! `.env` and `--env-file` parsing with compose-go's dotenv rules.
//!
//! One `KEY=VALUE` (or YAML-style `KEY: VALUE`) per statement, an optional
//! `export ` prefix, `#` comment lines. Values:
//! - unquoted: up to the end of the line, cut at ` #` (an inline comment),
//!   trimmed, then interpolated;
//! - `'single'`: literal, may span lines;
//! - `"double"`: may span lines, `\n` `\r` `\t` `\\` `\"` `\$` escapes, then
//!   interpolated.
//!
//! A bare `KEY` takes the value from `lookup` (the process environment) and
//! is left out when that has none. Interpolation reads `lookup` first, then
//! the variables defined earlier in the same file.

use crate::Error;
use crate::interpolate::{self, TemplateError};

/// Variables in file order; a key defined twice keeps its first place and
/// its last value.
pub type EnvList = Vec<(String, String)>;

/// The value of `name` in `env`.
pub fn get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Parses the env file `file` whose contents are `text`.
pub fn parse(
    file: &str,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<EnvList, Error> {
    let mut p = Parser {
        file,
        rest: text,
        line: 1,
        out: Vec::new(),
    };
    while p.next_statement() {
        p.statement(lookup)?;
    }
    Ok(p.out)
}

struct Parser<'a> {
    file: &'a str,
    rest: &'a str,
    line: usize,
    out: EnvList,
}

impl<'a> Parser<'a> {
    fn err(&self, message: String) -> Error {
        Error::Dotenv {
            file: self.file.to_owned(),
            line: self.line,
            message,
        }
    }

    /// Moves `n` bytes on, counting lines.
    fn advance(&mut self, n: usize) {
        self.line += self.rest[..n].matches('\n').count();
        self.rest = &self.rest[n..];
    }

    /// Skips blanks and comment lines; false at the end of the text.
    fn next_statement(&mut self) -> bool {
        loop {
            let blank = self.rest.len() - self.rest.trim_start().len();
            self.advance(blank);
            if !self.rest.starts_with('#') {
                return !self.rest.is_empty();
            }
            let eol = self.rest.find('\n').unwrap_or(self.rest.len());
            self.advance(eol);
        }
    }

    fn statement(&mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), Error> {
        if let Some(after) = self.rest.strip_prefix("export")
            && after.starts_with([' ', '\t'])
        {
            self.advance(6);
            let blank = self.rest.len() - self.rest.trim_start_matches([' ', '\t']).len();
            self.advance(blank);
        }
        let end = self.rest.find(['=', ':', '\n']).unwrap_or(self.rest.len());
        let key = self.rest[..end]
            .trim_end_matches([' ', '\t', '\r'])
            .to_owned();
        self.check_key(&key)?;
        let inherited = !self.rest[end..].starts_with(['=', ':']);
        self.advance((end + 1).min(self.rest.len()));
        if inherited {
            if let Some(v) = lookup(&key) {
                self.set(key, v);
            }
            return Ok(());
        }
        let blank = self.rest.len() - self.rest.trim_start_matches([' ', '\t']).len();
        self.advance(blank);
        let value = self.value(lookup)?;
        self.set(key, value);
        Ok(())
    }

    fn check_key(&self, key: &str) -> Result<(), Error> {
        if key.is_empty() {
            return Err(self.err("a line has no variable name before '=': write NAME=VALUE".into()));
        }
        match key
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            Some(c) => Err(self.err(format!(
                "unexpected character {c:?} in variable name {key:?}: names may hold letters, digits, '_', '.' and '-'"
            ))),
            None => Ok(()),
        }
    }

    fn set(&mut self, key: String, value: String) {
        match self.out.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.out.push((key, value)),
        }
    }

    fn value(&mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, Error> {
        let quote = match self.rest.chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => {
                let eol = self.rest.find('\n').unwrap_or(self.rest.len());
                let raw = self.rest[..eol].split(" #").next().unwrap_or_default();
                let raw = raw.trim().to_owned();
                let v = self.expand(&raw, lookup)?;
                self.advance(eol);
                return Ok(v);
            }
        };
        let close = closing_quote(self.rest, quote).ok_or_else(|| {
            let eol = self.rest.find('\n').unwrap_or(self.rest.len());
            self.err(format!(
                "unterminated quoted value {}: close it with {quote}",
                &self.rest[..eol]
            ))
        })?;
        let inner = self.rest[1..close].to_owned();
        let v = match quote {
            '"' => self.expand(&unescape(&inner), lookup)?,
            _ => inner,
        };
        self.advance(close + 1);
        let eol = self.rest.find('\n').unwrap_or(self.rest.len());
        let trailing = self.rest[..eol].trim();
        if !trailing.is_empty() && !trailing.starts_with('#') {
            return Err(self.err(format!(
                "unexpected text {trailing:?} after a quoted value: put it inside the quotes or after a #"
            )));
        }
        Ok(v)
    }

    fn expand(&self, raw: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, Error> {
        let both = |n: &str| lookup(n).or_else(|| get(&self.out, n).map(str::to_owned));
        interpolate::substitute(raw, &both)
            .map(|i| i.value)
            .map_err(|e: TemplateError| self.err(e.to_string()))
    }
}

/// The index of the quote closing the one at 0 (not preceded by `\`).
fn closing_quote(s: &str, quote: char) -> Option<usize> {
    let b = s.as_bytes();
    (1..b.len()).find(|&i| b[i] == quote as u8 && b[i - 1] != b'\\')
}

/// Double-quote escapes; `\$` becomes `$$` so interpolation keeps a `$`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('$') => out.push_str("$$"),
            Some(c @ ('\\' | '"' | '\'')) => out.push(c),
            Some(c) => {
                out.push('\\');
                out.push(c);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
#[path = "dotenv_tests.rs"]
mod tests;
