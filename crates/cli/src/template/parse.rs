//! Go template pieces parsed into a tree: text, actions, `if`/`with`/`range`
//! with `else` (and `else if`/`else with`), `break`/`continue`.

use anyhow::{anyhow, bail};

use super::lex::{Piece, Token};

#[derive(Debug)]
pub enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Break,
    Continue,
}

#[derive(Debug)]
pub struct Branch {
    pub pipe: Pipe,
    pub then: Vec<Node>,
    pub otherwise: Vec<Node>,
}

/// `[$a[, $b] :=|=] cmd | cmd …`
#[derive(Debug)]
pub struct Pipe {
    pub vars: Vec<String>,
    pub declare: bool,
    pub cmds: Vec<Vec<Arg>>,
}

#[derive(Debug)]
pub enum Arg {
    Dot,
    /// `.A.B` on dot.
    Fields(Vec<String>),
    /// `$x.A.B`.
    Var(String, Vec<String>),
    Func(String),
    Str(String),
    Number(f64),
    Bool(bool),
    Nil,
    /// `(pipeline).A.B`
    Sub(Box<Pipe>, Vec<String>),
}

/// How a list of nodes ended.
enum Stop {
    Eof,
    End,
    Else(Vec<Token>),
}

pub fn parse(pieces: Vec<Piece>) -> anyhow::Result<Vec<Node>> {
    let mut it = pieces.into_iter();
    let (nodes, end) = list(&mut it)?;
    match end {
        Stop::Eof => Ok(nodes),
        Stop::End => bail!("unexpected {{{{end}}}}"),
        Stop::Else(_) => bail!("unexpected {{{{else}}}}"),
    }
}

fn list(it: &mut impl Iterator<Item = Piece>) -> anyhow::Result<(Vec<Node>, Stop)> {
    let mut nodes = Vec::new();
    while let Some(p) = it.next() {
        let toks = match p {
            Piece::Text(t) => {
                nodes.push(Node::Text(t));
                continue;
            }
            Piece::Action(t) => t,
        };
        let keyword = match toks.first() {
            Some(Token::Ident(k)) => k.as_str(),
            None => bail!("missing value for command: empty {{{{}}}}"),
            _ => "",
        };
        match keyword {
            "end" => return Ok((nodes, Stop::End)),
            "else" => return Ok((nodes, Stop::Else(toks[1..].to_vec()))),
            "if" | "with" | "range" => nodes.push(control(keyword, &toks[1..], it)?),
            "break" => nodes.push(Node::Break),
            "continue" => nodes.push(Node::Continue),
            "define" | "template" | "block" => bail!("{{{{{keyword}}}}} is not supported"),
            _ => nodes.push(Node::Action(pipe(&toks)?)),
        }
    }
    Ok((nodes, Stop::Eof))
}

/// `if`, `with` or `range` after its keyword, up to its `{{end}}`.
fn control(
    keyword: &str,
    toks: &[Token],
    it: &mut impl Iterator<Item = Piece>,
) -> anyhow::Result<Node> {
    let pipe = pipe(toks)?;
    let (then, end) = list(it)?;
    let otherwise = match end {
        Stop::Eof => bail!("{{{{{keyword}}}}} without {{{{end}}}}"),
        Stop::End => Vec::new(),
        Stop::Else(rest) if rest.is_empty() => match list(it)? {
            (nodes, Stop::End) => nodes,
            _ => bail!("{{{{else}}}} of {{{{{keyword}}}}} without {{{{end}}}}"),
        },
        // `{{else if …}}` is an `if` inside the else branch, sharing its end.
        Stop::Else(rest) => match rest.first() {
            Some(Token::Ident(k)) if k == "if" || k == "with" => {
                vec![control(&k.clone(), &rest[1..], it)?]
            }
            _ => bail!("unexpected tokens after {{{{else}}}}"),
        },
    };
    let branch = Branch {
        pipe,
        then,
        otherwise,
    };
    Ok(match keyword {
        "if" => Node::If(branch),
        "with" => Node::With(branch),
        _ => Node::Range(branch),
    })
}

fn pipe(toks: &[Token]) -> anyhow::Result<Pipe> {
    let (vars, declare, rest) = declaration(toks);
    let mut cmds = Vec::new();
    let mut pos = 0;
    loop {
        let (cmd, next) = command(rest, pos)?;
        if cmd.is_empty() {
            bail!("missing value for command");
        }
        cmds.push(cmd);
        match rest.get(next) {
            None => break,
            Some(Token::Pipe) => pos = next + 1,
            Some(t) => bail!("unexpected {t:?} in command"),
        }
    }
    Ok(Pipe {
        vars,
        declare,
        cmds,
    })
}

/// A leading `$a :=`, `$a, $b :=` or `$a =`.
fn declaration(toks: &[Token]) -> (Vec<String>, bool, &[Token]) {
    let names = |n: usize| {
        toks[..n]
            .iter()
            .filter_map(|t| match t {
                Token::Var(v) => Some(v.clone()),
                _ => None,
            })
            .collect()
    };
    match toks {
        [Token::Var(_), Token::Declare, ..] => (names(1), true, &toks[2..]),
        [Token::Var(_), Token::Assign, ..] => (names(1), false, &toks[2..]),
        [
            Token::Var(_),
            Token::Comma,
            Token::Var(_),
            Token::Declare,
            ..,
        ] => (names(3), true, &toks[4..]),
        _ => (Vec::new(), false, toks),
    }
}

/// The operands of one command from `toks[pos]`, up to `|`, `)` or the end.
fn command(toks: &[Token], mut pos: usize) -> anyhow::Result<(Vec<Arg>, usize)> {
    let mut args = Vec::new();
    while let Some(t) = toks.get(pos) {
        pos += 1;
        let arg = match t {
            Token::Pipe | Token::RParen => return Ok((args, pos - 1)),
            Token::Dot => Arg::Dot,
            Token::Field(f) => Arg::Fields(fields(toks, &mut pos, vec![f.clone()])),
            Token::Var(v) => Arg::Var(v.clone(), fields(toks, &mut pos, Vec::new())),
            Token::Str(s) => Arg::Str(s.clone()),
            Token::Number(n) => Arg::Number(*n),
            Token::Ident(i) if i == "true" || i == "false" => Arg::Bool(i == "true"),
            Token::Ident(i) if i == "nil" => Arg::Nil,
            Token::Ident(i) => Arg::Func(i.clone()),
            Token::LParen => {
                let close = matching_paren(toks, pos)?;
                let inner = pipe(&toks[pos..close])?;
                pos = close + 1;
                Arg::Sub(Box::new(inner), fields(toks, &mut pos, Vec::new()))
            }
            other => bail!("unexpected {other:?} in operand"),
        };
        args.push(arg);
    }
    Ok((args, pos))
}

/// Field tokens directly following an operand (`$x.A.B`, `(…).A`).
fn fields(toks: &[Token], pos: &mut usize, mut out: Vec<String>) -> Vec<String> {
    while let Some(Token::Chain(f)) = toks.get(*pos) {
        out.push(f.clone());
        *pos += 1;
    }
    out
}

fn matching_paren(toks: &[Token], from: usize) -> anyhow::Result<usize> {
    let mut depth = 1;
    for (i, t) in toks.iter().enumerate().skip(from) {
        match t {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => {}
        }
    }
    Err(anyhow!("unclosed left paren"))
}
