//! Driving pasta: finding it, what it supports, and starting it for one
//! network namespace.
//!
//! # Theory of operation
//!
//! pasta (Debian 12 ships a 2023 build) connects a network namespace to the
//! host with a tap device inside and ordinary sockets outside: outbound
//! connections become host sockets, published ports are host listeners, so
//! nothing needs privileges beyond a usable `/dev/net/tun`. Its host side is
//! the network namespace it *starts* in, so it must be started by a process
//! still in the host's network namespace. Two ways work rootless (both are
//! exercised by `tests/pasta.rs`, as root and as users with and without
//! subordinate ids):
//!
//! - [`Target::Pid`], from outside the container's user namespace (the CLI):
//!   `pasta … PID` joins `/proc/PID/ns/user` and `/proc/PID/ns/net`; as the
//!   owner of that user namespace it may.
//! - [`Target::NetnsFd`], from inside the user namespace that owns the
//!   network namespace (den's supervisor): pasta drops capabilities before
//!   it opens the namespace and may then not open `/proc/PID/ns/net` of a
//!   process with more capabilities (EACCES), so den passes the namespace as
//!   an inherited descriptor: `--netns /proc/self/fd/N --netns-only`.
//!
//! For `den run` the supervisor should own pasta: it lives exactly as long
//! as the container (also with `-d`, and across restarts). In the steps of
//! `sandbox::container`: after entering the user namespace (1) and before
//! unsharing the PID namespace (2: a child forked later would live in the
//! container's PID namespace, or even be its PID 1), create the network
//! namespace without entering it (a forked helper unshares `CLONE_NEWNET`,
//! the supervisor opens `/proc/HELPER/ns/net`, the helper exits) and
//! [`PastaConfig::spawn`] with that descriptor; the container process then
//! joins it with `setns` (4, before /sys is mounted) instead of unsharing
//! one; the supervisor drops the handle after the last reap (6). A process
//! already inside the new network namespace cannot start pasta: nothing in a
//! user namespace can setns back into the host's.
//!
//! Ready: pasta writes its PID file (`-P`) after it configured the interface
//! in the namespace (`--config-net`) and bound the published host ports;
//! [`PastaConfig::spawn`] waits for that file.
//!
//! Lifetime: this pasta does not notice when the namespace's processes are
//! gone (it holds the namespace itself; it only watches bind-mounted
//! namespace files), so its owner ends it: [`PastaHandle`] kills it when
//! dropped, and with [`PastaConfig::die_with_parent`] it runs under
//! `setpriv --pdeathsig KILL`, so the kernel kills it if the thread that
//! started it dies first (the owner must therefore be that thread: the
//! single-threaded supervisor, or the CLI's main thread). A caller that may
//! set the parent-death signal itself between fork and exec (den's sandbox,
//! the one place of den with `unsafe`) passes that to
//! [`PastaConfig::start_with`] and saves `setpriv`'s exec.
//!
//! Host loopback: by default pasta maps the gateway address to the host's
//! 127.0.0.1 and forwards ports bound on the host into the container's
//! loopback (`-T auto`). den turns both off (`--no-map-gw`, `-T none -U
//! none`); [`PastaConfig::allow_host_loopback`] keeps the gateway mapping,
//! and the gateway ([`crate::host::default_gateway_v4`]) is then the address
//! for `host.containers.internal`.
//!
//! DNS: with `--dns-forward ADDR`, queries to ADDR port 53 go to the first
//! nameserver of the host's /etc/resolv.conf (a loopback one such as
//! systemd-resolved's 127.0.0.53 too, even with `--no-map-gw`) and answers
//! come back from ADDR: the container's resolv.conf names ADDR. (This pasta's
//! `--dns` does not change where forwarded queries go, so den has no such
//! option.)
//!
//! UDP: Debian 12's pasta drops the answers to datagrams from the host's
//! loopback when the container port differs from the host port (`-p
//! 5353:53/udp` from 127.0.0.1; other hosts are answered). And with
//! `--no-map-gw` a datagram the host sends to its own external address
//! appears to come from the gateway, so the answer goes to the real gateway.
//!
//! Run as root in the initial user namespace, pasta switches to `nobody`,
//! who may not enter the container's user namespace: den passes
//! `--runas 0:0` then.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::NetError;
use crate::ports::{self, PortMapping, Proto};

/// Why pasta cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PastaError {
    #[error("pasta not found on PATH: install the passt package (it provides pasta)")]
    NotFound,
    #[error("cannot run pasta")]
    Spawn(#[source] io::Error),
    #[error("`pasta --version` failed ({status}): {stderr}")]
    Failed { status: String, stderr: String },
    #[error("`pasta --help` lists no options: {output}")]
    NoHelp { output: String },
}

/// Where the container's resolver is by default (what podman uses too): a
/// link-local address that no host network is likely to use.
pub const DEFAULT_DNS_FORWARD: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// How long pasta may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Run `pasta --version` and return the version it reports (the first line,
/// without the leading `pasta `), e.g. `unknown version` on Debian 12.
pub fn probe() -> Result<String, PastaError> {
    let out = Command::new("pasta")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(spawn_error)?;
    if !out.status.success() {
        return Err(PastaError::Failed {
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(parse_version(&String::from_utf8_lossy(&out.stdout)))
}

fn spawn_error(e: io::Error) -> PastaError {
    match e.kind() {
        io::ErrorKind::NotFound => PastaError::NotFound,
        _ => PastaError::Spawn(e),
    }
}

/// The version from `pasta --version` output.
fn parse_version(stdout: &str) -> String {
    let first = stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let version = first
        .strip_prefix("pasta")
        .map(str::trim_start)
        .unwrap_or(first);
    if version.is_empty() {
        "unknown version".to_owned()
    } else {
        version.to_owned()
    }
}

/// The options this pasta accepts, from its `--help`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Long options with their dashes (`--no-map-gw`) and short ones (`-t`).
    options: BTreeSet<String>,
}

impl Capabilities {
    /// Reads the option names from `--help` text: every line that starts
    /// with `-` contributes its leading `-x` / `--long` tokens.
    pub fn parse(help: &str) -> Capabilities {
        let options = help
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with('-'))
            .flat_map(|l| {
                l.split_whitespace()
                    .map(|t| t.trim_end_matches(','))
                    .take_while(|t| t.starts_with('-'))
                    .filter(|t| t.starts_with("--") || t.len() == 2)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        Capabilities { options }
    }

    /// Whether `option` (`--no-map-gw`, `-t`) is accepted.
    pub fn supports(&self, option: &str) -> bool {
        self.options.contains(option)
    }

    /// The first option in `argv` this pasta does not know.
    fn first_unsupported<'a>(&self, argv: &'a [OsString]) -> Option<&'a str> {
        argv.iter()
            .filter_map(|a| a.to_str())
            .filter(|a| a.starts_with('-'))
            .find(|a| !self.supports(a))
    }
}

static CAPS: OnceLock<Capabilities> = OnceLock::new();

/// The capabilities of the `pasta` on PATH, probed once per process.
pub fn capabilities() -> Result<&'static Capabilities, NetError> {
    if let Some(caps) = CAPS.get() {
        return Ok(caps);
    }
    let text = help_text()?;
    install(&text)
}

/// `pasta --help`. The 2023 pasta prints its help on stderr and exits 1;
/// newer ones use stdout and exit 0. Either way the text is what counts.
fn help_text() -> Result<String, NetError> {
    let out = Command::new("pasta")
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .map_err(spawn_error)?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// [`capabilities`] through a file in `cache_dir` named after the pasta
/// binary's size and modification time, so each container start does not
/// pay for `pasta --help` (several milliseconds); an upgrade of pasta
/// changes the name.
pub fn capabilities_cached(cache_dir: &Path) -> Result<&'static Capabilities, NetError> {
    if let Some(caps) = CAPS.get() {
        return Ok(caps);
    }
    let stamp = ["/usr/bin/pasta", "/usr/local/bin/pasta"]
        .iter()
        .find_map(|p| std::fs::metadata(p).ok())
        .map(|m| {
            use std::os::unix::fs::MetadataExt;
            format!("{}-{}", m.len(), m.mtime())
        });
    let Some(stamp) = stamp else {
        return capabilities();
    };
    let file = cache_dir.join(format!("pasta-help-{stamp}.txt"));
    if let Ok(text) = std::fs::read_to_string(&file) {
        return install(&text);
    }
    let text = help_text()?;
    let caps = install(&text)?;
    // A cache: a failed write only means probing again next time.
    std::fs::create_dir_all(cache_dir)
        .and_then(|()| {
            den_atomic::replace_bytes(
                &file,
                cache_dir,
                den_atomic::Durability::Unsynced,
                text.as_bytes(),
            )
        })
        .ok();
    Ok(caps)
}

fn install(text: &str) -> Result<&'static Capabilities, NetError> {
    let caps = Capabilities::parse(text);
    if !caps.supports("--help") {
        let output = text.lines().next().unwrap_or("").to_owned();
        return Err(PastaError::NoHelp { output }.into());
    }
    Ok(CAPS.get_or_init(|| caps))
}

/// The network namespace pasta serves, and how it gets there.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// Join the user and network namespaces of this process (`pasta … PID`).
    /// For a caller outside the container's user namespace.
    Pid(u32),
    /// A network namespace open in the caller, owned by the caller's own
    /// user namespace (`--netns /proc/self/fd/N --netns-only`).
    NetnsFd(BorrowedFd<'a>),
    /// A namespace file (`--netns PATH`), and the user namespace to join
    /// with it (`--userns PATH`), or stay in the caller's if `None`.
    NetnsPath {
        netns: &'a Path,
        userns: Option<&'a Path>,
    },
}

/// What pasta should provide to one network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastaConfig {
    /// Published ports; host port 0 gets a free port at [`Self::spawn`].
    pub ports: Vec<PortMapping>,
    /// The address inside where a DNS resolver answers (forwarding to the
    /// host's); `None` leaves the container to reach resolvers itself.
    pub dns_forward: Option<Ipv4Addr>,
    /// Let the container reach the host's loopback services through the
    /// gateway address (off by default: a CI job must not reach the runner's
    /// local daemons).
    pub allow_host_loopback: bool,
    /// Give the container IPv6 too (the host's address and routes).
    pub ipv6: bool,
    /// The interface name inside (`eth0`, as Docker's containers have).
    pub interface: String,
    /// Have the kernel kill pasta when the thread that started it dies
    /// (`setpriv --pdeathsig KILL`).
    pub die_with_parent: bool,
}

impl Default for PastaConfig {
    fn default() -> Self {
        PastaConfig {
            ports: Vec::new(),
            dns_forward: Some(DEFAULT_DNS_FORWARD),
            allow_host_loopback: false,
            ipv6: true,
            interface: "eth0".to_owned(),
            die_with_parent: true,
        }
    }
}

impl PastaConfig {
    /// pasta's arguments for `target`, apart from the process-management ones
    /// [`Self::spawn`] adds (foreground, PID file, log file). Host ports must
    /// be resolved (non-zero) already.
    pub fn args(&self, target: &Target) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["--config-net".into()];
        a.extend(["-I".into(), self.interface.clone().into()]);
        if !self.allow_host_loopback {
            a.push("--no-map-gw".into());
        }
        if !self.ipv6 {
            a.push("-4".into());
        }
        if let Some(addr) = self.dns_forward {
            a.extend(["--dns-forward".into(), addr.to_string().into()]);
        }
        for (flag, proto) in [("-t", Proto::Tcp), ("-u", Proto::Udp)] {
            for spec in port_specs(&self.ports, proto) {
                a.extend([flag.into(), spec.into()]);
            }
        }
        // Ports bound on the host would otherwise appear on the container's
        // loopback: another way in to the host's local services.
        a.extend(["-T", "none", "-U", "none"].map(OsString::from));
        match target {
            Target::Pid(pid) => a.push(pid.to_string().into()),
            Target::NetnsFd(fd) => {
                a.push("--netns".into());
                a.push(format!("/proc/self/fd/{}", fd.as_raw_fd()).into());
                a.push("--netns-only".into());
            }
            Target::NetnsPath { netns, userns } => {
                a.extend(["--netns".into(), netns.as_os_str().to_owned()]);
                match userns {
                    Some(u) => a.extend(["--userns".into(), u.as_os_str().to_owned()]),
                    None => a.push("--netns-only".into()),
                }
            }
        }
        a
    }

    /// The nameserver the container's /etc/resolv.conf should name.
    pub fn dns_address(&self) -> Option<Ipv4Addr> {
        self.dns_forward
    }

    /// The address the container reaches the host's loopback at (for
    /// `host.containers.internal`), when allowed: the host's gateway, which
    /// pasta copies into the container and maps to 127.0.0.1.
    pub fn host_loopback_address(&self) -> Option<Ipv4Addr> {
        self.allow_host_loopback
            .then(crate::host::default_gateway_v4)
            .flatten()
    }

    /// Starts pasta for `target` and returns once it is ready: the interface
    /// is configured and the host ports listen. Random host ports are chosen
    /// here; [`PastaHandle::ports`] reports them. Creates no threads.
    pub fn spawn(&self, target: &Target) -> Result<PastaHandle, NetError> {
        self.start(target)?.ready()
    }

    /// Starts pasta without waiting for it to be ready, so the caller can
    /// prepare the container meanwhile (pasta takes about 20 ms); then
    /// [`Starting::ready`].
    pub fn start(&self, target: &Target) -> Result<Starting, NetError> {
        self.start_with(target, None)
    }

    /// [`Self::start`]; with `die_with_parent`, `death_signal` (if given)
    /// makes the kernel kill pasta with the thread that starts it by
    /// changing the command itself (den's sandbox sets `PR_SET_PDEATHSIG`
    /// between fork and exec), which saves the `setpriv` program's exec
    /// (about 1 ms before pasta even starts).
    pub fn start_with(
        &self,
        target: &Target,
        death_signal: Option<fn(&mut Command)>,
    ) -> Result<Starting, NetError> {
        let caps = capabilities()?;
        File::options()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map_err(|source| NetError::Tun { source })?;
        let resolved = self.with_host_ports()?;
        let dir = tempfile::Builder::new()
            .prefix("den-pasta-")
            .tempdir()
            .map_err(|source| NetError::Io {
                what: "creating a directory in",
                path: std::env::temp_dir(),
                source,
            })?;
        let files = Files::new(dir.path());
        // A descriptor without close-on-exec, which the child inherits under
        // the same number. (Another thread spawning at this moment would
        // inherit it too: spawn from a single-threaded process.)
        let inherited = match target {
            Target::NetnsFd(fd) => Some(rustix::io::dup(fd).map_err(|e| NetError::Io {
                what: "duplicating the namespace descriptor for",
                path: "pasta".into(),
                source: e.into(),
            })?),
            _ => None,
        };
        let target = match &inherited {
            Some(fd) => Target::NetnsFd(fd.as_fd()),
            None => *target,
        };
        let mut argv = files.args();
        if rustix::process::geteuid().is_root() {
            argv.extend(["--runas", "0:0"].map(OsString::from));
        }
        argv.extend(resolved.args(&target));
        if let Some(option) = caps.first_unsupported(&argv) {
            return Err(NetError::Unsupported {
                option: option.to_owned(),
            });
        }
        let setpriv = self.die_with_parent && death_signal.is_none();
        let mut cmd = self.command(&argv, files.create_stderr()?, setpriv);
        if let (true, Some(set)) = (self.die_with_parent, death_signal) {
            set(&mut cmd);
        }
        let child = cmd.spawn().map_err(|e| match e.kind() {
            io::ErrorKind::NotFound if setpriv => NetError::NoSetpriv,
            _ => spawn_error(e).into(),
        })?;
        drop(inherited);

        let handle = PastaHandle {
            child,
            dns: resolved.dns_address(),
            host_loopback: resolved.host_loopback_address(),
            ports: resolved.ports,
        };
        Ok(Starting { handle, files, dir })
    }

    /// A copy with every host port checked and the random ones chosen.
    fn with_host_ports(&self) -> Result<PastaConfig, NetError> {
        let v6 = |m: &&PortMapping| m.host_ip.is_some_and(|ip| ip.is_ipv6());
        if !self.ipv6
            && let Some(m) = self.ports.iter().find(v6)
        {
            return Err(NetError::Publish {
                spec: m.to_string(),
                problem: "an IPv6 host address needs IPv6 in the container".into(),
            });
        }
        let mut resolved = self.clone();
        ports::prepare(&mut resolved.ports)?;
        Ok(resolved)
    }

    /// `pasta ARGV`, under `setpriv --pdeathsig KILL` with `setpriv`.
    fn command(&self, argv: &[OsString], stderr: File, setpriv: bool) -> Command {
        let mut cmd = if setpriv {
            let mut c = Command::new("setpriv");
            c.args(["--pdeathsig", "KILL", "--", "pasta"]);
            c
        } else {
            Command::new("pasta")
        };
        cmd.args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        cmd
    }
}

/// pasta's `-t`/`-u` values for `proto`: consecutive mappings merged into
/// ranges (`127.0.0.1/8000-8002:9000-9002`), or `none`.
fn port_specs(ports: &[PortMapping], proto: Proto) -> Vec<String> {
    let mut runs: Vec<(PortMapping, u16)> = Vec::new();
    for m in ports.iter().filter(|m| m.proto == proto) {
        if let Some((first, len)) = runs.last_mut()
            && first.host_ip == m.host_ip
            && u32::from(first.host_port) + u32::from(*len) == u32::from(m.host_port)
            && u32::from(first.container_port) + u32::from(*len) == u32::from(m.container_port)
        {
            *len += 1;
            continue;
        }
        runs.push((*m, 1));
    }
    if runs.is_empty() {
        return vec!["none".to_owned()];
    }
    runs.iter()
        .map(|(m, len)| {
            // pasta's address prefix: `127.0.0.1/`, `::1/` (no brackets).
            let addr = m.host_ip.map_or(String::new(), |ip| format!("{ip}/"));
            let range = |p: u16| match len {
                1 => p.to_string(),
                n => format!("{p}-{}", p + (n - 1)),
            };
            format!("{addr}{}:{}", range(m.host_port), range(m.container_port))
        })
        .collect()
}

/// The PID, log and stderr files of one pasta, in a private directory.
#[derive(Debug)]
struct Files {
    pid: PathBuf,
    log: PathBuf,
    stderr: PathBuf,
}

impl Files {
    fn new(dir: &Path) -> Files {
        Files {
            pid: dir.join("pid"),
            log: dir.join("log"),
            stderr: dir.join("stderr"),
        }
    }

    /// Foreground (so the caller owns the process), quiet, PID and log file.
    fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = ["-f", "-q", "-P"].map(OsString::from).into();
        a.push(self.pid.clone().into());
        a.push("-l".into());
        a.push(self.log.clone().into());
        a
    }

    fn create_stderr(&self) -> Result<File, NetError> {
        File::create(&self.stderr).map_err(|source| NetError::Io {
            what: "creating",
            path: self.stderr.clone(),
            source,
        })
    }

    /// Waits for the PID file; a pasta that exits first fails with its own
    /// error line, one that takes too long is killed.
    fn wait_ready(&self, child: &mut Child) -> Result<(), NetError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let pid = std::fs::read_to_string(&self.pid).unwrap_or_default();
            if pid.ends_with('\n') {
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(self.exited(status));
            }
            if start.elapsed() > READY_TIMEOUT {
                child.kill().ok();
                child.wait().ok();
                return Err(NetError::PastaTimeout {
                    secs: READY_TIMEOUT.as_secs(),
                    log: self.failure_message(),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    fn exited(&self, status: ExitStatus) -> NetError {
        NetError::PastaExited {
            status: status.to_string(),
            message: self.failure_message(),
        }
    }

    fn failure_message(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        failure_message(&read(&self.log), &read(&self.stderr))
    }
}

/// pasta's last error line: from its log (`0.42: ERROR:   message`), else
/// the last line it printed on stderr that is not about a missing syslog.
fn failure_message(log: &str, stderr: &str) -> String {
    log.lines()
        .filter_map(|l| l.split_once("ERROR:").map(|(_, m)| m.trim()))
        .next_back()
        .or_else(|| {
            stderr
                .lines()
                .map(str::trim)
                .rfind(|l| !l.is_empty() && !l.starts_with("Failed to send"))
        })
        .unwrap_or("no error message")
        .to_owned()
}

/// A pasta that was started and may not be ready yet. Dropping it kills pasta.
#[derive(Debug)]
pub struct Starting {
    handle: PastaHandle,
    files: Files,
    dir: tempfile::TempDir,
}

impl Starting {
    /// Waits until pasta has configured the namespace and bound the ports.
    pub fn ready(mut self) -> Result<PastaHandle, NetError> {
        self.files.wait_ready(&mut self.handle.child)?;
        // pasta keeps its log open; the files matter only until it is ready,
        // and gone now they cannot be left behind if the owner is killed.
        self.dir.close().ok();
        Ok(self.handle)
    }
}

/// A running pasta. Dropping it kills pasta (and waits for it).
#[derive(Debug)]
pub struct PastaHandle {
    child: Child,
    ports: Vec<PortMapping>,
    dns: Option<Ipv4Addr>,
    host_loopback: Option<Ipv4Addr>,
}

impl PastaHandle {
    /// pasta's process id (in the caller's PID namespace).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The published ports, random host ports resolved.
    pub fn ports(&self) -> &[PortMapping] {
        &self.ports
    }

    /// The nameserver for the container's /etc/resolv.conf.
    pub fn dns_address(&self) -> Option<Ipv4Addr> {
        self.dns
    }

    /// Where the container reaches the host's loopback, if allowed.
    pub fn host_loopback_address(&self) -> Option<Ipv4Addr> {
        self.host_loopback
    }

    /// pasta's exit status, if it has exited (it should not before the
    /// handle is dropped).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills pasta and waits for it.
    pub fn stop(mut self) {
        self.kill();
    }

    /// Kills pasta without waiting for it to exit (freeing its buffers takes
    /// tens of milliseconds); for an owner that is about to exit itself or
    /// reaps its children later.
    pub fn kill_nowait(self) {
        let mut me = std::mem::ManuallyDrop::new(self);
        me.child.kill().ok();
        // SAFETY-free: the fields are plain data; dropping them would only
        // free memory, which the owner's exit does anyway.
    }

    fn kill(&mut self) {
        // pasta keeps no state worth a graceful exit.
        if let Ok(None) = self.child.try_wait() {
            self.child.kill().ok();
        }
        self.child.wait().ok();
    }
}

impl Drop for PastaHandle {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests;
