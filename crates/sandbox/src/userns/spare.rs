//! Spare network namespaces, made by the keeper ahead of time, so a
//! container on `--network none` or den's private network does not wait
//! for one: making a network namespace costs about half a millisecond (a
//! private network's also a helper fork), handing one over a few
//! microseconds.
//!
//! ```text
//! keeper (in its user namespace)                  supervisor (joined it)
//!   in netns B (lo up); spare: A (lo up)
//!   ROOT/userns.sock (0600) ◄──── connect ──────── Keeper::take_netns, WAIT at most
//!   peer is root of the namespace?
//!     ── A (SCM_RIGHTS) ─────────────────────────► a network namespace owned by the
//!   spare: B; unshare: in C, lo up                 keeper's user namespace? else none
//!                                                  → the container process joins it
//! ```
//!
//! The keeper is never in the namespace it hands out, and hands each one
//! out once: a container's network namespace holds nothing but what the
//! container puts there. A container that gets none (no keeper, a keeper
//! busy or gone, anything unexpected) makes its own, as before.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use nix::sched::{CloneFlags, unshare};
use rustix::fs::{Mode, OFlags};

use crate::fdpass;

/// The keeper's socket, beneath the den root.
pub const SOCKET: &str = "userns.sock";
/// What a hand-over says besides its descriptor.
const TAG: &[u8] = b"den-netns-1";
/// How long a supervisor waits for its spare.
const WAIT: Duration = Duration::from_millis(100);

/// The keeper's side: the socket and the next namespace to hand out.
pub(super) struct Spares {
    listener: UnixListener,
    spare: OwnedFd,
}

impl Spares {
    /// Listens on `root/userns.sock` (replacing a stale one) and makes the
    /// first spare. The caller holds the keeper's lock.
    pub(super) fn open(root: &Path) -> io::Result<Self> {
        let listener = fdpass::short_path(root, SOCKET, |path| {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let listener = UnixListener::bind(path)?;
            rustix::fs::chmod(path, Mode::from_bits_truncate(0o600))?;
            Ok(listener)
        })?;
        listener.set_nonblocking(true)?;
        unshare(CloneFlags::CLONE_NEWNET)?;
        set_up_here();
        let spare = next()?;
        Ok(Self { listener, spare })
    }

    /// What the keeper polls for clients.
    pub(super) fn socket(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Hands each waiting client a spare of its own; an error ends serving.
    pub(super) fn serve(&mut self) -> io::Result<()> {
        loop {
            let conn = match self.listener.accept() {
                Ok((conn, _)) => conn,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            };
            // Root of this namespace: a supervisor that joined it, or the
            // user the namespace maps to root (the socket is in the user's
            // private den root anyway).
            let root =
                rustix::net::sockopt::socket_peercred(&conn).is_ok_and(|cred| cred.uid.is_root());
            if !root {
                continue;
            }
            if fdpass::send(conn.as_fd(), TAG, &[self.spare.as_fd()]).is_ok() {
                self.spare = next()?;
            }
        }
    }

    /// Removes the socket of `root` (the caller holds the keeper's lock,
    /// and its record, still its own, is gone: it is ending).
    pub(super) fn remove(root: &Path) {
        fdpass::short_path(root, SOCKET, |p| std::fs::remove_file(p)).ok();
    }
}

/// The network namespace this process is in, as a handle; this process
/// then moves to a new one, set up for the next hand-over.
fn next() -> io::Result<OwnedFd> {
    let here = rustix::fs::open(
        "/proc/thread-self/ns/net",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    unshare(CloneFlags::CLONE_NEWNET)?;
    set_up_here();
    Ok(here)
}

/// As a container process does with a namespace of its own: loopback up,
/// ping sockets open (best effort; the container process does both again).
fn set_up_here() {
    crate::sys::loopback_up().ok();
    crate::container::allow_ping_sockets();
}

/// A spare from the keeper of `root`, whose user namespace the caller is
/// in: only a network namespace that namespace owns, and only within
/// [`WAIT`].
pub(super) fn take(root: &Path) -> Option<OwnedFd> {
    let stream = fdpass::short_path(root, SOCKET, |p| UnixStream::connect(p)).ok()?;
    stream.set_read_timeout(Some(WAIT)).ok()?;
    let ns = fdpass::recv(stream.as_fd(), TAG, 1).ok()??.pop()?;
    let userns = rustix::fs::open(
        "/proc/thread-self/ns/user",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    crate::sys::is_netns_owned_by(ns.as_fd(), userns.as_fd())
        .ok()?
        .then_some(ns)
}
