//! The container's namespaces as handles the supervisor keeps, so nothing
//! has to open `/proc/PID/ns/*` of a container process.
//!
//! Theory of operation.
//!
//! ```text
//! supervisor                                   container process (set-up, den's code)
//!   handover() ── socketpair ──────────────►   namespaces made: opens its own
//!                                              /proc/thread-self/ns/*, sends them
//!   exec reported: Handover::take ◄─ SCM_RIGHTS (then pivot_root, …, exec)
//!   Server::listen: ns.sock (0600)
//!   accept ► SO_PEERCRED uid = the owner of
//!            the container's directory? ─ yes ─► SCM_RIGHTS ► den exec / cp / top,
//!                                      └─ no ──► closed        a health probe, and
//!                                                              `--network container:`
//! ```
//!
//! Why: opening `/proc/PID/ns/*` needs ptrace access to PID. A process den
//! forked but never exec'd (the supervisor's copy, `--init`'s PID 1, a
//! `den exec` child before its exec) keeps the host's user namespace as the
//! owner of its memory; made non-dumpable, only the host's root may then
//! open its `/proc` files: the container's processes cannot read its
//! memory, environment or descriptors, and neither could den. The handles
//! are taken while the process is still den's set-up, before it drops
//! anything, and from then on served by the supervisor.
//!
//! The socket lives in the container's directory (0700, the user's) and is
//! itself 0600 and the user's; the supervisor also checks the peer's uid
//! (SO_PEERCRED, as its own user namespace sees it) against the owner of
//! that directory. Every descriptor is close-on-exec on both sides.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use nix::sched::{CloneFlags, setns};
use rustix::fs::{Mode, OFlags};

use super::SetupError;

/// The socket's name in the container's directory.
pub const SOCKET: &str = "ns.sock";

/// What one message carries besides the descriptors: a version tag.
const TAG: &[u8] = b"den-ns-1";

/// A namespace of the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Mnt,
    Pid,
    Net,
    Uts,
    Ipc,
    Cgroup,
}

/// The order of the descriptors in a message.
const KINDS: [Kind; 7] = [
    Kind::User,
    Kind::Mnt,
    Kind::Pid,
    Kind::Net,
    Kind::Uts,
    Kind::Ipc,
    Kind::Cgroup,
];

impl Kind {
    /// Its name in `/proc/PID/ns/` and in errors.
    pub fn name(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Mnt => "mnt",
            Kind::Pid => "pid",
            Kind::Net => "net",
            Kind::Uts => "uts",
            Kind::Ipc => "ipc",
            Kind::Cgroup => "cgroup",
        }
    }

    fn flag(self) -> CloneFlags {
        match self {
            Kind::User => CloneFlags::CLONE_NEWUSER,
            Kind::Mnt => CloneFlags::CLONE_NEWNS,
            Kind::Pid => CloneFlags::CLONE_NEWPID,
            Kind::Net => CloneFlags::CLONE_NEWNET,
            Kind::Uts => CloneFlags::CLONE_NEWUTS,
            Kind::Ipc => CloneFlags::CLONE_NEWIPC,
            Kind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        }
    }

    fn index(self) -> usize {
        KINDS
            .iter()
            .position(|k| *k == self)
            .expect("every kind is listed")
    }
}

/// Handles on all the namespaces of one run of a container.
pub struct Namespaces {
    fds: Vec<OwnedFd>,
}

fn io_err(what: &str, path: &Path, source: std::io::Error) -> SetupError {
    SetupError::Io {
        what: what.into(),
        path: path.into(),
        source,
    }
}

impl Namespaces {
    /// This process's own (the container process, once it made them).
    fn of_self() -> Result<Self, SetupError> {
        let fds = KINDS
            .iter()
            .map(|k| {
                let path = format!("/proc/thread-self/ns/{}", k.name());
                rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                    .map_err(|e| io_err("open", Path::new(&path), e.into()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { fds })
    }

    pub fn get(&self, kind: Kind) -> BorrowedFd<'_> {
        self.fds[kind.index()].as_fd()
    }

    /// The handles, made to survive a fork that closes close-on-exec
    /// descriptors ([`crate::sys::fork_clean`]), to be closed there; one
    /// that cannot be is closed here.
    pub(crate) fn into_inheritable(self) -> Vec<OwnedFd> {
        self.fds
            .into_iter()
            .filter(|fd| rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()).is_ok())
            .collect()
    }

    /// Gives up all but the handle on `kind`.
    pub fn into_fd(mut self, kind: Kind) -> OwnedFd {
        self.fds.swap_remove(kind.index())
    }

    /// Enters the container's `kind` namespace (setns checks the handle is
    /// one of that kind).
    pub fn join(&self, kind: Kind) -> Result<(), SetupError> {
        setns(self.get(kind), kind.flag()).map_err(|errno| SetupError::Namespace {
            what: kind.name(),
            errno,
        })
    }

    /// Asks the supervisor of the container in `dir` for them (the container
    /// must be running).
    pub fn fetch(dir: &Path) -> Result<Self, SetupError> {
        let path = dir.join(SOCKET);
        let advice = |e: std::io::Error| match e.kind() {
            // ARCHITECTURE.md says why there is no way in without it.
            std::io::ErrorKind::NotFound => std::io::Error::new(e.kind(), older_den(dir)),
            std::io::ErrorKind::ConnectionRefused => {
                std::io::Error::new(e.kind(), format!("{e}: is the container running?"))
            }
            _ => e,
        };
        let stream = connect(dir).map_err(|e| io_err("connect to", &path, advice(e)))?;
        match recv(stream.as_fd()).map_err(|e| io_err("read", &path, e))? {
            Some(ns) => Ok(ns),
            None => Err(io_err(
                "receive the container's namespaces from",
                &path,
                std::io::Error::other("the supervisor sent none: is the container running?"),
            )),
        }
    }
}

/// A running container whose supervisor serves no `ns.sock`: an older den
/// started it, and den has no other way in (ARCHITECTURE.md says why).
/// Holds the name to give `den restart`.
#[derive(Debug, thiserror::Error)]
#[error(
    "container {0} was started by an older den, which does not hand out its namespaces \
     (it has no {SOCKET}): restart it with `den restart {0}`, then run this again"
)]
pub struct OlderDen(pub String);

/// Whether the supervisor of the running container in `dir` hands out its
/// namespaces; `name`: the container as the user named it. For commands to
/// check before they start a child that joins the container.
pub fn require_served(dir: &Path, name: &str) -> Result<(), OlderDen> {
    match std::fs::symlink_metadata(dir.join(SOCKET)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(OlderDen(name.to_string())),
        _ => Ok(()),
    }
}

/// [`OlderDen`] for a container known by its directory: its short id, as
/// `den ps` shows it.
fn older_den(dir: &Path) -> String {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    OlderDen(name.chars().take(12).collect()).to_string()
}

/// The container process's end of the hand-over (see the module doc).
pub(super) struct HandoverTx(UnixStream);

/// The supervisor's end.
pub(super) struct HandoverRx(UnixStream);

/// A new hand-over for one run of the container, made before it forks.
pub(super) fn handover() -> Result<(HandoverTx, HandoverRx), SetupError> {
    let (tx, rx) = UnixStream::pair()
        .map_err(|e| io_err("create a socket pair for", Path::new("the namespaces"), e))?;
    Ok((HandoverTx(tx), HandoverRx(rx)))
}

impl HandoverTx {
    /// In the container process, once its namespaces are made: sends them.
    pub(super) fn send(self) -> Result<(), SetupError> {
        let ns = Namespaces::of_self()?;
        send(self.0.as_fd(), &ns)
            .map_err(|e| io_err("send", Path::new("the namespaces to the supervisor"), e))
    }
}

impl HandoverRx {
    /// In the supervisor, once the container process exec'd: what it sent.
    pub(super) fn take(self) -> Result<Namespaces, SetupError> {
        let what = Path::new("the container's namespaces");
        self.0
            .set_nonblocking(true)
            .map_err(|e| io_err("receive", what, e))?;
        match recv(self.0.as_fd()) {
            Ok(Some(ns)) => Ok(ns),
            Ok(None) => Err(io_err(
                "receive",
                what,
                std::io::Error::other("the container process sent none"),
            )),
            Err(e) => Err(io_err("receive", what, e)),
        }
    }
}

fn send(socket: BorrowedFd<'_>, ns: &Namespaces) -> std::io::Result<()> {
    let fds: Vec<BorrowedFd<'_>> = ns.fds.iter().map(|f| f.as_fd()).collect();
    crate::fdpass::send(socket, TAG, &fds)
}

/// One message: the tag and exactly one descriptor per kind, or `None`
/// (end of stream, or anything else, whose descriptors are closed).
fn recv(socket: BorrowedFd<'_>) -> std::io::Result<Option<Namespaces>> {
    Ok(crate::fdpass::recv(socket, TAG, KINDS.len())?.map(|fds| Namespaces { fds }))
}

/// The socket's path, short enough for a socket address whatever `dir` is.
fn short_path<T>(dir: &Path, f: impl FnOnce(&Path) -> std::io::Result<T>) -> std::io::Result<T> {
    crate::fdpass::short_path(dir, SOCKET, f)
}

fn connect(dir: &Path) -> std::io::Result<UnixStream> {
    short_path(dir, |p| UnixStream::connect(p))
}

/// What the supervisor keeps for one run: the namespaces, and the socket
/// that hands them out.
pub(super) struct Server {
    pub(super) namespaces: Namespaces,
    listener: Option<UnixListener>,
    /// The uid allowed to connect, as this process sees it.
    owner: u32,
}

impl Server {
    /// Serves `namespaces` on `dir/ns.sock` (replacing a stale socket);
    /// without a directory, keeps them for the health probes only.
    pub(super) fn listen(namespaces: Namespaces, dir: Option<&Path>) -> Result<Self, SetupError> {
        let Some(dir) = dir else {
            return Ok(Self {
                namespaces,
                listener: None,
                owner: u32::MAX,
            });
        };
        let path = dir.join(SOCKET);
        let fail = |e: std::io::Error| io_err("serve the namespaces on", &path, e);
        let owner = rustix::fs::stat(dir).map_err(|e| fail(e.into()))?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
            _ => {}
        }
        let listener = short_path(dir, |p| UnixListener::bind(p)).map_err(fail)?;
        rustix::fs::chmod(&path, Mode::from_bits_truncate(0o600)).map_err(|e| fail(e.into()))?;
        // Made by root of the user namespace: the user's, as the directory
        // (`--userns=keep-id` makes root inside a subordinate id).
        rustix::fs::chownat(
            rustix::fs::CWD,
            &path,
            Some(rustix::fs::Uid::from_raw(owner.st_uid)),
            Some(rustix::fs::Gid::from_raw(owner.st_gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| fail(e.into()))?;
        listener.set_nonblocking(true).map_err(fail)?;
        Ok(Self {
            namespaces,
            listener: Some(listener),
            owner: owner.st_uid,
        })
    }

    /// The descriptor to poll for connections.
    /// Stops serving (no `den exec` joins any more); the handles stay.
    pub(super) fn stop(self) -> Namespaces {
        self.namespaces
    }

    pub(super) fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        self.listener.as_ref().map(|l| l.as_fd())
    }

    /// Answers every waiting connection: the namespaces to the user, a
    /// closed connection to anyone else. Never blocks.
    pub(super) fn serve(&self) {
        let Some(listener) = &self.listener else {
            return;
        };
        while let Ok((stream, _)) = listener.accept() {
            let peer = rustix::net::sockopt::socket_peercred(&stream);
            if peer.is_ok_and(|c| c.uid.as_raw() == self.owner) {
                // The reply fits any socket buffer: it never blocks.
                stream.set_nonblocking(true).ok();
                send(stream.as_fd(), &self.namespaces).ok();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handover_carries_every_namespace_and_refuses_less() {
        let (tx, rx) = handover().unwrap();
        tx.send().unwrap();
        let ns = rx.take().unwrap();
        for k in KINDS {
            let ours = rustix::fs::stat(format!("/proc/self/ns/{}", k.name())).unwrap();
            let got = rustix::fs::fstat(ns.get(k)).unwrap();
            assert_eq!(
                (got.st_dev, got.st_ino),
                (ours.st_dev, ours.st_ino),
                "{k:?}"
            );
        }
        let (a, b) = UnixStream::pair().unwrap();
        crate::fdpass::send(a.as_fd(), TAG, &[ns.get(Kind::Net)]).unwrap();
        assert!(
            recv(b.as_fd()).unwrap().is_none(),
            "one descriptor is not seven"
        );
        drop(a);
        assert!(recv(b.as_fd()).unwrap().is_none(), "end of stream");
    }

    #[test]
    fn the_server_answers_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = handover().unwrap();
        tx.send().unwrap();
        let server = Server::listen(rx.take().unwrap(), Some(dir.path())).unwrap();
        let mode = std::fs::metadata(dir.path().join(SOCKET)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        let client = std::thread::spawn({
            let dir = dir.path().to_path_buf();
            move || Namespaces::fetch(&dir).map(|_| ())
        });
        while !client.is_finished() {
            server.serve();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        client.join().unwrap().unwrap();
        drop(server);
        let err = Namespaces::fetch(dir.path()).err().unwrap().to_string();
        assert!(err.contains("cannot connect to"), "{err}");
    }
}
