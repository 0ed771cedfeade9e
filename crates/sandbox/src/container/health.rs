//! Health checks, run by the container's own supervisor (there is no daemon).
//!
//! Theory of operation. A container with a check ([`Check`], from
//! `--health-*` or the image's HEALTHCHECK) gets a [`Runner`] in its
//! supervisor's event loop: a timer, not a thread. When a probe is due the
//! supervisor forks a probe process:
//!
//! ```text
//! supervisor (in the container's user namespace) ──fork──► probe
//!   polls: the probe's output pipe (kept up to      1. stdin /dev/null, stdout and stderr
//!   MAX_OUTPUT bytes, the rest read and dropped)       the output pipe
//!   and its verdict channel                          2. join the container's namespaces (the
//!                                                       supervisor's handles, `nsfds`) and fork
//!                                                       the command as `den exec` does
//!                                                       (`join::spawn`: same user, env,
//!                                                       seccomp, capabilities)
//!                                                    3. wait for it until the timeout; past
//!                                                       it, SIGKILL its process group (it has
//!                                                       a session of its own)
//!                                                    4. send the [`Verdict`] on the
//!                                                       report channel (`channel.rs`):
//!                                                       its exit code, timed out, or why
//!                                                       it could not run
//! ```
//!
//! The result goes into [`Health`] (Docker's `State.Health`: status,
//! failing streak, the last [`MAX_LOG`] results), which the supervisor writes
//! to `health.json` in the container's directory (0600, temp file + rename)
//! after every probe; `den ps`, `den inspect` and `den healthcheck run` read
//! it. Docker's rules: the first probe runs one interval after the start
//! (`start_interval` instead while in `start_period` and still starting);
//! a failure in the start period does not count; `retries` failures in a
//! row make the container unhealthy, one success healthy.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::join::{self, ExecRequest};
use super::nsfds::Namespaces;
use super::spec::ContainerSpec;
use super::state::now_rfc3339;
use super::{SetupError, security};
use crate::channel::{self, fork_reporting};
use crate::sys::{self, ChildExit};

/// Output kept per probe (Docker's limit).
pub const MAX_OUTPUT: usize = 4096;
/// Results kept in the log (Docker's limit).
pub const MAX_LOG: usize = 5;
/// The largest `health.json` a reader accepts.
const MAX_FILE: u64 = 1 << 20;
/// Docker's defaults.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRIES: u32 = 3;

/// A container's health check, as the cli decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// The command, run in the container like `den exec`. A spec.json
    /// written by an older den holds a plain argv here (a shell check
    /// already as `/bin/sh -c CMD`): it reads as [`Command::Exec`].
    #[serde(deserialize_with = "command_or_argv")]
    pub test: Command,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: u32,
}

/// What a check runs, in the form it was given (Docker shows it back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// `["CMD", arg…]`: run directly.
    Exec(Vec<String>),
    /// `["CMD-SHELL", cmd]`, `--health-cmd`: run with `/bin/sh -c`.
    Shell(String),
}

impl Command {
    /// The argv the probe runs.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Self::Exec(args) => args.clone(),
            Self::Shell(cmd) => vec!["/bin/sh".into(), "-c".into(), cmd.clone()],
        }
    }

    /// Docker's `Healthcheck.Test`: `["CMD", …]` or `["CMD-SHELL", cmd]`.
    pub fn docker_test(&self) -> Vec<String> {
        match self {
            Self::Exec(args) => std::iter::once("CMD".to_owned())
                .chain(args.iter().cloned())
                .collect(),
            Self::Shell(cmd) => vec!["CMD-SHELL".into(), cmd.clone()],
        }
    }
}

/// [`Command`], or the plain argv an older den wrote.
fn command_or_argv<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Command, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Typed(Command),
        Argv(Vec<String>),
    }
    Ok(match Stored::deserialize(d)? {
        Stored::Typed(c) => c,
        Stored::Argv(argv) => Command::Exec(argv),
    })
}

/// What a Docker `Test` list asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    /// `[]`: nothing said (inherit).
    Inherit,
    /// `["NONE"]`: no check.
    Disabled,
    /// `["CMD", …]` or `["CMD-SHELL", cmd]`: the command to run.
    Run(Command),
}

impl Test {
    /// Docker's `Healthcheck.Test` forms; `Err` names what is wrong.
    pub fn parse(test: &[String]) -> Result<Test, String> {
        match test.split_first() {
            None => Ok(Test::Inherit),
            Some((k, [])) if k == "NONE" => Ok(Test::Disabled),
            Some((k, args)) if k == "CMD" && !args.is_empty() => {
                Ok(Test::Run(Command::Exec(args.to_vec())))
            }
            Some((k, [cmd])) if k == "CMD-SHELL" => Ok(Test::Run(Command::Shell(cmd.clone()))),
            Some((k, _)) => Err(format!(
                "health check test {k:?}: use [\"CMD\", ARG…], [\"CMD-SHELL\", COMMAND] or [\"NONE\"]"
            )),
        }
    }
}

/// `State.Health.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Starting,
    Healthy,
    Unhealthy,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// One probe's result (`State.Health.Log[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    pub start: String,
    pub end: String,
    /// The command's exit code; -1 when it was cut at the timeout.
    pub exit_code: i32,
    pub output: String,
}

/// Docker's `State.Health`, kept in `health.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: Status,
    pub failing_streak: u32,
    pub log: Vec<Probe>,
}

/// What the probe process tells the supervisor about its command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Verdict {
    /// The command ended with this code (128 + N for signal N).
    Exited(i32),
    /// It ran past the timeout and was killed.
    TimedOut,
    /// It could not be started (`code`: Docker's 125/126/127).
    CannotRun { code: i32, error: String },
}

type VerdictRx = channel::Receiver<Verdict>;

pub fn path(dir: &Path) -> std::path::PathBuf {
    dir.join("health.json")
}

/// The container's health as its supervisor last wrote it (bounded read).
pub fn read(dir: &Path) -> Option<Health> {
    den_atomic::read_json(&path(dir), MAX_FILE).ok()
}

impl Health {
    pub fn starting() -> Health {
        Health {
            status: Status::Starting,
            failing_streak: 0,
            log: Vec::new(),
        }
    }

    /// Docker's `handleProbeResult`: `in_start_period` when the probe
    /// started within the start period.
    pub fn record(&mut self, probe: Probe, retries: u32, in_start_period: bool) {
        if probe.exit_code == 0 {
            self.failing_streak = 0;
            self.status = Status::Healthy;
        } else if !(self.status == Status::Starting && in_start_period) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = Status::Unhealthy;
            }
        }
        self.log.push(probe);
        let extra = self.log.len().saturating_sub(MAX_LOG);
        self.log.drain(..extra);
    }

    fn write(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).expect("health serializes");
        super::state::write_private(dir, "health.json", &bytes)
    }
}

/// A probe process that has not reported yet.
struct Running {
    child: sys::ForkedChild,
    output: std::fs::File,
    verdict: VerdictRx,
    kept: Vec<u8>,
    start: String,
    started: Instant,
}

/// The supervisor's side: when to probe, the probe running, the results.
pub(super) struct Runner<'a> {
    check: &'a Check,
    spec: &'a ContainerSpec,
    prepared: &'a security::Prepared,
    ns: &'a Namespaces,
    started: Instant,
    next: Instant,
    /// A probe was asked for (`den healthcheck run`) while one ran.
    again: bool,
    running: Option<Running>,
    health: Health,
}

impl<'a> Runner<'a> {
    /// For one run of the container whose namespaces are `ns`; its health
    /// starts as `starting`.
    pub(super) fn new(
        check: &'a Check,
        spec: &'a ContainerSpec,
        prepared: &'a security::Prepared,
        ns: &'a Namespaces,
    ) -> Self {
        let now = Instant::now();
        let mut r = Runner {
            check,
            spec,
            prepared,
            ns,
            started: now,
            next: now,
            again: false,
            running: None,
            health: Health::starting(),
        };
        r.next = now + r.interval();
        r.save();
        r
    }

    fn interval(&self) -> Duration {
        let c = self.check;
        let early = self.started.elapsed() < c.start_period;
        if early && self.health.status == Status::Starting {
            c.start_interval
        } else {
            c.interval
        }
    }

    /// `den healthcheck run`: probe now (or right after the one running).
    pub(super) fn run_now(&mut self) {
        match self.running {
            Some(_) => self.again = true,
            None => self.next = Instant::now(),
        }
    }

    /// The descriptors to poll: the running probe's output and verdict.
    pub(super) fn poll_fds(&self) -> Vec<std::os::fd::BorrowedFd<'_>> {
        match &self.running {
            Some(r) => vec![r.output.as_fd(), r.verdict.as_fd()],
            None => Vec::new(),
        }
    }

    /// How long the supervisor may sleep before [`Runner::tick`] has work.
    pub(super) fn wait(&self) -> Duration {
        let until = match &self.running {
            // A safety net only: the probe process cuts the command itself.
            Some(r) => r.started + self.check.timeout + Duration::from_secs(2),
            None => self.next,
        };
        until.saturating_duration_since(Instant::now())
    }

    /// After a poll: `readable` says which of [`Runner::poll_fds`] were ready.
    pub(super) fn tick(&mut self, readable: &[bool]) {
        if let Some(r) = self.running.as_mut() {
            if readable.first() == Some(&true) {
                read_bounded(&mut r.output, &mut r.kept);
            }
            let overdue = r.started.elapsed() > self.check.timeout + Duration::from_secs(2);
            if readable.get(1) == Some(&true) || overdue {
                let r = self.running.take().expect("checked above");
                self.finish(r);
            }
        }
        if self.running.is_none() && Instant::now() >= self.next {
            self.start();
        }
    }

    fn start(&mut self) {
        let start = now_rfc3339();
        match spawn_probe(self.spec, self.prepared, self.ns, self.check) {
            Ok((child, output, verdict)) => {
                self.running = Some(Running {
                    child,
                    output,
                    verdict,
                    kept: Vec::new(),
                    start,
                    started: Instant::now(),
                });
            }
            Err(e) => {
                let probe = Probe {
                    start,
                    end: now_rfc3339(),
                    exit_code: -1,
                    output: format!("cannot start the health check: {e}"),
                };
                self.record(probe, Instant::now());
            }
        }
    }

    fn finish(&mut self, mut r: Running) {
        // The probe exits right after its verdict (an overdue one is
        // killed here); the verdict stays in the pipe, and every sender is
        // closed now, so `recv` cannot block.
        drop(r.child);
        let verdict = r.verdict.recv();
        read_bounded(&mut r.output, &mut r.kept);
        drop(r.output);
        let mut output = String::from_utf8_lossy(&r.kept).into_owned();
        let timed_out = timed_out_output(self.check.timeout);
        let exit_code = match verdict {
            Ok(Some(Verdict::Exited(code))) => code,
            // Overdue: killed before it could say anything.
            Ok(Some(Verdict::TimedOut)) | Ok(None) => {
                output = timed_out;
                -1
            }
            Ok(Some(Verdict::CannotRun { code, error })) => {
                output.push_str(&error);
                code
            }
            Err(e) => {
                output = format!("the health check's report is not valid: {e}");
                -1
            }
        };
        let probe = Probe {
            start: r.start,
            end: now_rfc3339(),
            exit_code,
            output,
        };
        self.record(probe, r.started);
    }

    fn record(&mut self, probe: Probe, started: Instant) {
        let early = started.duration_since(self.started) < self.check.start_period;
        self.health.record(probe, self.check.retries, early);
        self.save();
        self.next = match std::mem::take(&mut self.again) {
            true => Instant::now(),
            false => Instant::now() + self.interval(),
        };
    }

    fn save(&self) {
        if let Some(dir) = &self.spec.state_dir
            && let Err(e) = self.health.write(dir)
        {
            eprintln!(
                "den: warning: cannot record the container's health in {}: {e}",
                dir.display()
            );
        }
    }
}

/// A cut probe's output: Docker's words, the timeout as Go prints it
/// (`%v`: `1m30s`, `500ms`).
fn timed_out_output(timeout: Duration) -> String {
    format!(
        "Health check exceeded timeout ({})",
        den_duration::format_std(timeout)
    )
}

/// Reads what is there (the pipe is non-blocking), keeping at most
/// [`MAX_OUTPUT`] bytes in `kept`.
fn read_bounded(f: &mut std::fs::File, kept: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = f.read(&mut buf) {
        let room = MAX_OUTPUT - kept.len().min(MAX_OUTPUT);
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
}

type Probing = (sys::ForkedChild, std::fs::File, VerdictRx);

/// Forks the probe process (see the module doc).
fn spawn_probe(
    spec: &ContainerSpec,
    prepared: &security::Prepared,
    ns: &Namespaces,
    check: &Check,
) -> Result<Probing, SetupError> {
    let flags = rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK;
    let (out_r, out_w) = rustix::pipe::pipe_with(flags).map_err(|e| SetupError::Io {
        what: "create a pipe".into(),
        path: "pipe".into(),
        source: e.into(),
    })?;
    let timeout = check.timeout;
    let req = ExecRequest {
        args: check.test.argv(),
        env: Vec::new(),
        cwd: None,
        user: None,
        terminal: false,
        size: None,
    };
    let (child, verdict, out_r) = fork_reporting(false, out_r, move |tx| {
        probe_main(spec, prepared, ns, &req, timeout, out_w, tx)
    })?;
    Ok((child, out_r.into(), verdict))
}

/// The probe process: runs the command, sends its [`Verdict`].
fn probe_main(
    spec: &ContainerSpec,
    prepared: &security::Prepared,
    ns: &Namespaces,
    req: &ExecRequest,
    timeout: Duration,
    output: OwnedFd,
    mut verdict: channel::Sender<Verdict>,
) -> i32 {
    if let Ok(null) = std::fs::File::open("/dev/null") {
        rustix::stdio::dup2_stdin(&null).ok();
    }
    rustix::stdio::dup2_stdout(&output).ok();
    rustix::stdio::dup2_stderr(&output).ok();
    drop(output);
    // The supervisor blocks SIGPIPE; the command gets it as usual.
    let mut pipe = nix::sys::signal::SigSet::empty();
    pipe.add(nix::sys::signal::Signal::SIGPIPE);
    pipe.thread_unblock().ok();
    let msg = match join::spawn(spec, prepared, ns, req) {
        Ok(child) => match wait_until(child, timeout) {
            Some(code) => Verdict::Exited(code),
            None => Verdict::TimedOut,
        },
        Err(e) => Verdict::CannotRun {
            code: e.exit_code(),
            error: e.to_string(),
        },
    };
    // Nothing else to tell: the supervisor reads a missing verdict as a
    // probe that was cut.
    verdict.send(&msg).map_or(1, |()| 0)
}

/// The command's status, or `None` when it ran past `timeout` (then it and
/// its process group are killed).
fn wait_until(mut child: sys::ForkedChild, timeout: Duration) -> Option<i32> {
    use rustix::process::{PidfdFlags, pidfd_open};
    let pid = child.pid();
    let deadline = Instant::now() + timeout;
    let pidfd = rustix::process::Pid::from_raw(pid.as_raw())
        .and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok());
    loop {
        if let Ok(Some(exit)) = child.try_wait() {
            return Some(match exit {
                ChildExit::Code(c) => c,
                ChildExit::Signal(s) => 128 + s as i32,
            });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let wait = left.min(Duration::from_millis(100));
        match &pidfd {
            Some(fd) => {
                let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
                let ts = rustix::event::Timespec {
                    tv_sec: wait.as_secs() as i64,
                    tv_nsec: wait.subsec_nanos() as i64,
                };
                rustix::event::poll(&mut fds, Some(&ts)).ok();
            }
            None => std::thread::sleep(wait),
        }
    }
    // It has a session, so a process group, of its own.
    nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL).ok();
    drop(child);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn docker_test_forms() {
        assert_eq!(Test::parse(&[]), Ok(Test::Inherit));
        assert_eq!(Test::parse(&s(&["NONE"])), Ok(Test::Disabled));
        assert_eq!(
            Test::parse(&s(&["CMD", "true", "x"])),
            Ok(Test::Run(Command::Exec(s(&["true", "x"]))))
        );
        assert_eq!(
            Test::parse(&s(&["CMD-SHELL", "test -f /ok"])),
            Ok(Test::Run(Command::Shell("test -f /ok".into())))
        );
        assert!(Test::parse(&s(&["CMD"])).is_err());
        assert!(Test::parse(&s(&["bogus", "x"])).is_err());
    }

    #[test]
    fn a_cut_probe_names_its_timeout_as_go_prints_it() {
        for (d, shown) in [
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_millis(1500), "1.5s"),
        ] {
            assert_eq!(
                timed_out_output(d),
                format!("Health check exceeded timeout ({shown})")
            );
        }
    }

    #[test]
    fn commands_keep_their_docker_form_and_old_specs_still_read() {
        let shell = Command::Shell("test -f /ok".into());
        assert_eq!(shell.argv(), s(&["/bin/sh", "-c", "test -f /ok"]));
        assert_eq!(shell.docker_test(), s(&["CMD-SHELL", "test -f /ok"]));
        let exec = Command::Exec(s(&["true", "x"]));
        assert_eq!(exec.docker_test(), s(&["CMD", "true", "x"]));
        let check = |test: serde_json::Value| {
            serde_json::from_value::<Check>(serde_json::json!({
                "test": test, "interval": {"secs": 1, "nanos": 0},
                "timeout": {"secs": 1, "nanos": 0}, "start_period": {"secs": 0, "nanos": 0},
                "start_interval": {"secs": 5, "nanos": 0}, "retries": 3
            }))
            .unwrap()
            .test
        };
        // An older den's spec.json: the argv it ran.
        assert_eq!(
            check(serde_json::json!(["/bin/sh", "-c", "x"])),
            Command::Exec(s(&["/bin/sh", "-c", "x"]))
        );
        assert_eq!(check(serde_json::to_value(&shell).unwrap()), shell);
    }

    fn probe(code: i32) -> Probe {
        Probe {
            start: String::new(),
            end: String::new(),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn streaks_like_docker() {
        let mut h = Health::starting();
        h.record(probe(1), 2, true);
        assert_eq!((h.status, h.failing_streak), (Status::Starting, 0));
        h.record(probe(1), 2, false);
        assert_eq!((h.status, h.failing_streak), (Status::Starting, 1));
        h.record(probe(-1), 2, false);
        assert_eq!((h.status, h.failing_streak), (Status::Unhealthy, 2));
        h.record(probe(0), 2, false);
        assert_eq!((h.status, h.failing_streak), (Status::Healthy, 0));
        // Once healthy, the start period no longer forgives.
        h.record(probe(1), 1, true);
        assert_eq!(h.status, Status::Unhealthy);
        for _ in 0..10 {
            h.record(probe(0), 1, false);
        }
        assert_eq!(h.log.len(), MAX_LOG);
    }

    #[test]
    fn verdicts_round_trip_on_the_channel() {
        let (mut tx, mut rx) = channel::channel::<Verdict>().unwrap();
        let sent = [
            Verdict::Exited(0),
            Verdict::Exited(137),
            Verdict::TimedOut,
            Verdict::CannotRun {
                code: 127,
                error: "executable file not found: nope".into(),
            },
        ];
        for v in &sent {
            tx.send(v).unwrap();
        }
        drop(tx);
        for v in sent {
            assert_eq!(rx.recv().unwrap(), Some(v));
        }
        // The probe gone without a verdict: end-of-file, read as cut.
        assert_eq!(rx.recv().unwrap(), None);
    }

    #[test]
    fn docker_shape() {
        let mut h = Health::starting();
        h.record(probe(0), 3, false);
        let v = serde_json::to_value(&h).unwrap();
        assert_eq!(v["Status"], "healthy");
        assert_eq!(v["FailingStreak"], 0);
        assert_eq!(v["Log"][0]["ExitCode"], 0);
        for k in ["Start", "End", "Output"] {
            assert!(v["Log"][0][k].is_string(), "{k}");
        }
    }
}
