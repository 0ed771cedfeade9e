//! The raw YAML tree: every node keeps the line it came from, so that
//! interpolation, merging and validation can name file, line and key.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::Error;

/// Largest compose file accepted (a compose file is written by hand).
pub const MAX_FILE_BYTES: usize = 4 << 20;

/// One YAML node and its 1-based line (0 when made by den, not read).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// 1-based line in its file, 0 when not from a file.
    pub line: usize,
    /// The value.
    pub value: Raw,
}

/// A YAML value before typing. Mapping keys are strings (compose files
/// have no other keys) and keep their order.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping in file order.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// A node den made (line 0).
    pub fn new(value: Raw) -> Node {
        Node { line: 0, value }
    }

    /// The entry `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Raw::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Raw::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar as text (what a string-typed field reads), if a scalar.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Raw::Str(s) => Some(s.clone()),
            Raw::Int(i) => Some(i.to_string()),
            Raw::Float(f) => Some(f.to_string()),
            Raw::Bool(b) => Some(b.to_string()),
            Raw::Null | Raw::Seq(_) | Raw::Map(_) => None,
        }
    }

    /// The YAML type name, for messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Raw::Null => "null",
            Raw::Bool(_) => "a boolean",
            Raw::Int(_) => "an integer",
            Raw::Float(_) => "a number",
            Raw::Str(_) => "a string",
            Raw::Seq(_) => "a list",
            Raw::Map(_) => "a mapping",
        }
    }
}

/// Parses one compose file's text.
pub fn parse(file: &str, text: &str) -> Result<Node, Error> {
    if text.len() > MAX_FILE_BYTES {
        return Err(Error::Yaml {
            file: file.to_owned(),
            line: 0,
            message: format!(
                "the file is {} bytes, more than the {MAX_FILE_BYTES} den reads",
                text.len()
            ),
        });
    }
    let node: Option<Node> = serde_saphyr::from_str(text).map_err(|e| Error::Yaml {
        file: file.to_owned(),
        line: 0,
        message: first_line(&e.to_string()),
    })?;
    Ok(node.unwrap_or(Node {
        line: 1,
        value: Raw::Map(Vec::new()),
    }))
}

/// serde-saphyr renders a snippet after the message; keep the message (it
/// holds the line and column).
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    // The parser's hint names a library option, not something a user can set.
    let line = line
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(line);
    line.to_owned()
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        let s = serde_saphyr::Spanned::<Raw>::deserialize(d)?;
        Ok(Node {
            line: s.referenced.line() as usize,
            value: s.value,
        })
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        i64::try_from(v)
            .map(Raw::Int)
            .map_err(|_| E::custom(format!("integer {v} is too large")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
        let mut out = Vec::new();
        while let Some(n) = a.next_element::<Node>()? {
            out.push(n);
        }
        Ok(Raw::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
        let mut out: Vec<(String, Node)> = Vec::new();
        while let Some(k) = a.next_key::<Node>()? {
            let Some(key) = k.scalar_text() else {
                return Err(de::Error::custom(format!(
                    "line {}: a mapping key must be a string, not {}",
                    k.line,
                    k.kind()
                )));
            };
            let v = a.next_value::<Node>()?;
            if out.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!(
                    "line {}: duplicate key {key:?}",
                    v.line
                )));
            }
            out.push((key, v));
        }
        Ok(Raw::Map(out))
    }
}

#[cfg(test)]
#[path = "yaml_tests.rs"]
mod tests;
