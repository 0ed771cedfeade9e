//! Starting the container's supervisor (`den __internal container`) from
//! the CLI and staying attached: plain pipes, or a pty with the caller's
//! terminal in raw mode; signals sent to den are passed on.

use std::io::IsTerminal;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context as _;
use den_sandbox::pty::{RawMode, relay};
use signal_hook::consts::{SIGHUP, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

use crate::context::Context;

/// Runs the supervisor for `spec` attached and returns the container's exit code.
pub fn start(ctx: &Context, spec: &Path, interactive: bool, tty: bool) -> anyhow::Result<i32> {
    attach(supervisor(ctx, spec)?, interactive, tty)
}

fn supervisor(ctx: &Context, spec: &Path) -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("cannot find den's own binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(&ctx.root)
        .args(["__internal", "container"])
        .arg(spec);
    cmd.envs(den_sandbox::trace::child_env());
    crate::log::debug(format_args!(
        "starting the supervisor: {} --root {} __internal container {}",
        cmd.get_program().to_string_lossy(),
        ctx.root.display(),
        spec.display()
    ));
    Ok(cmd)
}

/// Starts the supervisor in the background (its own session; output goes to
/// the container's log) and returns once the container's command runs, or
/// with the supervisor's error when it could not be started.
pub fn start_detached(ctx: &Context, spec: &Path) -> anyhow::Result<()> {
    let mut cmd = supervisor(ctx, spec)?;
    cmd.arg("--detach");
    background(cmd, "started", "the container supervisor")
}

/// Spawns a den process that goes on in the background and waits for the one
/// line `word` it prints once it is up. Otherwise its stderr becomes the
/// error, carrying its exit code.
pub fn background(mut cmd: Command, word: &str, what: &str) -> anyhow::Result<()> {
    cmd.stdin(Stdio::null());
    spawn_background(cmd, word, what).map(drop)
}

/// [`background`] with the caller's choice of stdin; returns the process,
/// which lives on in its own session. It reports on its stdout through
/// den's typed channel (`den_sandbox::container::report::Background`).
fn spawn_background(
    mut cmd: Command,
    word: &str,
    what: &str,
) -> anyhow::Result<std::process::Child> {
    use den_sandbox::channel::Receiver;
    use den_sandbox::container::report::Background;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    drop(cmd); // our copy of its stdin, if we gave it one
    let stdout = OwnedFd::from(child.stdout.take().expect("piped"));
    let report = Receiver::<Background>::from_fd(stdout).recv();
    let (code, msg) = match report {
        Ok(Some(Background::Up(w))) if w == word => {
            if den_sandbox::trace::enabled() {
                relay_trace(&mut child);
            }
            return Ok(child);
        }
        Ok(Some(Background::Failed { code, chain })) => {
            child.wait()?;
            (code, chain.join(": "))
        }
        Ok(_) => unexpected_end(&mut child, what, None)?,
        Err(e) => unexpected_end(&mut child, what, Some(e))?,
    };
    Err(anyhow::Error::new(ExitWith(code)).context(msg))
}

/// A background process that ended without its report: its stderr (a
/// panic, a flag error) or its status becomes the error.
fn unexpected_end(
    child: &mut std::process::Child,
    what: &str,
    channel: Option<den_sandbox::channel::ChannelError>,
) -> anyhow::Result<(i32, String)> {
    use std::io::Read;
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut err)
        .ok();
    let status = child.wait()?;
    let msg = err.trim().trim_start_matches("den: ");
    let code = status.code().unwrap_or(125);
    let msg = match (msg.is_empty(), channel) {
        (false, _) => msg.to_string(),
        (true, Some(e)) => format!("{what} exited with {status}: {e}"),
        (true, None) => format!("{what} exited with {status}"),
    };
    Ok((code, msg))
}

/// Copies the trace lines a background den wrote before it was up (its
/// stderr, which its children keep open: read only what is there).
fn relay_trace(child: &mut std::process::Child) {
    use std::io::{Read, Write};
    let Some(mut err) = child.stderr.take() else {
        return;
    };
    if rustix::fs::fcntl_setfl(&err, rustix::fs::OFlags::NONBLOCK).is_err() {
        return;
    }
    let mut text = Vec::new();
    err.read_to_end(&mut text).ok();
    std::io::stderr().write_all(&text).ok();
}

/// Starts the supervisor of a `-t` container in the background with this
/// terminal attached to the container's through a socket pair (so no output
/// is missed), and relays until the container exits or the user detaches.
/// `wait`: after the exit, also wait for the supervisor to finish (it
/// removes a `--rm` container). Returns den's exit code: the container's,
/// or 0 after a detach.
pub fn start_terminal(
    ctx: &Context,
    spec: &Path,
    interactive: bool,
    detach_keys: Option<&str>,
    wait: bool,
) -> anyhow::Result<i32> {
    use crate::terminal::{Outcome, session};
    let keys = match detach_keys {
        Some(k) => crate::terminal::parse_detach_keys(k)?,
        None => crate::terminal::DEFAULT_DETACH_KEYS.to_vec(),
    };
    let (mut ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    // The first frame: the window size the container's terminal starts with.
    crate::terminal::send_size(&mut ours).ok();
    let mut cmd = supervisor(ctx, spec)?;
    cmd.args(["--detach", "--attach-stdin"])
        .stdin(Stdio::from(OwnedFd::from(theirs)));
    let mut child = spawn_background(cmd, "started", "the container supervisor")?;
    let dir = spec.parent().unwrap_or(Path::new("."));
    let outcome = session(ours, interactive, keys, dir)?;
    let code = match outcome {
        Outcome::Detached => return Ok(0),
        Outcome::Exited(code) => code,
        Outcome::Lost => {
            child.wait().ok();
            let state = den_sandbox::container::state::State::read(dir);
            return Ok(state.and_then(|s| s.exit_code).unwrap_or(125));
        }
    };
    if wait {
        child.wait().ok();
    }
    Ok(code)
}

/// An error that carries the exit code den should end with (126/127 from the container set-up).
#[derive(Debug)]
pub struct ExitWith(pub i32);

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}

impl std::error::Error for ExitWith {}

/// Runs `cmd` (a supervisor or `den __internal exec`) attached to this
/// terminal or these pipes; returns its exit code.
pub fn attach(mut cmd: Command, interactive: bool, tty: bool) -> anyhow::Result<i32> {
    // SIGINT and SIGQUIT from the terminal reach the container directly
    // (same process group); den must outlive them to report the exit code.
    let _quiet = signal_hook::flag::register(signal_hook::consts::SIGINT, Default::default())?;
    let _quiet_quit =
        signal_hook::flag::register(signal_hook::consts::SIGQUIT, Default::default())?;
    if tty {
        return start_with_pty(cmd, interactive);
    }
    cmd.stdin(if interactive {
        Stdio::inherit()
    } else {
        Stdio::null()
    });
    let child = cmd
        .spawn()
        .context("cannot start the container supervisor")?;
    wait_forwarding(child)
}

/// `den exec -t`: the child opens a pty of the container's own /dev/pts
/// and sends its master back on a socket that is its stdin (see
/// `den_sandbox::container::pty::take_terminal`); den relays it.
fn start_with_pty(mut cmd: Command, interactive: bool) -> anyhow::Result<i32> {
    let (ours, theirs) =
        std::os::unix::net::UnixStream::pair().context("cannot create a socket pair")?;
    cmd.stdin(Stdio::from(OwnedFd::from(theirs)));
    let child = cmd.spawn().context("cannot start den exec's child")?;
    drop(cmd);
    let received = den_sandbox::container::pty::receive_master(ours.as_fd());
    drop(ours);
    // None: it failed before (and says why on stderr) or sent no pty master.
    let Some(master) = received.context("cannot receive the container's terminal")? else {
        return wait_forwarding(child);
    };
    let stdin_tty = std::io::stdin().is_terminal();
    if stdin_tty {
        den_sandbox::pty::copy_window_size(std::io::stdin().as_fd(), master.as_fd())?;
    }
    let raw = if interactive && stdin_tty {
        RawMode::enter(std::io::stdin().as_fd())?
    } else {
        None
    };
    let input = if interactive {
        Some(std::io::stdin().as_fd().try_clone_to_owned()?)
    } else {
        None
    };
    let output = std::io::stdout().as_fd().try_clone_to_owned()?;
    let resize = if stdin_tty {
        Some(std::io::stdin().as_fd().try_clone_to_owned()?)
    } else {
        None
    };
    let relay = relay(master, input, output, resize)?;
    let code = wait_forwarding(child);
    relay.finish();
    drop(raw);
    code
}

/// Waits for the supervisor, passing SIGTERM, SIGHUP, SIGUSR1/2 on to it.
fn wait_forwarding(mut child: std::process::Child) -> anyhow::Result<i32> {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut signals = Signals::new([SIGTERM, SIGHUP, SIGUSR1, SIGUSR2])?;
    let handle = signals.handle();
    let forwarder = std::thread::spawn(move || {
        for sig in signals.forever() {
            if let Ok(sig) = nix::sys::signal::Signal::try_from(sig) {
                nix::sys::signal::kill(pid, sig).ok();
            }
        }
    });
    let status = child.wait().context("waiting for the container")?;
    handle.close();
    forwarder.join().ok();
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
