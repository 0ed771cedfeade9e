//! Go template text split into literal text and the tokens of each action.

use anyhow::{anyhow, bail};

/// A piece of template text: literal text, or one `{{…}}` action.
#[derive(Debug, PartialEq)]
pub enum Piece {
    Text(String),
    Action(Vec<Token>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// `.` alone.
    Dot,
    /// `.Name` starting an operand (a field of dot).
    Field(String),
    /// `.Name` right after a field, a variable or `)`: a field of that.
    Chain(String),
    /// `$name`, or `$` alone (an empty name).
    Var(String),
    Ident(String),
    Str(String),
    Number(f64),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

/// Splits `text` into pieces, honouring `{{-` and `-}}` (trim the
/// whitespace beside them) and dropping `{{/* comments */}}`.
pub fn pieces(text: &str) -> anyhow::Result<Vec<Piece>> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut lit = &rest[..open];
        if trim_next {
            lit = lit.trim_start();
        }
        let mut inner = &rest[open + 2..];
        let trim_before = inner.starts_with("- ") || inner.starts_with("-\t");
        if trim_before {
            lit = lit.trim_end();
            inner = &inner[1..];
        }
        push_text(&mut out, lit);
        let close =
            find_close(inner).ok_or_else(|| anyhow!("unclosed action: `{{{{` without `}}}}`"))?;
        let mut body = &inner[..close];
        trim_next = body.ends_with(" -") || body.ends_with("\t-");
        if trim_next {
            body = &body[..body.len() - 1];
        }
        rest = &inner[close + 2..];
        let body = body.trim();
        if body.starts_with("/*") {
            if !body.ends_with("*/") {
                bail!("unclosed comment in `{{{{{body}}}}}`");
            }
            continue;
        }
        out.push(Piece::Action(tokens(body)?));
    }
    push_text(&mut out, if trim_next { rest.trim_start() } else { rest });
    Ok(out)
}

fn push_text(out: &mut Vec<Piece>, s: &str) {
    if !s.is_empty() {
        out.push(Piece::Text(s.to_string()));
    }
}

/// The `}}` closing an action, skipping any inside quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The tokens of one action's body.
pub fn tokens(body: &str) -> anyhow::Result<Vec<Token>> {
    let chars: Vec<char> = body.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && is_word(chars[*i]) {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '.' if chars
                .get(i + 1)
                .is_some_and(|c| is_word(*c) && !c.is_ascii_digit()) =>
            {
                let chained = i > 0
                    && matches!(
                        out.last(),
                        Some(Token::Field(_) | Token::Chain(_) | Token::Var(_) | Token::RParen)
                    )
                    && !chars[i - 1].is_whitespace();
                i += 1;
                let name = word(&mut i);
                out.push(if chained {
                    Token::Chain(name)
                } else {
                    Token::Field(name)
                });
            }
            '.' => {
                i += 1;
                out.push(Token::Dot);
            }
            '$' => {
                i += 1;
                out.push(Token::Var(word(&mut i)));
            }
            '|' => {
                i += 1;
                out.push(Token::Pipe);
            }
            '(' => {
                i += 1;
                out.push(Token::LParen);
            }
            ')' => {
                i += 1;
                out.push(Token::RParen);
            }
            ',' => {
                i += 1;
                out.push(Token::Comma);
            }
            '=' => {
                i += 1;
                out.push(Token::Assign);
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                i += 2;
                out.push(Token::Declare);
            }
            '"' => out.push(Token::Str(quoted(&chars, &mut i)?)),
            '`' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|c| *c == '`')
                    .ok_or_else(|| anyhow!("unterminated raw string in `{body}`"))?;
                out.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            c if c.is_ascii_digit()
                || (c == '-' || c == '+') && chars.get(i + 1).is_some_and(char::is_ascii_digit) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                let n = s
                    .parse::<f64>()
                    .map_err(|_| anyhow!("bad number `{s}` in `{body}`"))?;
                out.push(Token::Number(n));
            }
            c if is_word(c) => out.push(Token::Ident(word(&mut i))),
            other => bail!("unexpected `{other}` in `{{{{{body}}}}}`"),
        }
    }
    Ok(out)
}

/// A double-quoted string with Go's common escapes, from `chars[*i]`.
fn quoted(chars: &[char], i: &mut usize) -> anyhow::Result<String> {
    let mut s = String::new();
    *i += 1;
    loop {
        let Some(&c) = chars.get(*i) else {
            bail!("unterminated quoted string");
        };
        *i += 1;
        match c {
            '"' => return Ok(s),
            '\\' => {
                let e = chars.get(*i).copied().unwrap_or('\\');
                *i += 1;
                s.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '0' => '\0',
                    other => other,
                });
            }
            c => s.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_actions_and_trimming() {
        let p = pieces("a {{- .X -}} b{{/* c */}}c").unwrap();
        assert_eq!(
            p,
            vec![
                Piece::Text("a".into()),
                Piece::Action(vec![Token::Field("X".into())]),
                Piece::Text("b".into()),
                Piece::Text("c".into()),
            ]
        );
        assert!(pieces("{{.X").is_err());
        assert_eq!(
            tokens(".A.B .C $x.D").unwrap(),
            vec![
                Token::Field("A".into()),
                Token::Chain("B".into()),
                Token::Field("C".into()),
                Token::Var("x".into()),
                Token::Chain("D".into()),
            ]
        );
        assert_eq!(
            tokens(r#"$v := index .A "}}" 1 | printf "%d""#).unwrap(),
            vec![
                Token::Var("v".into()),
                Token::Declare,
                Token::Ident("index".into()),
                Token::Field("A".into()),
                Token::Str("}}".into()),
                Token::Number(1.0),
                Token::Pipe,
                Token::Ident("printf".into()),
                Token::Str("%d".into()),
            ]
        );
    }
}
