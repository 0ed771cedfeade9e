//! Spares, made by the keeper ahead of time, so a container does not wait
//! for them: network namespaces for containers on `--network none` or den's
//! private network (making one costs about half a millisecond, a private
//! network's also a helper fork), and `--rootfs` trees (a dozen overlays
//! on `/`, about a millisecond: `container::rootdir`). Handing one over
//! costs microseconds.
//!
//! ```text
//! keeper (in its user namespace)                  supervisor (joined it)
//!   in netns B (lo up); spare: A (lo up)
//!   ROOT/userns.sock (0600) ◄──── connect ──────── Keeper::take, WAIT at most
//!   peer is root of the namespace?   ◄── request ─ "den-spare-2 nr/"
//!     ── A (SCM_RIGHTS) ─────────────────────────► a network namespace owned by the
//!                                                  keeper's user namespace? else none
//!     ── tree of / and its stamp ────────────────► (the container process checks
//!   spare: B; unshare: in C, lo up                  the stamp, see `rootdir`)
//!                                    ◄── closed ── once its container is gone
//!   its builder (`builder`) makes the next tree of /
//! ```
//!
//! A container that asks while the builder is making a tree of its
//! directory gets that tree once built (within its [`WAIT`]): back to back
//! runs then wait for the rest of a build instead of making a tree each.
//!
//! The keeper is never in the namespace it hands out, and hands each spare
//! out once: a container's namespace or tree holds nothing but what the
//! container puts there. A tree is built only after a container asked for
//! one of its directory, and goes after [`ROOT_KEPT`] untaken: it holds the
//! host's filesystems it was built from. A container that gets none (no
//! keeper, a keeper busy or gone, anything unexpected) makes its own, as
//! before.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, unshare};
use rustix::fs::{Mode, OFlags};

use super::builder::Builder;
use crate::container::rootdir;
use crate::fdpass;

/// The keeper's socket, beneath the den root.
pub const SOCKET: &str = "userns.sock";
/// What a request starts with; then `n` or `-` (a network namespace), `r`
/// or `-` (a root tree), and the tree's directory.
const REQUEST: &[u8] = b"den-spare-2 ";
/// The longest request: a path of `PATH_MAX` bytes.
const MAX_REQUEST: usize = REQUEST.len() + 2 + 4096;
/// What a hand-over of a network namespace says besides its descriptor.
const TAG_NET: &[u8] = b"den-netns-2";
/// What a hand-over of a tree says; its stamp follows.
const TAG_ROOT: &[u8] = b"den-root-2";
/// What the keeper says when it has no tree to hand over.
const TAG_NO_ROOT: &[u8] = b"den-no-root-2";
/// The longest stamp.
const MAX_STAMP: u32 = 256 * 1024;
/// How long a supervisor waits for its spares.
const WAIT: Duration = Duration::from_millis(100);
/// How long the keeper waits for a request once it accepted a connection.
const ASKED: Duration = Duration::from_millis(20);
/// How long the keeper waits for a container that took a tree to be gone
/// before it builds the next (one that runs on).
const ASKER_WAIT: Duration = Duration::from_secs(1);
/// How long a tree is kept for a container that has not asked for it yet.
pub const ROOT_KEPT: Duration = Duration::from_secs(30);

/// The keeper's side: the socket and the spares to hand out.
pub(super) struct Spares {
    listener: UnixListener,
    spare: OwnedFd,
    root: Option<RootSpare>,
    builder: Option<Builder>,
    /// The last container that asked for a tree, until it is gone.
    asker: Option<Asker>,
    /// A container that asked for a tree while the builder was building
    /// one of its directory: it gets that one once built.
    waiting: Option<Asker>,
}

/// A container that asked for a tree of `lower`: the next one is built
/// once it is gone (its supervisor, or the deleter of a `--rm` container,
/// lets go of the connection last thing; its container process's copy goes
/// with its exec), so the build competes with none of its work, start,
/// run or clean-up; or after [`ASKER_WAIT`] (a container that runs on).
struct Asker {
    conn: UnixStream,
    lower: PathBuf,
    since: Instant,
}

/// A tree of `lower`, built at `built`; its stamp as sent.
struct RootSpare {
    lower: PathBuf,
    tree: OwnedFd,
    stamp: Vec<u8>,
    built: Instant,
}

/// What a container asks for.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    net: bool,
    root: Option<PathBuf>,
}

impl Request {
    fn encode(&self) -> Vec<u8> {
        let mut out = REQUEST.to_vec();
        out.push(if self.net { b'n' } else { b'-' });
        match &self.root {
            Some(p) => {
                out.push(b'r');
                out.extend(p.as_os_str().as_bytes());
            }
            None => out.push(b'-'),
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Request> {
        let rest = bytes.strip_prefix(REQUEST)?;
        let (&[net, root], path) = rest.split_at_checked(2)? else {
            return None;
        };
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(path));
        Some(Request {
            net: match net {
                b'n' => true,
                b'-' => false,
                _ => return None,
            },
            root: match root {
                b'r' if path.is_absolute() => Some(path),
                b'-' if path.as_os_str().is_empty() => None,
                _ => return None,
            },
        })
    }
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
        Ok(Self {
            listener,
            spare,
            root: None,
            builder: None,
            asker: None,
            waiting: None,
        })
    }

    /// Waits at most `timeout` for clients, for a container that took a
    /// tree to be gone, and for a tree being built; serves the clients. An
    /// error ends serving.
    pub(super) fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let timeout = match &self.asker {
            Some(_) => timeout.min(ASKER_WAIT / 10),
            None => timeout,
        };
        let timeout = Timespec::try_from(timeout).map_err(io::Error::other)?;
        let (clients, built, gone) = {
            let builder = self.builder.as_ref().map(Builder::socket);
            let asker = self.asker.as_ref().map(|a| &a.conn);
            let mut fds = vec![PollFd::new(&self.listener, PollFlags::IN)];
            fds.extend(builder.map(|s| PollFd::new(s, PollFlags::IN)));
            let builder = builder.map(|_| fds.len() - 1);
            fds.extend(asker.map(|s| PollFd::new(s, PollFlags::IN)));
            let asker = asker.map(|_| fds.len() - 1);
            if !matches!(poll(&mut fds, Some(&timeout)), Ok(n) if n > 0) {
                fds.iter_mut().for_each(|f| f.clear_revents());
            }
            let ready = |i: Option<usize>| i.is_some_and(|i| !fds[i].revents().is_empty());
            (ready(Some(0)), ready(builder), ready(asker))
        };
        // The asker polled first: collecting may make another the asker.
        let waited = self
            .asker
            .as_ref()
            .is_some_and(|a| a.since.elapsed() >= ASKER_WAIT);
        if let Some(asker) = self.asker.take_if(|_| gone || waited) {
            self.ask(&asker.lower);
        }
        if built {
            self.collect();
        }
        if self
            .root
            .as_ref()
            .is_some_and(|r| r.built.elapsed() >= ROOT_KEPT)
        {
            self.root = None;
        }
        match clients {
            true => self.serve(),
            false => Ok(()),
        }
    }

    /// Hands each waiting client what it asks for; an error ends serving.
    fn serve(&mut self) -> io::Result<()> {
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
            let Some(request) = root.then(|| read_request(&conn)).flatten() else {
                continue;
            };
            let sent_net =
                request.net && fdpass::send(conn.as_fd(), TAG_NET, &[self.spare.as_fd()]).is_ok();
            let since = Instant::now();
            let asker = request.root.map(|lower| Asker { conn, lower, since });
            if let Some(asker) = asker {
                self.answer(asker);
            }
            if sent_net {
                self.spare = next()?;
            }
        }
    }

    /// Sends `asker` the tree kept of its directory, or, while the builder
    /// builds one, that one once built ([`Spares::collect`]); else says it
    /// has none. A request that finds no tree while the last container
    /// that took one is not gone yet (a run right after another) has the
    /// builder start on the next at once, and waits for it.
    fn answer(&mut self, asker: Asker) {
        let lower = asker.lower.as_path();
        let kept = self
            .root
            .as_ref()
            .is_some_and(|r| r.lower == lower && r.built.elapsed() < ROOT_KEPT);
        if !kept && self.asker.as_ref().is_some_and(|a| a.lower == lower) {
            self.asker = None;
            self.ask(lower);
        }
        let building = self.builder.as_ref().and_then(Builder::building);
        if !kept && building == Some(lower) {
            if let Some(before) = self.waiting.replace(asker) {
                self.hand_root(before);
            }
            return;
        }
        self.hand_root(asker);
    }

    /// Has the builder (started if none runs) build the next tree of
    /// `lower`, unless it is building one.
    fn ask(&mut self, lower: &Path) {
        if self.builder.as_ref().and_then(Builder::building).is_some() {
            return;
        }
        // One that ended since (idle) is replaced, once.
        if let Some(b) = self.builder.as_mut()
            && b.ask(lower).is_ok()
        {
            return;
        }
        self.builder = Builder::start();
        if let Some(b) = self.builder.as_mut()
            && b.ask(lower).is_err()
        {
            self.builder = None;
        }
    }

    /// The tree the builder sent; a builder that ended (idle, or its copy of
    /// the host's mounts stale) or failed goes.
    fn collect(&mut self) {
        let Some(b) = self.builder.as_mut() else {
            return;
        };
        match b.collect() {
            Ok(built) => {
                self.root = Some(RootSpare {
                    lower: built.lower,
                    tree: built.tree,
                    stamp: built.stamp,
                    built: Instant::now(),
                })
            }
            Err(()) => self.builder = None,
        }
        if let Some(waiting) = self.waiting.take() {
            self.hand_root(waiting);
        }
    }

    /// Sends `asker` the tree of its directory if one is kept (any other
    /// tree goes), or says it has none; it is then the last asker, whose
    /// connection stays open until its container is gone.
    fn hand_root(&mut self, mut asker: Asker) {
        let lower = &asker.lower;
        let spare = self
            .root
            .take()
            .filter(|s| s.lower == *lower && s.built.elapsed() < ROOT_KEPT);
        let conn = &asker.conn;
        match spare {
            Some(spare) => {
                if fdpass::send(conn.as_fd(), TAG_ROOT, &[spare.tree.as_fd()]).is_ok() {
                    write_framed(conn, &spare.stamp).ok();
                }
            }
            None => {
                fdpass::send(conn.as_fd(), TAG_NO_ROOT, &[]).ok();
            }
        }
        asker.since = Instant::now();
        self.asker = Some(asker);
    }

    /// Removes the socket of `root` (the caller holds the keeper's lock,
    /// and its record, still its own, is gone: it is ending).
    pub(super) fn remove(root: &Path) {
        fdpass::short_path(root, SOCKET, |p| std::fs::remove_file(p)).ok();
    }
}

/// One request, read within [`ASKED`].
fn read_request(conn: &UnixStream) -> Option<Request> {
    conn.set_read_timeout(Some(ASKED)).ok()?;
    conn.set_write_timeout(Some(ASKED)).ok()?;
    let mut buf = vec![0u8; MAX_REQUEST];
    let n = (&*conn).read(&mut buf).ok()?;
    Request::decode(&buf[..n])
}

pub(super) fn write_framed(mut to: &UnixStream, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(io::Error::other)?;
    to.write_all(&len.to_le_bytes())?;
    to.write_all(bytes)
}

/// What [`write_framed`] wrote, if at most [`MAX_STAMP`] bytes.
pub(super) fn read_framed(mut from: &UnixStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len);
    if len > MAX_STAMP {
        return Err(io::Error::other("a stamp too long"));
    }
    let mut bytes = vec![0u8; len as usize];
    from.read_exact(&mut bytes)?;
    Ok(bytes)
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

/// What a supervisor got from the keeper.
#[derive(Debug, Default)]
pub struct Taken {
    /// A network namespace its user namespace owns.
    pub netns: Option<OwnedFd>,
    /// A tree of the directory it asked for, to be checked by the container
    /// process (`rootdir`).
    pub root: Option<rootdir::Spare>,
    /// With a tree asked for: the connection, to be let go once the
    /// container is gone (the keeper then builds the next tree).
    pub asked: Option<UnixStream>,
}

/// Spares from the keeper of `root`, whose user namespace the caller is
/// in: a network namespace if `net` (only one that namespace owns), a tree
/// of `lower`; whatever comes within [`WAIT`].
pub(super) fn take(root: &Path, net: bool, lower: Option<&Path>) -> Taken {
    let mut taken = Taken::default();
    let Ok(stream) = fdpass::short_path(root, SOCKET, connect) else {
        return taken;
    };
    let request = Request {
        net,
        root: lower.map(Path::to_path_buf),
    };
    if stream.set_read_timeout(Some(WAIT)).is_err()
        || (&stream).write_all(&request.encode()).is_err()
    {
        return taken;
    }
    if net {
        taken.netns = recv_netns(&stream);
    }
    if lower.is_some() {
        taken.root = recv_root(&stream);
        taken.asked = Some(stream);
    }
    taken
}

fn recv_netns(stream: &UnixStream) -> Option<OwnedFd> {
    let ns = fdpass::recv(stream.as_fd(), TAG_NET, 1).ok()??.pop()?;
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

fn recv_root(stream: &UnixStream) -> Option<rootdir::Spare> {
    let tree = fdpass::recv(stream.as_fd(), TAG_ROOT, 1).ok()??.pop()?;
    let stamp = serde_json::from_slice(&read_framed(stream).ok()?).ok()?;
    Some(rootdir::Spare { tree, stamp })
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
            let asked = read_request(&conn).expect("a request");
            assert!(asked.net && asked.root.is_none(), "{asked:?}");
            fdpass::send(conn.as_fd(), TAG_NET, &[ns.as_fd()]).unwrap();
        })
    }

    /// A request is read back as written; anything else is none.
    #[test]
    fn a_request_is_read_only_whole() {
        let both = Request {
            net: true,
            root: Some(PathBuf::from("/")),
        };
        let root = Request {
            net: false,
            root: Some(PathBuf::from("/srv/a b")),
        };
        let net = Request {
            net: true,
            root: None,
        };
        for r in [both, root, net] {
            assert_eq!(Request::decode(&r.encode()).as_ref(), Some(&r));
        }
        for bad in [
            &b"den-spare-2 nrrelative"[..],
            b"den-spare-2 n-/extra",
            b"den-spare-2 x-",
            b"den-spare-2 n",
            b"den-spare-1 n-",
            b"",
        ] {
            assert_eq!(
                Request::decode(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
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
        assert!(take(dir.path(), true, None).netns.is_none(), "no socket");
        let serve = |ns: OwnedFd| {
            std::fs::remove_file(dir.path().join(SOCKET)).ok();
            let server = serve_once(dir.path(), ns);
            let got = take(dir.path(), true, None).netns;
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
