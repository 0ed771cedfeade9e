//! Starting the container's supervisor from the CLI and staying attached:
//! plain pipes, or a pty with the caller's terminal in raw mode; signals
//! sent to den are passed on.
//!
//! The supervisor is a fork of this process when it has one thread (the
//! usual case: no pull started an async runtime), made as clean as a fresh
//! exec (`den_sandbox::container::fork_clean`); otherwise a fresh
//! `den __internal container SPEC`. Either runs `cmd::internal::supervise`.

use std::io::IsTerminal;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context as _;
use den_sandbox::pty::{RawMode, relay};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

use crate::context::Context;

/// A child's stdin, stdout and stderr: `None` keeps den's own.
type ChildStdio = den_sandbox::container::ChildStdio;

/// The supervisor's flags (`den __internal container --detach --attach-stdin`).
#[derive(Clone, Copy, Default)]
struct Flags {
    detach: bool,
    attach_stdin: bool,
}

/// Runs the supervisor for `spec` attached and returns the container's exit code.
pub fn start(ctx: &Context, spec: &Path, interactive: bool, tty: bool) -> anyhow::Result<i32> {
    let spawn = |stdio| spawn_supervisor(ctx, spec, Flags::default(), stdio);
    attach_with(spawn, interactive, tty)
}

/// Starts the supervisor: forked when this process has one thread, else
/// executed afresh. Returns its pid; the caller reaps it.
fn spawn_supervisor(
    ctx: &Context,
    spec: &Path,
    flags: Flags,
    stdio: ChildStdio,
) -> anyhow::Result<Pid> {
    if !den_sandbox::container::single_threaded() {
        return spawn_command(exec_supervisor(ctx, spec, flags)?, stdio)
            .context("cannot start the container supervisor");
    }
    crate::log::debug(format_args!(
        "forking the supervisor for {}",
        spec.display()
    ));
    let follow: Vec<_> = den_sandbox::trace::out_fd().into_iter().collect();
    let supervise = move || {
        den_sandbox::trace::phase("spawn");
        retitle(spec);
        let mapping = den_sandbox::idmap::IdMapping::detect();
        match crate::cmd::internal::supervise(ctx, spec, &mapping, flags.detach, flags.attach_stdin)
        {
            Ok(code) => code,
            Err(e) => {
                eprintln!("den: {}", crate::chain(&e));
                125
            }
        }
    };
    den_sandbox::container::fork_clean(stdio, &follow, supervise)
        .context("cannot start the container supervisor")
}

/// Gives a forked supervisor the command line `den __internal container
/// ID`, so `ps` and `pkill -f` never take it for the container's command,
/// which `den run`'s holds.
fn retitle(spec: &Path) {
    let id = spec
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    den_sandbox::container::set_cmdline(&["den", "__internal", "container", &id]);
}

/// `den __internal container SPEC` with `flags`, for a threaded CLI.
fn exec_supervisor(ctx: &Context, spec: &Path, flags: Flags) -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("cannot find den's own binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(&ctx.root)
        .args(["__internal", "container"])
        .arg(spec);
    if flags.detach {
        cmd.arg("--detach");
    }
    if flags.attach_stdin {
        cmd.arg("--attach-stdin");
    }
    cmd.envs(den_sandbox::trace::child_env());
    crate::log::debug(format_args!(
        "starting the supervisor: {} --root {} __internal container {}",
        cmd.get_program().to_string_lossy(),
        ctx.root.display(),
        spec.display()
    ));
    Ok(cmd)
}

/// Spawns `cmd` with `stdio`; returns its pid (the caller reaps it).
fn spawn_command(mut cmd: Command, stdio: ChildStdio) -> std::io::Result<Pid> {
    let [stdin, stdout, stderr] = stdio;
    let pass = |fd: Option<OwnedFd>| fd.map_or_else(Stdio::inherit, Stdio::from);
    cmd.stdin(pass(stdin))
        .stdout(pass(stdout))
        .stderr(pass(stderr));
    let child = cmd.spawn()?;
    Ok(Pid::from_raw(child.id() as i32))
}

fn dev_null() -> anyhow::Result<OwnedFd> {
    Ok(fs_err::File::open("/dev/null")?.into_parts().0.into())
}

/// Starts the supervisor in the background (its own session; output goes to
/// the container's log) and returns once the container's command runs, or
/// with the supervisor's error when it could not be started.
pub fn start_detached(ctx: &Context, spec: &Path) -> anyhow::Result<()> {
    let (stdio, reads) = report_pipes(dev_null()?)?;
    let flags = Flags {
        detach: true,
        attach_stdin: false,
    };
    let pid = spawn_supervisor(ctx, spec, flags, stdio)?;
    await_up(pid, reads, "started", "the container supervisor").map(drop)
}

/// Spawns a den process that goes on in the background and waits for the one
/// line `word` it prints once it is up. Otherwise its stderr becomes the
/// error, carrying its exit code.
pub fn background(cmd: Command, word: &str, what: &str) -> anyhow::Result<()> {
    let (stdio, reads) = report_pipes(dev_null()?)?;
    let pid = spawn_command(cmd, stdio).with_context(|| format!("cannot start {what}"))?;
    await_up(pid, reads, word, what).map(drop)
}

/// [`background`] for a den that forks the process which goes on, and exits
/// (the user namespace keeper): that first process is reaped here, so it is
/// nobody's zombie, and what goes on is not this process's child.
pub fn background_forked(cmd: Command, word: &str, what: &str) -> anyhow::Result<()> {
    let (stdio, reads) = report_pipes(dev_null()?)?;
    let pid = spawn_command(cmd, stdio).with_context(|| format!("cannot start {what}"))?;
    await_up(pid, reads, word, what)?.wait().map(drop)
}

/// The stdio of a background den (`stdin`, and pipes for stdout and
/// stderr), and the read ends of those pipes.
fn report_pipes(stdin: OwnedFd) -> anyhow::Result<(ChildStdio, [OwnedFd; 2])> {
    use rustix::pipe::{PipeFlags, pipe_with};
    let (out_r, out_w) = pipe_with(PipeFlags::CLOEXEC).context("cannot create a pipe")?;
    let (err_r, err_w) = pipe_with(PipeFlags::CLOEXEC).context("cannot create a pipe")?;
    Ok(([Some(stdin), Some(out_w), Some(err_w)], [out_r, err_r]))
}

/// A den child that reported it is up and goes on in the background.
struct Running {
    pid: Pid,
}

impl Running {
    fn wait(&self) -> anyhow::Result<Exit> {
        wait_exit(self.pid)
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy)]
enum Exit {
    Code(i32),
    Signal(nix::sys::signal::Signal),
}

impl Exit {
    /// den's exit code for it: the child's, or 128+N after signal N.
    fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s as i32,
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit status: {c}"),
            Exit::Signal(s) => write!(f, "signal: {} ({s})", *s as i32),
        }
    }
}

/// Waits for child `pid` and reaps it.
fn wait_exit(pid: Pid) -> anyhow::Result<Exit> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, c)) => return Ok(Exit::Code(c)),
            Ok(WaitStatus::Signaled(_, s, _)) => return Ok(Exit::Signal(s)),
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot wait for process {pid}")),
        }
    }
}

/// Waits for the report of background den `pid` on its stdout (den's
/// typed channel: `den_sandbox::container::report::Background`).
fn await_up(
    pid: Pid,
    [stdout, stderr]: [OwnedFd; 2],
    word: &str,
    what: &str,
) -> anyhow::Result<Running> {
    use den_sandbox::channel::Receiver;
    use den_sandbox::container::report::Background;
    let mut stderr = std::fs::File::from(stderr);
    let report = Receiver::<Background>::from_fd(stdout).recv();
    let (code, msg) = match report {
        Ok(Some(Background::Up(w))) if w == word => {
            if den_sandbox::trace::enabled() {
                relay_trace(&mut stderr);
            }
            return Ok(Running { pid });
        }
        Ok(Some(Background::Failed { code, chain })) => {
            wait_exit(pid)?;
            (code, chain.join(": "))
        }
        Ok(_) => unexpected_end(pid, &mut stderr, what, None)?,
        Err(e) => unexpected_end(pid, &mut stderr, what, Some(e))?,
    };
    Err(anyhow::Error::new(ExitWith(code)).context(msg))
}

/// A background process that ended without its report: its stderr (a
/// panic, a flag error) or its status becomes the error.
fn unexpected_end(
    pid: Pid,
    stderr: &mut std::fs::File,
    what: &str,
    channel: Option<den_sandbox::channel::ChannelError>,
) -> anyhow::Result<(i32, String)> {
    use std::io::Read;
    let mut err = String::new();
    stderr.read_to_string(&mut err).ok();
    let status = wait_exit(pid)?;
    let msg = err.trim().trim_start_matches("den: ");
    let code = match status {
        Exit::Code(c) => c,
        Exit::Signal(_) => 125,
    };
    let msg = match (msg.is_empty(), channel) {
        (false, _) => msg.to_string(),
        (true, Some(e)) => format!("{what} exited with {status}: {e}"),
        (true, None) => format!("{what} exited with {status}"),
    };
    Ok((code, msg))
}

/// Copies the trace lines a background den wrote before it was up (its
/// stderr, which its children keep open: read only what is there).
fn relay_trace(err: &mut std::fs::File) {
    use std::io::{Read, Write};
    if rustix::fs::fcntl_setfl(&*err, rustix::fs::OFlags::NONBLOCK).is_err() {
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
    let (stdio, reads) = report_pipes(OwnedFd::from(theirs))?;
    let flags = Flags {
        detach: true,
        attach_stdin: true,
    };
    let pid = spawn_supervisor(ctx, spec, flags, stdio)?;
    let child = await_up(pid, reads, "started", "the container supervisor")?;
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

/// Runs `cmd` (`den __internal exec`) attached to this terminal or these
/// pipes; returns its exit code.
pub fn attach(cmd: Command, interactive: bool, tty: bool) -> anyhow::Result<i32> {
    let spawn = |stdio| spawn_command(cmd, stdio).context("cannot start the container process");
    attach_with(spawn, interactive, tty)
}

/// Runs what `spawn` starts attached to this terminal (`tty`: through a
/// new pty) or to den's stdio; returns its exit code.
fn attach_with(
    spawn: impl FnOnce(ChildStdio) -> anyhow::Result<Pid>,
    interactive: bool,
    tty: bool,
) -> anyhow::Result<i32> {
    // SIGINT and SIGQUIT from the terminal reach the container directly
    // (same process group); den must outlive them to report the exit code.
    let _quiet = signal_hook::flag::register(signal_hook::consts::SIGINT, Default::default())?;
    let _quiet_quit =
        signal_hook::flag::register(signal_hook::consts::SIGQUIT, Default::default())?;
    if tty {
        return start_with_pty(spawn, interactive);
    }
    let stdin = match interactive {
        true => None,
        false => Some(dev_null()?),
    };
    let pid = spawn([stdin, None, None])?;
    wait_forwarding(pid)
}

/// `den exec -t`: the child opens a pty of the container's own /dev/pts
/// and sends its master back on a socket that is its stdin (see
/// `den_sandbox::container::pty::take_terminal`); den relays it.
fn start_with_pty(
    spawn: impl FnOnce(ChildStdio) -> anyhow::Result<Pid>,
    interactive: bool,
) -> anyhow::Result<i32> {
    let (ours, theirs) =
        std::os::unix::net::UnixStream::pair().context("cannot create a socket pair")?;
    // `spawn` drops its copy of `theirs` once the child has it.
    let pid = spawn([Some(OwnedFd::from(theirs)), None, None])?;
    let received = den_sandbox::container::pty::receive_master(ours.as_fd());
    drop(ours);
    // None: it failed before (and says why on stderr) or sent no pty master.
    let Some(master) = received.context("cannot receive the container's terminal")? else {
        return wait_forwarding(pid);
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
    let code = wait_forwarding(pid);
    relay.finish();
    drop(raw);
    code
}

/// Waits for the child `pid`, passing SIGTERM, SIGHUP, SIGUSR1/2 on to it.
fn wait_forwarding(pid: Pid) -> anyhow::Result<i32> {
    let mut signals = Signals::new([SIGTERM, SIGHUP, SIGUSR1, SIGUSR2])?;
    let handle = signals.handle();
    let forwarder = std::thread::spawn(move || {
        for sig in signals.forever() {
            if let Ok(sig) = nix::sys::signal::Signal::try_from(sig) {
                nix::sys::signal::kill(pid, sig).ok();
            }
        }
    });
    let exit = wait_exit(pid).context("waiting for the container");
    handle.close();
    forwarder.join().ok();
    Ok(exit?.code())
}
