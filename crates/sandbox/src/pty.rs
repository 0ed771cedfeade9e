//! The pseudo-terminal of `den run -t`: allocating it, raw mode for the
//! user's terminal, and relaying bytes until the container exits.
//!
//! Theory of operation. All of this runs in the den CLI process, outside the
//! container; it may have other threads.
//!
//! ```text
//!   user's terminal (raw)        den (parent)                     container
//!   stdin  ──► input thread ──► master ══ pty ══ slave ──► stdin/stdout/stderr
//!   stdout ◄── output thread ◄─ master                     (controlling tty)
//!   SIGWINCH ► resize thread ─► TIOCSWINSZ on master ──► SIGWINCH to the
//!                                                        foreground group
//! ```
//!
//! 1. [`open_pty`] allocates the pair (for a container, `container::pty`
//!    opens it inside, from the container's own /dev/pts, and hands back
//!    only the master, which [`relay`] takes the same way). The caller hands the slave to the
//!    container process (dup2 onto 0/1/2 and `TIOCSCTTY` there) and then
//!    drops *every* copy of the slave it holds (including a `Command` that
//!    still owns a `Stdio` made from it): the relay learns that the container
//!    is gone from the `EIO` that reading the master returns once no process
//!    holds the slave any more.
//! 2. [`RawMode::enter`] puts the user's terminal in raw mode, so that ^C,
//!    ^Z, line editing and echo are the container's business; dropping the
//!    guard (also while unwinding from a panic) restores the saved settings.
//! 3. [`relay`] starts three threads: input → master, master → output, and
//!    one that follows the user's window size on `SIGWINCH`.
//! 4. After the container exited, [`Relay::finish`] closes a wake-up pipe
//!    that both copy loops `poll()` beside their data fd. The input loop stops
//!    at once (it never sits in a bare blocking `read` of the user's terminal);
//!    the output loop keeps draining the master until `EIO`/EOF, or for at
//!    most [`DRAIN_TIMEOUT`] if some leftover process in the container still
//!    holds the slave. A thread still stuck after that (a write to an output
//!    nobody reads) is detached, so `finish` always returns.
//!
//! When a non-terminal input (`echo hi | den run -it …`) reaches EOF, the
//! input loop writes the slave's EOF character (^D) if the slave is in
//! canonical mode, so a program reading a line-mode terminal sees end of
//! input, as `script(1)` does. A pty cannot be half-closed otherwise.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::{Errno, fcntl_dupfd_cloexec, read, write};
use rustix::pipe::{PipeFlags, pipe_with};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{
    LocalModes, OptionalActions, SpecialCodeIndex, Termios, isatty, tcgetattr, tcgetwinsize,
    tcsetattr, tcsetwinsize,
};
use signal_hook::consts::SIGWINCH;
use signal_hook::iterator::{Handle as SignalsHandle, Signals};

/// How long [`Relay::finish`] keeps copying container output that is still
/// in flight after the container exited.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// How much longer than [`DRAIN_TIMEOUT`] `finish` waits for the threads to
/// end before it detaches them.
const JOIN_GRACE: Duration = Duration::from_millis(500);

const BUF_SIZE: usize = 16 * 1024;

/// Why a pseudo-terminal operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    #[error(
        "cannot open a pseudo-terminal (/dev/ptmx): is /dev/pts mounted? \
         run without -t to go without one"
    )]
    OpenMaster(#[source] io::Error),
    #[error("cannot unlock the new pseudo-terminal (grantpt/unlockpt)")]
    Unlock(#[source] io::Error),
    #[error("cannot find the name of the new pseudo-terminal's slave")]
    SlaveName(#[source] io::Error),
    #[error("cannot open the pseudo-terminal slave {}", path.display())]
    OpenSlave {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the terminal's window size")]
    GetWindowSize(#[source] io::Error),
    #[error("cannot set the container terminal's window size")]
    SetWindowSize(#[source] io::Error),
    #[error("cannot read the terminal's settings")]
    GetAttr(#[source] io::Error),
    #[error("cannot put the terminal in raw mode")]
    SetRaw(#[source] io::Error),
    #[error("cannot duplicate the terminal's file descriptor")]
    Dup(#[source] io::Error),
    #[error("cannot start the terminal relay: {what}")]
    Relay {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

/// A new pseudo-terminal pair. Both ends are close-on-exec; the caller
/// `dup2`s the slave onto the container process's stdio, which clears it.
#[derive(Debug)]
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Allocates a pseudo-terminal pair, like `posix_openpt` + `grantpt` +
/// `unlockpt` + `open(ptsname)`. Neither end becomes den's controlling tty.
pub fn open_pty() -> Result<Pty, PtyError> {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
        .map_err(|e| PtyError::OpenMaster(e.into()))?;
    grantpt(&master).map_err(|e| PtyError::Unlock(e.into()))?;
    unlockpt(&master).map_err(|e| PtyError::Unlock(e.into()))?;
    let name = ptsname(&master, Vec::new()).map_err(|e| PtyError::SlaveName(e.into()))?;
    let flags = rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC;
    let slave =
        rustix::fs::open(name.as_c_str(), flags, rustix::fs::Mode::empty()).map_err(|e| {
            PtyError::OpenSlave {
                path: PathBuf::from(name.to_string_lossy().into_owned()),
                source: e.into(),
            }
        })?;
    Ok(Pty { master, slave })
}

/// Gives `to` the window size of `from`. Does nothing if `from` is not a
/// terminal (den's stdout redirected to a file). Setting it on a pty master
/// sends `SIGWINCH` to the slave's foreground process group.
pub fn copy_window_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), PtyError> {
    if !isatty(from) {
        return Ok(());
    }
    let size = tcgetwinsize(from).map_err(|e| PtyError::GetWindowSize(e.into()))?;
    tcsetwinsize(to, size).map_err(|e| PtyError::SetWindowSize(e.into()))
}

/// The window size of `fd` as (rows, columns), if it is a terminal.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    if !isatty(fd) {
        return None;
    }
    tcgetwinsize(fd).ok().map(|w| (w.ws_row, w.ws_col))
}

/// The user's terminal in raw mode while this guard lives: input byte by
/// byte, no echo, no signals from ^C/^Z, no output processing. Dropping it
/// (also when unwinding from a panic, but not on `process::exit`) restores
/// the settings that were in force before.
#[derive(Debug)]
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// Switches `fd` to raw mode; `None` if it is not a terminal.
    pub fn enter(fd: BorrowedFd<'_>) -> Result<Option<RawMode>, PtyError> {
        if !isatty(fd) {
            return Ok(None);
        }
        let saved = tcgetattr(fd).map_err(|e| PtyError::GetAttr(e.into()))?;
        let fd = fcntl_dupfd_cloexec(fd, 0).map_err(|e| PtyError::Dup(e.into()))?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(&fd, OptionalActions::Now, &raw).map_err(|e| PtyError::SetRaw(e.into()))?;
        Ok(Some(RawMode { fd, saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Nothing better to do if it fails: the terminal may be gone already.
        let _ = tcsetattr(&self.fd, OptionalActions::Now, &self.saved);
    }
}

/// The running relay between the user's terminal and a pty master. Stop it
/// with [`Relay::finish`] once the container exited (dropping it does the
/// same).
#[derive(Debug)]
pub struct Relay {
    /// Write end of the wake-up pipe; closing it tells both copy loops to stop.
    stop: Option<OwnedFd>,
    signals: Option<SignalsHandle>,
    threads: Vec<JoinHandle<()>>,
    /// Every thread holds a `Sender`; all dropped = all threads ended.
    ended: Receiver<()>,
}

/// Starts relaying: `input` (a dup of den's stdin; `None` without `-i`) to
/// `master`, `master` to `output` (a dup of den's stdout), and the window
/// size of `resize_from` (a dup of the user's terminal) to `master`, now and
/// on every `SIGWINCH`.
pub fn relay(
    master: OwnedFd,
    input: Option<OwnedFd>,
    output: OwnedFd,
    resize_from: Option<OwnedFd>,
) -> Result<Relay, PtyError> {
    let start = |what| move |source| PtyError::Relay { what, source };
    let (stop_r, stop_w) =
        pipe_with(PipeFlags::CLOEXEC).map_err(|e| start("wake-up pipe")(e.into()))?;
    let stop_r = Arc::new(stop_r);
    let master = Arc::new(master);
    let (ended_tx, ended) = mpsc::channel();
    // From here on, an early return drops `relay`, which stops what started.
    let mut relay = Relay {
        stop: Some(stop_w),
        signals: None,
        threads: Vec::new(),
        ended,
    };

    let (m, s, tx) = (master.clone(), stop_r.clone(), ended_tx.clone());
    relay
        .spawn("den-pty-out", move || copy_output(&m, &output, &s, tx))
        .map_err(start("output thread"))?;

    if let Some(input) = input {
        let (m, s, tx) = (master.clone(), stop_r.clone(), ended_tx.clone());
        relay
            .spawn("den-pty-in", move || copy_input(&input, &m, &s, tx))
            .map_err(start("input thread"))?;
    }

    if let Some(from) = resize_from {
        // Register before the first copy, so no resize falls in between.
        let mut signals = Signals::new([SIGWINCH]).map_err(start("SIGWINCH handler"))?;
        relay.signals = Some(signals.handle());
        // Best effort, like every later resize: a wrong size is cosmetic.
        let _ = copy_window_size(from.as_fd(), master.as_fd());
        let (m, tx) = (master, ended_tx);
        relay
            .spawn("den-pty-winch", move || {
                for _ in signals.forever() {
                    let _ = copy_window_size(from.as_fd(), m.as_fd());
                }
                drop(tx);
            })
            .map_err(start("resize thread"))?;
    }
    Ok(relay)
}

impl Relay {
    /// Call after the container exited: drains the container's remaining
    /// output (until the pty reports that no one holds the slave, or for at
    /// most [`DRAIN_TIMEOUT`]), stops the threads and returns, even if the
    /// input thread was waiting for the user to type.
    pub fn finish(self) {
        drop(self);
    }

    fn spawn(&mut self, name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let handle = thread::Builder::new().name(name.into()).spawn(f)?;
        self.threads.push(handle);
        Ok(())
    }

    fn stop_and_wait(&mut self) {
        drop(self.stop.take());
        if let Some(signals) = self.signals.take() {
            signals.close();
        }
        let deadline = Instant::now() + DRAIN_TIMEOUT + JOIN_GRACE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.ended.recv_timeout(left) {
                Ok(()) => continue,
                Err(RecvTimeoutError::Disconnected | RecvTimeoutError::Timeout) => break,
            }
        }
        for handle in self.threads.drain(..) {
            // A thread still blocked in a write is detached rather than joined.
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop_and_wait();
    }
}

/// Copies den's stdin to the master until EOF, an error, or the stop signal.
fn copy_input(input: &OwnedFd, master: &OwnedFd, stop: &OwnedFd, _ended: Sender<()>) {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut last = None;
    loop {
        match wait_readable(input, Some(stop), None) {
            Ready::Data => {}
            Ready::Stop | Ready::Timeout => return,
        }
        let n = match read(input, &mut buf[..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(Errno::INTR | Errno::AGAIN) => continue,
            Err(_) => break,
        };
        if write_all(master.as_fd(), &buf[..n]).is_err() {
            return; // EIO: the container closed its terminal.
        }
        last = buf[n - 1].into();
    }
    if !isatty(input) {
        send_eof(master, last);
    }
}

/// Makes a line-mode reader on the slave see end of input: ^D ends a
/// non-empty partial line, a second one (or the only one, at the start of a
/// line) reads as EOF. In raw mode ^D would be data, so nothing is sent.
fn send_eof(master: &OwnedFd, last: Option<u8>) {
    // On Linux, termios requests on a master act on its slave.
    let Ok(termios) = tcgetattr(master) else {
        return;
    };
    if !termios.local_modes.contains(LocalModes::ICANON) {
        return;
    }
    let eof = termios.special_codes[SpecialCodeIndex::VEOF];
    let count = if last.is_some_and(|b| b != b'\n') {
        2
    } else {
        1
    };
    let _ = write_all(master.as_fd(), &[eof; 2][..count]);
}

/// Copies the master to den's stdout until the slave is closed by everyone
/// (`EIO`) or, once stopped, for at most [`DRAIN_TIMEOUT`] more.
fn copy_output(master: &OwnedFd, output: &OwnedFd, stop: &OwnedFd, _ended: Sender<()>) {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut deadline = None;
    let mut output_ok = true;
    loop {
        let stop_fd = if deadline.is_none() { Some(stop) } else { None };
        match wait_readable(master, stop_fd, deadline) {
            Ready::Data => {}
            Ready::Stop => {
                deadline = Some(Instant::now() + DRAIN_TIMEOUT);
                continue;
            }
            Ready::Timeout => return,
        }
        let n = match read(master, &mut buf[..]) {
            Ok(0) | Err(Errno::IO) => return, // no process holds the slave any more
            Ok(n) => n,
            Err(Errno::INTR | Errno::AGAIN) => continue,
            Err(_) => return,
        };
        // If den's stdout is gone, keep reading so the container never blocks
        // on a full pty, and drop what it writes.
        if output_ok {
            output_ok = write_all(output.as_fd(), &buf[..n]).is_ok();
        }
    }
}

enum Ready {
    Data,
    Stop,
    Timeout,
}

/// Waits until `fd` can be read (data, EOF, hang-up or error: the following
/// `read` tells which), `stop` becomes readable, or `deadline` passes.
fn wait_readable(fd: &OwnedFd, stop: Option<&OwnedFd>, deadline: Option<Instant>) -> Ready {
    loop {
        let timeout = match deadline {
            None => None,
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ready::Timeout;
                }
                Some(Timespec {
                    tv_sec: left.as_secs() as _,
                    tv_nsec: left.subsec_nanos() as _,
                })
            }
        };
        let mut fds = vec![PollFd::new(fd, PollFlags::IN)];
        if let Some(stop) = stop {
            fds.push(PollFd::new(stop, PollFlags::IN));
        }
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            // Cannot happen with valid fds; treat as end rather than spin.
            Err(_) => return Ready::Timeout,
        }
        if fds.get(1).is_some_and(|s| !s.revents().is_empty()) {
            return Ready::Stop;
        }
        if !fds[0].revents().is_empty() {
            return Ready::Data;
        }
    }
}

/// Writes all of `buf`, waiting for room if `fd` is non-blocking.
fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> rustix::io::Result<()> {
    while !buf.is_empty() {
        match write(fd, buf) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => buf = &buf[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
                match poll(&mut fds, None) {
                    Ok(_) | Err(Errno::INTR) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::process::{Command, Stdio};

    use rustix::termios::Winsize;

    use super::*;

    fn dup(fd: &OwnedFd) -> OwnedFd {
        fcntl_dupfd_cloexec(fd, 0).unwrap()
    }

    fn winsize(rows: u16, cols: u16) -> Winsize {
        Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }
    }

    /// Runs `script` in `/bin/sh` on the slave of `pty`, and returns the child
    /// with no copy of the slave left in this process.
    fn spawn_on(pty: Pty, script: &str) -> (OwnedFd, std::process::Child) {
        let Pty { master, slave } = pty;
        // The `Command` owns the slave's copies until it is dropped here.
        let child = Command::new("/bin/sh")
            .args(["-c", script])
            .stdin(Stdio::from(dup(&slave)))
            .stdout(Stdio::from(dup(&slave)))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        (master, child)
    }

    /// Reads `fd` to EOF on a thread, so the relay never blocks on a full pipe.
    fn collect(fd: OwnedFd) -> JoinHandle<String> {
        thread::spawn(move || {
            let mut out = String::new();
            std::fs::File::from(fd).read_to_string(&mut out).unwrap();
            out
        })
    }

    #[test]
    fn relays_both_ways_and_finishes_with_input_open() {
        let pty = open_pty().unwrap();
        tcsetwinsize(&pty.master, winsize(33, 99)).unwrap();
        let (master, mut child) = spawn_on(pty, "stty size; read x; echo got:$x");
        let (in_r, in_w) = pipe_with(PipeFlags::CLOEXEC).unwrap();
        let (out_r, out_w) = pipe_with(PipeFlags::CLOEXEC).unwrap();
        let collected = collect(out_r);

        let relay = relay(master, Some(in_r), out_w, None).unwrap();
        write_all(in_w.as_fd(), b"hello\n").unwrap();
        assert!(child.wait().unwrap().success());
        let started = Instant::now();
        relay.finish(); // `in_w` is still open: the input thread must not hold this up.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );

        let out = collected.join().unwrap();
        assert!(out.contains("33 99"), "{out:?}");
        assert!(out.contains("got:hello"), "{out:?}");
        drop(in_w);
    }

    #[test]
    fn finish_is_bounded_when_a_leftover_process_holds_the_slave() {
        let pty = open_pty().unwrap();
        let (master, mut child) = spawn_on(pty, "sleep 5 & echo left");
        let (out_r, out_w) = pipe_with(PipeFlags::CLOEXEC).unwrap();
        let collected = collect(out_r);

        let relay = relay(master, None, out_w, None).unwrap();
        assert!(child.wait().unwrap().success());
        let started = Instant::now();
        relay.finish();
        let took = started.elapsed();
        assert!(
            took >= DRAIN_TIMEOUT / 2 && took < Duration::from_secs(2),
            "{took:?}"
        );
        assert!(collected.join().unwrap().contains("left"));
    }

    #[test]
    fn eof_on_piped_input_ends_a_line_mode_reader() {
        let pty = open_pty().unwrap();
        let (master, mut child) = spawn_on(pty, "stty -echo; cat; echo done");
        let (in_r, in_w) = pipe_with(PipeFlags::CLOEXEC).unwrap();
        let (out_r, out_w) = pipe_with(PipeFlags::CLOEXEC).unwrap();
        let collected = collect(out_r);

        let relay = relay(master, Some(in_r), out_w, None).unwrap();
        write_all(in_w.as_fd(), b"no newline").unwrap();
        drop(in_w);
        assert!(child.wait().unwrap().success());
        relay.finish();
        let out = collected.join().unwrap();
        assert!(out.contains("no newlinedone"), "{out:?}");
    }

    #[test]
    fn follows_the_window_size_of_the_users_terminal() {
        // A second pty stands in for the user's terminal.
        let user = open_pty().unwrap();
        tcsetwinsize(&user.slave, winsize(44, 120)).unwrap();
        let pty = open_pty().unwrap();
        let probe = dup(&pty.master);
        let (out_r, out_w) = pipe_with(PipeFlags::CLOEXEC).unwrap();
        let collected = collect(out_r);
        let (master, mut child) = spawn_on(pty, "read x; stty size");

        let relay = relay(master, None, out_w, Some(dup(&user.slave))).unwrap();
        assert_eq!(tcgetwinsize(&probe).unwrap().ws_col, 120, "copied at start");

        tcsetwinsize(&user.slave, winsize(50, 60)).unwrap();
        signal_hook::low_level::raise(SIGWINCH).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while tcgetwinsize(&probe).unwrap().ws_row != 50 {
            assert!(Instant::now() < deadline, "SIGWINCH not followed");
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(tcgetwinsize(&probe).unwrap().ws_col, 60);

        write_all(probe.as_fd(), b"\n").unwrap();
        assert!(child.wait().unwrap().success());
        drop(probe);
        relay.finish();
        let out = collected.join().unwrap();
        assert!(out.contains("50 60"), "{out:?}");
    }

    #[test]
    fn raw_mode_is_restored_on_drop() {
        let pty = open_pty().unwrap();
        let before = tcgetattr(&pty.slave).unwrap();
        assert!(before.local_modes.contains(LocalModes::ICANON));
        {
            let raw = RawMode::enter(pty.slave.as_fd()).unwrap();
            assert!(raw.is_some());
            let now = tcgetattr(&pty.slave).unwrap();
            assert!(!now.local_modes.contains(LocalModes::ICANON));
            assert!(!now.local_modes.contains(LocalModes::ECHO));
        }
        let after = tcgetattr(&pty.slave).unwrap();
        assert_eq!(after.local_modes, before.local_modes);
        assert_eq!(after.input_modes, before.input_modes);
        assert_eq!(after.output_modes, before.output_modes);
    }

    #[test]
    fn raw_mode_and_window_size_ignore_non_terminals() {
        let (r, w) = pipe_with(PipeFlags::CLOEXEC).unwrap();
        assert!(RawMode::enter(r.as_fd()).unwrap().is_none());
        let pty = open_pty().unwrap();
        copy_window_size(w.as_fd(), pty.master.as_fd()).unwrap();
    }
}
