//! Fast stop: a container's PID 1, alone in its pid namespace, never
//! receives a signal it neither catches nor blocks (the kernel drops it,
//! even from outside the namespace; only SIGKILL and SIGSTOP are forced).
//! Waiting out the grace period for such a PID 1 (a Python or Flask server
//! started as the command) only wastes it, so the supervisor reads the
//! init's `SigCgt` and `SigBlk` in /proc/PID/status and, when the stop
//! signal is in neither, sends SIGKILL at once. A PID 1 that catches it
//! (a handler) or blocks it (and waits for it with sigwait, as den's
//! `--init` and tini do) gets the stop signal and the full grace period.

use std::io::Read;

/// /proc/PID/status is about 1.5 KiB; more than this is not a status file.
const MAX_STATUS: u64 = 64 * 1024;

/// The signal to send the container's init (host pid `init`) for a stop
/// that asks for `signal`: `signal` itself, or SIGKILL when the init would
/// never see it. When the status cannot be read, `signal`.
pub(super) fn signal_for(init: i32, signal: i32) -> i32 {
    let mut status = String::new();
    let read = std::fs::File::open(format!("/proc/{init}/status"))
        .and_then(|f| f.take(MAX_STATUS).read_to_string(&mut status));
    match read.ok().and_then(|_| takes(&status, signal)) {
        Some(false) => libc::SIGKILL,
        _ => signal,
    }
}

/// Does the process of this /proc/PID/status catch or block `signal`?
/// `None` when the masks are missing or malformed.
pub(crate) fn takes(status: &str, signal: i32) -> Option<bool> {
    if !(1..=64).contains(&signal) {
        return None;
    }
    let mask = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    };
    let bit = 1u64 << (signal - 1);
    Some((mask("SigCgt:")? | mask("SigBlk:")?) & bit != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTHON: &str = "Name:\tpython3\nSigQ:\t0/63\nSigPnd:\t0000000000000000\n\
        SigBlk:\t0000000000000000\nSigIgn:\t0000000001001000\nSigCgt:\t0000000100000002\n";

    #[test]
    fn caught_blocked_and_neither() {
        assert_eq!(takes(PYTHON, libc::SIGTERM), Some(false));
        assert_eq!(
            takes(PYTHON, libc::SIGINT),
            Some(true),
            "python catches SIGINT"
        );
        // SIGPIPE is ignored (SigIgn), which is not taking it either.
        assert_eq!(takes(PYTHON, libc::SIGPIPE), Some(false));
        let sigwait = "SigBlk:\t0000000000004000\nSigCgt:\t0000000000000000\n";
        assert_eq!(takes(sigwait, libc::SIGTERM), Some(true));
        assert_eq!(takes(sigwait, 64), Some(false));
        assert_eq!(takes("Name:\tx\n", libc::SIGTERM), None);
        assert_eq!(takes("SigBlk:\tzz\nSigCgt:\t0\n", libc::SIGTERM), None);
        assert_eq!(takes(PYTHON, 0), None);
    }

    #[test]
    fn reads_own_status() {
        // Rust's runtime catches SIGSEGV (its stack-overflow handler). The
        // signal mask is inherited from whoever started the tests (a shell
        // may block SIGUSR2), so the uncaught signal is one this process
        // neither catches nor blocks, read from its status.
        let me = std::process::id() as i32;
        assert_eq!(signal_for(me, libc::SIGSEGV), libc::SIGSEGV);
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let free = [libc::SIGUSR2, libc::SIGUSR1, libc::SIGPWR, libc::SIGTTIN]
            .into_iter()
            .find(|&s| takes(&status, s) == Some(false))
            .expect("some signal is neither caught nor blocked");
        assert_eq!(signal_for(me, free), libc::SIGKILL);
        assert_eq!(signal_for(-1, libc::SIGTERM), libc::SIGTERM);
    }
}
