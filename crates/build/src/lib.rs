//! den-build: the foundation of `den build`. The parsing, expansion, ignore
//! and graph modules are pure (no I/O, no processes); [`context`] resolves
//! `COPY` sources beneath the context and [`layer`] writes layer tars.
//!
//! The main types and how they meet:
//!
//! - [`dockerfile::parse`] reads a Dockerfile into a [`dockerfile::Dockerfile`]:
//!   global `ARG`s and [`dockerfile::Stage`]s of typed
//!   [`dockerfile::Instruction`]s, each with its line, values unexpanded.
//!   [`dockerfile::check`] lists every [`dockerfile::Problem`] for
//!   `den build --check`.
//! - [`graph::StageGraph`] says which stages a `--target` needs and in which
//!   waves they can build in parallel; [`graph::meta_args`] gives the
//!   environment `FROM` lines are expanded with.
//! - [`words::Lexer`] expands an instruction's values when the builder runs
//!   it, exactly as BuildKit's shell lexer does, and reports which variables
//!   it read (for cache keys).
//! - [`ignore::Matcher`] decides which context paths `.dockerignore`
//!   excludes, and [`ignore::ignore_file_for`] which ignore file applies.
//!
//! Every error names the file and line ([`Error`]).
//!
//! ```
//! use std::collections::BTreeMap;
//! use den_build::{dockerfile, graph::{StageGraph, meta_args}, words};
//!
//! let text = "ARG PY=3.11\nFROM python:${PY}-slim AS app\nENV HOME=/app\nWORKDIR $HOME/src\n";
//! let df = dockerfile::parse("Dockerfile", text).unwrap();
//! let args = meta_args(&df, &BTreeMap::new()).unwrap();
//! let g = StageGraph::new(&df, &args).unwrap();
//! assert_eq!(g.waves(StageGraph::target(&df, None).unwrap()), [vec![0]]);
//! assert_eq!(g.bases[0], den_build::graph::Ref::Image("python:3.11-slim".into()));
//! let env = BTreeMap::from([("HOME".to_owned(), "/app".to_owned())]);
//! let dockerfile::Kind::Workdir(dir) = &df.stages[0].instructions[1].kind else { panic!() };
//! assert_eq!(words::expand(dir, &env).unwrap(), "/app/src");
//! ```

pub mod archive;
pub mod context;
pub mod dockerfile;
pub mod graph;
pub mod ignore;
pub mod layer;
pub mod script;
pub mod words;

/// Errors of this crate; each carries the Dockerfile line when there is one
/// (0 for the file as a whole).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Dockerfile does not parse or breaks a rule.
    #[error("{file}{}: {message}", at_line(*.line))]
    Syntax {
        /// The Dockerfile's name as the user gave it.
        file: String,
        /// 1-based line, 0 for the whole file.
        line: usize,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A value could not be expanded.
    #[error("{file}{}: {source}", at_line(*.line))]
    Word {
        /// The Dockerfile.
        file: String,
        /// 1-based line.
        line: usize,
        /// What the lexer refused.
        #[source]
        source: words::WordError,
    },
    /// A stage reference that cannot be resolved, or a cycle.
    #[error("{file}{}: {message}", at_line(*.line))]
    Graph {
        /// The Dockerfile.
        file: String,
        /// 1-based line, 0 for the whole file.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A bad `.dockerignore` pattern.
    #[error("{file}{}: {message}", at_line(*.line))]
    Ignore {
        /// The ignore file.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong with the pattern.
        message: String,
    },
}

/// `:LINE`, or nothing for line 0 (the whole file).
fn at_line(line: usize) -> String {
    match line {
        0 => String::new(),
        n => format!(":{n}"),
    }
}
