//! `--init`: a minimal PID 1 that runs the command as its child, forwards
//! signals to it, reaps every orphan, and exits with the command's status.
//! It is den's own code already in memory: nothing is added to the image.
//!
//! It is non-dumpable. It never execs, so its memory is a copy of the
//! supervisor's, made outside the container: its environment is the one
//! `den run` was started with (the user's, not the container's), its
//! `/proc/1/exe` the host's den binary. Non-dumpable, its `/proc` files
//! belong to the host's root (the owner of the user namespace its memory
//! was made in): the container's processes get "Permission denied" for
//! `/proc/1/environ`, `mem`, `fd`, `exe`, `root` and the like, and so
//! would den, which therefore joins the container through the
//! supervisor's handles (`nsfds`). The command it forks is non-dumpable
//! until its exec, which makes it dumpable as any command.

use std::path::Path;

use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::report::{At, Failed, Step};
use super::{ReportTx, SetupError, exec, supervised_signals};
use crate::sys;

/// Forks the command and supervises it; never returns on success.
/// `preserved`: the fds from 3 up that the user passes on (`--preserve-fds`).
pub(super) fn run(
    program: &Path,
    args: &[String],
    env: &[String],
    preserved: u32,
    report: &mut Option<ReportTx>,
) -> Result<std::convert::Infallible, Failed> {
    nix::sys::prctl::set_dumpable(false)
        .map_err(|errno| SetupError::Supervise {
            what: "make the init non-dumpable",
            errno,
        })
        .at(Step::StartInit)?;
    let signals = supervised_signals();
    let mut report_copy = report
        .as_ref()
        .expect("the report channel is open until exec")
        .try_clone()
        .at(Step::StartInit)?;
    let (child, ()) = sys::fork_child((), move || {
        signals.thread_unblock().ok();
        let failed = Err::<(), _>(exec::exec(program, args, env))
            .at(Step::Exec)
            .unwrap_err();
        report_copy.send(&failed.report()).ok();
        failed.error.exit_code()
    })
    .map_err(SetupError::Fork)
    .at(Step::StartInit)?;
    // Only the command's copy of the channel may stay open: its exec closes it.
    drop(report.take());
    // This process never execs, so close-on-exec protects nothing here: it
    // would keep den's descriptors (the supervisor's, the set-up's) where the
    // container's processes can reach them through /proc/1/fd.
    sys::close_all_but_stdio(preserved);
    let pid = child.pid();
    let code = reap_until(pid, &signals);
    std::mem::forget(child);
    sys::exit_now(code)
}

/// Reaps children until `main` exits; forwards signals to it. Waits with
/// sigwait, on the blocked signals, so it needs no descriptor.
fn reap_until(main: Pid, signals: &SigSet) -> i32 {
    loop {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == main => return code,
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main => return 128 + sig as i32,
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        if let Ok(sig) = signals.wait()
            && sig != Signal::SIGCHLD
        {
            kill(main, sig).ok();
        }
    }
}
