//! The supervisor's event loop for one run of the container: its output
//! to the log (and to den's stdout or the terminal's clients), signals and
//! ctl requests passed on, `ns.sock` served, health probes timed, until it
//! exits and its output is drained.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::signalfd::SignalFd;

use super::{Control, sup_err};
use crate::container::guard::Guard;
use crate::container::logs::LogWriter;
use crate::container::{SetupError, pty};
use crate::sys::{self, ChildExit};

/// What [`watch`] reads besides signals and requests.
pub(super) struct Streams<'a, 'h> {
    pub(super) outputs: Option<[OwnedFd; 2]>,
    pub(super) hub: Option<&'a mut pty::Hub>,
    /// The health check's timer and probe (`health`).
    pub(super) health: Option<&'a mut crate::container::health::Runner<'h>>,
    /// The socket that hands out the container's namespaces (`nsfds`).
    pub(super) ns: &'a crate::container::nsfds::Server,
}

/// Until the container exits: copy its output to the log (and to our own
/// stdout/stderr when attached, or to the clients attached to its
/// terminal), pass signals and terminal input on. Returns its status.
pub(super) fn watch(
    (child, guard): (&mut sys::ForkedChild, &mut Guard),
    sfd: &SignalFd,
    control: &mut Control,
    streams: Streams<'_, '_>,
    mut logs: Option<&mut LogWriter>,
    attached: bool,
    stopped: &mut bool,
) -> Result<i32, SetupError> {
    let Streams {
        outputs,
        mut hub,
        mut health,
        ns,
    } = streams;
    let mut pipes = Pipes::new(outputs);
    // The terminal's master, until no process holds its slave any more.
    let mut tty_open = hub.is_some();
    let mut exit = None;
    while exit.is_none() || !pipes.open.is_empty() || tty_open {
        let sources = Sources {
            sfd,
            pipes: &pipes,
            control,
            ns,
            hub: hub.as_deref(),
            health: health.as_deref(),
        };
        let Some((ready, readable, at)) = sources.poll(exit.is_some())? else {
            continue;
        };
        // After the exit, drain what is left without waiting forever.
        if ready == 0 && exit.is_some() {
            break;
        }
        if readable[0] {
            handle_signal(child, sfd);
            guard.check();
        }
        if at.fifo.is_some_and(|i| readable[i]) {
            let exited = exit.is_some();
            serve_requests(control, child, exited, health.as_deref_mut(), stopped);
        }
        if at.ns.is_some_and(|i| readable[i]) {
            ns.serve();
        }
        if let Some(h) = hub.as_deref_mut() {
            let mut log = |b: &[u8]| {
                if let Some(l) = logs.as_deref_mut() {
                    l.write(0, b).ok();
                }
            };
            tty_open = h.handle(&readable[at.hub..at.health], &mut log);
        }
        pipes.relay(&readable[1..], logs.as_deref_mut(), attached);
        if let (None, Some(h)) = (&exit, health.as_deref_mut()) {
            h.tick(&readable[at.health..]);
        }
        if exit.is_none() {
            exit = child
                .try_wait()
                .map_err(sup_err("wait for the container process"))?;
        }
    }
    if let Some(l) = logs {
        l.flush_pending().ok();
    }
    let exit = exit.expect("the loop ends only after the exit");
    Ok(match exit {
        ChildExit::Code(c) => c,
        ChildExit::Signal(s) => 128 + s as i32,
    })
}

/// What [`watch`] polls, in this order: the signalfd, the output pipes
/// still open, the ctl FIFO, `ns.sock`, the terminal hub's fds, the health
/// check's.
struct Sources<'w> {
    sfd: &'w SignalFd,
    pipes: &'w Pipes,
    control: &'w Control,
    ns: &'w crate::container::nsfds::Server,
    hub: Option<&'w pty::Hub>,
    health: Option<&'w crate::container::health::Runner<'w>>,
}

/// Where [`Sources::poll`] put the sources after the pipes.
struct Slots {
    fifo: Option<usize>,
    ns: Option<usize>,
    /// The hub's fds start here and end where the health check's start.
    hub: usize,
    health: usize,
}

impl Sources<'_> {
    /// One poll: how many are ready, which are, and where each source is;
    /// `None` when a signal interrupted it. `exited`: the container has
    /// exited and what is left is drained, for at most a second.
    fn poll(&self, exited: bool) -> Result<Option<(i32, Vec<bool>, Slots)>, SetupError> {
        let mut fds: Vec<PollFd> = vec![PollFd::new(self.sfd.as_fd(), PollFlags::POLLIN)];
        fds.extend(
            self.pipes
                .open
                .iter()
                .map(|(_, f)| PollFd::new(f.as_fd(), PollFlags::POLLIN)),
        );
        let mut push = |fd| {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
            fds.len() - 1
        };
        let fifo = self.control.fifo.as_ref().map(|f| push(f.as_fd()));
        let ns = self.ns.poll_fd().map(push);
        let hub = fds.len();
        if let Some(h) = self.hub {
            fds.extend(h.poll_fds().into_iter().map(|(fd, f)| PollFd::new(fd, f)));
        }
        let health = fds.len();
        if let Some(h) = self.health {
            fds.extend(
                h.poll_fds()
                    .into_iter()
                    .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
            );
        }
        let timeout = match (exited, self.health) {
            (true, _) => PollTimeout::from(1000u16),
            (false, Some(h)) => PollTimeout::from(h.wait().as_millis().min(60_000) as u16),
            (false, None) => PollTimeout::NONE,
        };
        let ready = match poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(nix::Error::EINTR) => return Ok(None),
            Err(e) => {
                return Err(SetupError::Supervise {
                    what: "poll the container's output, signals and requests",
                    errno: e,
                });
            }
        };
        let readable = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        let slots = Slots {
            fifo,
            ns,
            hub,
            health,
        };
        Ok(Some((ready, readable, slots)))
    }
}

/// Acts on what `den stop`, `den kill` and `den healthcheck run` asked
/// through the ctl FIFO. `exited`: there is nothing left to signal.
fn serve_requests(
    control: &mut Control,
    child: &sys::ForkedChild,
    exited: bool,
    mut health: Option<&mut crate::container::health::Runner<'_>>,
    stopped: &mut bool,
) {
    for req in control.read() {
        let (sig, stop) = match req {
            _ if exited => continue,
            crate::container::control::Request::Signal(n) => (n, false),
            crate::container::control::Request::Stop(n) => (
                crate::container::stop::signal_for(child.pid().as_raw(), n),
                true,
            ),
            crate::container::control::Request::Health => {
                if let Some(h) = health.as_deref_mut() {
                    h.run_now();
                }
                continue;
            }
        };
        *stopped |= stop;
        if let Ok(sig) = Signal::try_from(sig) {
            kill(child.pid(), sig).ok();
        }
    }
}

/// The container's stdout and stderr pipes, until each is closed.
struct Pipes {
    /// (0 for stdout or 1 for stderr, its read end).
    open: Vec<(usize, std::fs::File)>,
    buf: Vec<u8>,
}

impl Pipes {
    fn new(outputs: Option<[OwnedFd; 2]>) -> Self {
        Self {
            open: outputs
                .map(|[o, e]| vec![(0, o.into()), (1, e.into())])
                .unwrap_or_default(),
            buf: vec![0u8; 16 << 10],
        }
    }

    /// Reads the pipes that are ready (`ready[i]` for the i-th still
    /// open) into the log, and to our own stdout/stderr when `attached`;
    /// forgets those that closed.
    fn relay(&mut self, ready: &[bool], mut logs: Option<&mut LogWriter>, attached: bool) {
        let mut closed = Vec::new();
        for (i, (stream, file)) in self.open.iter_mut().enumerate() {
            if !ready[i] {
                continue;
            }
            match file.read(&mut self.buf) {
                Ok(0) | Err(_) => closed.push(i),
                Ok(n) => {
                    let bytes = &self.buf[..n];
                    if let Some(l) = logs.as_deref_mut() {
                        l.write(*stream, bytes).ok();
                    }
                    if attached {
                        let _ = if *stream == 0 {
                            std::io::stdout().write_all(bytes)
                        } else {
                            std::io::stderr().write_all(bytes)
                        };
                    }
                }
            }
        }
        for i in closed.into_iter().rev() {
            self.open.remove(i);
        }
    }
}

/// One signal from the signalfd: one to pass on, or SIGCHLD/SIGPIPE
/// (nothing to do here).
fn handle_signal(child: &sys::ForkedChild, sfd: &SignalFd) {
    let Ok(Some(info)) = sfd.read_signal() else {
        return;
    };
    if crate::container::forwards(&info)
        && let Ok(sig) = Signal::try_from(info.ssi_signo as i32)
    {
        kill(child.pid(), sig).ok();
    }
}
