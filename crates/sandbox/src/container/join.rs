//! `den exec`: a new process in a running container, under the same rules.
//!
//! ```text
//! den __internal exec (single-threaded, fresh exec)
//!   1. the container's namespaces from its supervisor (`nsfds`: never from
//!      /proc/PID/ns of a container process, which may be non-dumpable)
//!   2. seccomp filter and capabilities prepared while den's store is visible
//!   3. setns into the container's user namespace: root there, with the
//!      capabilities to join its other namespaces
//!   4. non-dumpable (see below); join ipc, uts, net, cgroup and pid
//!   5. fork (the pid namespace applies to children) ──┐
//!   7. forward signals, reap, return the status       │
//!                                                     └─ 6. join mount (last: it changes what
//!                                                           /proc means), terminal (-t: a pty of the
//!                                                           container's /dev/pts, its master to the
//!                                                           den CLI, `pty`), user, workdir,
//!                                                           same privileges as the container, exec
//! ```
//!
//! The child is in the container's pid namespace from its fork to its
//! exec, as root of the container's user namespace with every capability,
//! seccomp and Landlock not yet applied, and until step 6 in the host's
//! mount namespace: a container process with the same ids could read its
//! memory or descriptors through /proc (or write `/proc/PID/mem`; it may
//! even SIGSTOP it to take its time). Made non-dumpable before the fork,
//! its `/proc` files are the host root's, since the memory it runs was set
//! up outside the container (runc's CVE-2016-9962 was this). The exec
//! gives the command the usual dumpable state.

use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags};

use super::nsfds::{Kind, Namespaces};
use super::report::{At, Failed, Step};
use super::spec::ContainerSpec;
use super::{
    ReportTx, SetupError, enter_workdir, environment, exec, new_session, pty, security, supervise,
    supervised_signals, user,
};
use crate::channel::fork_reporting;
use crate::sys;

/// What `den exec` asks for.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExecRequest {
    pub args: Vec<String>,
    /// Added to the container's environment (`KEY=VALUE`).
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub user: Option<String>,
    pub terminal: bool,
    /// With `terminal`: the caller's window size (rows, columns), set on
    /// the pty before the command starts, so its first look sees it.
    #[serde(default)]
    pub size: Option<(u16, u16)>,
}

/// Runs `req` inside the container whose namespaces are `ns` (from its
/// supervisor, [`Namespaces::fetch`]); returns the command's exit status.
pub fn exec_in(
    spec: &ContainerSpec,
    ns: &Namespaces,
    req: &ExecRequest,
    single_id: bool,
) -> Result<i32, SetupError> {
    let prepared = security::prepare(spec, single_id)?;
    ns.join(Kind::User)?;
    let signals = supervised_signals();
    signals
        .thread_block()
        .map_err(|errno| SetupError::Supervise {
            what: "block the signals it forwards",
            errno,
        })?;
    let mut child = spawn(spec, &prepared, ns, req)?;
    supervise(&mut child, &signals)
}

/// From inside the container's user namespace (after `exec_in` joined it,
/// or in the supervisor's health probe): joins the container's other
/// namespaces and forks `req` there; returns once the command has exec'd
/// (or with why it could not). Single-threaded process; it stays
/// non-dumpable (see the module doc).
pub(super) fn spawn(
    spec: &ContainerSpec,
    prepared: &security::Prepared,
    ns: &Namespaces,
    req: &ExecRequest,
) -> Result<sys::ForkedChild, SetupError> {
    // Before the fork, so the child is never dumpable in the container.
    nix::sys::prctl::set_dumpable(false).map_err(|errno| SetupError::Supervise {
        what: "make the process non-dumpable",
        errno,
    })?;
    // The mount namespace is joined by the child: after it, /proc is the
    // container's and den's own checks (its thread count) would look there.
    for kind in [Kind::Ipc, Kind::Uts, Kind::Net, Kind::Cgroup, Kind::Pid] {
        ns.join(kind)?;
    }
    let (child, mut report, ()) = fork_reporting(false, (), move |mut report: ReportTx| {
        let failed = match run_in_container(ns, spec, prepared, req) {
            Ok(never) => match never {},
            Err(f) => f,
        };
        report.send(&failed.report()).ok();
        failed.error.exit_code()
    })?;
    let failed = match report.recv() {
        Ok(None) => None,
        Ok(r) => SetupError::from_report(r),
        Err(e) => Some(SetupError::Channel(e)),
    };
    if let Some(e) = failed {
        child.wait().ok();
        return Err(e);
    }
    Ok(child)
}

fn run_in_container(
    ns: &Namespaces,
    spec: &ContainerSpec,
    prepared: &security::Prepared,
    req: &ExecRequest,
) -> Result<std::convert::Infallible, Failed> {
    ns.join(Kind::Mnt).at(Step::Namespaces)?;
    if req.terminal {
        // A pty of the container's own /dev/pts, its master to the den CLI
        // waiting on our stdin (see `pty::take_terminal`).
        let size = req.size.map(|(ws_row, ws_col)| rustix::termios::Winsize {
            ws_row,
            ws_col,
            ws_xpixel: 0,
            ws_ypixel: 0,
        });
        let to = pty::MasterTx::from_stdin(size).at(Step::Session)?;
        pty::take_terminal(&open_dir("/").at(Step::Session)?, to, false).at(Step::Session)?;
    }
    new_session(req.terminal, "/dev/pts").at(Step::Session)?;
    let user = user::lookup(req.user.as_deref().unwrap_or(&spec.process.user)).at(Step::User)?;
    let mut base = spec.process.env.clone();
    for e in &req.env {
        let key = e.split_once('=').map(|(k, _)| k).unwrap_or(e);
        base.retain(|o| o.split_once('=').map(|(k, _)| k) != Some(key));
        base.push(e.clone());
    }
    let env = environment(&base, &user, &spec.hostname, req.terminal);
    let cwd = req.cwd.clone().unwrap_or_else(|| spec.process.cwd.clone());
    enter_workdir(&cwd).at(Step::EnterWorkdir)?;
    let program = exec::find(&req.args[0], &env).at(Step::FindCommand)?;
    sys::cloexec_from(3);
    // The container's --ulimit values hold for what runs in it later too,
    // as with Docker's exec.
    super::rlimit::apply(&spec.ulimits).at(Step::Ulimits)?;
    security::apply(prepared, &user).at(Step::Privileges)?;
    supervised_signals().thread_unblock().ok();
    Err(exec::exec(&program, &req.args, &env)).at(Step::Exec)
}

/// Makes this process see the container's filesystem and returns a
/// directory fd of its root, for `den cp`. A running container is joined
/// (its user and mount namespaces, so volumes are seen as the container
/// sees them); a stopped one has its root mounted in a private mount
/// namespace. Single-threaded process only.
pub fn enter_filesystem(
    spec: &ContainerSpec,
    running: Option<&Namespaces>,
    mapping: &crate::idmap::IdMapping,
) -> Result<OwnedFd, SetupError> {
    match running {
        Some(ns) => {
            ns.join(Kind::User)?;
            ns.join(Kind::Mnt)?;
            open_dir("/")
        }
        None => {
            crate::userns::enter_user_namespace(mapping)?;
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|errno| {
                SetupError::Namespace {
                    what: "mount",
                    errno,
                }
            })?;
            super::mounts::make_private()?;
            let mut rootfs = spec.rootfs.clone();
            if let super::spec::Rootfs::Overlay { volatile, .. } = &mut rootfs {
                *volatile =
                    super::volatile_root(spec.remove_when_done.is_some(), super::RootMount::Copy);
            }
            let merged = super::mounts::mount_root(&rootfs, None)?;
            // Every path from here on, symlinks included, resolves inside
            // the container's root, as it would in the container.
            let fail = |errno| SetupError::Mount {
                what: "chroot".into(),
                target: merged.display().to_string(),
                errno,
            };
            nix::unistd::chroot(&merged).map_err(fail)?;
            nix::unistd::chdir("/").map_err(fail)?;
            open_dir("/")
        }
    }
}

fn open_dir(path: &str) -> Result<OwnedFd, SetupError> {
    rustix::fs::open(
        path,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SetupError::Io {
        what: "open".into(),
        path: path.into(),
        source: e.into(),
    })
}

/// What a container path is, for `den cp`: `None` when it does not exist.
pub fn path_kind(root: &OwnedFd, path: &str) -> Option<bool> {
    let rel = path.trim_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let fd = rustix::fs::openat2(
        root,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        rustix::fs::ResolveFlags::IN_ROOT,
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    Some(rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
}

/// Makes the container directory `path` (resolved inside the root, never
/// outside it) the current directory.
pub fn enter_dir(root: &OwnedFd, path: &str) -> Result<(), SetupError> {
    let rel = path.trim_start_matches('/');
    let fd = rustix::fs::openat2(
        root,
        if rel.is_empty() { "." } else { rel },
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        rustix::fs::ResolveFlags::IN_ROOT,
    )
    .map_err(|e| SetupError::Resolve {
        target: path.to_string(),
        errno: e,
    })?;
    rustix::process::fchdir(&fd).map_err(|e| SetupError::Resolve {
        target: path.to_string(),
        errno: e,
    })
}

/// One process of a container, for `den top`.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    /// As the host sees it.
    pub pid: i32,
    pub ppid: i32,
    /// As the container sees it.
    pub uid: u32,
    pub command: String,
}

/// The processes in the container whose namespaces are `ns` and whose init
/// is `init` (host pid): joins its user namespace (so /proc of processes
/// running as subordinate ids is readable and their ids read as the
/// container's), then lists the host's processes in its pid namespace. Its
/// init is listed by pid: den's `--init` is non-dumpable and its
/// namespace links stay closed even to root of the container's user
/// namespace (the module doc of `nsfds` says why).
pub fn processes(ns: &Namespaces, init: i32) -> Result<Vec<ProcessInfo>, SetupError> {
    ns.join(Kind::User)?;
    let target = rustix::fs::fstat(ns.get(Kind::Pid)).map_err(|e| SetupError::Io {
        what: "inspect".into(),
        path: "the container's pid namespace".into(),
        source: e.into(),
    })?;
    let in_container = |pid: i32| {
        pid == init
            || rustix::fs::stat(format!("/proc/{pid}/ns/pid"))
                .is_ok_and(|st| (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino))
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .map_err(|e| SetupError::Io {
            what: "list".into(),
            path: "/proc".into(),
            source: e,
        })?
        .flatten()
    {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if !in_container(pid) {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let command = String::from_utf8_lossy(&cmdline)
            .split('\0')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        out.push(ProcessInfo {
            pid,
            ppid: field("PPid:") as i32,
            uid: field("Uid:") as u32,
            command,
        });
    }
    out.sort_by_key(|p| p.pid);
    Ok(out)
}
