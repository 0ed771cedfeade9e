//! den-compose: the pure foundation of `den compose` (no processes).
//!
//! The main parts and how they meet:
//!
//! - [`dotenv::parse`] reads a `.env` (or `--env-file`) file with
//!   compose-go's rules into an ordered list of variables; together with the
//!   process environment they form the lookup that
//!   [`interpolate::substitute`] uses on every raw YAML value before typing.
//! - [`project::find_compose_file`] finds the compose file the way docker
//!   compose does (in a directory or its parents), and
//!   [`project::project_name`] decides the project name from `-p`,
//!   `COMPOSE_PROJECT_NAME`, `name:` and the directory.
//!
//! Every error names the file and, where there is one, the line and key
//! ([`Error`]).
//!
//! ```
//! use den_compose::{dotenv, interpolate};
//!
//! let env = dotenv::parse(".env", "TAG=3.11\nexport IMAGE=python:${TAG}\n", &|_| None).unwrap();
//! let lookup = |n: &str| dotenv::get(&env, n).map(str::to_owned);
//! let got = interpolate::substitute("${IMAGE}-slim ${PORT:-8080}", &lookup).unwrap();
//! assert_eq!(got.value, "python:3.11-slim 8080");
//! ```

pub mod check;
pub mod config;
pub mod dotenv;
pub mod interpolate;
pub mod load;
pub mod merge;
pub mod plan;
pub mod project;
pub mod yaml;

/// Errors of this crate; each names the file, and the line (1-based, 0 for
/// the whole file) and key when there is one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value could not be interpolated.
    #[error("{file}{}{}: {source}", at_line(*.line), at_key(.key))]
    Interpolate {
        /// The file the value comes from.
        file: String,
        /// 1-based line, 0 when unknown.
        line: usize,
        /// The dotted key of the value, e.g. `services.web.image`.
        key: String,
        /// What was wrong with the template.
        #[source]
        source: interpolate::TemplateError,
    },
    /// A compose file breaks a rule of the compose specification.
    #[error("{file}{}{}: {message}", at_line(*.line), at_key(.key))]
    Invalid {
        /// The compose file.
        file: String,
        /// 1-based line, 0 when unknown.
        line: usize,
        /// The dotted key, e.g. `services.web.extends`.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A `.env` file does not parse.
    #[error("{file}{}: {message}", at_line(*.line))]
    Dotenv {
        /// The env file as the user named it.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A compose file is not valid YAML (or too large).
    #[error("{file}{}: {message}", at_line(*.line))]
    Yaml {
        /// The compose file.
        file: String,
        /// 1-based line, 0 when the message holds it.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// No compose file was found, or a name is not acceptable.
    #[error("{message}")]
    Project {
        /// What is wrong and how to fix it.
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

/// ` (KEY)`, or nothing for no key.
fn at_key(key: &str) -> String {
    match key {
        "" => String::new(),
        k => format!(" ({k})"),
    }
}
