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

/// As a container process does with a namespace of its own (best effort:
/// the container process does it again).
fn set_up_here() {
    crate::container::set_up_netns_here().ok();
}

/// A spare from the keeper of `root`, whose user namespace the caller is
/// in: only a network namespace that namespace owns, and only within
/// [`WAIT`].
pub(super) fn take(root: &Path) -> Option<OwnedFd> {
    let stream = fdpass::short_path(root, SOCKET, connect).ok()?;
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

/// Connects without blocking: a keeper that stopped accepting (a full
/// backlog) is an error at once, not a wait without end.
fn connect(path: &Path) -> io::Result<UnixStream> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    rustix::net::connect(&sock, &SocketAddrUnix::new(path)?)?;
    let stream = UnixStream::from(sock);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;
    use std::process::{Command, Stdio};

    use super::*;

    /// Serves `ns` once on `dir/userns.sock`, as a keeper would.
    fn serve_once(dir: &Path, ns: OwnedFd) -> std::thread::JoinHandle<()> {
        let listener = UnixListener::bind(dir.join(SOCKET)).unwrap();
        std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            fdpass::send(conn.as_fd(), TAG, &[ns.as_fd()]).unwrap();
        })
    }

    fn open_ns(path: &str) -> OwnedFd {
        rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).unwrap()
    }

    /// Only a network namespace the taker's user namespace owns is taken:
    /// not one another user namespace owns, not another kind of namespace,
    /// nothing when nobody listens.
    #[test]
    fn a_spare_is_taken_only_when_the_takers_user_namespace_owns_it() {
        let dir = tempfile::tempdir().unwrap();
        assert!(take(dir.path()).is_none(), "no socket");
        let serve = |ns: OwnedFd| {
            std::fs::remove_file(dir.path().join(SOCKET)).ok();
            let server = serve_once(dir.path(), ns);
            let got = take(dir.path());
            server.join().unwrap();
            got
        };
        // This test's own network namespace: its user namespace owns it.
        assert!(serve(open_ns("/proc/self/ns/net")).is_some());
        assert!(
            serve(open_ns("/proc/self/ns/user")).is_none(),
            "not a netns"
        );
        // One a new user namespace owns (a child's, made by unshare(1)).
        let mut child = Command::new("unshare")
            .args(["-Urn", "sleep", "30"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let path = format!("/proc/{}/ns/net", child.id());
        let foreign = (0..200)
            .find_map(|_| {
                let user = std::fs::read_link(format!("/proc/{}/ns/user", child.id())).ok()?;
                let own = std::fs::read_link("/proc/self/ns/user").unwrap();
                if user == own {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    return None;
                }
                Some(open_ns(&path))
            })
            .expect("the child's namespaces");
        let refused = serve(foreign).is_none();
        child.kill().ok();
        child.wait().ok();
        assert!(refused, "another user namespace's netns");
    }
}
