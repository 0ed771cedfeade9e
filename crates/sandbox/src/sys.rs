//! The raw calls that have no safe wrapper in nix or rustix: `fork`, `_exit`
//! and the `landlock_create_ruleset` version query.
//!
//! Everything else (unshare, setresuid, mount, pipes, waitpid) is already safe
//! in nix/rustix and is called directly by the modules that need it.
//!
//! Architecture invariant: this is the only module of den that may use
//! `unsafe`; it hands out safe functions and types ([`ForkedChild`]).
#![allow(unsafe_code)] // reason: the one module that wraps raw syscalls (STYLE.md §3)

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

/// Number of threads in this process, counted from `/proc/self/task`.
pub(crate) fn thread_count() -> io::Result<usize> {
    Ok(fs_err::read_dir("/proc/self/task")?.count())
}

/// Why [`fork_child`] did not fork.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ForkError {
    #[error("cannot count this process's threads in /proc/self/task")]
    ThreadCount(#[source] io::Error),
    #[error(
        "refusing to fork: the process has {0} threads, and a forked child of a threaded process may only make async-signal-safe calls"
    )]
    MultiThreaded(usize),
    #[error("fork failed")]
    Fork(#[source] nix::Error),
}

/// A forked child that has not been reaped yet. Dropping it kills and reaps the
/// child, so no child outlives its handle as a zombie.
#[derive(Debug)]
pub(crate) struct ForkedChild {
    pid: Option<Pid>,
}

/// How a forked child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChildExit {
    Code(i32),
    Signal(Signal),
}

impl ForkedChild {
    /// Block until the child exits and reap it.
    pub(crate) fn wait(mut self) -> nix::Result<ChildExit> {
        let pid = self.pid.take().expect("pid is only taken by wait or drop");
        loop {
            match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(ChildExit::Code(code)),
                Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(ChildExit::Signal(sig)),
                Ok(_) | Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for ForkedChild {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = kill(pid, Signal::SIGKILL);
            while let Err(nix::Error::EINTR) = waitpid(pid, None) {}
        }
    }
}

/// Fork; the child runs `child` and then `_exit`s with its return value (101
/// if it panics). The child never returns into the caller.
///
/// Ownership splits resources (typically pipe ends) between the two sides:
/// `parent_only` is dropped in the child before `child` runs and handed back
/// to the parent; whatever `child` captures is dropped in the parent.
///
/// Only forks when the calling process has exactly one thread: then the child
/// is an exact copy with no lock held by a vanished thread, so it may allocate,
/// spawn processes and do anything an ordinary single-threaded program does.
/// Checking is race-free: with one thread, nobody else can start a second one.
pub(crate) fn fork_child<P>(
    parent_only: P,
    child: impl FnOnce() -> i32,
) -> Result<(ForkedChild, P), ForkError> {
    match thread_count().map_err(ForkError::ThreadCount)? {
        1 => {}
        n => return Err(ForkError::MultiThreaded(n)),
    }
    // SAFETY: the process is single-threaded (checked just above, and no other
    // thread can exist to start one concurrently), so the child inherits no
    // lock held by another thread and may run arbitrary code. The child branch
    // below never returns: it ends in `exit_now`, even when `child` panics.
    match unsafe { nix::unistd::fork() }.map_err(ForkError::Fork)? {
        ForkResult::Parent { child: pid } => {
            drop(child);
            Ok((ForkedChild { pid: Some(pid) }, parent_only))
        }
        ForkResult::Child => {
            drop(parent_only);
            let code = catch_unwind(AssertUnwindSafe(child)).unwrap_or(101);
            exit_now(code)
        }
    }
}

/// `_exit(2)`: end the process at once, without running atexit handlers or
/// flushing stdio buffers inherited from the parent (which would print the
/// parent's pending output twice).
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` takes no pointers and never returns; skipping destructors
    // and atexit handlers is the intent (they belong to the parent's copy).
    unsafe { libc::_exit(code) }
}

/// The Landlock ABI version the kernel supports, from
/// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`.
/// `Err(EOPNOTSUPP)`: built in but disabled at boot; `Err(ENOSYS)`: not built.
pub(crate) fn landlock_abi_version() -> nix::Result<i32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1 << 0;
    // SAFETY: with the VERSION flag the kernel requires attr == NULL and
    // size == 0 and reads no memory; it returns a number, not a descriptor, so
    // nothing is leaked.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0 as libc::size_t,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if ret < 0 {
        Err(nix::Error::last())
    } else {
        Ok(ret as i32)
    }
}
