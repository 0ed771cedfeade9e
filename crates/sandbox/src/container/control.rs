//! Asking a running container's supervisor to signal its container.
//!
//! Only the supervisor (root of the container's user namespace) may signal
//! the container's processes, whose ids may be subordinate ids. Other den
//! commands write one line to the FIFO `ctl` in the container's directory,
//! which the supervisor holds open and polls:
//!
//! - `signal N`: send signal N to the container's init.
//! - `stop N`: the same, and this exit is a stop: the restart policy does
//!   not apply to it. When the init would never see signal N (`stop`),
//!   the supervisor sends SIGKILL at once.
//! - `health 0`: run the health check now (`den healthcheck run`).
//!
//! Opening the FIFO fails with ENXIO when no supervisor holds it, which is
//! also how a caller learns the container is not running. SIGKILL and
//! SIGSTOP travel this way too, which the supervisor could not catch itself.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

pub fn path(dir: &Path) -> PathBuf {
    dir.join("ctl")
}

/// Creates the FIFO (if missing) and opens it for the supervisor: read and
/// write, so it never sees end-of-file between writers.
pub fn listen(dir: &Path) -> std::io::Result<OwnedFd> {
    let p = path(dir);
    match rustix::fs::mknodat(
        rustix::fs::CWD,
        &p,
        rustix::fs::FileType::Fifo,
        Mode::from_bits_truncate(0o600),
        0,
    ) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(rustix::fs::open(
        &p,
        OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// One request, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Signal(i32),
    Stop(i32),
    Health,
}

pub fn parse_request(line: &str) -> Option<Request> {
    let (verb, n) = line.trim().split_once(' ')?;
    let n: i32 = n.parse().ok()?;
    match verb {
        "signal" => Some(Request::Signal(n)),
        "stop" => Some(Request::Stop(n)),
        "health" => Some(Request::Health),
        _ => None,
    }
}

/// Asks the supervisor of the container in `dir` to send `signal` to it.
pub fn send(dir: &Path, signal: i32, stopping: bool) -> std::io::Result<()> {
    let fd = rustix::fs::open(
        path(dir),
        OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let verb = if stopping { "stop" } else { "signal" };
    std::fs::File::from(fd).write_all(format!("{verb} {signal}\n").as_bytes())
}

/// Asks the supervisor of the container in `dir` to run its health check now.
pub fn request_health(dir: &Path) -> std::io::Result<()> {
    let fd = rustix::fs::open(
        path(dir),
        OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    std::fs::File::from(fd).write_all(b"health 0\n")
}

/// Parses `KILL`, `SIGKILL`, `kill` or `9`.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_and_requests() {
        assert_eq!(parse_signal("KILL"), Some(9));
        assert_eq!(parse_signal("sigterm"), Some(15));
        assert_eq!(parse_signal("SIGUSR1"), Some(10));
        assert_eq!(parse_signal("2"), Some(2));
        assert_eq!(parse_signal("NOPE"), None);
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_request("stop 15\n"), Some(Request::Stop(15)));
        assert_eq!(parse_request("signal 9"), Some(Request::Signal(9)));
        assert_eq!(parse_request("health 0"), Some(Request::Health));
        assert_eq!(parse_request("bogus"), None);
    }

    #[test]
    fn fifo_round_trip_and_no_listener() {
        let dir = tempfile::tempdir().unwrap();
        assert!(send(dir.path(), 15, false).is_err(), "no FIFO yet");
        let fd = listen(dir.path()).unwrap();
        send(dir.path(), 15, true).unwrap();
        let mut buf = [0u8; 64];
        let n = rustix::io::read(&fd, &mut buf).unwrap();
        assert_eq!(
            parse_request(std::str::from_utf8(&buf[..n]).unwrap()),
            Some(Request::Stop(15))
        );
        drop(fd);
        let err = send(dir.path(), 15, false).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENXIO), "nobody listens");
    }
}
