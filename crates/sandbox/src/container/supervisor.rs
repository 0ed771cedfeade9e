//! The supervisor's life: start the container process, keep its state file
//! and logs, pass signals on, apply the restart policy, clean up.
//!
//! It is one small single-threaded process per container, not a daemon:
//! it lives exactly as long as its container (plus restarts). The
//! container never lives longer: each run has a guard (`guard`, which says
//! why PR_SET_PDEATHSIG is not enough) that kills the container's init when
//! the supervisor exits, however it exits and whatever ids the container
//! switched to; a guard killed from outside is replaced at once.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::guard::Guard;
use super::logs::{Driver, LogWriter};
use super::rootdir::Spare;
use super::spec::ContainerSpec;
use super::state::{State, Status, now_rfc3339};
use super::{SetupError, container_main, pty, security, supervised_signals};
use crate::channel::fork_reporting;
use crate::idmap::IdMapping;
use crate::sys;
use crate::userns::enter_user_namespace;

mod remove;
mod watch;
use remove::remove_when_done;
use watch::{Streams, watch};

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
    /// The den root's keeper, whose user namespace the container joins
    /// (`userns::keeper`); without it, or if the join fails, the container
    /// gets one of its own.
    pub shared_userns: Option<crate::userns::keeper::Keeper>,
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
        let mut control = Self {
            fifo: spec
                .state_dir
                .as_deref()
                .and_then(|d| {
                    let fd = super::control::listen(d).ok()?;
                    super::state::owned_like_dir(&fd, d);
                    Some(fd)
                })
                .map(std::fs::File::from),
        };
        control.drain();
        control
    }

    /// Discards what an earlier run was sent: the FIFO keeps a request
    /// written after that run's supervisor stopped reading (`den stop -t
    /// 0`'s SIGKILL follows its stop at once) while anything still holds
    /// it open, such as that supervisor finishing.
    fn drain(&mut self) {
        let Some(f) = &mut self.fifo else { return };
        let mut buf = [0u8; 512];
        while matches!(f.read(&mut buf), Ok(n) if n > 0) {}
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
    // 1. The client that started us (`-t`), and a session of our own.
    sys::remember_stack();
    let first_client = match opts.attach_stdin {
        true => Some(take_stdin()?),
        false => None,
    };
    if opts.detached {
        nix::unistd::setsid().ok();
    }
    // 2. The user namespace the container lives in.
    let userns = enter_userns(spec, mapping, opts.shared_userns)?;
    crate::trace::phase("userns");
    // 3. What every run shares: the privilege drop decided (seccomp
    //    compiled), and one cgroup for `--memory`, `--cpus`… (removed on return).
    let prepared = security::prepare(spec, userns.single_id)?;
    crate::trace::phase("prepare");
    let cgroup = spec
        .cgroup
        .as_ref()
        .map(crate::cgroup::Child::create)
        .transpose()?;
    // 4. Signals, requests, the terminal and the log.
    let mut sup = Supervisor::open(spec, opts.detached, first_client)?;
    // 5. The user networks' infras see this supervisor, then their locks go.
    sup.release_infras(opts.network_locks);
    // 6. Runs, restarts included. A run that could not be watched ends the
    //    supervisor at once (its guard then kills what is left).
    let result = sup.runs(&prepared, &userns, cgroup.as_ref())?;
    // 7. The attach socket goes; with `--rm`, the container's directory and
    //    its place on its networks.
    let (last_ns, keeper) = sup.close();
    remove_when_done(spec, last_ns, keeper);
    result
}

/// The user namespace a container lives in (`run`'s step 2).
struct Userns {
    /// On user networks: their infras, whose user namespace it shares.
    infra: Option<Vec<super::bridge::Infra>>,
    /// `--network container:`: the target's network namespace.
    joined: Option<OwnedFd>,
    /// The keeper whose namespace it joined: a spare network namespace
    /// for each run that needs a new one.
    keeper: Option<crate::userns::keeper::Joined>,
    /// Single-id mode in a user namespace of its own: seccomp's shim applies.
    single_id: bool,
}

impl Userns {
    /// What a run of `spec` starts from, made or found beforehand: the
    /// network namespace (the joined container's, or a spare from the
    /// keeper for `--network none` and den's private network), and the
    /// keeper's `--rootfs` tree; each run its own.
    fn given(&self, spec: &ContainerSpec) -> Given<'_> {
        let lower = match &spec.rootfs {
            super::spec::Rootfs::Directory { lower, .. } => Some(lower.as_path()),
            super::spec::Rootfs::Overlay { .. } => None,
        };
        let net = self.joined.is_none()
            && matches!(
                spec.network,
                super::spec::Network::None | super::spec::Network::Private(_)
            );
        let taken = match &self.keeper {
            Some(k) if net || lower.is_some() => k.take(net, lower),
            _ => Default::default(),
        };
        let netns = match &self.joined {
            Some(fd) => Some(GivenNetns::Joined(fd)),
            None => taken.netns.map(GivenNetns::Spare),
        };
        (netns, taken.root, taken.asked)
    }
}

/// See [`Userns::given`]: the network namespace, the `--rootfs` tree, and
/// the keeper's connection, kept until the container is gone ([`Supervisor::keeper`]).
type Given<'a> = (
    Option<GivenNetns<'a>>,
    Option<Spare>,
    Option<std::os::unix::net::UnixStream>,
);

/// See [`Userns::given`].
enum GivenNetns<'a> {
    Joined(&'a OwnedFd),
    Spare(OwnedFd),
}

/// A container on a user network lives in the network's user namespace,
/// so its namespace can be wired to the network's bridge; one joining
/// another's network in that one's; any other in the `shared` keeper's,
/// else in a new one of its own.
fn enter_userns(
    spec: &ContainerSpec,
    mapping: &IdMapping,
    shared: Option<crate::userns::keeper::Keeper>,
) -> Result<Userns, SetupError> {
    let mapping = match spec.userns {
        super::spec::Userns::Default => mapping.clone(),
        super::spec::Userns::KeepId => mapping.keep_id()?,
    };
    let (infra, joined, keeper) = match &spec.network {
        super::spec::Network::User(u) => (Some(super::bridge::enter_infra_userns(u)?), None, None),
        super::spec::Network::Container(c) => (None, Some(super::joined::enter(c)?), None),
        _ => {
            let keeper = match shared {
                Some(k) => k.join()?,
                None => None,
            };
            if keeper.is_none() {
                enter_user_namespace(&mapping)?;
            }
            (None, None, keeper)
        }
    };
    let single_id = infra.is_none() && matches!(mapping, IdMapping::Single { .. });
    Ok(Userns {
        infra,
        joined,
        keeper,
        single_id,
    })
}

/// Blocks the signals the supervisor handles and reads them from a
/// signalfd instead.
fn signal_fd() -> Result<SignalFd, SetupError> {
    let signals = handled_signals();
    signals
        .thread_block()
        .map_err(sup_err("block the signals it forwards"))?;
    // Close-on-exec: the container process must not inherit it.
    SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC).map_err(sup_err("create a signalfd"))
}

/// What the supervisor keeps from one run of the container to the next.
struct Supervisor<'s> {
    spec: &'s ContainerSpec,
    sfd: SignalFd,
    control: Control,
    /// A `-t` container's terminal.
    hub: Option<pty::Hub>,
    logs: Option<LogWriter>,
    /// The output comes through pipes (not a pty, not passed through).
    capture: bool,
    detached: bool,
    state: State,
    /// A stop was asked for: no restart.
    stopped: bool,
    /// The last run's namespaces, no longer served: with `--rm` the deleter
    /// lets them go, so the kernel's teardown of the container's mounts
    /// costs nobody who waits.
    last_ns: Option<super::nsfds::Namespaces>,
    /// The keeper's connection of the run that took a `--rootfs` tree, let
    /// go once the container is gone, mounts and all (by the deleter with
    /// `--rm`): the keeper builds the next tree then, not while this run
    /// still needs the CPU.
    keeper: Option<std::os::unix::net::UnixStream>,
}

/// Watching a run failed: the supervisor gives up at once.
type Lost = SetupError;

impl<'s> Supervisor<'s> {
    fn open(
        spec: &'s ContainerSpec,
        detached: bool,
        first_client: Option<OwnedFd>,
    ) -> Result<Self, SetupError> {
        let sfd = signal_fd()?;
        let control = Control::open(spec);
        let terminal = spec.process.terminal;
        // passthrough: an attached container writes to den's own stdout and
        // stderr; detached (`den start`) there is nobody's to give it.
        let passthrough = spec.log.driver == Driver::Passthrough && !detached;
        let capture = !terminal && spec.state_dir.is_some() && !passthrough;
        let hub = match terminal {
            true => {
                let first = first_client.map(std::os::unix::net::UnixStream::from);
                Some(pty::Hub::new(spec.state_dir.as_deref(), first)?)
            }
            false => None,
        };
        let logs = match (&spec.state_dir, capture || terminal) {
            (Some(dir), true) => LogWriter::open(dir, &spec.log).map_err(|e| SetupError::Io {
                what: "open the log in".into(),
                path: dir.clone(),
                source: e,
            })?,
            _ => None,
        };
        Ok(Self {
            spec,
            sfd,
            control,
            hub,
            logs,
            capture,
            detached,
            // Written once a run has started (or failed to): `den ps` shows
            // a container without state.json yet as created.
            state: State::created(std::process::id() as i32),
            stopped: false,
            last_ns: None,
            keeper: None,
        })
    }

    /// A user network's infra checks its members under these locks: once
    /// the state names this supervisor, the infra sees this one as live and
    /// stays. Released before anything is forked, so no child keeps them.
    fn release_infras(&mut self, locks: Vec<std::fs::File>) {
        if !locks.is_empty() {
            save(self.spec, &self.state);
        }
        drop(locks);
    }

    /// Starts the container, again as long as its restart policy says so;
    /// the last run's status, or why it could not start.
    fn runs(
        &mut self,
        prepared: &security::Prepared,
        userns: &Userns,
        cgroup: Option<&crate::cgroup::Child>,
    ) -> Result<Result<i32, SetupError>, Lost> {
        loop {
            let size = self.hub.as_ref().and_then(|h| h.size);
            let started = start_once(
                self.spec,
                prepared,
                self.capture,
                size,
                (userns.infra.as_deref(), cgroup),
                userns.given(self.spec),
            );
            let started = match started {
                Ok(s) => s,
                Err(e) => {
                    self.failed_to_start(&e);
                    return Ok(Err(e));
                }
            };
            let (code, network, guard) = self.watch_run(started, prepared)?;
            let again = self
                .spec
                .restart
                .again(code, self.state.restarts, self.stopped);
            // The guard and the network go with this run; when there is no
            // next run, the supervisor exits right after and need not wait
            // for the guard's exit or pasta's.
            guard.finish(again);
            self.ended(code, again);
            if again {
                // The next run makes its own: this one's mounts go now.
                self.last_ns = None;
            }
            if let Some(n) = network {
                n.finish(again);
            }
            if !again
                || !backoff(
                    &self.sfd,
                    &mut self.control,
                    self.state.restarts,
                    &mut self.stopped,
                )
            {
                return Ok(Ok(code));
            }
            self.state.restarts += 1;
            self.state.status = Status::Restarting;
            save(self.spec, &self.state);
        }
    }

    /// One started run, until it exits: its status, and its network and
    /// guard to finish.
    fn watch_run(
        &mut self,
        started: Started,
        prepared: &security::Prepared,
    ) -> Result<(i32, Option<super::network::ContainerNet>, Guard), Lost> {
        let Started {
            mut child,
            mut guard,
            outputs,
            network,
            ns,
            keeper,
        } = started;
        if keeper.is_some() {
            self.keeper = keeper;
        }
        self.running(child.pid().as_raw());
        // Before "started": `den ps` right after `den run -d` sees it starting.
        let mut health = self
            .spec
            .health
            .as_ref()
            .map(|c| super::health::Runner::new(c, self.spec, prepared, &ns.namespaces));
        crate::trace::phase("started");
        if self.detached && self.state.restarts == 0 {
            super::announce("started");
        }
        sys::release_free_memory();
        let (pipes, master) = match outputs {
            Outputs::Pipes(p) => (Some(p), None),
            Outputs::Pty(m) => (None, Some(m)),
            Outputs::None => (None, None),
        };
        if let (Some(h), Some(m)) = (self.hub.as_mut(), master) {
            h.set_master(m);
        }
        let code = watch(
            (&mut child, &mut guard),
            &self.sfd,
            &mut self.control,
            Streams {
                outputs: pipes,
                hub: self.hub.as_mut(),
                health: health.as_mut(),
                ns: &ns,
            },
            self.logs.as_mut(),
            !self.detached,
            &mut self.stopped,
        )?;
        drop(health);
        // Before the state says it exited: no den exec joins what is left.
        self.last_ns = Some(ns.stop());
        Ok((code, network, guard))
    }

    fn running(&mut self, pid: i32) {
        self.state.status = Status::Running;
        self.state.pid = pid;
        self.state.started_at = Some(now_rfc3339());
        self.state.exit_code = None;
        save(self.spec, &self.state);
    }

    fn failed_to_start(&mut self, e: &SetupError) {
        self.state.status = Status::Exited;
        self.state.exit_code = Some(e.exit_code());
        self.state.error = Some(e.to_string());
        self.state.finished_at = Some(now_rfc3339());
        save(self.spec, &self.state);
        if let Some(h) = self.hub.as_mut() {
            h.finish_run(e.exit_code());
        }
    }

    /// A run exited with `code`; `again`: another follows.
    fn ended(&mut self, code: i32, again: bool) {
        self.state.status = Status::Exited;
        self.state.exit_code = Some(code);
        self.state.finished_at = Some(now_rfc3339());
        // A `--rm` container's directory goes next: nobody reads this state.
        if again || self.spec.remove_when_done.is_none() {
            save(self.spec, &self.state);
        }
        if let Some(h) = self.hub.as_mut() {
            h.finish_run(code);
        }
    }

    /// Ends the attach socket; the last run's namespaces and the keeper's
    /// connection, if any.
    fn close(
        self,
    ) -> (
        Option<super::nsfds::Namespaces>,
        Option<std::os::unix::net::UnixStream>,
    ) {
        if let Some(h) = self.hub {
            h.close(self.spec.state_dir.as_deref());
        }
        (self.last_ns, self.keeper)
    }
}

/// `--rm`: the container's directory goes, and its name from its networks.
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

/// One run of the container: its init, the guard that kills it if the
/// supervisor dies, its captured output and its network.
struct Started {
    child: sys::ForkedChild,
    guard: Guard,
    outputs: Outputs,
    network: Option<super::network::ContainerNet>,
    ns: super::nsfds::Server,
    /// See [`Supervisor::keeper`].
    keeper: Option<std::os::unix::net::UnixStream>,
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
    (given, spare_root, keeper): Given<'_>,
) -> Result<Started, SetupError> {
    use super::network::ContainerNet;
    let network = match (&spec.network, infra, given) {
        (super::spec::Network::Container(_), _, Some(GivenNetns::Joined(fd))) => {
            Some(ContainerNet::Joined {
                netns: fd.try_clone().map_err(|e| SetupError::Io {
                    what: "keep".into(),
                    path: "the joined container's network namespace".into(),
                    source: e,
                })?,
            })
        }
        (super::spec::Network::Private(p), _, given) => {
            let spare = match given {
                Some(GivenNetns::Spare(fd)) => Some(fd),
                _ => None,
            };
            Some(super::network::create(p, &spec.cache_dir, spare)?)
        }
        (super::spec::Network::None, _, Some(GivenNetns::Spare(netns))) => {
            Some(ContainerNet::Spare { netns })
        }
        (super::spec::Network::User(u), Some(i), _) => Some(super::network::create_user(
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
            container_main(
                spec,
                prepared,
                (net_join, spare_root),
                report,
                (go_r, ns_tx, term_tx),
            )
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
        guard.finish(true);
        return Err(e);
    }
    let network = network.and_then(super::network::ContainerNet::kept);
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
                keeper,
            });
        }
        Err(e) => e,
    };
    // Past its exec (a handle or the socket is missing): it must not run on.
    kill(child.pid(), Signal::SIGKILL).ok();
    child.wait().ok();
    guard.finish(true);
    Err(e)
}
