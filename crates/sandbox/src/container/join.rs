//! `den exec`: a new process in a running container, under the same rules.
//!
//! ```text
//! den __internal exec (single-threaded, fresh exec)
//!   1. seccomp filter and capabilities prepared while den's store is visible
//!   2. setns into the supervisor's user namespace: root there, with the
//!      capabilities to join the container's other namespaces (its init may
//!      run as a subordinate id we could not otherwise inspect)
//!   3. open the init's ipc, uts, net, cgroup, pid and mount namespaces,
//!      then join them (mount last: it changes what /proc/PID means)
//!   4. fork (the pid namespace applies to children) ──┐
//!   6. forward signals, reap, return the status       │
//!                                                     └─ 5. terminal, user, workdir, same
//!                                                           privileges as the container, exec
//! ```

use std::os::fd::{AsFd, OwnedFd};

use nix::sched::{CloneFlags, setns};
use rustix::fs::{Mode, OFlags};

use super::report::{At, Failed, Step};
use super::spec::ContainerSpec;
use super::{
    ReportTx, SetupError, enter_workdir, environment, exec, new_session, security, supervise,
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
}

fn open_ns(pid: i32, name: &str) -> Result<OwnedFd, SetupError> {
    let path = format!("/proc/{pid}/ns/{name}");
    rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
        SetupError::Io {
            what: "open".into(),
            path: path.into(),
            source: e.into(),
        }
    })
}

fn join(fd: &OwnedFd, what: &'static str, flag: CloneFlags) -> Result<(), SetupError> {
    setns(fd.as_fd(), flag).map_err(|errno| SetupError::Namespace { what, errno })
}

/// Runs `req` inside the container whose supervisor is `supervisor` and
/// whose init is `init` (host pids); returns the command's exit status.
pub fn exec_in(
    spec: &ContainerSpec,
    supervisor: i32,
    init: i32,
    req: &ExecRequest,
    single_id: bool,
) -> Result<i32, SetupError> {
    let prepared = security::prepare(spec, single_id)?;
    join(
        &open_ns(supervisor, "user")?,
        "user",
        CloneFlags::CLONE_NEWUSER,
    )?;
    let signals = supervised_signals();
    signals
        .thread_block()
        .map_err(|errno| SetupError::Supervise {
            what: "block the signals it forwards",
            errno,
        })?;
    let mut child = spawn(spec, &prepared, init, req)?;
    supervise(&mut child, &signals)
}

/// From inside the container's user namespace (after `exec_in` joined it,
/// or in the supervisor's health probe): joins the other namespaces of the
/// container whose init is `init` and forks `req` there; returns once the
/// command has exec'd (or with why it could not). Single-threaded process.
pub(super) fn spawn(
    spec: &ContainerSpec,
    prepared: &security::Prepared,
    init: i32,
    req: &ExecRequest,
) -> Result<sys::ForkedChild, SetupError> {
    let names = [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("pid", CloneFlags::CLONE_NEWPID),
    ];
    let fds: Vec<(OwnedFd, &'static str, CloneFlags)> = names
        .iter()
        .map(|(n, f)| open_ns(init, n).map(|fd| (fd, *n, *f)))
        .collect::<Result<_, _>>()?;
    // The mount namespace is joined by the child: after it, /proc is the
    // container's and den's own checks (its thread count) would look there.
    let mnt = open_ns(init, "mnt")?;
    for (fd, name, flag) in &fds {
        join(fd, name, *flag)?;
    }
    drop(fds);
    let (child, mut report, ()) = fork_reporting(false, (), move |mut report: ReportTx| {
        let failed = match run_in_container(&mnt, spec, prepared, req) {
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
    mnt: &OwnedFd,
    spec: &ContainerSpec,
    prepared: &security::Prepared,
    req: &ExecRequest,
) -> Result<std::convert::Infallible, Failed> {
    join(mnt, "mount", CloneFlags::CLONE_NEWNS).at(Step::Namespaces)?;
    new_session(req.terminal, "stdin").at(Step::Session)?;
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
    running: Option<(i32, i32)>,
    mapping: &crate::idmap::IdMapping,
) -> Result<OwnedFd, SetupError> {
    match running {
        Some((supervisor, init)) => {
            join(
                &open_ns(supervisor, "user")?,
                "user",
                CloneFlags::CLONE_NEWUSER,
            )?;
            let mnt = open_ns(init, "mnt")?;
            join(&mnt, "mount", CloneFlags::CLONE_NEWNS)?;
            open_dir("/")
        }
        None => {
            crate::userns::enter_user_namespace(mapping)?;
            nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|errno| {
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
            let merged = super::mounts::mount_root(&rootfs)?;
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

/// The processes in the container whose init is `init`: joins the
/// supervisor's user namespace (so /proc of processes running as
/// subordinate ids is readable and their ids read as the container's),
/// then lists the host's processes that share the init's pid namespace.
pub fn processes(supervisor: i32, init: i32) -> Result<Vec<ProcessInfo>, SetupError> {
    join(
        &open_ns(supervisor, "user")?,
        "user",
        CloneFlags::CLONE_NEWUSER,
    )?;
    let target =
        std::fs::read_link(format!("/proc/{init}/ns/pid")).map_err(|e| SetupError::Io {
            what: "read".into(),
            path: format!("/proc/{init}/ns/pid").into(),
            source: e,
        })?;
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
        if std::fs::read_link(format!("/proc/{pid}/ns/pid"))
            .ok()
            .as_ref()
            != Some(&target)
        {
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
