//! What a container process (or `den exec`'s child) tells its parent over
//! the [`crate::channel`]: nothing when its command was exec'd (the
//! close-on-exec pipe just closes), or the step that failed and why.
//!
//! ```text
//!   supervisor / den __internal exec          container process / exec child
//!   fork_reporting ─────────────────────────► Step::Namespaces, Step::RootFs, ...
//!   recv()                                    a step fails:
//!     Some(Failed{step, code, errno, chain}) ◄─ send(Failed), exit(code)
//!     None (EOF)                           ◄─ exec closed the pipe: running
//! ```

use serde::{Deserialize, Serialize};

use super::SetupError;

/// The set-up steps of a container process, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    Namespaces,
    RootFs,
    FillVolumes,
    SystemMounts,
    Volumes,
    CheckWorkdir,
    MaskPaths,
    PivotRoot,
    Hostname,
    Session,
    User,
    EnterWorkdir,
    FindCommand,
    Ulimits,
    WaitGuard,
    Privileges,
    WaitNetwork,
    StartInit,
    Exec,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Namespaces => "create or join the namespaces",
            Self::RootFs => "mount the root filesystem",
            Self::FillVolumes => "fill new volumes from the image",
            Self::SystemMounts => "mount /proc, /dev and /sys",
            Self::Volumes => "mount the volumes",
            Self::CheckWorkdir => "check the working directory",
            Self::MaskPaths => "mask and protect system paths",
            Self::PivotRoot => "switch to the container's root (pivot_root)",
            Self::Hostname => "set the hostname",
            Self::Session => "start a session",
            Self::User => "look up the user",
            Self::EnterWorkdir => "enter the working directory",
            Self::FindCommand => "find the command",
            Self::Ulimits => "set the resource limits (--ulimit)",
            Self::WaitGuard => "wait for the guard",
            Self::Privileges => "drop privileges",
            Self::WaitNetwork => "wait for the network",
            Self::StartInit => "start --init",
            Self::Exec => "run the command",
        })
    }
}

/// The one message a set-up child sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ChildReport {
    Failed {
        step: Step,
        /// The exit code den ends with: 127, 126 or 125.
        code: i32,
        /// The first errno in the error's chain.
        errno: Option<i32>,
        /// The error's messages, outermost first (see [`chain_of`]).
        chain: Vec<String>,
    },
}

/// What a den process started in the background (a detached supervisor,
/// a user network's infra) tells the den command that waits for it, over
/// the channel on its stdout: `Up` once it runs (then stdout is closed), or
/// why it could not start.
///
/// ```text
///   den run -d / den network …              den __internal container|network-infra
///   spawn, stdout piped ───────────────────► set up
///   recv ◄───────────────────────────────── Up("started") | Failed{code, chain}
///   exit 0 / print chain, exit code          (goes on in the background)
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Background {
    Up(String),
    Failed { code: i32, chain: Vec<String> },
}

/// Sends `msg` to the den command waiting on this process's stdout.
pub fn tell_starter(msg: &Background) -> Result<(), crate::channel::ChannelError> {
    use std::os::fd::AsFd;
    let fd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(crate::channel::ChannelError::Pipe)?;
    crate::channel::Sender::from_fd(fd).send(msg)
}

/// A failed step in the child, before it is sent.
#[derive(Debug)]
pub struct Failed {
    pub step: Step,
    pub error: SetupError,
}

/// `.at(Step::X)?`: names the step of an error in the child.
pub(super) trait At<T> {
    fn at(self, step: Step) -> Result<T, Failed>;
}

impl<T, E: Into<SetupError>> At<T> for Result<T, E> {
    fn at(self, step: Step) -> Result<T, Failed> {
        self.map_err(|e| Failed {
            step,
            error: e.into(),
        })
    }
}

impl Failed {
    /// The message for the parent.
    pub fn report(&self) -> ChildReport {
        ChildReport::Failed {
            step: self.step,
            code: self.error.exit_code(),
            errno: errno_of(&self.error),
            chain: chain_of(&self.error),
        }
    }
}

/// The messages of `e` and its sources, outermost first, each left out
/// when its parent's message already contains it (uv's rule).
pub fn chain_of(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(cause) = next {
        let s = cause.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        next = cause.source();
    }
    parts
}

/// The first OS error number in `e`'s chain.
fn errno_of(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut next = Some(e);
    while let Some(cause) = next {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && let Some(n) = io.raw_os_error()
        {
            return Some(n);
        }
        if let Some(n) = cause.downcast_ref::<nix::Error>() {
            return Some(*n as i32);
        }
        if let Some(n) = cause.downcast_ref::<rustix::io::Errno>() {
            return Some(n.raw_os_error());
        }
        next = cause.source();
    }
    None
}

/// A set-up failure as the parent received it: the child's messages
/// rebuilt as a chain of sources, so it prints like a local error.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Reported {
    message: String,
    #[source]
    source: Option<Box<Reported>>,
}

impl Reported {
    /// From the child's chain (outermost first); `None` when it is empty.
    pub fn from_chain(chain: &[String]) -> Option<Self> {
        chain.iter().rev().fold(None, |source, message| {
            Some(Self {
                message: message.clone(),
                source: source.map(Box::new),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_round_trips_and_says_each_cause_once() {
        let err = SetupError::Io {
            what: "enter the working directory".into(),
            path: "/etc/passwd".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
        };
        let failed = Failed {
            step: Step::EnterWorkdir,
            error: err,
        };
        let ChildReport::Failed {
            step,
            code,
            errno,
            chain,
        } = failed.report();
        assert_eq!((step, code, errno), (Step::EnterWorkdir, 125, Some(20)));
        let rebuilt = Reported::from_chain(&chain).unwrap();
        assert_eq!(chain_of(&rebuilt), chain);
        assert_eq!(
            chain.join(": "),
            "cannot enter the working directory /etc/passwd: Not a directory (os error 20)"
        );
    }
}
