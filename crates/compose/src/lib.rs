//! den-compose: the pure foundation of `den compose` (no processes; file
//! access only through the `read` callback the caller passes in).
//!
//! The main parts and how they meet, in the order the CLI calls them:
//!
//! 1. [`project::find_compose_file`] finds the compose file (a directory or
//!    its parents) when no `-f` is given.
//! 2. [`dotenv::parse`] reads `.env` / `--env-file` with compose-go's rules;
//!    with the process environment (which wins) it forms the lookup that
//!    [`interpolate::substitute`] applies to every raw value.
//! 3. [`load::load`] reads each file into a [`yaml::Node`] tree (lines kept),
//!    interpolates, resolves `include` and `extends`, drops `x-*`, merges the
//!    `-f` files ([`merge`]) and keeps the services the profiles
//!    ([`load::selected_profiles`]) enable.
//! 4. [`check::check`] refuses unknown keys (did-you-mean), bad or unknown
//!    `depends_on` and cycles, and returns a warning per ignored key.
//! 5. [`project::project_name`] picks the project name (`-p`,
//!    `COMPOSE_PROJECT_NAME`, `name:`, directory).
//! 6. [`plan`] orders services into start levels, names the resources,
//!    labels the containers, hashes each service's config and decides
//!    which to create, keep or recreate; [`config`] prints the model.
//!
//! Every error names the file and, where there is one, the line and key
//! ([`Error`]).
//!
//! ```
//! use std::path::{Path, PathBuf};
//! use den_compose::{check, dotenv, load, plan, yaml::Raw, Error};
//!
//! let env = dotenv::parse(".env", "TAG=3.11\n", &|_| None).unwrap();
//! let lookup = |n: &str| dotenv::get(&env, n).map(str::to_owned);
//! let read = |_: &Path| -> Result<String, Error> {
//!     Ok("services:\n  web:\n    image: python:${TAG}\n    depends_on: [db]\n  db:\n    image: mariadb\n".into())
//! };
//! let files = [PathBuf::from("/src/app/compose.yaml")];
//! let loaded = load::load(&load::Inputs { files: &files, lookup: &lookup, read: &read, profiles: &[] }).unwrap();
//! assert!(check::check("compose.yaml", &loaded.model).unwrap().is_empty());
//! let Raw::Map(services) = &loaded.model.get("services").unwrap().value else { panic!() };
//! assert_eq!(plan::levels("compose.yaml", services), [vec!["db"], vec!["web"]]);
//! assert_eq!(plan::container_name("app", "web", 1), "app-web-1");
//! ```

pub mod check;
pub mod config;
pub mod dotenv;
pub mod interpolate;
pub mod load;
pub mod merge;
pub mod plan;
pub mod project;
pub mod types;
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
