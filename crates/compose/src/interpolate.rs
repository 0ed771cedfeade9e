//! Variable interpolation in compose file values, as compose-go's
//! `template` package does it.
//!
//! `$$` is a literal `$`; `$NAME` and `${NAME}` read a variable (unset reads
//! as empty and is reported, so the caller can warn like docker compose);
//! `${NAME:-d}` / `${NAME-d}` default when unset-or-empty / unset;
//! `${NAME:?e}` / `${NAME?e}` fail when unset-or-empty / unset;
//! `${NAME:+r}` / `${NAME+r}` replace when set-and-non-empty / set.
//! The operator is the one right after the name, and its argument is itself
//! interpolated (nesting). Any other `$` is an invalid template.

use std::fmt;

/// Why a value could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `$` not followed by a name, `{NAME…}` or `$`.
    #[error("Invalid template: {template:?} (write $$ for a literal $)")]
    Invalid {
        /// The whole value that holds the bad `$`.
        template: String,
    },
    /// `${NAME:?message}` or `${NAME?message}` with the variable missing.
    #[error("{}", Required(name, message))]
    Required {
        /// The variable.
        name: String,
        /// The (interpolated) message after `?`, possibly empty.
        message: String,
    },
}

/// Formats compose-go's "required variable … is missing a value" text.
struct Required<'a>(&'a str, &'a str);

impl fmt::Display for Required<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "required variable {} is missing a value", self.0)?;
        if !self.1.is_empty() {
            write!(f, ": {}", self.1)?;
        }
        Ok(())
    }
}

/// The result of interpolating one value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interpolated {
    /// The value with every variable replaced.
    pub value: String,
    /// Variables read without a default that were unset (each replaced by
    /// an empty string), in the order met; docker compose warns about them.
    pub unset: Vec<String>,
}

/// Interpolates `template`, reading variables through `lookup`
/// (`None` = unset, `Some("")` = set but empty).
pub fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, TemplateError> {
    let mut cx = Cx {
        lookup,
        unset: Vec::new(),
    };
    let value = cx.run(template)?;
    Ok(Interpolated {
        value,
        unset: cx.unset,
    })
}

struct Cx<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    unset: Vec<String>,
}

impl Cx<'_> {
    fn run(&mut self, t: &str) -> Result<String, TemplateError> {
        let invalid = || TemplateError::Invalid {
            template: t.to_owned(),
        };
        let mut out = String::with_capacity(t.len());
        let mut i = 0;
        while let Some(pos) = t[i..].find('$') {
            out.push_str(&t[i..i + pos]);
            let j = i + pos + 1;
            let rest = &t[j..];
            if rest.starts_with('$') {
                out.push('$');
                i = j + 1;
            } else if rest.starts_with('{') {
                let close = closing_brace(t, j).ok_or_else(invalid)?;
                out.push_str(&self.braced(&t[j + 1..close]).map_err(|e| e.within(t))?);
                i = close + 1;
            } else {
                let name = name_prefix(rest);
                if name.is_empty() {
                    return Err(invalid());
                }
                out.push_str(&self.plain(name));
                i = j + name.len();
            }
        }
        out.push_str(&t[i..]);
        Ok(out)
    }

    fn plain(&mut self, name: &str) -> String {
        (self.lookup)(name).unwrap_or_else(|| {
            if !self.unset.iter().any(|n| n == name) {
                self.unset.push(name.to_owned());
            }
            String::new()
        })
    }

    /// `inner` is what stands between `${` and its `}`.
    fn braced(&mut self, inner: &str) -> Result<String, Braced> {
        let name = name_prefix(inner);
        if name.is_empty() {
            return Err(Braced::Invalid);
        }
        let rem = &inner[name.len()..];
        if rem.is_empty() {
            return Ok(self.plain(name));
        }
        let op = [":-", ":?", ":+", "-", "?", "+"]
            .into_iter()
            .find(|op| rem.starts_with(op))
            .ok_or(Braced::Invalid)?;
        // compose-go interpolates the argument before looking at the variable.
        let arg = self.run(&rem[op.len()..]).map_err(Braced::Nested)?;
        let value = (self.lookup)(name);
        let set = value.is_some();
        let full = value.as_deref().is_some_and(|v| !v.is_empty());
        let value = value.unwrap_or_default();
        let required = |ok: bool| match ok {
            true => Ok(value.clone()),
            false => Err(Braced::Nested(TemplateError::Required {
                name: name.to_owned(),
                message: arg.clone(),
            })),
        };
        match op {
            ":-" => Ok(if full { value.clone() } else { arg.clone() }),
            "-" => Ok(if set { value.clone() } else { arg.clone() }),
            ":?" => required(full),
            "?" => required(set),
            ":+" => Ok(if full { arg.clone() } else { String::new() }),
            _ => Ok(if set { arg.clone() } else { String::new() }),
        }
    }
}

/// A failure inside `${…}`: either the braces are malformed (reported
/// against the whole value) or a nested error that stands as it is.
enum Braced {
    Invalid,
    Nested(TemplateError),
}

impl Braced {
    fn within(self, template: &str) -> TemplateError {
        match self {
            Braced::Invalid => TemplateError::Invalid {
                template: template.to_owned(),
            },
            Braced::Nested(e) => e,
        }
    }
}

/// The index of the `}` closing the `{` at `open`, counting only `${` as
/// openers (as compose-go's `getFirstBraceClosingIndex` does).
fn closing_brace(t: &str, open: usize) -> Option<usize> {
    let b = t.as_bytes();
    let mut depth = 1;
    let mut k = open + 1;
    while k < b.len() {
        if b[k] == b'}' {
            depth -= 1;
            if depth == 0 {
                return Some(k);
            }
        } else if b[k] == b'$' && b.get(k + 1) == Some(&b'{') {
            depth += 1;
            k += 1;
        }
        k += 1;
    }
    None
}

/// The longest prefix matching `[_A-Za-z][_A-Za-z0-9]*`.
fn name_prefix(s: &str) -> &str {
    let b = s.as_bytes();
    if !b
        .first()
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
    {
        return "";
    }
    let end = b
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
        .unwrap_or(b.len());
    &s[..end]
}

#[cfg(test)]
#[path = "interpolate_tests.rs"]
mod tests;
