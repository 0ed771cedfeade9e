//! den's typed model of a Dockerfile.
//!
//! [`parse`] turns text into a [`Dockerfile`]: global `ARG`s, then
//! [`Stage`]s, each a list of [`Instruction`]s that keep their line number.
//! Values stay as written (quotes, `$VAR`): the builder expands them with
//! [`crate::words`] when it runs a stage, because the environment is only
//! known then. What can be decided from the text alone (flags, `--mount`
//! options, JSON versus shell form, here-documents) is decided here.
//!
//! Parsing is `parse-dockerfile`'s (continuations, comments, parser
//! directives, exec and shell form with Docker's fallback to shell form for
//! JSON that does not parse), after den's here-document pass
//! ([`heredoc`]); [`convert`] maps its syntax tree to den's model and
//! collects every [`Problem`] instead of stopping at the first, which is
//! what [`check`] (`den build --check`) reports.

mod convert;
mod flags;
mod heredoc;
mod text;

use std::fmt;
use std::time::Duration;

pub use flags::{Mount, MountKind, Network, Sharing, native_platform, signal};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// The file's name as the user gave it (for messages).
    pub file: String,
    /// `# syntax=` (recorded; den has one frontend).
    pub syntax: Option<String>,
    /// `# escape=` (`\` by default, or `` ` ``).
    pub escape: char,
    /// `ARG`s before the first `FROM`.
    pub global_args: Vec<ArgDef>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
}

/// One `FROM` and what follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Position in the file, from 0.
    pub index: usize,
    /// `AS name`, lower-cased as Docker does.
    pub name: Option<String>,
    /// The base as written: an image, `scratch`, or a stage name.
    pub base: String,
    /// `--platform=` as written.
    pub platform: Option<String>,
    /// Line of the `FROM`.
    pub line: usize,
    /// The instructions after `FROM`.
    pub instructions: Vec<Instruction>,
}

/// An instruction and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// 1-based line of its keyword.
    pub line: usize,
    /// Its text with continuations joined (for history and `ONBUILD`).
    pub text: String,
    /// What it says.
    pub kind: Kind,
}

/// What an instruction says; values unexpanded.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `RUN`.
    Run(Run),
    /// `COPY`.
    Copy(Copy),
    /// `ADD` (same shape as `COPY`; `--from` is refused for it).
    Add(Copy),
    /// `WORKDIR path`.
    Workdir(String),
    /// `ENV k=v …` (or the old `ENV k v`).
    Env(Vec<KeyValue>),
    /// `ARG name[=default] …`.
    Arg(Vec<ArgDef>),
    /// `EXPOSE port[/proto] …`.
    Expose(Vec<String>),
    /// `CMD`.
    Cmd(Command),
    /// `ENTRYPOINT`.
    Entrypoint(Command),
    /// `USER user[:group]`.
    User(String),
    /// `LABEL k=v …`.
    Label(Vec<KeyValue>),
    /// `VOLUME path …`.
    Volume(Vec<String>),
    /// `STOPSIGNAL signal`.
    StopSignal(String),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `SHELL ["exe", "arg"…]`.
    Shell(Vec<String>),
    /// `ONBUILD instruction`: stored in the image, run by its children.
    Onbuild(Box<Instruction>),
    /// `MAINTAINER name` (becomes the `maintainer` label).
    Maintainer(String),
}

/// Exec form (a JSON array) or shell form (a string for the `SHELL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `["exe", "arg"]`.
    Exec(Vec<String>),
    /// `exe arg`, continuations joined.
    Shell(String),
}

/// A here-document (`<<NAME` … `NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter (for `COPY`, the file name).
    pub name: String,
    /// The body, each line ending in a newline.
    pub content: String,
    /// `false` when the delimiter was quoted: no variable expansion.
    pub expand: bool,
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The command.
    pub command: Command,
    /// Its here-documents, in order.
    pub heredocs: Vec<Heredoc>,
    /// `--mount=…`.
    pub mounts: Vec<Mount>,
    /// `--network=…`.
    pub network: Network,
}

/// A `COPY`/`ADD` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path (or glob, or URL for `ADD`), unexpanded.
    Path(String),
    /// `<<NAME`: a file named NAME with this content.
    Heredoc(Heredoc),
}

/// `COPY` and `ADD`.
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    /// Sources, at least one.
    pub sources: Vec<Source>,
    /// Destination.
    pub dest: String,
    /// `--from=stage|index|image`.
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=mode`.
    pub chmod: Option<String>,
    /// `--link` (accepted; den's layers are always independent).
    pub link: bool,
    /// `ADD --checksum=sha256:…`.
    pub checksum: Option<String>,
}

/// `key=value`, both unexpanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    /// The name.
    pub name: String,
    /// The default, unexpanded.
    pub default: Option<String>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq)]
pub struct Healthcheck {
    /// `None` for `HEALTHCHECK NONE`, else the command.
    pub test: Option<Command>,
    /// `--interval`.
    pub interval: Option<Duration>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `--start-period`.
    pub start_period: Option<Duration>,
    /// `--start-interval`.
    pub start_interval: Option<Duration>,
    /// `--retries`.
    pub retries: Option<u32>,
}

/// Something wrong with a Dockerfile, at a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line (0 when it is about the whole file).
    pub line: usize,
    /// What is wrong and what was expected.
    pub message: String,
    /// A likely mistake that Docker accepts (the build goes on).
    pub warning: bool,
}

impl Problem {
    /// An error at `line`.
    pub fn error(line: usize, message: impl Into<String>) -> Self {
        Problem {
            line,
            message: message.into(),
            warning: false,
        }
    }

    /// `FILE:LINE: message`, the form `den build` prints.
    pub fn display<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        struct D<'a>(&'a Problem, &'a str);
        impl fmt::Display for D<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let warning = if self.0.warning { "warning: " } else { "" };
                match self.0.line {
                    0 => write!(f, "{}: {warning}{}", self.1, self.0.message),
                    n => write!(f, "{}:{}: {warning}{}", self.1, n, self.0.message),
                }
            }
        }
        D(self, file)
    }
}

/// Parses `text`; the error names `file`, the line and the first problem.
pub fn parse(file: &str, text: &str) -> Result<Dockerfile, crate::Error> {
    let (dockerfile, problems) = convert::analyse(file, text);
    match (dockerfile, problems.into_iter().find(|p| !p.warning)) {
        (Some(d), None) => Ok(d),
        (_, Some(p)) => Err(crate::Error::Syntax {
            file: file.to_owned(),
            line: p.line,
            message: p.message,
        }),
        (None, None) => Err(crate::Error::Syntax {
            file: file.to_owned(),
            line: 0,
            message: "the Dockerfile could not be parsed".into(),
        }),
    }
}

/// Every problem `den build --check` reports: syntax, unknown flags,
/// bad `--mount` options, stage names, `--from` references, cycles; and
/// warnings (`Problem::warning`) for what Docker accepts but is likely a
/// mistake, such as a `--from` naming no stage that would be pulled as an
/// image.
pub fn check(text: &str) -> Vec<Problem> {
    convert::analyse("Dockerfile", text).1
}

/// The build args every Dockerfile has without declaring them (proxy
/// settings); they are passed to `RUN` but kept out of the image's history.
pub const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Parses the `ONBUILD` triggers a base image's config holds (`OnBuild`),
/// which run first in a stage built on it. Line numbers count triggers
/// from 1; errors name `image`.
pub fn parse_triggers(image: &str, triggers: &[String]) -> Result<Vec<Instruction>, crate::Error> {
    let file = format!("{image} (ONBUILD)");
    let mut text = String::from("FROM scratch\n");
    for t in triggers {
        text.push_str(t);
        text.push('\n');
    }
    let shift = |e: crate::Error| match e {
        crate::Error::Syntax {
            file,
            line,
            message,
        } => crate::Error::Syntax {
            file,
            line: line.saturating_sub(1),
            message,
        },
        other => other,
    };
    let d = parse(&file, &text).map_err(shift)?;
    let mut stages = d.stages.into_iter();
    let first = stages.next().map(|s| s.instructions).unwrap_or_default();
    if let Some(extra) = stages.next() {
        return Err(crate::Error::Syntax {
            file,
            line: extra.line - 1,
            message: "FROM isn't allowed as an ONBUILD trigger".into(),
        });
    }
    let refuse = |line: usize, message: &str| crate::Error::Syntax {
        file: file.clone(),
        line,
        message: message.into(),
    };
    // One trigger, one instruction: a trigger with a line break in it
    // (an image's config is data) must not smuggle in more.
    if first.len() != triggers.len() {
        return Err(refuse(
            first.len().min(triggers.len()),
            "an ONBUILD trigger must be exactly one instruction",
        ));
    }
    first
        .into_iter()
        .map(|mut i| {
            i.line -= 1;
            match i.kind {
                Kind::Onbuild(_) => Err(refuse(
                    i.line,
                    "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                )),
                Kind::Maintainer(_) => Err(refuse(
                    i.line,
                    "MAINTAINER isn't allowed as an ONBUILD trigger",
                )),
                _ => Ok(i),
            }
        })
        .collect()
}

impl Kind {
    /// Whether the builder expands variables in this instruction's values
    /// (Docker's list: ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL,
    /// USER, VOLUME, WORKDIR, and ARG defaults). RUN, CMD and ENTRYPOINT
    /// are left to the shell; ONBUILD triggers expand when they run.
    pub fn expands_variables(&self) -> bool {
        matches!(
            self,
            Kind::Add(_)
                | Kind::Copy(_)
                | Kind::Env(_)
                | Kind::Expose(_)
                | Kind::Label(_)
                | Kind::StopSignal(_)
                | Kind::User(_)
                | Kind::Volume(_)
                | Kind::Workdir(_)
                | Kind::Arg(_)
        )
    }
}

impl Dockerfile {
    /// The stage called `name` (case-insensitive).
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
    }
}

#[cfg(test)]
mod tests;
