//! Why a container, `den exec` or a user network could not be set up:
//! one variant per kind of failure, carrying its data and its cause as
//! `#[source]` (never repeated in the variant's own message: the CLI prints
//! the chain, see `report::chain_of`).

use std::path::PathBuf;

use super::report;
use crate::userns::UsernsError;

/// Why a container could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Userns(#[from] UsernsError),
    #[error(transparent)]
    KeepId(#[from] crate::idmap::KeepIdError),
    #[error(transparent)]
    Network(#[from] den_net::NetError),
    #[error("cannot create or join the container's {what} namespace")]
    Namespace {
        what: &'static str,
        #[source]
        errno: nix::Error,
    },
    #[error("cannot give the process a session of its own (setsid)")]
    Session(#[source] nix::Error),
    #[error("mounting {what} on {target}")]
    Mount {
        what: String,
        target: String,
        #[source]
        errno: nix::Error,
    },
    #[error("cannot resolve {target} inside the container")]
    Resolve {
        target: String,
        #[source]
        errno: rustix::io::Errno,
    },
    #[error("cannot {what} {}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unable to find user {0}: no matching entries in /etc/passwd")]
    UnknownUser(String),
    #[error("unable to find group {0}: no matching entries in /etc/group")]
    UnknownGroup(String),
    #[error(
        "{path} in the image {why}: den reads it only as a regular file of at most 4 MiB, \
         not through a symlink; fix the image or use a numeric -u UID[:GID]"
    )]
    AccountFile { path: String, why: String },
    #[error("cannot set supplementary groups {groups:?}")]
    SetGroups {
        groups: Vec<u32>,
        #[source]
        errno: nix::Error,
    },
    #[error(
        "cannot switch to {what} {id} (this user namespace maps only ids it has: add \
         subordinate ids to /etc/subuid and /etc/subgid, or run as root with --user 0)"
    )]
    SwitchId {
        what: &'static str,
        id: u32,
        #[source]
        errno: nix::Error,
    },
    #[error("argument or variable contains a NUL byte: {0:?}")]
    NulByte(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    NotExecutable(String),
    #[error(transparent)]
    Caps(#[from] crate::caps::CapError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Landlock(#[from] crate::landlock::LandlockError),
    #[error(transparent)]
    Ulimit(#[from] super::rlimit::UlimitError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    #[error(transparent)]
    Fork(#[from] crate::sys::ForkError),
    #[error("{tool} failed: {stderr}")]
    Tool { tool: String, stderr: String },
    #[error("network {0} has no running infra process: run the container again")]
    NoInfra(String),
    #[error(
        "networks {first} and {other} cannot both be joined: network {other}'s infra process was started by an older den in a user namespace of its own; stop the containers on network {other} (its infra exits a few seconds later) and start this container again"
    )]
    InfraApart { first: String, other: String },
    #[error(
        "container {0} is not running: start it first; a container joins the network of a running one"
    )]
    JoinTargetDown(String),
    #[error("bad container address {0:?}")]
    BadAddress(String),
    #[error("the container's supervisor went away before its guard started")]
    GuardGone,
    #[error("the container's network did not come up (see the error above)")]
    NetworkDown,
    #[error("cannot {what}")]
    Supervise {
        what: &'static str,
        #[source]
        errno: nix::Error,
    },
    #[error("container set-up failed at step \"{step}\"")]
    Child {
        step: report::Step,
        code: i32,
        errno: Option<i32>,
        #[source]
        source: Option<report::Reported>,
    },
    #[error("the report channel of a set-up process")]
    Channel(#[from] crate::channel::ChannelError),
}

impl SetupError {
    /// Docker's codes: 127 not found, 126 cannot be invoked, 125 den's own.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::NotFound(_) => 127,
            Self::NotExecutable(_) => 126,
            Self::Child { code, .. } => *code,
            _ => 125,
        }
    }

    /// The parent's error for what a set-up child reported (`None`: it
    /// exec'd its command).
    pub(super) fn from_report(report: Option<report::ChildReport>) -> Option<Self> {
        let report::ChildReport::Failed {
            step,
            code,
            errno,
            chain,
        } = report?;
        Some(Self::Child {
            step,
            code,
            errno,
            source: report::Reported::from_chain(&chain),
        })
    }
}
