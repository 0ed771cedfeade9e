//! Running a container: the process tree and its set-up, as a checklist.
//!
//! ```text
//! den run (cli, may be multi-threaded)
//!  └─ supervisor: single-threaded; a clean fork of the CLI (`fork_clean`), or
//!     `den __internal container SPEC` (a fresh exec) when the CLI has threads
//!       1. enter the user namespace       (sandbox::userns)
//!       2. unshare pid (for its child only: the supervisor itself stays in
//!          the host's mount namespace, so it can clean up afterwards)
//!       3. block the signals it forwards; fork ──┐
//!          then fork the guard (see `guard`)     │
//!       5. read the report channel: the step     │
//!          that failed, or EOF when exec worked  │
//!          (then serve its namespaces, `nsfds`)  │
//!       6. forward signals, reap; with --rm,     │
//!          delete the container's directory;     │
//!          exit with the container's status      │
//!                                                └─ container process, PID 1
//!                                                   4.  unshare mount, uts, ipc, cgroup
//!                                                       (+ net for --network none, unless
//!                                                       the keeper gave one); send
//!                                                       them to the supervisor (`nsfds`)
//!                                                   4a. filesystem: overlay root, new volumes
//!                                                       filled from the image, /proc, /dev, /sys,
//!                                                       with -t a pty of its own /dev/pts (master
//!                                                       to the supervisor, `pty`), volumes,
//!                                                       masked paths, pivot_root
//!                                                   4b. identity: hostname, tty, user, workdir
//!                                                   4c. privileges: --ulimit's setrlimit; then
//!                                                       (once the guard watches, and
//!                                                       the supervisor has put it in
//!                                                       its cgroup) landlock, seccomp,
//!                                                       bounding set, ids, caps, no_new_privs
//!                                                       (only when asked)
//!                                                   4d. exec the command (or --init, non-dumpable)
//! ```
//!
//! A failure in step 4 is sent over the report channel (`report`, on
//! `crate::channel`: close-on-exec, so a successful exec closes it) with the
//! step that failed, its errno and the error's chain; it becomes one line on
//! stderr with exit code 125, or 126/127 when the command cannot be run or
//! is not found.

pub mod bridge;
pub mod control;
mod error;
mod exec;
mod guard;
pub mod health;
mod init;
pub mod join;
mod joined;
pub mod logs;
pub mod members;
mod mounts;
mod netns;
mod network;
pub mod nsfds;
mod prefill;
pub mod pty;
pub mod report;
pub mod rlimit;
pub mod rootdir;
pub mod security;
mod single_id;
pub mod spec;
pub mod state;
mod stop;
mod supervisor;
pub mod user;

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::sys::{self, ChildExit};
pub use error::SetupError;
pub use mounts::{RootMount, volatile_root};
pub(crate) use netns::set_up_here as set_up_netns_here;
use report::{At, Failed, Step};
use spec::{ContainerSpec, Network};

/// Signals the supervisor passes on to the container.
const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

fn supervised_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    set
}

/// How the CLI starts a supervisor without executing den again (when it is
/// single-threaded): `sys::fork_clean`.
pub use crate::sys::{ChildStdio, ForkError, fork_clean, set_cmdline, single_threaded};
pub use supervisor::{Options, run};

/// Tells the den command that started this background process (reading its
/// stdout, see [`report::Background`]) that it is up, then lets go of that
/// command's pipes.
pub fn announce(word: &str) {
    report::tell_starter(&report::Background::Up(word.into())).ok();
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        rustix::stdio::dup2_stdout(&null).ok();
        rustix::stdio::dup2_stderr(&null).ok();
    }
    // The step timer's copy of stderr is the starter's pipe too.
    crate::trace::stop();
}

/// The namespaces only the container process enters (the supervisor stays
/// outside them).
fn unshare_container_namespaces(
    network: &Network,
    net: Option<&network::NetJoin>,
) -> Result<(), SetupError> {
    if let Some(fd) = net.map(|n| &n.netns) {
        nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|errno| {
            SetupError::Namespace {
                what: "network (join)",
                errno,
            }
        })?;
    }
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP;
    // `none` without a namespace from the keeper makes its own.
    if *network == Network::None && net.is_none() {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    unshare(flags).map_err(|errno| SetupError::Namespace {
        what: "mount/uts/ipc/cgroup/net",
        errno,
    })?;
    if *network == Network::None {
        // Again with the keeper's spare: the container trusts no set-up but
        // its own (it costs microseconds on a namespace already set up).
        netns::set_up_here().map_err(|e| SetupError::Io {
            what: "bring up the loopback interface".into(),
            path: "of the new network namespace".into(),
            source: e,
        })?;
    }
    Ok(())
}

/// Whether a signal den received goes on to the container. The container
/// runs in a session of its own, so a signal from the user's terminal
/// (Ctrl-C: SIGINT from the kernel) reaches only den and is passed on; only
/// the terminal's SIGWINCH is not: the container has no terminal of the
/// user's, and with `-t` its own pty signals it.
fn forwards(info: &libc::signalfd_siginfo) -> bool {
    let signo = info.ssi_signo as i32;
    let from_terminal = info.ssi_code == libc::SI_KERNEL;
    signo != Signal::SIGCHLD as i32
        && signo != Signal::SIGPIPE as i32
        && !(from_terminal && signo == Signal::SIGWINCH as i32)
}

/// Forwards signals to the container until it exits; returns its status.
fn supervise(child: &mut sys::ForkedChild, signals: &SigSet) -> Result<i32, SetupError> {
    let sfd = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC).map_err(|errno| {
        SetupError::Supervise {
            what: "create a signalfd",
            errno,
        }
    })?;
    loop {
        if let Some(exit) = child.try_wait().map_err(|errno| SetupError::Supervise {
            what: "wait for the process",
            errno,
        })? {
            return Ok(match exit {
                ChildExit::Code(c) => c,
                ChildExit::Signal(s) => 128 + s as i32,
            });
        }
        match sfd.read_signal() {
            Ok(Some(info)) if forwards(&info) => {
                if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                    kill(child.pid(), sig).ok();
                }
            }
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(errno) => {
                return Err(SetupError::Supervise {
                    what: "read the signalfd",
                    errno,
                });
            }
        }
    }
}

/// The container process: set up, then exec. Returns only on failure,
/// after sending the failed step to the supervisor.
fn container_main(
    spec: &ContainerSpec,
    prepared: &security::Prepared,
    given: (Option<network::NetJoin>, Option<rootdir::Spare>),
    report: ReportTx,
    (guarded, ns, terminal): (OwnedFd, nsfds::HandoverTx, Option<pty::MasterTx>),
) -> i32 {
    // Until the guard watches (and the ids change, which clears it): if the
    // supervisor dies, the container dies with it (see `guard`).
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).ok();
    let mut report = Some(report);
    let failed = match setup_and_exec(spec, prepared, given, &mut report, (guarded, ns, terminal)) {
        Ok(never) => match never {},
        Err(f) => f,
    };
    if let Some(mut report) = report {
        report.send(&failed.report()).ok();
    }
    failed.error.exit_code()
}

/// The sending end of a set-up child's report channel.
type ReportTx = crate::channel::Sender<report::ChildReport>;

fn setup_and_exec(
    spec: &ContainerSpec,
    prepared: &security::Prepared,
    (mut net, spare_root): (Option<network::NetJoin>, Option<rootdir::Spare>),
    report: &mut Option<ReportTx>,
    (guarded, ns, terminal): (OwnedFd, nsfds::HandoverTx, Option<pty::MasterTx>),
) -> Result<std::convert::Infallible, Failed> {
    // Stage 1, filesystem. After it: the process sees only the container's tree.
    unshare_container_namespaces(&spec.network, net.as_ref()).at(Step::Namespaces)?;
    // The supervisor keeps them: den exec never opens /proc/PID/ns of a
    // container process (`nsfds`), so --init's PID 1 can be non-dumpable.
    ns.send().at(Step::Namespaces)?;
    let (merged, root) = mount_root(spec, spare_root).at(Step::RootFs)?;
    // A --rootfs tree's own mounts, for --read-only (its root is sealed last).
    let tree = match spec.read_only {
        true => rootdir::tree_mounts(&merged),
        false => Vec::new(),
    };
    // Before any other mount: a new volume gets the image's content.
    prefill::prefill_volumes(&root, &spec.mounts).at(Step::FillVolumes)?;
    mounts::mount_system(&root, spec).at(Step::SystemMounts)?;
    // With -t: a pty of its own /dev/pts on 0/1/2 and /dev/console; the
    // master goes to the supervisor.
    if let Some(to) = terminal {
        pty::take_terminal(&root, to, true).at(Step::SystemMounts)?;
    }
    mounts::mount_user(&root, &spec.mounts).at(Step::Volumes)?;
    if prepared.single_id() {
        single_id::mount_apt_config(&root).at(Step::Volumes)?;
    }
    mounts::resolve(&root, &spec.process.cwd, mounts::Kind::Dir).at(Step::CheckWorkdir)?;
    if !spec.security.privileged {
        mounts::restrict_paths(&root).at(Step::MaskPaths)?;
    }
    drop(root);
    rootdir::seal(&tree).at(Step::PivotRoot)?;
    drop(tree);
    mounts::pivot(&merged).at(Step::PivotRoot)?;
    mounts::seal_root(spec.read_only).at(Step::PivotRoot)?;
    crate::trace::phase("mounts");

    // Stage 2, identity. After it: hostname, terminal and user are the container's.
    nix::unistd::sethostname(&spec.hostname)
        .map_err(|errno| SetupError::Namespace {
            what: "uts (hostname)",
            errno,
        })
        .at(Step::Hostname)?;
    new_session(spec.process.terminal, "/dev/console").at(Step::Session)?;
    let user = user::lookup(&spec.process.user).at(Step::User)?;
    let mut env = environment(
        &spec.process.env,
        &user,
        &spec.hostname,
        spec.process.terminal,
    );
    if prepared.single_id() {
        single_id::add_apt_config_env(&mut env);
    }
    enter_workdir(&spec.process.cwd).at(Step::EnterWorkdir)?;

    // Stage 3, privileges. After it: the container user, the kept capabilities
    // only, landlock and seccomp in force (no_new_privs only when asked).
    let program = exec::find(&spec.process.args[0], &env).at(Step::FindCommand)?;
    sys::cloexec_from(3 + spec.process.preserve_fds);
    rlimit::apply(&spec.ulimits).at(Step::Ulimits)?;
    // The ids change next, which clears PR_SET_PDEATHSIG: from here on the
    // guard keeps the container from outliving its supervisor.
    guard::wait_watched(guarded).at(Step::WaitGuard)?;
    security::apply(prepared, &user).at(Step::Privileges)?;
    crate::trace::phase("security");
    // pasta was starting while the container was set up; the command runs
    // once its network is there.
    if let Some(n) = net.as_mut() {
        n.wait_ready().at(Step::WaitNetwork)?;
    }
    crate::trace::phase("exec");
    if spec.init {
        return init::run(
            &program,
            &spec.process.args,
            &env,
            spec.process.preserve_fds,
            report,
        );
    }
    supervised_signals().thread_unblock().ok();
    Err(exec::exec(&program, &spec.process.args, &env)).at(Step::Exec)
}

/// A private mount namespace with the container's root mounted (`spare`:
/// the keeper's `--rootfs` tree); returns where, and an `O_PATH` descriptor
/// of it.
fn mount_root(
    spec: &ContainerSpec,
    spare: Option<rootdir::Spare>,
) -> Result<(PathBuf, OwnedFd), SetupError> {
    mounts::make_private()?;
    let merged = mounts::mount_root(&spec.rootfs, spare)?;
    let root = rustix::fs::open(
        &merged,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| SetupError::Io {
        what: "open".into(),
        path: merged.clone(),
        source: e.into(),
    })?;
    Ok((merged, root))
}

fn enter_workdir(cwd: &str) -> Result<(), SetupError> {
    nix::unistd::chdir(cwd).map_err(|e| SetupError::Io {
        what: "enter the working directory".into(),
        path: cwd.into(),
        source: e.into(),
    })
}

/// A session of its own, so the user's terminal is never the container's
/// controlling terminal (`/dev/tty` then fails with ENXIO, and TIOCSTI on
/// an inherited terminal fd with EPERM); with `terminal`, stdin (the
/// container's own pty, named `what` in errors) becomes the controlling one.
fn new_session(terminal: bool, what: &str) -> Result<(), SetupError> {
    nix::unistd::setsid().map_err(SetupError::Session)?;
    if terminal {
        rustix::process::ioctl_tiocsctty(std::io::stdin().as_fd()).map_err(|e| SetupError::Io {
            what: "make the terminal controlling".into(),
            path: what.into(),
            source: e.into(),
        })?;
    }
    Ok(())
}

/// The process environment: the spec's, plus HOME, HOSTNAME, PATH and TERM
/// where it has none.
fn environment(env: &[String], user: &user::User, hostname: &str, terminal: bool) -> Vec<String> {
    let mut out = env.to_vec();
    let has = |out: &[String], k: &str| {
        out.iter()
            .any(|e| e.split_once('=').is_some_and(|(key, _)| key == k))
    };
    if !has(&out, "PATH") {
        out.push(format!("PATH={}", exec::DEFAULT_PATH));
    }
    if !has(&out, "HOSTNAME") {
        out.push(format!("HOSTNAME={hostname}"));
    }
    if !has(&out, "HOME") {
        out.push(format!("HOME={}", user.home.as_deref().unwrap_or("/")));
    }
    if terminal && !has(&out, "TERM") {
        out.push("TERM=xterm".into());
    }
    out
}
