//! `den stop`, `kill`, `start`, `restart`, `rm`, `rename`, `container prune`:
//! changing containers. Signals go through each container's supervisor
//! (`sandbox::container::control`).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use den_sandbox::container::control;
use den_sandbox::container::state::Status;

use crate::containers::{Containers, Record};
use crate::context::Context;

fn running(s: Status) -> bool {
    matches!(s, Status::Running | Status::Restarting)
}

/// The signal `den stop` sends first: the image's StopSignal, or SIGTERM.
fn stop_signal(ctx: &Context, r: &Record) -> i32 {
    let spec = fs_err::read(
        Containers::open(&ctx.root)
            .map(|c| c.dir_of(&r.id).join("spec.json"))
            .unwrap_or_default(),
    )
    .ok();
    spec.and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["stop_signal"].as_str().and_then(control::parse_signal))
        .unwrap_or(libc_sigterm())
}

fn libc_sigterm() -> i32 {
    nix::sys::signal::Signal::SIGTERM as i32
}

/// Stops containers together: each gets its stop signal at once, then
/// whatever still runs after `timeout` gets SIGKILL (like `docker stop`,
/// which stops several containers in parallel).
pub fn stop_all(ctx: &Context, records: &[Record], timeout: Duration) -> anyhow::Result<()> {
    let containers = Containers::open(&ctx.root)?;
    let mut pending: Vec<&Record> = Vec::new();
    for r in records {
        if running(containers.state(&r.id).status) {
            control::send(&containers.dir_of(&r.id), stop_signal(ctx, r), true)
                .with_context(|| format!("signalling container {}", r.name))?;
            pending.push(r);
        }
    }
    let settle = |pending: &mut Vec<&Record>, until: Instant| {
        while !pending.is_empty() && Instant::now() < until {
            pending.retain(|r| running(containers.state(&r.id).status));
            std::thread::sleep(Duration::from_millis(20));
        }
        pending.retain(|r| running(containers.state(&r.id).status));
    };
    settle(&mut pending, Instant::now() + timeout);
    for r in &pending {
        control::send(&containers.dir_of(&r.id), 9, true).ok();
    }
    settle(&mut pending, Instant::now() + Duration::from_secs(10));
    Ok(())
}

/// Stops one container: its stop signal, then SIGKILL after `timeout`.
pub fn stop_one(ctx: &Context, r: &Record, timeout: Duration) -> anyhow::Result<()> {
    stop_all(ctx, std::slice::from_ref(r), timeout)
}

pub fn stop(ctx: &Context, names: &[String], timeout: u64) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let records: Vec<Record> = names
        .iter()
        .map(|n| containers.find(n))
        .collect::<anyhow::Result<_>>()?;
    stop_all(ctx, &records, Duration::from_secs(timeout))?;
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

pub fn restart(ctx: &Context, names: &[String], timeout: u64) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    for n in names {
        let r = containers.find(n)?;
        stop_one(ctx, &r, Duration::from_secs(timeout))?;
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
        kill_now(&containers, r)?;
        // Until its supervisor is gone: a `--rm` container's deletes the
        // directory itself, and must not be raced.
        let t = Instant::now();
        while containers.state(&r.id).supervisor_alive() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let networks = crate::networks::Networks::open(&ctx.root)?;
    let (_gone, _held) = match containers.detach(&r.id) {
        Ok(d) => d,
        // A `--rm` container's supervisor removed it first: that is success.
        Err(e) if is_not_found(&e) && !containers.dir_of(&r.id).exists() => {
            return networks.leave_all(&r.id);
        }
        Err(e) => return Err(e),
    };
    crate::containers::stop_point("rm:detached");
    networks.leave_all(&r.id)?;
    crate::in_userns::remove_container(ctx, &r.id)
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::NotFound)
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
    let t = Instant::now();
    while running(containers.state(&r.id).status) {
        if t.elapsed() > Duration::from_secs(10) {
            bail!(
                "cannot remove container {} ({}): it still runs 10 s after SIGKILL; see `den ps` and try again",
                r.name,
                &r.id[..12]
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

pub fn rm(ctx: &Context, names: &[String], force: bool) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let mut failed = None;
    for n in names {
        match containers.find(n).and_then(|r| remove_one(ctx, &r, force)) {
            Ok(()) => println!("{n}"),
            Err(e) if force && e.to_string().starts_with("no such container") => {}
            Err(e) => {
                eprintln!("den: {e}");
                failed = Some(());
            }
        }
    }
    Ok(if failed.is_some() { 125 } else { 0 })
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
