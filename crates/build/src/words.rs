//! Word processing of instruction arguments, as BuildKit's shell lexer does it
//! (`frontend/dockerfile/shell/lex.go`): quotes, escapes and variable
//! expansion, but no command substitution, globbing or arithmetic.
//!
//! Theory of operation: a word is scanned once, character by character.
//! Outside quotes, the escape character (`\`, or `` ` `` with `# escape=`)
//! takes the next character literally; `'…'` is literal; `"…"` expands `$`
//! and lets the escape character quote only `"`, `$` and itself. `$NAME`,
//! `${NAME}` and the modifier forms look the name up in the given
//! environment. [`Lexer::process`] returns both the joined result (for
//! ENV, WORKDIR, …) and the result split into words on unquoted white
//! space that came from the text or from a `$` expansion (for EXPOSE,
//! COPY sources, …), plus the names it found set and unset, which the build
//! cache uses to key a step on the build args it reads.
//!
//! Pattern modifiers (`#`, `##`, `%`, `%%`, `/`, `//`) turn the shell
//! pattern into a regular expression exactly as BuildKit does (`*` and `?`,
//! no bracket expressions), so the same Dockerfile gives the same strings.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;

/// Why a word could not be processed. Messages match BuildKit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordError {
    /// A quote or `${` without its end.
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(&'static str),
    /// `${` reaching the end of the word.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${VAR/pattern` without the second `/`.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${}`, `${:x}`, `${{x}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// A modifier BuildKit does not have, such as `${V=x}`.
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${V?msg}` with V unset, or `${V:?msg}` with V unset or empty.
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The user's message, or BuildKit's default one.
        message: String,
    },
    /// A pattern with an escape other than `\*`, `\?`, `\\`.
    #[error("invalid pattern ({pattern}) in substitution: {reason}")]
    BadPattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The result of processing one word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processed {
    /// The whole word, quotes removed and variables expanded.
    pub word: String,
    /// The same, split into words (quoted white space kept).
    pub words: Vec<String>,
    /// Variables the word read that were set.
    pub matched: BTreeSet<String>,
    /// Variables the word read that were not set.
    pub unmatched: BTreeSet<String>,
}

/// The lexer's settings. `Lexer::new('\\')` is what the Dockerfile
/// frontend uses for most instructions.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    escape: char,
    /// Keep quote characters in the output (BuildKit's `RawQuotes`).
    pub raw_quotes: bool,
    /// Keep escape characters in the output (`RawEscapes`).
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters (`SkipProcessQuotes`).
    pub skip_quotes: bool,
    /// Leave references to unset variables as written (`SkipUnsetEnv`).
    pub skip_unset: bool,
}

impl Lexer {
    /// A lexer with the given escape character (`\` or `` ` ``).
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_quotes: false,
            skip_unset: false,
        }
    }

    /// Processes `word` against `env`.
    pub fn process(
        &self,
        word: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<Processed, WordError> {
        let mut scan = Scan {
            lexer: *self,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        let (word, words) = scan.stop_on(None, self.raw_escapes)?;
        Ok(Processed {
            word,
            words,
            matched: scan.matched,
            unmatched: scan.unmatched,
        })
    }
}

/// Expands `word` with the default lexer (escape `\`): the joined result.
pub fn expand(word: &str, env: &BTreeMap<String, String>) -> Result<String, WordError> {
    Ok(Lexer::new('\\').process(word, env)?.word)
}

/// Expands `word` with the default lexer and splits it into words.
pub fn expand_words(word: &str, env: &BTreeMap<String, String>) -> Result<Vec<String>, WordError> {
    Ok(Lexer::new('\\').process(word, env)?.words)
}

/// Splits an instruction's arguments into words the way the Dockerfile
/// parser does before any expansion (BuildKit's `parseWords`): quotes and
/// escapes are kept in the words, white space inside quotes does not split.
pub fn split_raw(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if let Some(q) = quote {
            if ch == escape && q != '\'' {
                if i + 1 == chars.len() {
                    break;
                }
                word.push(ch);
                i += 1;
                word.push(chars[i]);
            } else {
                if ch == q {
                    quote = None;
                }
                word.push(ch);
            }
        } else if ch.is_whitespace() {
            if in_word && (blank_ok || !word.is_empty()) {
                words.push(std::mem::take(&mut word));
            }
            in_word = false;
            blank_ok = false;
        } else {
            in_word = true;
            if ch == '\'' || ch == '"' {
                quote = Some(ch);
                blank_ok = true;
            }
            if ch == escape {
                if i + 1 == chars.len() {
                    break;
                }
                word.push(ch);
                i += 1;
                word.push(chars[i]);
            } else {
                word.push(ch);
            }
        }
        i += 1;
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// BuildKit's word accumulator: splits on white space that is not quoted.
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Scan<'e> {
    lexer: Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'e BTreeMap<String, String>,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl Scan<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.get(name) {
            Some(v) => {
                self.matched.insert(name.to_owned());
                Some(v.clone())
            }
            None => {
                self.unmatched.insert(name.to_owned());
                None
            }
        }
    }

    /// BuildKit's `processStopOn`: scans up to `stop` (consumed) or the end.
    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), WordError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        result
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), WordError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            let quotes = !self.lexer.skip_quotes;
            if ch == '$' {
                let s = self.dollar()?;
                result.push_str(&s);
                words.add_string(&s);
            } else if quotes && ch == '\'' {
                let s = self.single_quote()?;
                result.push_str(&s);
                words.add_raw_string(&s);
            } else if quotes && ch == '"' {
                let s = self.double_quote()?;
                result.push_str(&s);
                words.add_raw_string(&s);
            } else {
                self.next();
                if ch == self.lexer.escape {
                    if self.raw_escapes {
                        words.add_raw_char(ch);
                        result.push(ch);
                    }
                    let Some(escaped) = self.next() else { break };
                    words.add_raw_char(escaped);
                    result.push(escaped);
                } else {
                    words.add_char(ch);
                    result.push(ch);
                }
            }
        }
        match stop {
            Some('}') => Err(WordError::Unterminated("}")),
            Some('/') => Err(WordError::Unterminated("/")),
            Some(_) => Err(WordError::Unterminated("character")),
            None => Ok((result, words.finish())),
        }
    }

    fn single_quote(&mut self) -> Result<String, WordError> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(WordError::Unterminated("single-quote")),
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, WordError> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(WordError::Unterminated("double-quote")),
                Some('"') => {
                    self.next();
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => result.push_str(&self.dollar()?),
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.lexer.escape => {
                                ch = n;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn dollar(&mut self) -> Result<String, WordError> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lexer.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err(WordError::MissingBrace),
            Some('{' | '}' | ':') => return Err(WordError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        match self.next() {
            Some('}') => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lexer.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => {
                let op = self.next();
                self.modifier(&name, op, true)
            }
            Some(op @ ('+' | '-' | '?' | '#' | '%')) => self.modifier(&name, Some(op), false),
            Some('/') => self.replace(&name),
            Some(other) => Err(WordError::UnsupportedModifier(other.into())),
            None => Err(WordError::MissingBrace),
        }
    }

    /// `${NAME:op…}` (colon) and `${NAME op…}`.
    fn modifier(&mut self, name: &str, op: Option<char>, colon: bool) -> Result<String, WordError> {
        let shown = format!(
            "{}{}",
            if colon { ":" } else { "" },
            op.map(String::from).unwrap_or_default()
        );
        let raw = matches!(op, Some('#' | '%'));
        let (word, _) = match self.stop_on(Some('}'), raw) {
            Ok(w) => w,
            Err(_) if self.peek().is_none() => return Err(WordError::MissingBrace),
            Err(e) => return Err(e),
        };
        let value = self.get_env(name);
        if self.lexer.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{shown}{word}}}"));
        }
        let unset_or_null = value.is_none() || (colon && value.as_deref() == Some(""));
        match op {
            Some('-') => Ok(if unset_or_null {
                word
            } else {
                value.unwrap_or_default()
            }),
            Some('+') => Ok(if unset_or_null { String::new() } else { word }),
            Some('?') => {
                if value.is_none() || unset_or_null {
                    let message = if !word.is_empty() {
                        word
                    } else if value.is_none() {
                        "is not allowed to be unset".into()
                    } else {
                        "is not allowed to be empty".into()
                    };
                    return Err(WordError::Required {
                        name: name.into(),
                        message,
                    });
                }
                Ok(value.unwrap_or_default())
            }
            Some(c @ ('%' | '#')) => {
                let value = value.unwrap_or_default();
                let (greedy, pattern) = match word.strip_prefix(c) {
                    Some(rest) => (true, rest.to_owned()),
                    None => (false, word),
                };
                if c == '%' {
                    trim_suffix(&pattern, &value, greedy)
                } else {
                    trim_prefix(&pattern, &value, greedy)
                }
            }
            _ => Err(WordError::UnsupportedModifier(shown)),
        }
    }

    /// `${NAME/pattern/replacement}` and `${NAME//pattern/replacement}`.
    fn replace(&mut self, name: &str) -> Result<String, WordError> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let (pattern, _) = match self.stop_on(Some('/'), true) {
            Ok(w) => w,
            Err(_) if self.peek().is_none() => return Err(WordError::MissingSlash),
            Err(e) => return Err(e),
        };
        let (replacement, _) = match self.stop_on(Some('}'), true) {
            Ok(w) => w,
            Err(_) if self.peek().is_none() => return Err(WordError::MissingBrace),
            Err(e) => return Err(e),
        };
        let value = self.get_env(name);
        if self.lexer.skip_unset && value.is_none() {
            return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
        }
        let value = value.unwrap_or_default();
        let re = pattern_regex(&pattern, true, false)?;
        if all {
            return Ok(re.replace_all(&value, replacement.as_str()).into_owned());
        }
        Ok(match re.find(&value) {
            Some(m) => format!(
                "{}{}{}",
                &value[..m.start()],
                replacement,
                &value[m.end()..]
            ),
            None => value,
        })
    }

    /// A variable name: letters, digits and `_`; or digits; or one special
    /// parameter character.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.into();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }
}

/// BuildKit's `convertShellPatternToRegex`: `*` and `?` wildcards, `\*`,
/// `\?`, `\\` escapes; `\}` and `\/` drop the backslash.
fn pattern_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<Regex, WordError> {
    let bad = |reason: String| WordError::BadPattern {
        pattern: pattern.into(),
        reason,
    };
    let mut out = String::from(if anchored { "^" } else { "" });
    let mut chars = pattern.chars().peekable();
    while let Some(tok) = chars.next() {
        match tok {
            '*' => out.push_str(if greedy { ".*" } else { ".*?" }),
            '?' => out.push('.'),
            '\\' => {
                if matches!(chars.peek(), Some('}' | '/')) {
                    continue;
                }
                match chars.next() {
                    Some(c @ ('*' | '?' | '\\')) => {
                        out.push('\\');
                        out.push(c);
                    }
                    other => {
                        let shown = other.map(String::from).unwrap_or_default();
                        return Err(bad(format!("invalid escape '\\{shown}'")));
                    }
                }
            }
            '[' | ']' | '{' | '}' | '.' | '+' | '(' | ')' | '|' | '^' | '$' => {
                out.push('\\');
                out.push(tok);
            }
            _ => out.push(tok),
        }
    }
    Regex::new(&out).map_err(|e| bad(e.to_string()))
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, WordError> {
    let re = pattern_regex(pattern, greedy, true)?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_owned(),
        None => value.to_owned(),
    })
}

/// Reverses a pattern without reversing its escapes (`a\*c` → `c\*a`).
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = vec!['\0'; chars.len()];
    let last = chars.len().saturating_sub(1);
    let mut i = 0;
    while i < chars.len() {
        let out_idx = last - i;
        if chars[i] == '\\' && i != last {
            out[out_idx - 1] = '\\';
            out[out_idx] = chars[i + 1];
            i += 2;
        } else {
            out[out_idx] = chars[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, WordError> {
    let reversed: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

#[cfg(test)]
#[path = "words_tests.rs"]
mod tests;
