//! `den stop`, `kill`, `start`, `restart`, `rm`, `rename`, `container prune`,
//! `container exists`: changing containers. Signals go through each
//! container's supervisor (`sandbox::container::control`).
//!
//! `--all` ([`select_all`]): `stop`, `kill`, `restart` take every running
//! container, `start` every other one, `rm` all of them. `-a` is its short
//! form everywhere but `start`, where `-a` is `--attach` (Docker's, and
//! podman's, whose `start --all` is long-only too).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use den_sandbox::container::control;
use den_sandbox::container::spec::ContainerSpec;
use den_sandbox::container::state::Status;

use crate::containers::{Containers, Record};
use crate::context::Context;

fn running(s: Status) -> bool {
    matches!(s, Status::Running | Status::Restarting)
}

/// The container's `spec.json` (bounded, typed), or None when it cannot
/// be read.
fn read_spec(ctx: &Context, r: &Record) -> Option<ContainerSpec> {
    let containers = Containers::open(&ctx.root).ok()?;
    ContainerSpec::read(&containers.dir_of(&r.id).join("spec.json")).ok()
}

/// The signal `den stop` sends first: `--stop-signal`, the image's
/// StopSignal, or SIGTERM.
fn stop_signal(ctx: &Context, r: &Record) -> i32 {
    read_spec(ctx, r)
        .and_then(|s| s.stop_signal.as_deref().and_then(control::parse_signal))
        .unwrap_or(libc_sigterm())
}

/// How long `den stop` waits: `-t`, else the container's `--stop-timeout`,
/// else 10 s.
fn stop_timeout(ctx: &Context, r: &Record, given: Option<Duration>) -> Duration {
    given
        .or_else(|| read_spec(ctx, r)?.stop_timeout.map(Duration::from_secs))
        .unwrap_or(Duration::from_secs(10))
}

fn libc_sigterm() -> i32 {
    nix::sys::signal::Signal::SIGTERM as i32
}

/// Stops containers together: each gets its stop signal at once, then
/// whatever still runs after `timeout` gets SIGKILL (like `docker stop`,
/// which stops several containers in parallel). A container whose PID 1
/// would never see the stop signal is killed at once by its supervisor
/// (`den_sandbox::container::stop`).
pub fn stop_all(ctx: &Context, records: &[Record], timeout: Duration) -> anyhow::Result<()> {
    stop_each(ctx, records, Some(timeout))
}

/// [`stop_all`], each container waited for its own timeout when `timeout`
/// is `None` (its `--stop-timeout`, else 10 s).
pub fn stop_each(
    ctx: &Context,
    records: &[Record],
    timeout: Option<Duration>,
) -> anyhow::Result<()> {
    let containers = Containers::open(&ctx.root)?;
    let mut pending: Vec<(&Record, Instant)> = Vec::new();
    let now = Instant::now();
    for r in records {
        if running(containers.state(&r.id).status) {
            control::send(&containers.dir_of(&r.id), stop_signal(ctx, r), true)
                .with_context(|| format!("signalling container {}", r.name))?;
            pending.push((r, now + stop_timeout(ctx, r, timeout)));
        }
    }
    let is_running = |r: &Record| running(containers.state(&r.id).status);
    let mut killed: Vec<&Record> = Vec::new();
    while !pending.is_empty() {
        pending.retain(|(r, _)| is_running(r));
        let now = Instant::now();
        for (r, _) in pending.iter().filter(|(_, until)| now >= *until) {
            control::send(&containers.dir_of(&r.id), 9, true).ok();
            killed.push(r);
        }
        pending.retain(|(_, until)| now < *until);
        std::thread::sleep(Duration::from_millis(20));
    }
    let until = Instant::now() + Duration::from_secs(10);
    while killed.iter().any(|r| is_running(r)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Stops one container: its stop signal, then SIGKILL after `timeout`.
pub fn stop_one(ctx: &Context, r: &Record, timeout: Duration) -> anyhow::Result<()> {
    stop_all(ctx, std::slice::from_ref(r), timeout)
}

pub fn stop(ctx: &Context, names: &[String], timeout: Option<u64>) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let records: Vec<Record> = names
        .iter()
        .map(|n| containers.find(n))
        .collect::<anyhow::Result<_>>()?;
    stop_each(ctx, &records, timeout.map(Duration::from_secs))?;
    names.iter().for_each(|n| println!("{n}"));
    Ok(0)
}

pub fn kill(ctx: &Context, names: &[String], signal: &str) -> anyhow::Result<i32> {
    let sig = control::parse_signal(signal).with_context(|| {
        format!("invalid signal `{signal}`: use a name like KILL or TERM, or a number")
    })?;
    let containers = Containers::open(&ctx.root)?;
    for n in names {
        let r = containers.find(n)?;
        let s = containers.state(&r.id);
        if !running(s.status) {
            bail!("container {n} is not running: start it with `den start {n}`");
        }
        control::send(&containers.dir_of(&r.id), sig, sig == 9)
            .with_context(|| format!("signalling container {n}"))?;
        println!("{n}");
    }
    Ok(0)
}

pub fn start(
    ctx: &Context,
    names: &[String],
    attach: bool,
    interactive: bool,
    detach_keys: Option<&str>,
) -> anyhow::Result<i32> {
    // Docker's rule: -i attaches too.
    let attach = attach || interactive;
    let containers = Containers::open(&ctx.root)?;
    if attach && names.len() > 1 {
        bail!("you cannot start and attach to several containers at once");
    }
    let mut code = 0;
    for n in names {
        let r = containers.find(n)?;
        if running(containers.state(&r.id).status) {
            if !attach {
                println!("{n}");
            }
            continue;
        }
        let spec = containers.dir_of(&r.id).join("spec.json");
        let terminal = crate::terminal::has_terminal(&containers.dir_of(&r.id));
        if attach && terminal {
            if interactive && !std::io::stdin().is_terminal() {
                eprintln!("den: {}", crate::terminal::NOT_A_TTY);
                return Ok(1);
            }
            code = crate::launch::start_terminal(ctx, &spec, interactive, detach_keys, false)?;
        } else if attach {
            code = crate::launch::start(ctx, &spec, interactive, false)?;
        } else {
            crate::launch::start_detached(ctx, &spec)?;
            println!("{n}");
        }
    }
    Ok(code)
}

pub fn restart(ctx: &Context, names: &[String], timeout: Option<u64>) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    for n in names {
        let r = containers.find(n)?;
        let wait = stop_timeout(ctx, &r, timeout.map(Duration::from_secs));
        stop_one(ctx, &r, wait)?;
        crate::launch::start_detached(ctx, &containers.dir_of(&r.id).join("spec.json"))?;
        println!("{n}");
    }
    Ok(0)
}

/// Removes one container's record and files (after stopping it if `force`).
pub fn remove_one(ctx: &Context, r: &Record, force: bool) -> anyhow::Result<()> {
    let containers = Containers::open(&ctx.root)?;
    let state = containers.state(&r.id);
    if running(state.status) {
        if !force {
            bail!(
                "cannot remove container {} ({}): it is running; stop it first or use -f",
                r.name,
                &r.id[..12]
            );
        }
        // Returns once its supervisor is gone: a `--rm` container's deletes
        // the directory itself, and must not be raced.
        kill_now(&containers, r)?;
    }
    let networks = crate::networks::Networks::open(&ctx.root)?;
    let (gone, _held) = match containers.detach(&r.id) {
        Ok(d) => d,
        // A `--rm` container's supervisor removed it first: that is success.
        Err(e) if is_not_found(&e) && !containers.dir_of(&r.id).exists() => {
            return networks.leave_all(&r.id);
        }
        Err(e) => return Err(e),
    };
    crate::containers::stop_point("rm:detached");
    networks.leave_all(&r.id)?;
    delete_files(ctx, &gone, &r.id)
}

/// Deletes a removed container's files (its `.rm-<id>` directory): here,
/// when all of them are the user's (the usual case: the container's root
/// is the user), which saves starting den again in the user namespace;
/// otherwise (files of subordinate ids, directories the container made
/// unreadable) inside it. `std::fs::remove_dir_all` never follows the
/// container's symlinks.
fn delete_files(ctx: &Context, gone: &std::path::Path, id: &str) -> anyhow::Result<()> {
    use rustix::fs::{Mode, OFlags};
    // overlayfs makes its `work/work` mode 000; `work` is the kernel's,
    // never the container's, so its entry is no symlink planted there.
    if let Ok(work) = rustix::fs::open(
        gone.join("work"),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        rustix::fs::chmodat(&work, "work", Mode::RWXU, rustix::fs::AtFlags::empty()).ok();
    }
    if fs_err::remove_dir_all(gone).is_ok() {
        return Ok(());
    }
    crate::in_userns::remove_container(ctx, id)
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::NotFound)
}

/// Waits at most `limit` for the supervisor recorded in the container's
/// state to exit, on a pidfd (no polling); true once it is gone.
fn supervisor_gone(containers: &Containers, id: &str, limit: Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let state = containers.state(id);
    let Some(pid) = rustix::process::Pid::from_raw(state.supervisor_pid) else {
        return true;
    };
    let Ok(fd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) else {
        return !state.supervisor_alive();
    };
    // The pidfd names whichever process had the pid when it was opened:
    // the supervisor only if that one is still alive now (start time).
    if !state.supervisor_alive() {
        return true;
    }
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = PollTimeout::from(u16::try_from(left.as_millis()).unwrap_or(u16::MAX));
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::Error::EINTR) => continue,
            Err(_) => return !state.supervisor_alive(),
        }
    }
}

/// SIGKILL through the supervisor, or to the supervisor itself when it
/// cannot be asked (its guard then kills the container); returns once the
/// supervisor is gone. Never leaves a running container without its files.
fn kill_now(containers: &Containers, r: &Record) -> anyhow::Result<()> {
    if control::send(&containers.dir_of(&r.id), 9, true).is_err() {
        let s = containers.state(&r.id);
        if s.supervisor_alive() {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(s.supervisor_pid),
                nix::sys::signal::Signal::SIGKILL,
            )
            .ok();
        }
    }
    if !supervisor_gone(containers, &r.id, Duration::from_secs(10))
        && running(containers.state(&r.id).status)
    {
        bail!(
            "cannot remove container {} ({}): it still runs 10 s after SIGKILL; see `den ps` and try again",
            r.name,
            &r.id[..12]
        );
    }
    Ok(())
}

/// Which containers `--all` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    Running,
    NotRunning,
    Every,
}

/// The names of the containers `--all` means, oldest first.
pub fn select_all(ctx: &Context, which: Selection) -> anyhow::Result<Vec<String>> {
    let containers = Containers::open(&ctx.root)?;
    let mut all = containers.list()?;
    all.sort_by(|a, b| a.created.cmp(&b.created));
    Ok(all
        .into_iter()
        .filter(|r| match which {
            Selection::Every => true,
            Selection::Running => running(containers.state(&r.id).status),
            Selection::NotRunning => !running(containers.state(&r.id).status),
        })
        .map(|r| r.name)
        .collect())
}

/// `den container exists`: 0 when it does, 1 when not, nothing printed.
pub fn exists(ctx: &Context, name: &str) -> anyhow::Result<i32> {
    match Containers::open(&ctx.root)?.find(name) {
        Ok(_) => Ok(0),
        Err(e) if e.to_string().starts_with("no such container") => Ok(1),
        Err(e) => Err(e),
    }
}

/// `den rm`'s flags.
pub struct RmOptions {
    pub force: bool,
    /// `-t`: stop (stop signal, SIGKILL after this) instead of SIGKILL at once.
    pub time: Option<u64>,
    /// `-v`: also the container's anonymous volumes no other container uses.
    pub volumes: bool,
}

pub fn rm(ctx: &Context, names: &[String], opts: &RmOptions) -> anyhow::Result<i32> {
    if opts.time.is_some() && !opts.force {
        bail!("-t/--time applies to running containers, which den rm removes only with -f: add -f");
    }
    let containers = Containers::open(&ctx.root)?;
    let mut failed = None;
    for n in names {
        match containers.find(n).and_then(|r| rm_one(ctx, &r, opts)) {
            Ok(()) => println!("{n}"),
            Err(e) if opts.force && e.to_string().starts_with("no such container") => {}
            Err(e) => {
                eprintln!("den: {e}");
                failed = Some(());
            }
        }
    }
    Ok(if failed.is_some() { 125 } else { 0 })
}

/// One container of `den rm`: stopped first when `-t` is given, its
/// anonymous volumes removed after it with `-v`.
fn rm_one(ctx: &Context, r: &Record, opts: &RmOptions) -> anyhow::Result<()> {
    let containers = Containers::open(&ctx.root)?;
    if let Some(t) = opts.time
        && running(containers.state(&r.id).status)
    {
        stop_one(ctx, r, Duration::from_secs(t))?;
    }
    remove_one(ctx, r, opts.force)?;
    if opts.volumes {
        remove_anonymous_volumes(ctx, r)?;
    }
    Ok(())
}

/// `den rm -v`: the removed container's anonymous volumes that no other
/// container mounts (named volumes are kept, as in Docker).
fn remove_anonymous_volumes(ctx: &Context, r: &Record) -> anyhow::Result<()> {
    let volumes = crate::volumes::Volumes::open(&ctx.root)?;
    let _lock = volumes.lock()?;
    let others = Containers::open(&ctx.root)?.list()?;
    let mut detached = false;
    for name in &r.volumes {
        let Ok(meta) = volumes.get(name) else {
            continue;
        };
        if meta.anonymous && !others.iter().any(|o| o.volumes.contains(name)) {
            volumes.detach(name)?;
            detached = true;
        }
    }
    if detached {
        crate::in_userns::remove_volumes(ctx)?;
    }
    Ok(())
}

pub fn rename(ctx: &Context, old: &str, new: &str) -> anyhow::Result<i32> {
    crate::names::check("container", new)?;
    Containers::open(&ctx.root)?.rename(old, new)?;
    Ok(0)
}

pub fn prune(ctx: &Context) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let mut removed = Vec::new();
    for r in containers.list()? {
        if !running(containers.state(&r.id).status) {
            remove_one(ctx, &r, false)?;
            removed.push(r.id);
        }
    }
    if !removed.is_empty() {
        println!("Deleted Containers:");
        removed.iter().for_each(|id| println!("{id}"));
    }
    Ok(0)
}
