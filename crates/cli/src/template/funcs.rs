//! The functions a Docker `--format` template can call: Go's builtins
//! (`and`, `or`, `not`, `len`, `index`, `print`, `printf`, `println`, `eq`,
//! `ne`, `lt`, `le`, `gt`, `ge`) and Docker's (`json`, `join`, `lower`,
//! `upper`, `title`, `split`, `truncate`, `pad`), and Go's `%v` printing.

use std::cmp::Ordering;

use anyhow::{anyhow, bail};
use serde_json::Value;

/// Docker's functions that, in a table's header row, return their first
/// argument unchanged (the header's text), as its `HeaderFunctions` do.
const HEADER_PASS: [&str; 8] = [
    "json", "join", "lower", "upper", "title", "split", "truncate", "pad",
];

pub fn call(name: &str, args: &[Value], header: bool) -> anyhow::Result<Value> {
    if header && HEADER_PASS.contains(&name) {
        return Ok(args.first().cloned().unwrap_or(Value::Null));
    }
    let n = args.len();
    let want = |k: usize| -> anyhow::Result<()> {
        if n == k {
            Ok(())
        } else {
            bail!("wrong number of args for {name}: want {k} got {n}")
        }
    };
    Ok(match name {
        "and" => args
            .iter()
            .find(|v| !truth(v))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        "or" => args
            .iter()
            .find(|v| truth(v))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        "not" => {
            want(1)?;
            Value::Bool(!truth(&args[0]))
        }
        "len" => {
            want(1)?;
            Value::from(length(&args[0])?)
        }
        "index" => index(args)?,
        "print" => Value::from(sprint(args)),
        "println" => {
            let parts: Vec<String> = args.iter().map(display).collect();
            Value::from(parts.join(" ") + "\n")
        }
        "printf" => {
            let (f, rest) = args
                .split_first()
                .ok_or_else(|| anyhow!("printf needs a format"))?;
            Value::from(super::printf::sprintf(&display(f), rest))
        }
        "eq" => {
            let (a, rest) = args
                .split_first()
                .ok_or_else(|| anyhow!("eq needs two values"))?;
            Value::Bool(rest.iter().any(|b| compare(a, b) == Some(Ordering::Equal)))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(2)?;
            let o = compare(&args[0], &args[1])
                .ok_or_else(|| anyhow!("{name}: incompatible types for comparison"))?;
            Value::Bool(match name {
                "ne" => o != Ordering::Equal,
                "lt" => o == Ordering::Less,
                "le" => o != Ordering::Greater,
                "gt" => o == Ordering::Greater,
                _ => o != Ordering::Less,
            })
        }
        _ => docker(name, args, want)?,
    })
}

/// Docker's own functions (cli/templates/templates.go).
fn docker(
    name: &str,
    args: &[Value],
    want: impl Fn(usize) -> anyhow::Result<()>,
) -> anyhow::Result<Value> {
    let s = |i: usize| display(&args[i]);
    Ok(match name {
        "json" => {
            want(1)?;
            Value::from(serde_json::to_string(&args[0])?)
        }
        "join" => {
            want(2)?;
            let items = args[0]
                .as_array()
                .ok_or_else(|| anyhow!("join: the first argument is not a list"))?;
            let parts: Vec<String> = items.iter().map(display).collect();
            Value::from(parts.join(&s(1)))
        }
        "split" => {
            want(2)?;
            Value::from(s(0).split(&s(1)).map(Value::from).collect::<Vec<_>>())
        }
        "lower" => {
            want(1)?;
            Value::from(s(0).to_lowercase())
        }
        "upper" => {
            want(1)?;
            Value::from(s(0).to_uppercase())
        }
        "title" => {
            want(1)?;
            Value::from(title(&s(0)))
        }
        "truncate" => {
            want(2)?;
            let n = int(&args[1])?;
            Value::from(s(0).chars().take(n).collect::<String>())
        }
        "pad" => {
            want(3)?;
            let text = s(0);
            if text.is_empty() {
                Value::from(text)
            } else {
                let (pre, post) = (int(&args[1])?, int(&args[2])?);
                Value::from(format!("{}{text}{}", " ".repeat(pre), " ".repeat(post)))
            }
        }
        other => bail!("function \"{other}\" not defined"),
    })
}

fn int(v: &Value) -> anyhow::Result<usize> {
    v.as_f64()
        .filter(|f| *f >= 0.0 && *f <= 1e6)
        .map(|f| f as usize)
        .ok_or_else(|| anyhow!("expected a small non-negative number, got {}", display(v)))
}

/// Go's `strings.Title`: a capital at the start of each word.
fn title(s: &str) -> String {
    let mut out = String::new();
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric() && c != '_' && c != '\'';
    }
    out
}

fn length(v: &Value) -> anyhow::Result<usize> {
    Ok(match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        other => bail!("len of {}: not a string, list or map", display(other)),
    })
}

fn index(args: &[Value]) -> anyhow::Result<Value> {
    let (mut cur, keys) = args
        .split_first()
        .map(|(c, k)| (c.clone(), k))
        .ok_or_else(|| anyhow!("index needs a value"))?;
    for k in keys {
        cur = match (&cur, k) {
            (Value::Array(a), Value::Number(n)) => {
                let i = n.as_u64().unwrap_or(u64::MAX);
                a.get(i as usize)
                    .cloned()
                    .ok_or_else(|| anyhow!("index out of range: {i} (the list has {})", a.len()))?
            }
            // Go's zero value for a missing key of a map of strings.
            (Value::Object(o), Value::String(s)) => o.get(s).cloned().unwrap_or(Value::from("")),
            (Value::Null, _) => Value::Null,
            (c, k) => bail!("can't index {} with {}", display(c), display(k)),
        };
    }
    Ok(cur)
}

/// Go's `fmt.Sprint`: spaces between operands when neither is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !args[i - 1].is_string() && !a.is_string() {
            out.push(' ');
        }
        out.push_str(&display(a));
    }
    out
}

/// Go's truth: false, 0, nil and empty strings, lists and maps are false.
pub fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

/// A template number: whole ones stay integers (`3`, not `3.0`).
pub fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        Value::from(n as i64)
    } else {
        Value::from(n)
    }
}

/// Go's `%v`: lists as `[a b]`, maps as `map[k:v]`, nil as `<no value>`.
pub fn display(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(display).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(o) => {
            let mut parts: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{k}:{}", display(v)))
                .collect();
            parts.sort();
            format!("map[{}]", parts.join(" "))
        }
    }
}
