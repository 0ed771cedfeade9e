//! Merging compose files (`-f a -f b`, `extends`) by the compose-spec
//! merge rules, as compose-go's `override` package applies them: mappings
//! merge key by key; `command`, `entrypoint` and `healthcheck.test` are
//! replaced; `environment`, `labels`, `build.args`, `depends_on`,
//! `networks` merge as mappings whatever their syntax; `volumes` merge by
//! target path; other lists append the entries they do not have; scalars
//! are overridden.

use crate::yaml::{Node, Raw};

/// `over` merged onto `base`, both whole compose files.
pub fn merge_files(base: Node, over: Node) -> Node {
    merge_at(&[], base, over)
}

/// `over` merged onto `base`, both single service definitions.
pub fn merge_service(base: Node, over: Node) -> Node {
    merge_at(&["services", "*"], base, over)
}

/// The rule for a path below a service (`services.NAME.…`), by the
/// service-relative key path.
#[derive(Debug, PartialEq)]
enum Rule {
    Replace,
    AsMap,
    ByTarget,
    Append,
    Recurse,
}

fn rule(path: &[&str]) -> Rule {
    let in_service = path.len() >= 3 && path[0] == "services";
    if !in_service {
        return Rule::Recurse;
    }
    match path[2..].join(".").as_str() {
        "command" | "entrypoint" | "healthcheck.test" => Rule::Replace,
        "environment" | "labels" | "build.args" | "build.labels" | "depends_on" | "networks"
        | "sysctls" | "annotations" => Rule::AsMap,
        "volumes" => Rule::ByTarget,
        _ => Rule::Append,
    }
}

fn merge_at(path: &[&str], base: Node, over: Node) -> Node {
    let r = rule(path);
    if r == Rule::Replace {
        return over;
    }
    if r == Rule::AsMap {
        return merge_maps(path, as_map(base), as_map(over));
    }
    match (base.value, over.value) {
        (Raw::Map(b), Raw::Map(o)) => merge_maps(
            path,
            Node {
                line: base.line,
                value: Raw::Map(b),
            },
            Node {
                line: over.line,
                value: Raw::Map(o),
            },
        ),
        (Raw::Seq(b), Raw::Seq(o)) if r == Rule::ByTarget => seq(over.line, by_target(b, o)),
        (Raw::Seq(b), Raw::Seq(o)) => seq(over.line, append_new(b, o)),
        (_, value) => Node {
            line: over.line,
            value,
        },
    }
}

fn seq(line: usize, items: Vec<Node>) -> Node {
    Node {
        line,
        value: Raw::Seq(items),
    }
}

fn merge_maps(path: &[&str], base: Node, over: Node) -> Node {
    let (Raw::Map(mut out), Raw::Map(o)) = (base.value, over.value) else {
        unreachable!("merge_maps is called with two mappings");
    };
    for (k, v) in o {
        match out.iter().position(|(bk, _)| *bk == k) {
            Some(i) => {
                let old = std::mem::replace(&mut out[i].1, Node::new(Raw::Null));
                let mut p = path.to_vec();
                p.push(&k);
                out[i].1 = merge_at(&p, old, v);
            }
            None => out.push((k, v)),
        }
    }
    Node {
        line: over.line.max(base.line),
        value: Raw::Map(out),
    }
}

/// A list of `KEY=VALUE` / `KEY` / names turned into a mapping (a bare
/// key maps to null); mappings stay as they are.
pub fn as_map(node: Node) -> Node {
    let Raw::Seq(items) = node.value else {
        return node;
    };
    let mut out: Vec<(String, Node)> = Vec::new();
    for item in items {
        let text = item.scalar_text().unwrap_or_default();
        let (k, v) = match text.split_once('=') {
            Some((k, v)) => (k.to_owned(), Raw::Str(v.to_owned())),
            None => (text, Raw::Null),
        };
        let v = Node {
            line: item.line,
            value: v,
        };
        match out.iter_mut().find(|(ok, _)| *ok == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    Node {
        line: node.line,
        value: Raw::Map(out),
    }
}

/// The container path a `volumes` entry mounts at.
pub fn volume_target(n: &Node) -> Option<String> {
    if let Some(t) = n.get("target") {
        return t.scalar_text();
    }
    let s = n.as_str()?;
    let parts: Vec<&str> = s.split(':').collect();
    let target = match parts.len() {
        1 => parts[0],
        _ => parts[1],
    };
    Some(target.to_owned())
}

fn by_target(base: Vec<Node>, over: Vec<Node>) -> Vec<Node> {
    let mut out = base;
    for v in over {
        let t = volume_target(&v);
        match out
            .iter()
            .position(|b| t.is_some() && volume_target(b) == t)
        {
            Some(i) => out[i] = v,
            None => out.push(v),
        }
    }
    out
}

fn append_new(base: Vec<Node>, over: Vec<Node>) -> Vec<Node> {
    let mut out = base;
    for v in over {
        if !out.iter().any(|b| b.value == v.value) {
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
