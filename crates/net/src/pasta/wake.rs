//! Waiting for pasta without polling on a clock: woken when a file in
//! pasta's private directory is written (its PID file says it is ready) or
//! when pasta exits, whichever comes first.
//!
//! A readiness poll with sleeps of 1, 2, 4, 8, then 10 ms noticed a pasta
//! ready after 11 ms at 15 ms, one ready after 16 ms at 25 ms. Where the
//! kernel offers neither inotify nor pidfds the wait falls back to short
//! sleeps; the caller checks the PID file and pasta's status after every
//! wake, so a missed or spurious event costs at most [`FALLBACK`].

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use rustix::process::{Pid, PidfdFlags, pidfd_open};

/// The longest wait without an event.
const FALLBACK: Duration = Duration::from_millis(10);

/// What wakes a wait for pasta.
pub(super) struct Wake {
    /// Writes in pasta's directory.
    files: Option<OwnedFd>,
    /// pasta's exit.
    exit: Option<OwnedFd>,
}

impl Wake {
    /// Watches `dir` and the process `pid`; made before the first check of
    /// the PID file, so no write after that check goes unnoticed.
    pub(super) fn new(dir: &Path, pid: u32) -> Self {
        let files = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .ok()
            .filter(|fd| {
                let what = WatchFlags::CLOSE_WRITE | WatchFlags::MODIFY | WatchFlags::MOVED_TO;
                inotify::add_watch(fd, dir, what).is_ok()
            });
        let exit = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok());
        Wake { files, exit }
    }

    /// Returns after an event, or after `most` (at most [`FALLBACK`] when
    /// an event source is missing).
    pub(super) fn wait(&self, most: Duration) {
        let most = match (&self.files, &self.exit) {
            (Some(_), Some(_)) => most,
            _ => most.min(FALLBACK),
        };
        let mut fds: Vec<PollFd<'_>> = [&self.files, &self.exit]
            .into_iter()
            .flatten()
            .map(|fd| PollFd::new(fd, PollFlags::IN))
            .collect();
        let timeout = Timespec::try_from(most).unwrap_or(Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        });
        poll(&mut fds, Some(&timeout)).ok();
        if let Some(fd) = &self.files {
            // Drain what woke us: the caller looks at the files themselves.
            let mut buf = [0u8; 1024];
            while rustix::io::read(fd.as_fd(), &mut buf).is_ok_and(|n| n > 0) {}
        }
    }
}
