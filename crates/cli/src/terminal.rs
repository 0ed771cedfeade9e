//! The user's side of every `-t` container: `den attach`, `den run -t`
//! and `den start -a` attach the same way. The user's terminal (raw, when it
//! is one) talks to the supervisor's attach socket in frames
//! (`sandbox::container::pty`); the detach keys (Ctrl-P Ctrl-Q unless
//! `--detach-keys` says otherwise) end the session and leave the container
//! running.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use anyhow::bail;
use den_sandbox::container::pty::{Decoder, Frame};
use den_sandbox::pty::{RawMode, window_size};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGWINCH};
use signal_hook::iterator::Signals;

/// Docker's default detach sequence: Ctrl-P Ctrl-Q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// Docker's message when `-it` meets an input that is not a terminal.
pub const NOT_A_TTY: &str = "the input device is not a TTY";

/// How an attach session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The container exited with this code.
    Exited(i32),
    /// The user typed the detach keys.
    Detached,
    /// The supervisor went away without saying how the container ended.
    Lost,
}

/// Parses Docker's `--detach-keys` format: comma-separated keys, each one
/// character or `ctrl-X` (X one of a-z @ [ \ ] ^ _).
pub fn parse_detach_keys(s: &str) -> anyhow::Result<Vec<u8>> {
    let bad = |k: &str| {
        anyhow::anyhow!(
            "invalid --detach-keys `{s}`: unknown key `{k}`; use comma-separated keys, \
             each a single character or ctrl-<a-z, @, [, \\, ], ^, _> (e.g. ctrl-p,ctrl-q)"
        )
    };
    let mut out = Vec::new();
    for key in s.split(',') {
        let b = key.as_bytes();
        if b.len() == 1 {
            out.push(b[0]);
            continue;
        }
        let lower = key.to_ascii_lowercase();
        let Some(rest) = lower.strip_prefix("ctrl-") else {
            return Err(bad(key));
        };
        let code = match rest.as_bytes() {
            [c @ b'a'..=b'z'] => c - b'a' + 1,
            [b'@'] => 0,
            [b'['] => 27,
            [b'\\'] => 28,
            [b']'] => 29,
            [b'^'] => 30,
            [b'_'] => 31,
            _ => return Err(bad(key)),
        };
        out.push(code);
    }
    Ok(out)
}

/// Finds the detach sequence in typed input. Bytes that could start the
/// sequence are held back until it is complete (detach) or broken (they are
/// passed on), as Docker does.
#[derive(Debug)]
pub struct DetachMatcher {
    keys: Vec<u8>,
    held: usize,
}

impl DetachMatcher {
    pub fn new(keys: Vec<u8>) -> Self {
        Self { keys, held: 0 }
    }

    /// The bytes to pass on, and whether the sequence was completed.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.held] {
                self.held += 1;
                if self.held == self.keys.len() {
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.held]);
            self.held = 0;
            if b == self.keys[0] {
                self.held = 1;
                if self.keys.len() == 1 {
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// Whether the container's spec asks for a terminal.
pub fn has_terminal(dir: &std::path::Path) -> bool {
    den_sandbox::container::spec::ContainerSpec::read(&dir.join("spec.json"))
        .is_ok_and(|s| s.process.terminal)
}

/// Sends the user's window size (if stdin is a terminal).
pub fn send_size(stream: &mut UnixStream) -> std::io::Result<()> {
    match window_size(std::io::stdin().as_fd()) {
        Some((rows, cols)) => stream.write_all(&Frame::Resize { rows, cols }.encode()),
        None => Ok(()),
    }
}

/// Relays the user's terminal and the attach socket until the container
/// exits, the user detaches, or the supervisor goes away. `input`: pass
/// stdin on (`-i`); a terminal on stdin is then put in raw mode. Signals
/// den receives go to the container (through the supervisor's control FIFO
/// in `dir`), as Docker's `--sig-proxy` does; a resized terminal resizes
/// the container's.
pub fn session(
    mut stream: UnixStream,
    input: bool,
    keys: Vec<u8>,
    dir: &std::path::Path,
) -> anyhow::Result<Outcome> {
    let stdin = std::io::stdin();
    let raw = if input {
        RawMode::enter(stdin.as_fd())?
    } else {
        None
    };
    let (sig_r, mut sig_w) = UnixStream::pair()?;
    let mut signals = Signals::new([SIGWINCH, SIGTERM, SIGHUP, SIGINT, SIGQUIT])?;
    let handle = signals.handle();
    let forwarder = std::thread::spawn(move || {
        for sig in signals.forever() {
            if sig_w.write_all(&[sig as u8]).is_err() {
                break;
            }
        }
    });
    send_size(&mut stream).ok();
    let result = relay(&mut stream, input, DetachMatcher::new(keys), &sig_r, dir);
    handle.close();
    forwarder.join().ok();
    drop(raw);
    result
}

fn relay(
    stream: &mut UnixStream,
    mut input: bool,
    mut matcher: DetachMatcher,
    signals: &UnixStream,
    dir: &std::path::Path,
) -> anyhow::Result<Outcome> {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    let mut decoder = Decoder::default();
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let mut fds = vec![
            PollFd::new(stream.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        if input {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => bail!("poll: {e}"),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[1] {
            let mut sig = [0u8; 64];
            let n = (&*signals).read(&mut sig).unwrap_or(0);
            for &s in &sig[..n] {
                if i32::from(s) == SIGWINCH {
                    send_size(stream).ok();
                } else {
                    den_sandbox::container::control::send(dir, i32::from(s), false).ok();
                }
            }
        }
        if input && ready.get(2) == Some(&true) {
            let n = stdin.lock().read(&mut buf).unwrap_or(0);
            if n == 0 {
                input = false;
            } else {
                let (pass, detach) = matcher.feed(&buf[..n]);
                if !pass.is_empty() && stream.write_all(&Frame::Input(pass).encode()).is_err() {
                    return Ok(Outcome::Lost);
                }
                if detach {
                    return Ok(Outcome::Detached);
                }
            }
        }
        if ready[0] {
            let n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => return Ok(Outcome::Lost),
                Ok(n) => n,
            };
            decoder.push(&buf[..n]);
            while let Some(frame) = decoder.next_frame()? {
                match frame {
                    Frame::Output(b) => {
                        stdout.write_all(&b).ok();
                        stdout.flush().ok();
                    }
                    Frame::Exit(code) => return Ok(Outcome::Exited(code)),
                    Frame::Input(_) | Frame::Resize { .. } => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_in_dockers_format() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-[,a").unwrap(),
            vec![0, 27, b'a']
        );
        assert_eq!(parse_detach_keys("CTRL-X,ctrl-_").unwrap(), vec![24, 31]);
        let e = parse_detach_keys("ctrl-pq").unwrap_err().to_string();
        assert!(e.contains("unknown key `ctrl-pq`"), "{e}");
        assert!(parse_detach_keys("alt-x").is_err());
        assert!(parse_detach_keys("").is_err());
    }

    #[test]
    fn detach_sequence_is_held_back_and_released_when_broken() {
        let mut m = DetachMatcher::new(vec![16, 17]);
        assert_eq!(m.feed(b"ls\r"), (b"ls\r".to_vec(), false));
        assert_eq!(m.feed(&[16]), (vec![], false));
        assert_eq!(m.feed(b"x"), (vec![16, b'x'], false));
        assert_eq!(m.feed(&[16, 16]), (vec![16], false));
        assert_eq!(m.feed(&[17, b'z']), (vec![], true));
        let mut m = DetachMatcher::new(vec![16, 17]);
        assert_eq!(m.feed(&[b'a', 16, 17]), (vec![b'a'], true));
    }
}
