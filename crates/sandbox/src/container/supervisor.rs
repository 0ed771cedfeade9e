//! The supervisor's life: start the container process, keep its state file
//! and logs, pass signals on, apply the restart policy, clean up.
//!
//! It is one small single-threaded process per container, not a daemon:
//! it lives exactly as long as its container (plus restarts). The
//! container never lives longer: each run has a guard (`guard`, which says
//! why PR_SET_PDEATHSIG is not enough) that kills the container's init when
//! the supervisor exits, however it exits and whatever ids the container
//! switched to; a guard killed from outside is replaced at once.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::guard::Guard;
use super::logs::{Driver, LogWriter};
use super::spec::ContainerSpec;
use super::state::{State, Status, now_rfc3339};
use super::{SetupError, container_main, pty, security, supervised_signals};
use crate::channel::fork_reporting;
use crate::idmap::IdMapping;
use crate::sys::{self, ChildExit};
use crate::userns::enter_user_namespace;

/// How the supervisor was started.
#[derive(Debug, Default)]
pub struct Options {
    /// `den run -d` / `den start`: own session; stdout says "started" once
    /// the command runs and is then closed; output goes only to the log.
    pub detached: bool,
    /// For a `-t` container: stdin is a socket to a client already attached
    /// to the terminal (the `den run -t`/`den start -a` that started the
    /// supervisor). It is taken over and stdin becomes /dev/null.
    pub attach_stdin: bool,
    /// The `infra.lock` of each of the container's user networks, their
    /// infras running: held until the state names this supervisor, so no
    /// infra exits (its last check takes the lock) before it sees the
    /// container start.
    pub network_locks: Vec<std::fs::File>,
}

/// Takes stdin (the first attach client) and puts /dev/null in its place.
fn take_stdin() -> Result<OwnedFd, SetupError> {
    let io = |what: &str, e: std::io::Error| SetupError::Io {
        what: what.into(),
        path: "stdin".into(),
        source: e,
    };
    let fd = rustix::io::fcntl_dupfd_cloexec(std::io::stdin(), 3)
        .map_err(|e| io("take the attach socket from", e.into()))?;
    let null = std::fs::File::open("/dev/null").map_err(|e| io("open /dev/null for", e))?;
    rustix::stdio::dup2_stdin(&null).map_err(|e| io("replace", e.into()))?;
    Ok(fd)
}

fn sup_err(what: &'static str) -> impl FnOnce(nix::Error) -> SetupError {
    move |errno| SetupError::Supervise { what, errno }
}

/// The signals the supervisor handles: those it forwards, SIGCHLD, and
/// SIGPIPE (so a vanished reader of attached output makes writes fail
/// instead of killing it).
fn handled_signals() -> SigSet {
    let mut set = supervised_signals();
    set.add(Signal::SIGPIPE);
    set
}

/// Where requests from `den stop`/`den kill` arrive (`control`).
struct Control {
    fifo: Option<std::fs::File>,
}

impl Control {
    fn open(spec: &ContainerSpec) -> Self {
        Self {
            fifo: spec
                .state_dir
                .as_deref()
                .and_then(|d| {
                    let fd = super::control::listen(d).ok()?;
                    super::state::owned_like_dir(&fd, d);
                    Some(fd)
                })
                .map(std::fs::File::from),
        }
    }

    /// Requests waiting in the FIFO.
    fn read(&mut self) -> Vec<super::control::Request> {
        let Some(f) = &mut self.fifo else {
            return Vec::new();
        };
        let mut buf = [0u8; 512];
        match f.read(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n])
                .lines()
                .filter_map(super::control::parse_request)
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Runs the container described by `spec` and returns its last exit status
/// (128+N when killed by signal N). Must be called in a single-threaded process.
pub fn run(spec: &ContainerSpec, mapping: &IdMapping, opts: Options) -> Result<i32, SetupError> {
    let first_client = match opts.attach_stdin {
        true => Some(take_stdin()?),
        false => None,
    };
    if opts.detached {
        nix::unistd::setsid().ok();
    }
    let mapping = match spec.userns {
        super::spec::Userns::Default => mapping.clone(),
        super::spec::Userns::KeepId => mapping.keep_id()?,
    };
    // A container on a user network lives in the network's user namespace,
    // so its namespace can be wired to the network's bridge.
    let mut joined = None;
    let infra = match &spec.network {
        super::spec::Network::User(u) => Some(super::bridge::enter_infra_userns(u)?),
        super::spec::Network::Container(c) => {
            joined = Some(super::joined::enter(c)?);
            None
        }
        _ => {
            enter_user_namespace(&mapping)?;
            None
        }
    };
    crate::trace::phase("userns");
    let prepared = security::prepare(
        spec,
        infra.is_none() && matches!(mapping, IdMapping::Single { .. }),
    )?;
    crate::trace::phase("prepare");
    // `--memory`, `--cpus`, …: one cgroup for all runs, removed on return.
    let cgroup = spec
        .cgroup
        .as_ref()
        .map(crate::cgroup::Child::create)
        .transpose()?;
    let signals = handled_signals();
    signals
        .thread_block()
        .map_err(sup_err("block the signals it forwards"))?;
    // Close-on-exec: the container process must not inherit it.
    let sfd = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC)
        .map_err(sup_err("create a signalfd"))?;
    let mut control = Control::open(spec);
    let terminal = spec.process.terminal;
    // passthrough: an attached container writes to den's own stdout and
    // stderr; detached (`den start`) there is nobody's to give it.
    let passthrough = spec.log.driver == Driver::Passthrough && !opts.detached;
    let capture = !terminal && spec.state_dir.is_some() && !passthrough;
    let mut hub = if terminal {
        let first = first_client.map(std::os::unix::net::UnixStream::from);
        Some(pty::Hub::new(spec.state_dir.as_deref(), first)?)
    } else {
        None
    };
    let mut logs = match (&spec.state_dir, capture || terminal) {
        (Some(dir), true) => LogWriter::open(dir, &spec.log).map_err(|e| SetupError::Io {
            what: "open the log in".into(),
            path: dir.clone(),
            source: e,
        })?,
        _ => None,
    };
    // Written once a run has started (or failed to): `den ps` shows a
    // container without state.json yet as created.
    let mut state = State::created(std::process::id() as i32);
    // A user network's infra checks its members under these locks: once
    // the state names this supervisor, the infra sees this one as live and
    // stays. Released before anything is forked, so no child keeps them.
    if !opts.network_locks.is_empty() {
        save(spec, &state);
    }
    drop(opts.network_locks);
    let mut stopped = false;
    let result = loop {
        let size = hub.as_ref().and_then(|h| h.size);
        let started = start_once(
            spec,
            &prepared,
            capture,
            size,
            (infra.as_deref(), cgroup.as_ref()),
            joined.as_ref(),
        );
        let Started {
            mut child,
            mut guard,
            outputs,
            network,
            ns,
        } = match started {
            Ok(c) => c,
            Err(e) => {
                state.status = Status::Exited;
                state.exit_code = Some(e.exit_code());
                state.error = Some(e.to_string());
                state.finished_at = Some(now_rfc3339());
                save(spec, &state);
                if let Some(h) = hub.as_mut() {
                    h.finish_run(e.exit_code());
                }
                break Err(e);
            }
        };
        state.status = Status::Running;
        state.pid = child.pid().as_raw();
        state.started_at = Some(now_rfc3339());
        state.exit_code = None;
        save(spec, &state);
        // Before "started": `den ps` right after `den run -d` sees it starting.
        let mut health = spec
            .health
            .as_ref()
            .map(|c| super::health::Runner::new(c, spec, &prepared, &ns.namespaces));
        crate::trace::phase("started");
        if opts.detached && state.restarts == 0 {
            super::announce("started");
        }
        sys::release_free_memory();
        let (outputs, master) = match outputs {
            Outputs::Pipes(p) => (Some(p), None),
            Outputs::Pty(m) => (None, Some(m)),
            Outputs::None => (None, None),
        };
        if let (Some(h), Some(m)) = (hub.as_mut(), master) {
            h.set_master(m);
        }
        let code = watch(
            (&mut child, &mut guard),
            &sfd,
            &mut control,
            Streams {
                outputs,
                hub: hub.as_mut(),
                health: health.as_mut(),
                ns: &ns,
            },
            logs.as_mut(),
            !opts.detached,
            &mut stopped,
        )?;
        drop(health);
        // Before the state says it exited: no den exec joins what is left.
        drop(ns);
        guard.finish();
        state.status = Status::Exited;
        state.exit_code = Some(code);
        state.finished_at = Some(now_rfc3339());
        let again = spec.restart.again(code, state.restarts, stopped);
        // A `--rm` container's directory goes next: nobody reads this state.
        if again || spec.remove_when_done.is_none() {
            save(spec, &state);
        }
        if let Some(h) = hub.as_mut() {
            h.finish_run(code);
        }
        // The network goes with this run; when there is no next run, the
        // supervisor exits right after and need not wait for pasta.
        if let Some(n) = network {
            n.finish(again);
        }
        if !again || !backoff(&sfd, &mut control, state.restarts, &mut stopped) {
            break Ok(code);
        }
        state.restarts += 1;
        state.status = Status::Restarting;
        save(spec, &state);
    };
    if let Some(h) = hub {
        h.close(spec.state_dir.as_deref());
    }
    if let Some(dir) = &spec.remove_when_done {
        // The container's mount namespace died with it: nothing is mounted
        // here, and as root of the user namespace we may delete files owned
        // by subordinate ids.
        if let Err(e) = std::fs::remove_dir_all(dir) {
            eprintln!("den: warning: could not remove {}: {e}", dir.display());
        }
        // As `den rm`: the other members stop resolving its name.
        if let super::spec::Network::User(nets) = &spec.network {
            for u in nets {
                if let Err(e) = super::bridge::leave(&u.dir, &spec.id) {
                    eprintln!("den: warning: could not leave network {}: {e}", u.name);
                }
            }
        }
    }
    result
}

fn save(spec: &ContainerSpec, state: &State) {
    if let Some(dir) = &spec.state_dir
        && let Err(e) = state.write(dir)
    {
        eprintln!(
            "den: warning: cannot record the container's state in {}: {e}",
            dir.display()
        );
    }
}

/// Waits `100ms * 2^n` (at most 10 s) before a restart; false if a stop
/// request came meanwhile.
fn backoff(sfd: &SignalFd, control: &mut Control, restarts: u32, stopped: &mut bool) -> bool {
    let wait = Duration::from_millis(100u64 << restarts.min(7)).min(Duration::from_secs(10));
    let deadline = std::time::Instant::now() + wait;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(f) = &control.fifo {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        if poll(&mut fds, PollTimeout::from(ms)).unwrap_or(0) == 0 {
            continue;
        }
        let term =
            matches!(sfd.read_signal(), Ok(Some(info)) if info.ssi_signo == Signal::SIGTERM as u32);
        let stop = control.read().iter().any(|r| {
            matches!(
                r,
                super::control::Request::Stop(_) | super::control::Request::Signal(9)
            )
        });
        if term || stop {
            *stopped = true;
            return false;
        }
    }
    true
}

/// Where the container's output arrives: the read ends of its stdout and
/// stderr pipes, or the master of its terminal.
enum Outputs {
    Pipes([OwnedFd; 2]),
    Pty(OwnedFd),
    None,
}

/// What [`watch`] reads besides signals and requests.
struct Streams<'a, 'h> {
    outputs: Option<[OwnedFd; 2]>,
    hub: Option<&'a mut pty::Hub>,
    /// The health check's timer and probe (`health`).
    health: Option<&'a mut super::health::Runner<'h>>,
    /// The socket that hands out the container's namespaces (`nsfds`).
    ns: &'a super::nsfds::Server,
}

/// One run of the container: its init, the guard that kills it if the
/// supervisor dies, its captured output and its network.
struct Started {
    child: sys::ForkedChild,
    guard: Guard,
    outputs: Outputs,
    network: Option<super::network::ContainerNet>,
    ns: super::nsfds::Server,
}

/// Forks the container process in a fresh pid namespace and waits until it
/// has exec'd its command (or failed to).
fn start_once(
    spec: &ContainerSpec,
    prepared: &security::Prepared,
    capture: bool,
    size: Option<rustix::termios::Winsize>,
    (infra, cgroup): (
        Option<&[super::bridge::Infra]>,
        Option<&crate::cgroup::Child>,
    ),
    joined: Option<&OwnedFd>,
) -> Result<Started, SetupError> {
    let network = match (&spec.network, infra) {
        (super::spec::Network::Container(_), _) => match joined {
            Some(fd) => Some(super::network::ContainerNet::Joined {
                netns: fd.try_clone().map_err(|e| SetupError::Io {
                    what: "keep".into(),
                    path: "the joined container's network namespace".into(),
                    source: e,
                })?,
            }),
            None => None,
        },
        (super::spec::Network::Private(p), _) => Some(super::network::create(p, &spec.cache_dir)?),
        (super::spec::Network::User(u), Some(i)) => Some(super::network::create_user(
            u,
            &spec.id,
            i,
            spec.state_dir.as_deref(),
        )?),
        _ => None,
    };
    let mut network = network;
    let (net_join, tell_ready) = match &network {
        Some(n) => {
            let (join, tell) = n.join()?;
            (Some(join), Some(tell))
        }
        None => (None, None),
    };
    let pipe = || {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| SetupError::Io {
            what: "create a pipe for".into(),
            path: "the container process".into(),
            source: e.into(),
        })
    };
    let (go_r, go_w) = pipe()?;
    let (ns_tx, ns_rx) = super::nsfds::handover()?;
    let outs = if capture {
        Some([pipe()?, pipe()?])
    } else {
        None
    };
    let (reads, writes) = match outs {
        Some([(r1, w1), (r2, w2)]) => (Some([r1, r2]), Some([w1, w2])),
        None => (None, None),
    };
    // A fresh terminal for every run, opened by the container process from
    // its own /dev/pts (`pty::take_terminal`), which sends the master here.
    let (term_tx, term_rx) = match spec.process.terminal {
        true => {
            let (tx, rx) = pty::handover(size)?;
            (Some(tx), Some(rx))
        }
        false => (None, None),
    };
    let (child, mut report, (reads, (tell_ready, go_w), term_rx)) =
        fork_reporting(true, (reads, (tell_ready, go_w), term_rx), move |report| {
            if let Some([out, err]) = writes {
                rustix::stdio::dup2_stdout(&out).ok();
                rustix::stdio::dup2_stderr(&err).ok();
            }
            container_main(spec, prepared, net_join, report, (go_r, ns_tx, term_tx))
        })?;
    let outputs = match reads {
        Some(r) => Outputs::Pipes(r),
        None => Outputs::None,
    };
    // Before the guard lets it go on to exec: its limits hold from the start.
    if let Some(Err(e)) = cgroup.map(|c| c.add(child.pid().as_raw())) {
        drop(go_w);
        child.wait().ok();
        return Err(e.into());
    }
    let guard = Guard::start(child.pid(), go_w)?;
    if let (Some(n), Some(tell)) = (network.as_mut(), tell_ready)
        && let Err(e) = n.ready(tell)
    {
        // The container process sees the pipe close and gives up.
        child.wait().ok();
        guard.finish();
        return Err(e);
    }
    let failed = match report.recv() {
        Ok(None) => None,
        Ok(r) => SetupError::from_report(r),
        Err(e) => Some(SetupError::Channel(e)),
    };
    let ns = match failed {
        Some(e) => Err(e),
        None => ns_rx
            .take()
            .and_then(|n| super::nsfds::Server::listen(n, spec.state_dir.as_deref())),
    };
    let ns = ns.and_then(|ns| match term_rx {
        Some(rx) => Ok((ns, Outputs::Pty(pty::take_master(rx)?))),
        None => Ok((ns, outputs)),
    });
    let e = match ns {
        Ok((ns, outputs)) => {
            return Ok(Started {
                child,
                guard,
                outputs,
                network,
                ns,
            });
        }
        Err(e) => e,
    };
    // Past its exec (a handle or the socket is missing): it must not run on.
    kill(child.pid(), Signal::SIGKILL).ok();
    child.wait().ok();
    guard.finish();
    Err(e)
}

/// Until the container exits: copy its output to the log (and to our own
/// stdout/stderr when attached, or to the clients attached to its
/// terminal), pass signals and terminal input on. Returns its status.
fn watch(
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
    let mut open: Vec<(usize, std::fs::File)> = outputs
        .map(|[o, e]| vec![(0, o.into()), (1, e.into())])
        .unwrap_or_default();
    // The terminal's master, until no process holds its slave any more.
    let mut tty_open = hub.is_some();
    let mut exit = None;
    let mut buf = vec![0u8; 16 << 10];
    while exit.is_none() || !open.is_empty() || tty_open {
        let mut fds: Vec<PollFd> = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        fds.extend(
            open.iter()
                .map(|(_, f)| PollFd::new(f.as_fd(), PollFlags::POLLIN)),
        );
        let fifo_at = control.fifo.as_ref().map(|f| {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let ns_at = ns.poll_fd().map(|fd| {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
            fds.len() - 1
        });
        let hub_at = fds.len();
        if let Some(h) = hub.as_deref() {
            fds.extend(h.poll_fds().into_iter().map(|(fd, f)| PollFd::new(fd, f)));
        }
        let health_at = fds.len();
        if let Some(h) = health.as_deref() {
            fds.extend(
                h.poll_fds()
                    .into_iter()
                    .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
            );
        }
        // After the exit, drain what is left without waiting forever.
        let timeout = match (&exit, health.as_deref()) {
            (Some(_), _) => PollTimeout::from(1000u16),
            (None, Some(h)) => PollTimeout::from(h.wait().as_millis().min(60_000) as u16),
            (None, None) => PollTimeout::NONE,
        };
        let ready = match poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(nix::Error::EINTR) => continue,
            Err(e) => {
                return Err(SetupError::Supervise {
                    what: "poll the container's output, signals and requests",
                    errno: e,
                });
            }
        };
        if ready == 0 && exit.is_some() {
            break;
        }
        let readable: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if readable[0] {
            handle_signal(child, sfd);
            guard.check();
        }
        if fifo_at.is_some_and(|i| readable[i]) {
            for req in control.read() {
                let (sig, stop) = match req {
                    // After the exit there is nothing left to signal.
                    _ if exit.is_some() => continue,
                    super::control::Request::Signal(n) => (n, false),
                    super::control::Request::Stop(n) => {
                        (super::stop::signal_for(child.pid().as_raw(), n), true)
                    }
                    super::control::Request::Health => {
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
        if ns_at.is_some_and(|i| readable[i]) {
            ns.serve();
        }
        if let Some(h) = hub.as_deref_mut() {
            let mut log = |b: &[u8]| {
                if let Some(l) = logs.as_deref_mut() {
                    l.write(0, b).ok();
                }
            };
            tty_open = h.handle(&readable[hub_at..health_at], &mut log);
        }
        let mut closed = Vec::new();
        for (i, (stream, file)) in open.iter_mut().enumerate() {
            if !readable[i + 1] {
                continue;
            }
            match file.read(&mut buf) {
                Ok(0) | Err(_) => closed.push(i),
                Ok(n) => {
                    if let Some(l) = logs.as_deref_mut() {
                        l.write(*stream, &buf[..n]).ok();
                    }
                    if attached {
                        let _ = if *stream == 0 {
                            std::io::stdout().write_all(&buf[..n])
                        } else {
                            std::io::stderr().write_all(&buf[..n])
                        };
                    }
                }
            }
        }
        for i in closed.into_iter().rev() {
            open.remove(i);
        }
        if let (None, Some(h)) = (&exit, health.as_deref_mut()) {
            h.tick(&readable[health_at..]);
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

/// One signal from the signalfd: one to pass on, or SIGCHLD/SIGPIPE
/// (nothing to do here).
fn handle_signal(child: &sys::ForkedChild, sfd: &SignalFd) {
    let Ok(Some(info)) = sfd.read_signal() else {
        return;
    };
    if super::forwards(&info)
        && let Ok(sig) = Signal::try_from(info.ssi_signo as i32)
    {
        kill(child.pid(), sig).ok();
    }
}
