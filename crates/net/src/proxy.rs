//! The published-port proxy of user networks: TCP listeners on the host
//! whose connections are passed on to one address in the network.
//!
//! A client of a published port is another local user or anyone who can
//! reach the host, so what one client can hold is bounded:
//!
//! - at most [`Limits::max_conns`] connections at once; a new client at the
//!   cap closes the connection that was idle longest, so idle connections
//!   held open by one client never keep a new client out;
//! - a connection with no byte in either direction for [`Limits::idle`] is
//!   closed;
//! - when one side ends (EOF), the other side's end is shut for writing and
//!   the connection is closed once nothing more flows for [`Limits::linger`]
//!   (a reply still streaming keeps it); an error on either side closes both
//!   at once;
//! - running out of descriptors (`EMFILE`) closes the longest-idle
//!   connection and waits a moment instead of spinning on `accept`.
//!
//! Each connection costs two sockets and two threads with small stacks. The
//! caller runs [`Proxy::serve`] in a process of its own, without capabilities and
//! under seccomp (see `den_sandbox::container::bridge`).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a proxy allows; see the module doc.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_conns: usize,
    pub idle: Duration,
    pub linger: Duration,
    pub connect_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_conns: 256,
            idle: Duration::from_secs(600),
            linger: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

const STACK: usize = 64 * 1024;
const BUF: usize = 16 * 1024;

/// One proxied connection: its sockets (the upstream once connected) and
/// when a byte last moved; `ended` is set at the first EOF.
struct Conn {
    socks: Mutex<Vec<Arc<TcpStream>>>,
    last: AtomicU64,
    ended: AtomicU64,
}

impl Conn {
    fn close(&self) {
        for s in self.socks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            s.shutdown(Shutdown::Both).ok();
        }
    }
}

/// The connections of one proxy, shared by its listeners and the reaper.
pub struct Proxy {
    limits: Limits,
    start: Instant,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next: AtomicU64,
}

impl Proxy {
    pub fn new(limits: Limits) -> Arc<Proxy> {
        Arc::new(Proxy {
            limits,
            start: Instant::now(),
            conns: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        })
    }

    /// Connections open now.
    pub fn active(&self) -> usize {
        self.table().len()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Milliseconds since the proxy started (0 is "never").
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    /// Closes and forgets the connection idle longest.
    fn evict_oldest(&self) {
        let mut table = self.table();
        let oldest = table
            .iter()
            .min_by_key(|(_, c)| c.last.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        if let Some(c) = oldest.and_then(|id| table.remove(&id)) {
            c.close();
        }
    }

    /// Closes what has been idle too long, or lingered after an EOF.
    fn reap(&self) {
        let now = self.now();
        let (idle, linger) = (
            self.limits.idle.as_millis() as u64,
            self.limits.linger.as_millis() as u64,
        );
        self.table().retain(|_, c| {
            let last = c.last.load(Ordering::Relaxed);
            let ended = c.ended.load(Ordering::Relaxed);
            let quiet = now.saturating_sub(last.max(ended));
            let keep = quiet < idle && (ended == 0 || quiet < linger);
            if !keep {
                c.close();
            }
            keep
        });
    }

    /// Serves `listeners`, each to its upstream address, until the process
    /// ends. The threads live as long as the process.
    pub fn serve(self: &Arc<Self>, listeners: Vec<(TcpListener, SocketAddr)>) {
        let reaper = Arc::clone(self);
        spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(200));
                reaper.reap();
            }
        });
        let handles: Vec<_> = listeners
            .into_iter()
            .map(|(l, to)| {
                let me = Arc::clone(self);
                spawn(move || me.accept_loop(&l, to))
            })
            .collect();
        handles.into_iter().flatten().for_each(|h| drop(h.join()));
    }

    fn accept_loop(self: &Arc<Self>, listener: &TcpListener, to: SocketAddr) {
        loop {
            match listener.accept() {
                Ok((client, _)) => self.admit(client, to),
                Err(e) if out_of_resources(&e) => {
                    self.evict_oldest();
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    fn admit(self: &Arc<Self>, client: TcpStream, to: SocketAddr) {
        while self.active() >= self.limits.max_conns.max(1) {
            self.evict_oldest();
        }
        let client = Arc::new(client);
        let conn = Arc::new(Conn {
            socks: Mutex::new(vec![Arc::clone(&client)]),
            last: AtomicU64::new(self.now()),
            ended: AtomicU64::new(0),
        });
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.table().insert(id, Arc::clone(&conn));
        let me = Arc::clone(self);
        let started = spawn(move || me.run(id, &conn, &client, to));
        if started.is_none() {
            self.forget(id);
        }
    }

    fn forget(&self, id: u64) {
        if let Some(c) = self.table().remove(&id) {
            c.close();
        }
    }

    /// One connection: connect upstream, copy both ways, then forget it.
    fn run(self: &Arc<Self>, id: u64, conn: &Arc<Conn>, client: &Arc<TcpStream>, to: SocketAddr) {
        let Ok(upstream) = TcpStream::connect_timeout(&to, self.limits.connect_timeout) else {
            self.forget(id);
            return;
        };
        let upstream = Arc::new(upstream);
        conn.socks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(&upstream));
        if !self.table().contains_key(&id) {
            // Evicted while connecting.
            conn.close();
            return;
        }
        let (me, c, from, into) = (
            Arc::clone(self),
            Arc::clone(conn),
            Arc::clone(client),
            Arc::clone(&upstream),
        );
        let other = spawn(move || me.copy(&c, &from, &into));
        self.copy(conn, &upstream, client);
        if let Some(h) = other {
            h.join().ok();
        }
        self.forget(id);
    }

    /// Copies `from` into `into` until EOF (then half-closes `into`) or an
    /// error (then closes both).
    fn copy(&self, conn: &Conn, from: &TcpStream, into: &TcpStream) {
        let mut buf = vec![0u8; BUF];
        loop {
            match (&*from).read(&mut buf) {
                Ok(0) => {
                    into.shutdown(Shutdown::Write).ok();
                    conn.ended
                        .compare_exchange(0, self.now(), Ordering::Relaxed, Ordering::Relaxed)
                        .ok();
                    return;
                }
                Ok(n) => {
                    conn.last.store(self.now(), Ordering::Relaxed);
                    if (&*into).write_all(&buf[..n]).is_err() {
                        conn.close();
                        return;
                    }
                    conn.last.store(self.now(), Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    conn.close();
                    return;
                }
            }
        }
    }
}

fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc_errno::EMFILE | libc_errno::ENFILE | libc_errno::ENOBUFS | libc_errno::ENOMEM)
    )
}

/// The errno values `accept` reports when descriptors or memory run out.
mod libc_errno {
    pub const ENOMEM: i32 = rustix::io::Errno::NOMEM.raw_os_error();
    pub const ENFILE: i32 = rustix::io::Errno::NFILE.raw_os_error();
    pub const EMFILE: i32 = rustix::io::Errno::MFILE.raw_os_error();
    pub const ENOBUFS: i32 = rustix::io::Errno::NOBUFS.raw_os_error();
}

/// A thread with a small stack; `None` when none can be made (the caller
/// drops the connection).
fn spawn<F: FnOnce() + Send + 'static>(f: F) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().stack_size(STACK).spawn(f).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that answers each line with `echo:LINE` and never
    /// closes; it reports each connection's EOF on the channel.
    fn upstream() -> (SocketAddr, std::sync::mpsc::Receiver<()>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64];
                    let mut s = s;
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let mut reply = b"echo:".to_vec();
                                reply.extend(&buf[..n]);
                                s.write_all(&reply).ok();
                            }
                        }
                    }
                    tx.send(()).ok();
                    // Held open: only the proxy may end it.
                    std::thread::sleep(Duration::from_secs(60));
                });
            }
        });
        (addr, rx)
    }

    fn start(limits: Limits) -> (Arc<Proxy>, SocketAddr, std::sync::mpsc::Receiver<()>) {
        let (to, eofs) = upstream();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = l.local_addr().unwrap();
        let p = Proxy::new(limits);
        let q = Arc::clone(&p);
        std::thread::spawn(move || q.serve(vec![(l, to)]));
        (p, at, eofs)
    }

    fn ask(at: SocketAddr) -> String {
        let mut s = TcpStream::connect(at).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"hi").unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    fn wait(what: &str, f: impl Fn() -> bool) {
        let t = Instant::now();
        while !f() {
            assert!(t.elapsed() < Duration::from_secs(10), "timed out: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn idle_connections_do_not_starve_a_new_client() {
        let limits = Limits {
            max_conns: 8,
            ..Limits::default()
        };
        let (p, at, _) = start(limits);
        let idle: Vec<TcpStream> = (0..40).map(|_| TcpStream::connect(at).unwrap()).collect();
        assert_eq!(ask(at), "echo:hi");
        wait("the cap", || p.active() <= 8);
        drop(idle);
    }

    #[test]
    fn eof_from_the_client_ends_both_sides() {
        let limits = Limits {
            linger: Duration::from_millis(300),
            ..Limits::default()
        };
        let (p, at, eofs) = start(limits);
        assert_eq!(ask(at), "echo:hi");
        eofs.recv_timeout(Duration::from_secs(5))
            .expect("the upstream saw the client's EOF");
        // The upstream never closes; the proxy closes both after the linger.
        wait("the connection closed", || p.active() == 0);
    }

    #[test]
    fn idle_connections_are_closed() {
        let limits = Limits {
            idle: Duration::from_millis(300),
            ..Limits::default()
        };
        let (p, at, _) = start(limits);
        let mut s = TcpStream::connect(at).unwrap();
        wait("the connection counted", || p.active() == 1);
        wait("the idle connection closed", || p.active() == 0);
        let mut buf = [0u8; 8];
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(s.read(&mut buf).unwrap(), 0, "the client sees EOF");
    }
}
