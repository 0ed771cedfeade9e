//! The guard: why a container never outlives its supervisor.
//!
//! Killing a pid namespace's init kills every process in it, so the
//! container's PID 1 must die when its supervisor does. `PR_SET_PDEATHSIG`
//! cannot promise that on its own: the kernel clears it whenever the process
//! changes its effective or filesystem ids (`-u`, `--userns=keep-id`) or
//! execs a setuid or file-capability binary (`su`, `sudo`), and the
//! container's own code may clear it at will. Whatever watches must
//! therefore be a process the container cannot touch and whose rights do not
//! depend on the container's credentials.
//!
//! That process is the guard, one per run of the container: a fork of the
//! supervisor that stays outside the container's namespaces (the container
//! cannot see it, let alone signal or trace it), keeps the supervisor's
//! credentials (root of the container's user namespace, so it may always
//! signal the container whatever ids the container switched to) and never
//! execs. It holds two pidfds, the supervisor's and the container init's,
//! and polls them:
//!
//! ```text
//! supervisor ──fork──► guard: poll(supervisor pidfd, container pidfd)
//!     │                  supervisor exited (kill -9) → SIGKILL the container's
//!     │                    init (its pid namespace dies with it), exit
//!     │                  container exited → exit
//!     └── SIGCHLD from a guard killed from outside → a new guard at once
//! ```
//!
//! The container process keeps `PR_SET_PDEATHSIG` for the moments before
//! the guard runs, and it drops its ids only after the guard said "watching"
//! on the `go` pipe (EOF instead: the supervisor is gone, so it gives up).
//! pidfds make this race-free: a pidfd names one process, never a recycled
//! pid.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

use super::SetupError;
use crate::sys::{self, ForkedChild};

/// The guard of one run of the container, as the supervisor holds it.
pub(super) struct Guard {
    child: Option<ForkedChild>,
    supervisor: OwnedFd,
    container: OwnedFd,
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> SetupError + '_ {
    move |source| SetupError::Io {
        what: what.into(),
        path: "for the container's guard".into(),
        source,
    }
}

impl Guard {
    /// Starts the guard of the container whose init is `container` (a child
    /// of this process, not reaped yet, so the pid is still its own). The
    /// guard writes one byte to `go` once it watches.
    pub(super) fn start(container: nix::unistd::Pid, go: OwnedFd) -> Result<Guard, SetupError> {
        let pid = |p: i32| Pid::from_raw(p).expect("a live process has a positive pid");
        let supervisor = pidfd_open(rustix::process::getpid(), PidfdFlags::empty())
            .map_err(|e| io("pidfd_open (supervisor)")(e.into()))?;
        let container = pidfd_open(pid(container.as_raw()), PidfdFlags::empty())
            .map_err(|e| io("pidfd_open (container)")(e.into()))?;
        let child = spawn(supervisor.as_fd(), container.as_fd(), Some(go))?;
        Ok(Guard {
            child: Some(child),
            supervisor,
            container,
        })
    }

    /// After a SIGCHLD: a guard that died while its container runs (killed
    /// from outside) is replaced at once.
    pub(super) fn check(&mut self) {
        let died = match &mut self.child {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        };
        if died {
            self.child = None;
            if !self.container_exited() {
                self.child = spawn(self.supervisor.as_fd(), self.container.as_fd(), None).ok();
            }
        }
    }

    fn container_exited(&self) -> bool {
        let mut fds = [PollFd::new(&self.container, PollFlags::IN)];
        matches!(poll(&mut fds, Some(&rustix::event::Timespec::default())), Ok(n) if n > 0)
    }

    /// After the container exited: the guard ends by itself. Reaped here
    /// with `reap` (another run may follow); else the supervisor exits next
    /// and need not wait for it (it is reparented and reaped there).
    pub(super) fn finish(mut self, reap: bool) {
        match (self.child.take(), reap) {
            (Some(child), true) => drop(child.wait()),
            (Some(child), false) => child.detach(),
            (None, _) => {}
        }
    }
}

fn spawn(
    supervisor: BorrowedFd<'_>,
    container: BorrowedFd<'_>,
    go: Option<OwnedFd>,
) -> Result<ForkedChild, SetupError> {
    let (child, ()) = sys::fork_child((), move || watch(supervisor, container, go))
        .map_err(|e| io("fork")(std::io::Error::other(e)))?;
    Ok(child)
}

/// The guard process: see the module doc.
fn watch(supervisor: BorrowedFd<'_>, container: BorrowedFd<'_>, go: Option<OwnedFd>) -> i32 {
    let mut keep = vec![supervisor.as_raw_fd(), container.as_raw_fd()];
    keep.extend(go.as_ref().map(AsRawFd::as_raw_fd));
    sys::close_fds_except(&keep);
    if let Some(go) = go {
        std::fs::File::from(go).write_all(b"g").ok();
    }
    // The heap's free pages as the fork left them: shared with the
    // supervisor until it trims its own, then this process's alone. The
    // guard lives as long as the container and allocates nothing.
    sys::release_free_memory();
    loop {
        let mut fds = [
            PollFd::new(&supervisor, PollFlags::IN),
            PollFd::new(&container, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return 1,
        }
        if !fds[1].revents().is_empty() {
            return 0;
        }
        if !fds[0].revents().is_empty() {
            // From outside the container's pid namespace SIGKILL always
            // reaches its init, and the namespace's other processes die
            // with it.
            pidfd_send_signal(container, Signal::KILL).ok();
            return 0;
        }
    }
}

/// The container's side of the `go` pipe: true once the guard watches.
pub(super) fn wait_watched(go: OwnedFd) -> Result<(), SetupError> {
    let mut b = [0u8; 1];
    match rustix::io::read(&go, &mut b) {
        Ok(1) => Ok(()),
        _ => Err(SetupError::GuardGone),
    }
}
