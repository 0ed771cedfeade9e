//! The terminal of a `-t` container, owned by its supervisor, and the
//! attach socket through which `den run -t`, `den attach` and `den start -a`
//! reach it.
//!
//! Theory of operation.
//!
//! ```text
//!   den attach ══ attach.sock ══╗
//!   den run -it ═ socketpair ═══╬═ supervisor ── master ══ pty ══ slave ── container
//!                               ║      └─► ctr.log (stdout stream)      (0/1/2, ctty)
//! ```
//!
//! - Every run of the container (first start, `den start`, restarts) gets a
//!   fresh pty, opened by the container process itself ([`take_terminal`])
//!   from its own devpts instance, as runc does with its console socket:
//!
//!   ```text
//!   supervisor                              container process (den's set-up)
//!     handover(size) ── socketpair ──────►  /dev/pts mounted (newinstance,
//!                                           ptmxmode=0666): open dev/pts/ptmx
//!                                           beneath the root (no symlinks),
//!                                           TIOCGPTN: a master? unlock, slave
//!                                           by TIOCGPTPEER, window size set;
//!                                           slave bound on /dev/console;
//!     exec reported: take_master ◄─ SCM_RIGHTS: the master (then closed here)
//!       one fd, the tag, TIOCGPTN                slave → 0/1/2, setsid, TIOCSCTTY
//!   ```
//!
//!   So the slave is `/dev/pts/0` in the container, and `ttyname()` (tty,
//!   ps, sudo, screen) finds it. `den exec -t` does the same in its child
//!   (after it joined the mount namespace), with the window size the
//!   `ExecRequest` carries (the caller's, so the command's first look at
//!   it sees it) and without the console bind: its
//!   stdin is a socket the den CLI waits on in [`receive_master`], and the
//!   CLI relays the master as before. The master is close-on-exec and
//!   closed in the container process once sent: it never reaches the
//!   container's command. The receiver takes exactly one descriptor, and
//!   only a pty master.
//! - The supervisor keeps the master and logs all it reads from it, whether
//!   or not anyone is attached.
//! - Clients talk in frames ([`Frame`]): a tag byte, a 4-byte big-endian
//!   length, the payload. Clients send input and window sizes; the
//!   supervisor sends output and, when the container exits, its exit code.
//!   A client detaches by closing its end; the container runs on.
//! - The socket `attach.sock` lives in the container's directory (0700) and
//!   is itself 0600: only the user reaches it. Its path can be longer than a
//!   socket address allows, so it is bound and reached through
//!   `/proc/self/fd/N/` of the directory.
//! - A client that does not keep up (its socket full for [`SEND_TIMEOUT`])
//!   is dropped rather than stalling the container and its log.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use rustix::fs::{Mode, OFlags};
use rustix::termios::{Winsize, tcsetwinsize};

/// The socket's name in the container's directory.
pub const SOCKET: &str = "attach.sock";

/// Largest payload of one frame; more is a protocol error.
pub const MAX_FRAME: usize = 64 << 10;

/// How long a write to a client may block before the client is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// Most input bytes held for a container that does not read its terminal.
pub const MAX_PENDING_INPUT: usize = 64 << 10;

/// One message on the attach socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Client → supervisor: bytes typed by the user.
    Input(Vec<u8>),
    /// Client → supervisor: the user's window size.
    Resize { rows: u16, cols: u16 },
    /// Supervisor → client: bytes the container wrote.
    Output(Vec<u8>),
    /// Supervisor → client: the container exited with this code.
    Exit(i32),
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let (tag, payload): (u8, Vec<u8>) = match self {
            Frame::Input(b) => (b'i', b.clone()),
            Frame::Resize { rows, cols } => {
                (b'w', [rows.to_be_bytes(), cols.to_be_bytes()].concat())
            }
            Frame::Output(b) => (b'o', b.clone()),
            Frame::Exit(c) => (b'x', c.to_be_bytes().to_vec()),
        };
        let mut out = Vec::with_capacity(5 + payload.len());
        out.push(tag);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&payload);
        out
    }

    fn decode(tag: u8, p: &[u8]) -> Result<Frame, ProtocolError> {
        let bad = || ProtocolError::Malformed(tag);
        Ok(match tag {
            b'i' => Frame::Input(p.to_vec()),
            b'o' => Frame::Output(p.to_vec()),
            b'w' => {
                let b: [u8; 4] = p.try_into().map_err(|_| bad())?;
                Frame::Resize {
                    rows: u16::from_be_bytes([b[0], b[1]]),
                    cols: u16::from_be_bytes([b[2], b[3]]),
                }
            }
            b'x' => Frame::Exit(i32::from_be_bytes(p.try_into().map_err(|_| bad())?)),
            _ => return Err(bad()),
        })
    }
}

/// A peer broke the frame format.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("attach socket: malformed frame (tag {0:#04x})")]
    Malformed(u8),
    #[error("attach socket: frame of {0} bytes is larger than the limit")]
    TooLarge(usize),
}

/// Collects bytes from a stream and hands out whole frames.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_FRAME {
            return Err(ProtocolError::TooLarge(len));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let frame = Frame::decode(self.buf[0], &self.buf[5..5 + len]);
        self.buf.drain(..5 + len);
        frame.map(Some)
    }
}

/// The attach socket's path, short enough whatever `dir` is.
fn short_path<T>(dir: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    crate::fdpass::short_path(dir, SOCKET, f)
}

/// Creates the attach socket in `dir` (replacing a stale one), mode 0600,
/// non-blocking.
pub fn listen(dir: &Path) -> io::Result<UnixListener> {
    let sock = dir.join(SOCKET);
    match std::fs::remove_file(&sock) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = short_path(dir, |p| UnixListener::bind(p))?;
    rustix::fs::chmod(&sock, Mode::from_bits_truncate(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Connects to the attach socket of the container in `dir`.
pub fn connect(dir: &Path) -> io::Result<UnixStream> {
    short_path(dir, |p| UnixStream::connect(p))
}

/// The tag of a hand-over message, besides its one descriptor.
const TAG: &[u8] = b"den-pty-1";

/// A new hand-over: the container process's end (with the window size the
/// pty starts with) and the receiving end, made before it forks.
pub(super) fn handover(size: Option<Winsize>) -> Result<(MasterTx, OwnedFd), super::SetupError> {
    let (tx, rx) = UnixStream::pair().map_err(|e| super::SetupError::Io {
        what: "create a socket pair for".into(),
        path: "the container's terminal".into(),
        source: e,
    })?;
    Ok((
        MasterTx {
            socket: tx.into(),
            size,
        },
        rx.into(),
    ))
}

/// Where a container process (or `den exec`'s child) sends its pty's master.
pub(super) struct MasterTx {
    socket: OwnedFd,
    size: Option<Winsize>,
}

impl MasterTx {
    /// `den exec -t`'s child: its stdin is the socket the den CLI waits on.
    pub(super) fn from_stdin(size: Option<Winsize>) -> Result<MasterTx, super::SetupError> {
        let socket = rustix::io::fcntl_dupfd_cloexec(std::io::stdin(), 3).map_err(|e| {
            super::SetupError::Io {
                what: "keep".into(),
                path: "the terminal hand-over socket (stdin)".into(),
                source: e.into(),
            }
        })?;
        Ok(MasterTx { socket, size })
    }
}

/// In the container process, after its /dev/pts is mounted: a new pty from
/// that devpts instance, so its slave is `/dev/pts/N` in the container and
/// `ttyname()` finds it. The slave becomes stdin, stdout and stderr (and,
/// with `console`, is bound on /dev/console); the master goes to `to` and
/// no copy of it stays here. `root`: the container's root.
pub(super) fn take_terminal(
    root: &OwnedFd,
    to: MasterTx,
    console: bool,
) -> Result<(), super::SetupError> {
    let (master, slave) = open_in(root, to.size)?;
    if console {
        super::mounts::bind_console(root, &slave)?;
    }
    let fail = |what: &str, e: io::Error| super::SetupError::Io {
        what: what.into(),
        path: "the container's terminal".into(),
        source: e,
    };
    send_master(to.socket.as_fd(), &master).map_err(|e| fail("send the master of", e))?;
    drop((master, to));
    for dup in [
        rustix::stdio::dup2_stdin,
        rustix::stdio::dup2_stdout,
        rustix::stdio::dup2_stderr,
    ] {
        dup(&slave).map_err(|e| fail("make stdio", e.into()))?;
    }
    Ok(())
}

/// Opens `dev/pts/ptmx` beneath `root` (no symlink followed: in `den exec`
/// the container's root may have put anything there), checks that it is a
/// pty master, unlocks it and opens its slave through the master
/// (`TIOCGPTPEER`: no path to race). Both close-on-exec.
fn open_in(root: &OwnedFd, size: Option<Winsize>) -> Result<(OwnedFd, OwnedFd), super::SetupError> {
    use rustix::fs::ResolveFlags;
    use rustix::pty::OpenptFlags;
    let fail = |what: &str, e: rustix::io::Errno| super::SetupError::Io {
        what: what.into(),
        path: "/dev/pts/ptmx".into(),
        source: e.into(),
    };
    // Non-blocking: a FIFO there must not hang us. Blocking again below.
    let master = rustix::fs::openat2(
        root,
        "dev/pts/ptmx",
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| fail("open the container's terminal", e))?;
    is_master(&master).map_err(|e| fail("open the container's terminal", e))?;
    rustix::fs::fcntl_setfl(&master, OFlags::empty()).map_err(|e| fail("set up", e))?;
    rustix::pty::unlockpt(&master).map_err(|e| fail("unlock a terminal of", e))?;
    let slave = rustix::pty::ioctl_tiocgptpeer(
        &master,
        OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
    )
    .map_err(|e| fail("open the slave of a terminal of", e))?;
    if let Some(size) = size {
        tcsetwinsize(&master, size).ok();
    }
    Ok((master, slave))
}

/// Whether `fd` is a pty master: `TIOCGPTN` answers only on one.
fn is_master(fd: &OwnedFd) -> rustix::io::Result<()> {
    rustix::pty::ptsname(fd, Vec::new()).map(drop)
}

fn send_master(socket: std::os::fd::BorrowedFd<'_>, master: &OwnedFd) -> io::Result<()> {
    crate::fdpass::send(socket, TAG, &[master.as_fd()])
}

/// Receives the master a container process sent on `socket` (blocking until
/// it does, or until every copy of the other end is closed: `None`). The
/// sender is the container's set-up, which a hostile container may have
/// raced: anything but the tag with exactly one descriptor that is a pty
/// master is refused (`None`), and what came with it closed.
pub fn receive_master(socket: std::os::fd::BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};
    let mut data = [0u8; 16];
    // Room for one more than expected: a longer list is refused, not cut.
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = loop {
        match rustix::net::recvmsg(
            socket,
            &mut [io::IoSliceMut::new(&mut data)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other?,
        }
    };
    let mut fds: Vec<OwnedFd> = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = m {
            fds.extend(received);
        }
    }
    let whole = !msg.flags.contains(ReturnFlags::CTRUNC);
    if !whole || &data[..msg.bytes] != TAG || fds.len() != 1 {
        return Ok(None);
    }
    let master = fds.remove(0);
    Ok(is_master(&master).is_ok().then_some(master))
}

/// The supervisor's end: the master of this run's terminal, once the
/// container process exec'd (it sent it before).
pub(super) fn take_master(socket: OwnedFd) -> Result<OwnedFd, super::SetupError> {
    let fail = |e: io::Error| super::SetupError::Io {
        what: "receive the master of".into(),
        path: "the container's terminal".into(),
        source: e,
    };
    rustix::fs::fcntl_setfl(&socket, OFlags::NONBLOCK).map_err(|e| fail(e.into()))?;
    receive_master(socket.as_fd())
        .map_err(fail)?
        .ok_or_else(|| fail(io::Error::other("the container process sent no pty master")))
}

/// One attached client.
struct Client {
    stream: UnixStream,
    decoder: Decoder,
}

/// What the supervisor keeps for a terminal container: the listening
/// socket, the attached clients, the current run's master.
pub(super) struct Hub {
    listener: Option<UnixListener>,
    clients: Vec<Client>,
    master: Option<OwnedFd>,
    /// Input not yet taken by the pty.
    pending: Vec<u8>,
    /// The latest window size a client sent.
    pub size: Option<Winsize>,
}

impl Hub {
    /// `first`: a client connected before the supervisor started (the
    /// `den run`/`den start -a` that spawned it). Its first frames (the
    /// window size) are read now, so the first run's pty has the right size.
    pub fn new(dir: Option<&Path>, first: Option<UnixStream>) -> Result<Hub, super::SetupError> {
        let listener = match dir {
            Some(d) => Some(listen(d).map_err(|e| super::SetupError::Io {
                what: "create the attach socket in".into(),
                path: d.to_path_buf(),
                source: e,
            })?),
            None => None,
        };
        let mut hub = Hub {
            listener,
            clients: Vec::new(),
            master: None,
            pending: Vec::new(),
            size: None,
        };
        if let Some(s) = first {
            hub.add(s);
            hub.read_client(0, true);
        }
        Ok(hub)
    }

    fn add(&mut self, stream: UnixStream) {
        if stream.set_write_timeout(Some(SEND_TIMEOUT)).is_ok() {
            self.clients.push(Client {
                stream,
                decoder: Decoder::default(),
            });
        }
    }

    /// A new run's master (non-blocking, so a full pty never stalls us).
    pub fn set_master(&mut self, master: OwnedFd) {
        let flags = rustix::fs::fcntl_getfl(&master).unwrap_or(OFlags::empty());
        rustix::fs::fcntl_setfl(&master, flags | OFlags::NONBLOCK).ok();
        self.pending.clear();
        self.master = Some(master);
    }

    /// The fds to poll, in order: listener, clients, master. Returns how many
    /// of each were added so [`Hub::handle`] can read the results.
    pub fn poll_fds(&self) -> Vec<(std::os::fd::BorrowedFd<'_>, nix::poll::PollFlags)> {
        use nix::poll::PollFlags;
        let mut out = Vec::new();
        if let Some(l) = &self.listener {
            out.push((l.as_fd(), PollFlags::POLLIN));
        }
        for c in &self.clients {
            out.push((c.stream.as_fd(), PollFlags::POLLIN));
        }
        if let Some(m) = &self.master {
            let mut f = PollFlags::POLLIN;
            if !self.pending.is_empty() {
                f |= PollFlags::POLLOUT;
            }
            out.push((m.as_fd(), f));
        }
        out
    }

    /// Acts on poll results (`ready[i]` for the i-th fd of
    /// [`Hub::poll_fds`]); output read from the master goes to `log` and
    /// to the clients. Returns false once the master reports that no
    /// process holds the slave any more.
    pub fn handle(&mut self, ready: &[bool], log: &mut dyn FnMut(&[u8])) -> bool {
        let listening = self.listener.is_some();
        let first = usize::from(listening);
        let n = self.clients.len();
        let master_ready = self.master.is_some() && ready[first + n];
        // Clients and master first, while the indices still hold.
        for c in (0..n).rev() {
            if ready[first + c] {
                self.read_client(c, false);
            }
        }
        let open = match self.master {
            None => false,
            Some(_) if master_ready => {
                self.flush_input();
                self.read_master(log)
            }
            Some(_) => true,
        };
        if listening && ready[0] {
            self.accept();
        }
        open
    }

    fn accept(&mut self) {
        while let Some(Ok((s, _))) = self.listener.as_ref().map(|l| l.accept()) {
            self.add(s);
            if let (Some(size), Some(m)) = (self.size, &self.master) {
                tcsetwinsize(m, size).ok();
            }
        }
    }

    /// Reads what client `c` sent; drops it on EOF, error or bad frames.
    /// `nonblocking_once`: a single non-blocking read (the first client).
    fn read_client(&mut self, c: usize, nonblocking_once: bool) {
        let mut buf = [0u8; 16 << 10];
        let client = &mut self.clients[c];
        if nonblocking_once {
            client.stream.set_nonblocking(true).ok();
        }
        let got = client.stream.read(&mut buf);
        if nonblocking_once {
            client.stream.set_nonblocking(false).ok();
        }
        match got {
            Ok(0) => {
                self.clients.remove(c);
                return;
            }
            Ok(n) => client.decoder.push(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => {
                self.clients.remove(c);
                return;
            }
        }
        loop {
            match self.clients[c].decoder.next_frame() {
                Ok(Some(Frame::Input(b))) => {
                    let room = MAX_PENDING_INPUT.saturating_sub(self.pending.len());
                    self.pending.extend_from_slice(&b[..b.len().min(room)]);
                }
                Ok(Some(Frame::Resize { rows, cols })) => {
                    let size = Winsize {
                        ws_row: rows,
                        ws_col: cols,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    self.size = Some(size);
                    if let Some(m) = &self.master {
                        tcsetwinsize(m, size).ok();
                    }
                }
                Ok(None) => break,
                Ok(Some(_)) | Err(_) => {
                    self.clients.remove(c);
                    return;
                }
            }
        }
        self.flush_input();
    }

    /// Writes held input to the master as far as it takes it.
    fn flush_input(&mut self) {
        let Some(m) = &self.master else { return };
        while !self.pending.is_empty() {
            match rustix::io::write(m, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => break,
            }
        }
    }

    /// One read of the master: to the log and every client.
    fn read_master(&mut self, log: &mut dyn FnMut(&[u8])) -> bool {
        let Some(m) = &self.master else { return false };
        let mut buf = vec![0u8; 16 << 10];
        let n = match rustix::io::read(m, &mut buf) {
            Ok(0) | Err(rustix::io::Errno::IO) => {
                self.master = None;
                return false;
            }
            Ok(n) => n,
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => return true,
            Err(_) => {
                self.master = None;
                return false;
            }
        };
        log(&buf[..n]);
        self.send_all(&Frame::Output(buf[..n].to_vec()));
        true
    }

    fn send_all(&mut self, frame: &Frame) {
        let bytes = frame.encode();
        self.clients
            .retain_mut(|c| c.stream.write_all(&bytes).is_ok());
    }

    /// The run ended: closes its master, tells the clients the exit code
    /// and lets them go (they may attach again to a restarted run).
    pub fn finish_run(&mut self, code: i32) {
        self.master = None;
        self.pending.clear();
        self.send_all(&Frame::Exit(code));
        self.clients.clear();
    }

    /// The supervisor is done: the socket file goes.
    pub fn close(self, dir: Option<&Path>) {
        drop(self.listener);
        if let Some(d) = dir {
            std::fs::remove_file(d.join(SOCKET)).ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `data` with `fds` on `socket`, as a (possibly hostile) sender would.
    fn send_raw(socket: &UnixStream, data: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]) {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        control.push(SendAncillaryMessage::ScmRights(fds));
        rustix::net::sendmsg(
            socket,
            &[io::IoSlice::new(data)],
            &mut control,
            SendFlags::empty(),
        )
        .unwrap();
    }

    #[test]
    fn only_one_pty_master_is_taken() {
        let pty = crate::pty::open_pty().unwrap();
        let (r, _w) = rustix::pipe::pipe().unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        send_master(a.as_fd(), &pty.master).unwrap();
        let got = receive_master(b.as_fd()).unwrap().expect("a pty master");
        assert!(is_master(&got).is_ok());
        // A slave, a pipe, two masters, or the wrong tag: refused.
        send_raw(&a, TAG, &[pty.slave.as_fd()]);
        assert!(receive_master(b.as_fd()).unwrap().is_none());
        send_raw(&a, TAG, &[r.as_fd()]);
        assert!(receive_master(b.as_fd()).unwrap().is_none());
        send_raw(&a, TAG, &[pty.master.as_fd(), pty.master.as_fd()]);
        assert!(receive_master(b.as_fd()).unwrap().is_none());
        send_raw(&a, b"den-pty-0", &[pty.master.as_fd()]);
        assert!(receive_master(b.as_fd()).unwrap().is_none());
        // The sender gone without sending: None, not a hang.
        drop(a);
        assert!(receive_master(b.as_fd()).unwrap().is_none());
    }

    #[test]
    fn frames_round_trip_in_pieces() {
        let frames = [
            Frame::Input(b"ls\r".to_vec()),
            Frame::Resize { rows: 33, cols: 99 },
            Frame::Output(vec![0; 3]),
            Frame::Exit(-1),
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(|f| f.encode()).collect();
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for b in bytes {
            d.push(&[b]);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn bad_frames_are_refused() {
        let mut d = Decoder::default();
        d.push(&[b'w', 0, 0, 0, 1, 7]);
        assert_eq!(d.next_frame(), Err(ProtocolError::Malformed(b'w')));
        let mut d = Decoder::default();
        d.push(&[b'o', 0xff, 0, 0, 0]);
        assert!(matches!(d.next_frame(), Err(ProtocolError::TooLarge(_))));
        let mut d = Decoder::default();
        d.push(&[b'?', 0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(ProtocolError::Malformed(b'?')));
    }

    #[test]
    fn socket_in_a_long_directory_is_private() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("d".repeat(120));
        std::fs::create_dir(&dir).unwrap();
        let _l = listen(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(SOCKET))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        connect(&dir).unwrap();
    }
}
