//! Loading a project's compose files into one raw model: read, parse,
//! interpolate every value (keys stay as written), resolve `include` and
//! `extends`, drop `x-*` extension fields, merge the `-f` files in order,
//! and keep the services the selected profiles enable.

use std::path::{Path, PathBuf};

use crate::Error;
use crate::interpolate;
use crate::merge::{merge_files, merge_service};
use crate::yaml::{self, Node, Raw};

/// How many `include`/`extends` levels are followed before den calls it a
/// loop.
const MAX_DEPTH: usize = 32;

/// What [`load`] needs from the outside world.
pub struct Inputs<'a> {
    /// The compose files in `-f` order, as paths (absolute or relative to
    /// the working directory).
    pub files: &'a [PathBuf],
    /// Variables for interpolation (process environment, then `.env`).
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Reads a file (compose files, extended and included files).
    pub read: &'a dyn Fn(&Path) -> Result<String, Error>,
    /// Selected profiles ([`selected_profiles`]); `*` selects all.
    pub profiles: &'a [String],
}

/// The loaded model and what the user should be told about it.
#[derive(Debug)]
pub struct Loaded {
    /// The merged compose model, interpolated, `x-*` removed.
    pub model: Node,
    /// Warnings, one line each (unset variables, …).
    pub warnings: Vec<String>,
    /// Services left out because none of their profiles is selected.
    pub disabled: Vec<String>,
}

/// The profiles selected by `--profile` flags, else `COMPOSE_PROFILES`
/// (comma-separated).
pub fn selected_profiles(flags: &[String], env: Option<&str>) -> Vec<String> {
    if !flags.is_empty() {
        return flags.to_vec();
    }
    env.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads a compose or env file for [`Inputs::read`], refusing files larger
/// than [`yaml::MAX_FILE_BYTES`] (so a FIFO or a huge file cannot stall or
/// exhaust den).
pub fn read_file(path: &Path) -> Result<String, Error> {
    use std::io::Read;
    let err = |source| Error::Read {
        path: path.display().to_string(),
        source,
    };
    let f = std::fs::File::open(path).map_err(err)?;
    let mut text = String::new();
    f.take(yaml::MAX_FILE_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(err)?;
    if text.len() > yaml::MAX_FILE_BYTES {
        return Err(err(std::io::Error::other(format!(
            "larger than the {} bytes den reads",
            yaml::MAX_FILE_BYTES
        ))));
    }
    Ok(text)
}

/// Loads and merges `inputs.files`.
pub fn load(inputs: &Inputs<'_>) -> Result<Loaded, Error> {
    let mut cx = Cx {
        inputs,
        warnings: Vec::new(),
    };
    let mut model: Option<Node> = None;
    for f in inputs.files {
        let node = cx.file(f, 0)?;
        model = Some(match model {
            None => node,
            Some(base) => merge_files(base, node),
        });
    }
    let mut model = model.unwrap_or_else(|| Node::new(Raw::Map(Vec::new())));
    let disabled = apply_profiles(&mut model, inputs.profiles);
    Ok(Loaded {
        model,
        warnings: cx.warnings,
        disabled,
    })
}

struct Cx<'a, 'b> {
    inputs: &'b Inputs<'a>,
    warnings: Vec<String>,
}

impl Cx<'_, '_> {
    /// One file, interpolated, with includes and extends resolved.
    fn file(&mut self, path: &Path, depth: usize) -> Result<Node, Error> {
        let name = path.display().to_string();
        if depth > MAX_DEPTH {
            return Err(invalid(
                &name,
                0,
                "include",
                "include or extends nests too deep (a loop?)",
            ));
        }
        let text = (self.inputs.read)(path)?;
        let mut node = yaml::parse(&name, &text)?;
        if !matches!(node.value, Raw::Map(_)) {
            return Err(invalid(
                &name,
                node.line,
                "",
                "a compose file must be a mapping (services: …)",
            ));
        }
        self.interpolate(&name, &mut node, &mut Vec::new())?;
        drop_extensions(&mut node);
        let dir = path.parent().unwrap_or(Path::new("."));
        self.includes(&name, dir, &mut node, depth)?;
        self.extends(&name, dir, &mut node, depth)?;
        Ok(node)
    }

    fn interpolate(
        &mut self,
        file: &str,
        n: &mut Node,
        key: &mut Vec<String>,
    ) -> Result<(), Error> {
        match &mut n.value {
            Raw::Str(s) => {
                let got = interpolate::substitute(s, self.inputs.lookup).map_err(|source| {
                    Error::Interpolate {
                        file: file.to_owned(),
                        line: n.line,
                        key: key.join("."),
                        source,
                    }
                })?;
                for v in got.unset {
                    let w = format!("The {v:?} variable is not set. Defaulting to a blank string.");
                    if !self.warnings.contains(&w) {
                        self.warnings.push(w);
                    }
                }
                *s = got.value;
            }
            Raw::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    key.push(format!("[{i}]"));
                    self.interpolate(file, item, key)?;
                    key.pop();
                }
            }
            Raw::Map(m) => {
                for (k, v) in m.iter_mut() {
                    key.push(k.clone());
                    self.interpolate(file, v, key)?;
                    key.pop();
                }
            }
            Raw::Null | Raw::Bool(_) | Raw::Int(_) | Raw::Float(_) => {}
        }
        Ok(())
    }

    /// Loads each `include:` entry and adds its resources; a resource the
    /// including file also defines is an error, as in docker compose.
    fn includes(
        &mut self,
        file: &str,
        dir: &Path,
        node: &mut Node,
        depth: usize,
    ) -> Result<(), Error> {
        let Raw::Map(top) = &mut node.value else {
            return Ok(());
        };
        let Some(pos) = top.iter().position(|(k, _)| k == "include") else {
            return Ok(());
        };
        let (_, inc) = top.remove(pos);
        let Raw::Seq(entries) = inc.value else {
            return Err(invalid(
                file,
                inc.line,
                "include",
                "include must be a list of files",
            ));
        };
        for e in entries {
            let paths = match e.get("path").unwrap_or(&e) {
                Node {
                    value: Raw::Seq(ps),
                    ..
                } => ps
                    .iter()
                    .filter_map(Node::as_str)
                    .map(str::to_owned)
                    .collect(),
                p => p.as_str().map(|s| vec![s.to_owned()]).unwrap_or_default(),
            };
            if paths.is_empty() {
                return Err(invalid(
                    file,
                    e.line,
                    "include",
                    "an include entry needs a path: write - path/to/compose.yaml",
                ));
            }
            let mut included: Option<Node> = None;
            for p in paths {
                let n = self.file(&dir.join(p), depth + 1)?;
                included = Some(match included {
                    None => n,
                    Some(b) => merge_files(b, n),
                });
            }
            let Some(inc) = included else { continue };
            add_included(file, e.line, top, inc)?;
        }
        Ok(())
    }

    fn extends(
        &mut self,
        file: &str,
        dir: &Path,
        node: &mut Node,
        depth: usize,
    ) -> Result<(), Error> {
        let Some(Node {
            value: Raw::Map(services),
            ..
        }) = node.get("services").cloned()
        else {
            return Ok(());
        };
        let mut resolved = Vec::new();
        for (name, svc) in &services {
            let mut chain = vec![(file.to_owned(), name.clone())];
            resolved.push((
                name.clone(),
                self.service(file, dir, &services, svc, &mut chain, depth)?,
            ));
        }
        set(
            node,
            "services",
            Node {
                line: node.get("services").map_or(0, |n| n.line),
                value: Raw::Map(resolved),
            },
        );
        Ok(())
    }

    /// One service with its `extends` chain applied.
    fn service(
        &mut self,
        file: &str,
        dir: &Path,
        services: &[(String, Node)],
        svc: &Node,
        chain: &mut Vec<(String, String)>,
        depth: usize,
    ) -> Result<Node, Error> {
        let Some(ext) = svc.get("extends") else {
            return Ok(svc.clone());
        };
        let key = format!(
            "services.{}.extends",
            chain.last().map_or("", |c| c.1.as_str())
        );
        let (base_name, other) = match (&ext.value, ext.get("service"), ext.get("file")) {
            (Raw::Str(s), _, _) => (s.clone(), None),
            (_, Some(s), f) if s.as_str().is_some() => (
                s.as_str().unwrap_or_default().to_owned(),
                f.and_then(Node::as_str),
            ),
            _ => {
                return Err(invalid(
                    file,
                    ext.line,
                    &key,
                    "extends needs a service name: extends: NAME or extends: {service: NAME, file: FILE}",
                ));
            }
        };
        let (bfile, bdir, bservices) = match other {
            None => (file.to_owned(), dir.to_path_buf(), services.to_vec()),
            Some(f) => {
                let path = dir.join(f);
                let text = (self.inputs.read)(&path)?;
                let name = path.display().to_string();
                let mut n = yaml::parse(&name, &text)?;
                self.interpolate(&name, &mut n, &mut Vec::new())?;
                let svcs = match n.get("services") {
                    Some(Node {
                        value: Raw::Map(m), ..
                    }) => m.clone(),
                    _ => Vec::new(),
                };
                (
                    name,
                    path.parent().unwrap_or(Path::new(".")).to_path_buf(),
                    svcs,
                )
            }
        };
        let Some((_, base)) = bservices.iter().find(|(n, _)| *n == base_name) else {
            return Err(invalid(
                file,
                ext.line,
                &key,
                &format!("extends names service {base_name:?}, which {bfile} does not define"),
            ));
        };
        let link = (bfile.clone(), base_name.clone());
        if chain.contains(&link) || depth + chain.len() > MAX_DEPTH {
            return Err(invalid(
                file,
                ext.line,
                &key,
                &format!("extends loops back to service {base_name:?} in {bfile}"),
            ));
        }
        chain.push(link);
        let mut base = self.service(&bfile, &bdir, &bservices, base, chain, depth)?;
        chain.pop();
        if bdir != dir {
            rebase_paths(&mut base, &bdir);
        }
        let mut over = svc.clone();
        remove(&mut over, "extends");
        remove(&mut base, "extends");
        Ok(merge_service(base, over))
    }
}

/// A validation error at `file:line` for `key`.
pub(crate) fn invalid(file: &str, line: usize, key: &str, message: &str) -> Error {
    Error::Invalid {
        file: file.to_owned(),
        line,
        key: key.to_owned(),
        message: message.to_owned(),
    }
}

fn add_included(
    file: &str,
    line: usize,
    top: &mut Vec<(String, Node)>,
    inc: Node,
) -> Result<(), Error> {
    let Raw::Map(sections) = inc.value else {
        return Ok(());
    };
    for (section, defs) in sections {
        let Raw::Map(defs) = defs.value else { continue };
        let slot = match top.iter().position(|(k, _)| *k == section) {
            Some(i) => i,
            None => {
                top.push((section.clone(), Node::new(Raw::Map(Vec::new()))));
                top.len() - 1
            }
        };
        let Raw::Map(mine) = &mut top[slot].1.value else {
            continue;
        };
        for (name, def) in defs {
            if mine.iter().any(|(k, _)| *k == name) {
                return Err(invalid(
                    file,
                    line,
                    &format!("{section}.{name}"),
                    "this resource is also defined by an included file: rename one of them",
                ));
            }
            mine.push((name, def));
        }
    }
    Ok(())
}

/// Makes a service's relative paths (build context, env_file, bind
/// sources) absolute against `dir`, for a service extended from another
/// file's directory.
fn rebase_paths(svc: &mut Node, dir: &Path) {
    let fix = |s: &str| -> String {
        match s.starts_with('.') {
            true => dir.join(s).display().to_string(),
            false => s.to_owned(),
        }
    };
    let Raw::Map(m) = &mut svc.value else { return };
    for (k, v) in m.iter_mut() {
        match (k.as_str(), &mut v.value) {
            ("build", Raw::Str(s)) => *s = dir.join(&*s).display().to_string(),
            ("build", Raw::Map(b)) => {
                for (bk, bv) in b.iter_mut() {
                    if let ("context", Raw::Str(s)) = (bk.as_str(), &mut bv.value) {
                        *s = dir.join(&*s).display().to_string();
                    }
                }
            }
            ("env_file", Raw::Str(s)) => *s = dir.join(&*s).display().to_string(),
            ("env_file", Raw::Seq(items)) | ("volumes", Raw::Seq(items)) => {
                for item in items {
                    if let Raw::Str(s) = &mut item.value {
                        *s = match s.split_once(':') {
                            Some((src, rest)) if k == "volumes" => format!("{}:{rest}", fix(src)),
                            _ if k == "env_file" => dir.join(&*s).display().to_string(),
                            _ => s.clone(),
                        };
                    }
                }
            }
            _ => {}
        }
    }
}

/// Removes `x-*` keys at the top level and in each service.
fn drop_extensions(node: &mut Node) {
    let Raw::Map(top) = &mut node.value else {
        return;
    };
    top.retain(|(k, _)| !k.starts_with("x-"));
    for (k, v) in top.iter_mut() {
        if let ("services" | "volumes" | "networks", Raw::Map(defs)) = (k.as_str(), &mut v.value) {
            for (_, def) in defs.iter_mut() {
                if let Raw::Map(d) = &mut def.value {
                    d.retain(|(k, _)| !k.starts_with("x-"));
                }
            }
        }
    }
}

/// Removes services none of whose profiles is selected; returns their names.
fn apply_profiles(model: &mut Node, selected: &[String]) -> Vec<String> {
    let Raw::Map(top) = &mut model.value else {
        return Vec::new();
    };
    let Some((_, services)) = top.iter_mut().find(|(k, _)| k == "services") else {
        return Vec::new();
    };
    let Raw::Map(services) = &mut services.value else {
        return Vec::new();
    };
    let mut disabled = Vec::new();
    services.retain(|(name, svc)| {
        let profiles: Vec<&str> = match svc.get("profiles") {
            Some(Node {
                value: Raw::Seq(p), ..
            }) => p.iter().filter_map(Node::as_str).collect(),
            _ => Vec::new(),
        };
        let on = profiles.is_empty()
            || selected
                .iter()
                .any(|s| s == "*" || profiles.contains(&s.as_str()));
        if !on {
            disabled.push(name.clone());
        }
        on
    });
    disabled
}

fn set(node: &mut Node, key: &str, value: Node) {
    if let Raw::Map(m) = &mut node.value {
        match m.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => m.push((key.to_owned(), value)),
        }
    }
}

fn remove(node: &mut Node, key: &str) {
    if let Raw::Map(m) = &mut node.value {
        m.retain(|(k, _)| k != key);
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
