//! The stage graph: which stages a `--target` needs, and which of them can
//! build at the same time.
//!
//! A stage depends on another when its `FROM` names an earlier stage, or a
//! `COPY --from=` or `RUN --mount=…,from=` names a stage (by name, any
//! position, or by index, an earlier one). Anything else those name is an
//! image. Names are expanded first with the meta args ([`meta_args`]: the
//! `ARG`s before the first `FROM` and the `--build-arg`s that override
//! them), as BuildKit expands `FROM`. [`StageGraph::waves`] orders the
//! stages a target needs into waves: every stage of a wave depends only on
//! stages of earlier waves, so a wave's stages can build in parallel.

use std::collections::{BTreeMap, BTreeSet};

use crate::Error;
use crate::dockerfile::{Dockerfile, Kind, Problem};
use crate::words;

/// What a `FROM`, `--from` or `from=` refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    /// A stage, by index.
    Stage(usize),
    /// `FROM scratch`: nothing.
    Scratch,
    /// An image reference (expanded, not yet normalised).
    Image(String),
}

/// The dependencies between a Dockerfile's stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageGraph {
    /// What each stage's `FROM` refers to.
    pub bases: Vec<Ref>,
    /// Stages each stage depends on.
    pub deps: Vec<BTreeSet<usize>>,
    /// Images each stage reads with `--from`/`from=` (to pull first).
    pub images: Vec<BTreeSet<String>>,
}

/// The meta args: global `ARG` defaults, expanded in order, overridden by
/// `build_args` for the names declared. Used to expand `FROM` and stage
/// references.
pub fn meta_args(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Error> {
    let mut env = BTreeMap::new();
    for a in &df.global_args {
        let value = match (build_args.get(&a.name), &a.default) {
            (Some(v), _) => v.clone(),
            (None, Some(d)) => words::expand(d, &env).map_err(|source| Error::Word {
                file: df.file.clone(),
                line: 0,
                source,
            })?,
            (None, None) => continue,
        };
        env.insert(a.name.clone(), value);
    }
    Ok(env)
}

/// A reference from an instruction at `line` of stage `current`.
struct From<'a> {
    line: usize,
    what: &'a str,
    raw: &'a str,
}

impl StageGraph {
    /// Builds the graph; refuses bad indexes, self references and cycles.
    pub fn new(df: &Dockerfile, args: &BTreeMap<String, String>) -> Result<Self, Error> {
        let n = df.stages.len();
        let mut g = StageGraph {
            bases: Vec::with_capacity(n),
            deps: vec![BTreeSet::new(); n],
            images: vec![BTreeSet::new(); n],
        };
        for (i, stage) in df.stages.iter().enumerate() {
            let base = expand(df, stage.line, &stage.base, args)?;
            let r = match df.stages[..i]
                .iter()
                .position(|s| s.name.as_deref() == Some(&base.to_ascii_lowercase()))
            {
                Some(j) => Ref::Stage(j),
                None if base.eq_ignore_ascii_case("scratch") => Ref::Scratch,
                None => Ref::Image(base),
            };
            if let Ref::Stage(j) = r {
                g.deps[i].insert(j);
            }
            g.bases.push(r);
            for f in references(df, i) {
                let name = expand(df, f.line, f.raw, args)?;
                match resolve(df, i, &name).map_err(|message| Error::Graph {
                    file: df.file.clone(),
                    line: f.line,
                    message: format!("{}={}: {message}", f.what, f.raw),
                })? {
                    Ref::Stage(j) => g.deps[i].insert(j),
                    Ref::Image(image) => g.images[i].insert(image),
                    Ref::Scratch => false,
                };
            }
        }
        g.check_cycles(df)?;
        Ok(g)
    }

    fn check_cycles(&self, df: &Dockerfile) -> Result<(), Error> {
        // Depth-first search with colours: 1 = on the path, 2 = done.
        fn visit(g: &StageGraph, i: usize, colour: &mut [u8]) -> Option<usize> {
            colour[i] = 1;
            for &j in &g.deps[i] {
                match colour[j] {
                    1 => return Some(j),
                    0 => {
                        if let Some(c) = visit(g, j, colour) {
                            return Some(c);
                        }
                    }
                    _ => {}
                }
            }
            colour[i] = 2;
            None
        }
        let mut colour = vec![0u8; self.deps.len()];
        for i in 0..self.deps.len() {
            if colour[i] == 0
                && let Some(c) = visit(self, i, &mut colour)
            {
                let s = &df.stages[c];
                let name = s.name.clone().unwrap_or_else(|| c.to_string());
                return Err(Error::Graph {
                    file: df.file.clone(),
                    line: s.line,
                    message: format!("circular dependency detected on stage: {name}"),
                });
            }
        }
        Ok(())
    }

    /// The stage `--target` names, or the last one.
    pub fn target(df: &Dockerfile, name: Option<&str>) -> Result<usize, Error> {
        match name {
            None => Ok(df.stages.len().saturating_sub(1)),
            Some(n) => df.stage(n).map(|s| s.index).ok_or_else(|| Error::Graph {
                file: df.file.clone(),
                line: 0,
                message: format!("target stage {n:?} could not be found"),
            }),
        }
    }

    /// Every stage `target` needs, itself included, in file order.
    pub fn needed(&self, target: usize) -> Vec<usize> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if seen.insert(i) {
                todo.extend(self.deps[i].iter().copied());
            }
        }
        seen.into_iter().collect()
    }

    /// The needed stages in waves; a wave's stages can build in parallel
    /// once the earlier waves are done.
    pub fn waves(&self, target: usize) -> Vec<Vec<usize>> {
        let mut left: BTreeSet<usize> = self.needed(target).into_iter().collect();
        let mut done = BTreeSet::new();
        let mut waves = Vec::new();
        while !left.is_empty() {
            let wave: Vec<usize> = left
                .iter()
                .copied()
                .filter(|i| self.deps[*i].is_subset(&done))
                .collect();
            if wave.is_empty() {
                break; // a cycle; `new` refuses those
            }
            for i in &wave {
                left.remove(i);
                done.insert(*i);
            }
            waves.push(wave);
        }
        waves
    }
}

fn expand(
    df: &Dockerfile,
    line: usize,
    raw: &str,
    args: &BTreeMap<String, String>,
) -> Result<String, Error> {
    words::expand(raw, args).map_err(|source| Error::Word {
        file: df.file.clone(),
        line,
        source,
    })
}

/// The `--from=`/`from=` references of stage `i`, ONBUILD triggers excluded
/// (they run in another build).
fn references(df: &Dockerfile, i: usize) -> Vec<From<'_>> {
    let mut out = Vec::new();
    for ins in &df.stages[i].instructions {
        match &ins.kind {
            Kind::Copy(c) => out.extend(c.from.as_deref().map(|raw| From {
                line: ins.line,
                what: "COPY --from",
                raw,
            })),
            Kind::Run(r) => out.extend(r.mounts.iter().filter_map(|m| {
                m.from.as_deref().map(|raw| From {
                    line: ins.line,
                    what: "RUN --mount from",
                    raw,
                })
            })),
            _ => {}
        }
    }
    out
}

/// Resolves a `--from` value (expanded) seen in stage `current`.
pub fn resolve(df: &Dockerfile, current: usize, name: &str) -> Result<Ref, String> {
    if let Ok(index) = name.parse::<usize>() {
        if index >= current {
            return Err(format!(
                "stage index {index} is not an earlier stage (this is stage {current})"
            ));
        }
        return Ok(Ref::Stage(index));
    }
    if let Some(s) = df.stage(name) {
        if s.index == current {
            return Err("a stage cannot copy from itself".into());
        }
        return Ok(Ref::Stage(s.index));
    }
    Ok(Ref::Image(name.to_owned()))
}

/// Problems for `den build --check`: what [`StageGraph::new`] refuses with
/// the default meta args, a `FROM` naming a later stage, and a `--from`
/// that names no stage and does not look like an image (a bare word,
/// which is usually a misspelt stage).
pub fn problems(df: &Dockerfile) -> Vec<Problem> {
    let mut out = Vec::new();
    // An expansion that fails with the defaults may succeed with the
    // build's --build-arg values: only the build can tell.
    if let Ok(args) = meta_args(df, &BTreeMap::new())
        && let Err(e @ Error::Graph { .. }) = StageGraph::new(df, &args)
    {
        out.push(problem(e));
    }
    for (i, stage) in df.stages.iter().enumerate() {
        if let Some(later) = df.stage(&stage.base).filter(|s| s.index > i) {
            out.push(Problem::error(
                stage.line,
                format!(
                    "FROM {}: that stage comes later in the file; a stage can only build on an earlier one",
                    later.name.as_deref().unwrap_or_default()
                ),
            ));
        }
        for f in references(df, i) {
            let bare =
                !f.raw.contains(['$', ':', '/', '@', '.']) && f.raw.parse::<usize>().is_err();
            if bare && df.stage(f.raw).is_none() {
                out.push(Problem {
                    line: f.line,
                    message: format!(
                        "{}={}: no stage is named {:?}; it will be pulled as an image \
                         (write {}:latest if that is meant)",
                        f.what, f.raw, f.raw, f.raw
                    ),
                    warning: true,
                });
            }
        }
    }
    out
}

fn problem(e: Error) -> Problem {
    match e {
        Error::Graph { line, message, .. } => Problem::error(line, message),
        other => Problem::error(0, other.to_string()),
    }
}

#[cfg(test)]
mod tests;
