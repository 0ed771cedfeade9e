//! Executing a parsed template on JSON data, with Go's rules: field
//! lookups on objects (an unknown field is an error, except in the maps
//! named in [`MAPS`]), truthiness, variables scoped to their block, `range`
//! over arrays and (sorted) objects.

use anyhow::{anyhow, bail};
use serde_json::Value;

use super::funcs;
use super::parse::{Arg, Branch, Node, Pipe};

/// Keys whose object values are Go maps (free-form keys: a missing one is
/// `<no value>`, not an error); every other object is a Go struct.
pub const MAPS: [&str; 9] = [
    "Labels",
    "Options",
    "Ports",
    "Networks",
    "ExposedPorts",
    "Volumes",
    "Containers",
    "Annotations",
    "DriverOpts",
];

/// Control flow out of a list of nodes.
enum Flow {
    Normal,
    Break,
    Continue,
}

pub struct Exec<'a> {
    out: String,
    vars: Vec<(String, Value)>,
    /// Rendering the header row of a `table` format: fields are header
    /// names and Docker's string functions pass them through.
    pub header: bool,
    /// The root data's field names, for the unknown-field message.
    root: &'a Value,
}

impl<'a> Exec<'a> {
    pub fn new(root: &'a Value, header: bool) -> Self {
        Exec {
            out: String::new(),
            vars: vec![(String::new(), root.clone())],
            header,
            root,
        }
    }

    pub fn run(mut self, nodes: &[Node]) -> anyhow::Result<String> {
        let root = self.root.clone();
        self.list(nodes, &root)?;
        Ok(self.out)
    }

    fn list(&mut self, nodes: &[Node], dot: &Value) -> anyhow::Result<Flow> {
        let depth = self.vars.len();
        let mut flow = Flow::Normal;
        for n in nodes {
            flow = self.node(n, dot)?;
            if !matches!(flow, Flow::Normal) {
                break;
            }
        }
        self.vars.truncate(depth);
        Ok(flow)
    }

    fn node(&mut self, node: &Node, dot: &Value) -> anyhow::Result<Flow> {
        match node {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(p) => {
                let v = self.pipe(p, dot)?;
                if p.vars.is_empty() {
                    self.out.push_str(&funcs::display(&v));
                }
            }
            Node::If(b) => {
                let v = self.pipe(&b.pipe, dot)?;
                let branch = if funcs::truth(&v) {
                    &b.then
                } else {
                    &b.otherwise
                };
                return self.list(branch, dot);
            }
            Node::With(b) => {
                let v = self.pipe(&b.pipe, dot)?;
                return if funcs::truth(&v) {
                    self.list(&b.then, &v)
                } else {
                    self.list(&b.otherwise, dot)
                };
            }
            Node::Range(b) => return self.range(b, dot),
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn range(&mut self, b: &Branch, dot: &Value) -> anyhow::Result<Flow> {
        let v = self.eval_pipe(&b.pipe, dot)?;
        let items: Vec<(Value, Value)> = match v {
            Value::Array(a) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::from(i), v))
                .collect(),
            Value::Object(o) => {
                let mut kv: Vec<_> = o.into_iter().map(|(k, v)| (Value::from(k), v)).collect();
                kv.sort_by(|a, b| a.0.as_str().cmp(&b.0.as_str()));
                kv
            }
            Value::Null => Vec::new(),
            Value::String(_) if self.header => Vec::new(),
            other => bail!("range can't iterate over {}", funcs::display(&other)),
        };
        if items.is_empty() {
            return self.list(&b.otherwise, dot);
        }
        for (k, v) in items {
            let depth = self.vars.len();
            match b.pipe.vars.as_slice() {
                [one] => self.vars.push((one.clone(), v.clone())),
                [key, val] => {
                    self.vars.push((key.clone(), k));
                    self.vars.push((val.clone(), v.clone()));
                }
                _ => {}
            }
            let flow = self.list(&b.then, &v)?;
            self.vars.truncate(depth);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        Ok(Flow::Normal)
    }

    /// A pipeline's value, declaring or assigning its variables.
    fn pipe(&mut self, p: &Pipe, dot: &Value) -> anyhow::Result<Value> {
        let v = self.eval_pipe(p, dot)?;
        if let Some(name) = p.vars.first() {
            if p.declare {
                self.vars.push((name.clone(), v.clone()));
            } else {
                let slot = self
                    .vars
                    .iter_mut()
                    .rev()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| anyhow!("undefined variable ${name}"))?;
                slot.1 = v.clone();
            }
        }
        Ok(v)
    }

    fn eval_pipe(&mut self, p: &Pipe, dot: &Value) -> anyhow::Result<Value> {
        let mut last: Option<Value> = None;
        for cmd in &p.cmds {
            last = Some(self.command(cmd, dot, last)?);
        }
        Ok(last.unwrap_or(Value::Null))
    }

    fn command(&mut self, cmd: &[Arg], dot: &Value, piped: Option<Value>) -> anyhow::Result<Value> {
        let mut args = Vec::new();
        for a in &cmd[1..] {
            args.push(self.operand(a, dot)?);
        }
        args.extend(piped);
        match &cmd[0] {
            Arg::Func(name) => funcs::call(name, &args, self.header),
            Arg::Fields(path) if !args.is_empty() => self.method(dot, path, &args),
            first if args.is_empty() => self.operand(first, dot),
            _ => bail!("can't give an argument to a non-function"),
        }
    }

    fn operand(&mut self, a: &Arg, dot: &Value) -> anyhow::Result<Value> {
        match a {
            Arg::Dot => Ok(dot.clone()),
            Arg::Fields(path) => self.fields(dot, path),
            Arg::Var(name, path) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| anyhow!("undefined variable ${name}"))?;
                self.fields(&v, path)
            }
            Arg::Func(name) => funcs::call(name, &[], self.header),
            Arg::Str(s) => Ok(Value::from(s.clone())),
            Arg::Number(n) => Ok(funcs::number(*n)),
            Arg::Bool(b) => Ok(Value::Bool(*b)),
            Arg::Nil => Ok(Value::Null),
            Arg::Sub(p, path) => {
                let v = self.eval_pipe(p, dot)?;
                self.fields(&v, path)
            }
        }
    }

    /// `.A.B.C` from `v`.
    fn fields(&self, v: &Value, path: &[String]) -> anyhow::Result<Value> {
        let mut cur = v.clone();
        let mut in_map = false;
        for name in path {
            cur = match cur {
                // In the header row a field is its column's title.
                Value::String(_) if self.header => return Ok(cur),
                Value::Object(mut o) => match o.remove(name) {
                    Some(next) => next,
                    None if in_map => Value::Null,
                    None => bail!("{}", unknown_field(name, &Value::Object(o))),
                },
                Value::Null => Value::Null,
                other => bail!(
                    "can't evaluate field {name} in `{}`: it has no fields",
                    funcs::display(&other)
                ),
            };
            in_map = MAPS.contains(&name.as_str());
        }
        Ok(cur)
    }

    /// Docker's one method with an argument: `.Label "key"` (a label of
    /// `ps` and `volume ls`/`network ls` rows).
    fn method(&self, dot: &Value, path: &[String], args: &[Value]) -> anyhow::Result<Value> {
        let (last, head) = path.split_last().expect("a field path is never empty");
        let recv = self.fields(dot, head)?;
        if last != "Label" || args.len() != 1 {
            bail!("{last} is not a method: it takes no arguments");
        }
        if self.header {
            return Ok(Value::from("LABEL"));
        }
        let key = funcs::display(&args[0]);
        let found = match recv.get("Labels") {
            Some(Value::Object(m)) => m.get(&key).cloned(),
            // `ps` prints its labels as Docker does, "k=v,k2=v2".
            Some(Value::String(s)) => s
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| Value::from(v)),
            _ => None,
        };
        Ok(found.unwrap_or_else(|| Value::from("")))
    }
}

/// "no field Nope: use one of .A, .B" with the fields the object has.
fn unknown_field(name: &str, obj: &Value) -> String {
    let keys: Vec<String> = obj
        .as_object()
        .map(|o| o.keys().map(|k| format!(".{k}")).collect())
        .unwrap_or_default();
    format!(
        "can't evaluate field {name}: the fields here are {}",
        keys.join(", ")
    )
}
