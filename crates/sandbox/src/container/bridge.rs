//! User networks (`den run --network NAME`): one network namespace per
//! network, held by an "infra" process, with a bridge `den0`; each
//! container's namespace is joined to it with a veth pair and has its own
//! address. One pasta, attached to the network's namespace, is the uplink
//! for all of them (nftables masquerade), so ten containers share one
//! helper. Published ports of such containers go through a small TCP proxy
//! that the container's supervisor owns.
//!
//! ```text
//! infra (den __internal network-infra, own session)  one per network, while it has members
//!   user namespace (shared by all infras of the den root) ─
//!   network namespace: den0 10.89.N.1/24, eth0 = pasta
//! container supervisor: setns into the infras' user namespace (so it may
//!   wire namespaces together), new network namespace, one veth per network:
//!   eth0 <-> vXXXX on the first network's den0, eth1 on the second's, …
//! ```
//!
//! The kernel facts this rests on (checked rootless): veth, bridge,
//! ip_forward and nftables NAT all work with CAP_NET_ADMIN in the user
//! namespace that owns the network namespaces; a veth can join two
//! namespaces only when one user namespace owns both, which is why the
//! containers of a network enter its infra's user namespace, and why all
//! infras of a den root share one ([`infra_main`]): a container on two
//! networks needs both infras' namespaces owned by the user namespace it
//! is in. Networks stay apart by their network namespaces and each infra's
//! `isolate` rule, not by user namespaces.
//!
//! This module holds the infra and that shared user namespace, the
//! published-port proxy and the members' bookkeeping on leaving; the veth
//! ports, their guards and `den network connect`/`disconnect` of a running
//! container are in `bridge/plug.rs` ([`plug()`], [`unplug()`]).

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use rustix::fs::{Mode, OFlags};
use serde::{Deserialize, Serialize};

use super::SetupError;
use super::members::NetworkMembers;
use super::spec::UserNetwork;
use super::state::{State, start_time};
use crate::sys;

mod plug;

pub(super) use plug::attach;
pub use plug::{plug, unplug};

/// `infra.json` in the network's directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Infra {
    pub pid: i32,
    pub start: u64,
}

/// The largest `infra.json` or `freed.json` a reader accepts (a /16 of
/// freed addresses is about 1 MiB).
const MAX_RECORD: u64 = 4 << 20;

impl Infra {
    pub fn read(dir: &Path) -> Option<Infra> {
        let i: Infra = den_atomic::read_json(&dir.join("infra.json"), MAX_RECORD).ok()?;
        (start_time(i.pid) == Some(i.start)).then_some(i)
    }
}

fn fail(what: &str) -> impl FnOnce(std::io::Error) -> SetupError + '_ {
    move |e| SetupError::Io {
        what: what.into(),
        path: "for the user network".into(),
        source: e,
    }
}

/// A system tool by name: on PATH, or in /usr/sbin and /sbin, which an
/// ordinary user's PATH on Debian lacks.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Runs `ip ARGS` in the network namespace `ns` (a /proc path), or here.
fn ip(ns: Option<&str>, args: &[&str]) -> Result<(), SetupError> {
    ip_in(ns, args).map(drop)
}

/// Runs `ip ARGS` in the network namespace `ns` (or here) and returns
/// what it printed.
fn ip_in(ns: Option<&str>, args: &[&str]) -> Result<String, SetupError> {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new(tool("nsenter"));
            c.arg(format!("--net={ns}")).arg(tool("ip"));
            c
        }
        None => Command::new(tool("ip")),
    };
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(fail("run ip (install iproute2)"))?;
    if !out.status.success() {
        return Err(SetupError::Tool {
            tool: format!("ip {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `ip` refused because the name is taken (`RTNETLINK answers:
/// File exists`).
fn already_exists(e: &SetupError) -> bool {
    matches!(e, SetupError::Tool { stderr, .. } if stderr.contains("File exists"))
}

/// Runs `nft -f -` with `rules`, in the network namespace `ns` or here.
fn nft(ns: Option<&str>, rules: &str) -> Result<(), SetupError> {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new(tool("nsenter"));
            c.arg(format!("--net={ns}")).arg(tool("nft"));
            c
        }
        None => Command::new(tool("nft")),
    };
    let mut nft = cmd
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(fail("run nft (install nftables)"))?;
    nft.stdin
        .take()
        .expect("piped")
        .write_all(rules.as_bytes())
        .map_err(fail("write nft rules"))?;
    let out = nft.wait_with_output().map_err(fail("run nft"))?;
    if !out.status.success() {
        return Err(SetupError::Tool {
            tool: "nft".into(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Ends a network's infra process, if one runs.
pub fn stop_infra(dir: &Path) {
    if let Some(i) = Infra::read(dir) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i.pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .ok();
    }
}

/// The infra process of network `dir` (subnet 10.89.`octet`.0/24). Prints
/// `ready` on stdout once the network works, then lives while the network
/// has running members. Must be called in a single-threaded process.
pub fn infra_main(
    dir: &Path,
    octet: u8,
    mapping: &crate::idmap::IdMapping,
    cache_dir: &Path,
) -> Result<(), SetupError> {
    nix::unistd::setsid().ok();
    let shared = enter_shared_userns(dir, mapping)?;
    den_net::pasta::capabilities_cached(cache_dir)?;
    let netns = super::netns::new_netns()?;
    let pasta = den_net::pasta::PastaConfig::default()
        .spawn(&den_net::pasta::Target::NetnsFd(netns.as_fd()))?;
    setns(netns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|errno| SetupError::Namespace {
        what: "network (infra)",
        errno,
    })?;
    let gw = format!("10.89.{octet}.1/24");
    ip(None, &["link", "add", "den0", "type", "bridge"])?;
    ip(None, &["addr", "add", &gw, "dev", "den0"])?;
    ip(None, &["link", "set", "den0", "up"])?;
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(fail("enable forwarding"))?;
    // Masquerade to pasta's address; and other den networks (10.89.0.0/16)
    // are refused here, so networks stay apart and nothing for them leaves.
    // The bridge table sends each container port's frames through that
    // port's guard chain (see `plug::port_guard`).
    let rules = format!(
        "table ip den {{\n chain post {{\n  type nat hook postrouting priority 100; policy accept;\n  ip saddr 10.89.{octet}.0/24 oifname != \"den0\" masquerade\n }}\n chain isolate {{\n  type filter hook forward priority 0; policy accept;\n  ip daddr 10.89.0.0/16 ip daddr != 10.89.{octet}.0/24 reject\n }}\n}}\n\
         table bridge den {{\n map ports {{ type ifname : verdict; }}\n chain pre {{\n  type filter hook prerouting priority -300; policy accept;\n  iifname vmap @ports\n }}\n}}\n"
    );
    nft(None, &rules)?;
    let me = std::process::id() as i32;
    let info = Infra {
        pid: me,
        start: start_time(me).unwrap_or(0),
    };
    write_private(
        &dir.join("infra.json"),
        &serde_json::to_vec(&info).expect("serializes"),
    )
    .map_err(fail("write infra.json"))?;
    // Now another network's infra starting finds this one to join.
    drop(shared);
    super::announce("ready");
    linger(dir);
    drop(pasta);
    std::fs::remove_file(dir.join("infra.json")).ok();
    Ok(())
}

/// Waits while the network has members that run or are about to (a member
/// whose container has no state yet is starting). The last check holds
/// `infra.lock`, which `den run` holds while it joins a container, so a
/// joining container never finds the infra gone.
fn linger(dir: &Path) {
    let containers = dir.join("../../containers");
    let started = Instant::now();
    let mut idle_since: Option<Instant> = None;
    let live = || {
        NetworkMembers::read(dir).0.keys().any(|id| {
            let cdir = containers.join(id);
            cdir.exists() && State::read(&cdir).is_none_or(|s| s.supervisor_alive())
        })
    };
    loop {
        std::thread::sleep(Duration::from_millis(500));
        if !dir.join("config.json").exists() {
            return;
        }
        if live() || started.elapsed() < Duration::from_secs(10) {
            idle_since = None;
            continue;
        }
        let since = *idle_since.get_or_insert_with(Instant::now);
        if since.elapsed() > Duration::from_secs(3) {
            let lock = std::fs::File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join("infra.lock"));
            if let Ok(l) = &lock {
                l.lock().ok();
            }
            if !live() {
                std::fs::remove_file(dir.join("infra.json")).ok();
                return;
            }
            idle_since = None;
        }
    }
}

/// Enters the user namespace the infras of this den root share: a live
/// infra's of another network (`dir`'s siblings), else a new one with
/// `mapping`. Returns `ROOT/networks.userns.lock`, held until this infra
/// has written its `infra.json`, so two infras starting at once do not
/// both make one.
fn enter_shared_userns(
    dir: &Path,
    mapping: &crate::idmap::IdMapping,
) -> Result<std::fs::File, SetupError> {
    let networks = dir.parent().unwrap_or(Path::new("."));
    // Beside networks/, as networks.lock: the directory holds networks only.
    let lock = den_atomic::lock(&networks.with_file_name("networks.userns.lock"))
        .map_err(fail("lock networks.userns.lock"))?;
    let live = std::fs::read_dir(networks)
        .map_err(fail("list the networks"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.as_path() != dir)
        .filter_map(|p| Infra::read(&p));
    for infra in live {
        if let Ok(fd) = infra.open_userns() {
            setns(fd.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(|errno| {
                SetupError::Namespace {
                    what: "user (another network's infra)",
                    errno,
                }
            })?;
            return Ok(lock);
        }
    }
    crate::userns::enter_user_namespace(mapping)?;
    Ok(lock)
}

impl Infra {
    /// The infra's user namespace, checked to be this infra's still (the
    /// pid not reused since `infra.json` was read).
    fn open_userns(&self) -> Result<OwnedFd, SetupError> {
        let fd = rustix::fs::open(
            format!("/proc/{}/ns/user", self.pid),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fail("open the network's user namespace")(e.into()))?;
        if start_time(self.pid) != Some(self.start) {
            return Err(fail("open the network's user namespace")(
                std::io::ErrorKind::NotFound.into(),
            ));
        }
        Ok(fd)
    }

    /// The identity (device, inode) of the infra's user namespace.
    fn userns_id(&self) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(format!("/proc/{}/ns/user", self.pid)).ok()?;
        Some((m.dev(), m.ino()))
    }
}

/// The infras of `nets` (same order), checked to share one user
/// namespace. An infra an older den started has a user namespace of its
/// own: a container on it and another network is refused with what to do.
pub fn shared_infras(nets: &[UserNetwork]) -> Result<Vec<Infra>, SetupError> {
    let infras = nets
        .iter()
        .map(|n| Infra::read(&n.dir).ok_or_else(|| SetupError::NoInfra(n.name.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let (Some(first), Some(net)) = (infras.first(), nets.first()) else {
        return Ok(infras);
    };
    let owner = first.userns_id();
    if let Some((other, _)) = nets
        .iter()
        .zip(&infras)
        .skip(1)
        .find(|(_, i)| owner.is_none() || i.userns_id() != owner)
    {
        return Err(SetupError::InfraApart {
            first: net.name.clone(),
            other: other.name.clone(),
        });
    }
    Ok(infras)
}

/// Enters the user namespace of the infras of `nets` (instead of a new
/// one); returns them, in the same order.
pub(super) fn enter_infra_userns(nets: &[UserNetwork]) -> Result<Vec<Infra>, SetupError> {
    let infras = shared_infras(nets)?;
    let first = infras
        .first()
        .ok_or_else(|| SetupError::NoInfra(String::new()))?;
    let fd = first.open_userns()?;
    setns(fd.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(|errno| SetupError::Namespace {
        what: "user (network)",
        errno,
    })?;
    Ok(infras)
}

/// Published ports of a container on a user network: host listeners (bound
/// here, in the host's network namespace) whose connections the proxy
/// passes on from the network's namespace to the container's own address,
/// never to its loopback (a service bound to 127.0.0.1 stays private, as on
/// the private network). The service sees the network's gateway as the
/// client, as with Docker's userland proxy. TCP only; the limits are
/// `den_net::proxy`'s.
pub(super) struct Proxy {
    child: sys::ForkedChild,
}

impl Proxy {
    pub fn start(
        ports: &[den_net::ports::PortMapping],
        net: &UserNetwork,
        infra: &Infra,
    ) -> Result<Option<Proxy>, SetupError> {
        if ports.is_empty() {
            return Ok(None);
        }
        let ip: std::net::IpAddr = net
            .ip
            .parse()
            .map_err(|_| SetupError::BadAddress(net.ip.clone()))?;
        let mut listeners = Vec::new();
        for p in ports {
            let at = p
                .host_ip
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
            let l = TcpListener::bind((at, p.host_port)).map_err(fail("bind a published port"))?;
            listeners.push((l, std::net::SocketAddr::new(ip, p.container_port)));
        }
        let ns = rustix::fs::open(
            format!("/proc/{}/ns/net", infra.pid),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fail("open the network's namespace")(e.into()))?;
        // Compiled here: the child only installs it.
        let filter = crate::seccomp::compile(&Default::default())?;
        let (child, ()) = sys::fork_child((), move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).ok();
            quiet_stdio();
            if setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).is_err() || confine(&filter).is_err() {
                return 1;
            }
            drop(ns);
            den_net::proxy::Proxy::new(den_net::proxy::Limits::default()).serve(listeners);
            0
        })?;
        Ok(Some(Proxy { child }))
    }
}

/// Holds none of the supervisor's pipes (den run -d waits for them).
fn quiet_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        rustix::stdio::dup2_stdin(&null).ok();
        rustix::stdio::dup2_stdout(&null).ok();
        rustix::stdio::dup2_stderr(&null).ok();
    }
}

/// The proxy, once in the network's namespace, needs nothing more: no
/// capabilities (bounding set too), no new privileges, and the containers'
/// seccomp policy for a process without capabilities.
fn confine(filter: &[seccompiler::BpfProgram]) -> Result<(), SetupError> {
    let none = crate::caps::CapPolicy::from_flags(&[], &["ALL".into()], false)?;
    none.apply_bounding()?;
    none.set_process_caps(false)?;
    crate::seccomp::set_no_new_privs()?;
    Ok(crate::seccomp::apply(filter)?)
}

impl Drop for Proxy {
    fn drop(&mut self) {
        nix::sys::signal::kill(self.child.pid(), nix::sys::signal::Signal::SIGKILL).ok();
    }
}

/// Container `id` leaves the network whose directory is `net_dir`: its
/// address goes to the end of `freed.json` (handed out again last, so a
/// name others may still cache does not at once lead to a new container),
/// and the other members' /etc/hosts are written again without it
/// (`members::refresh_hosts`). Members whose
/// containers are gone leave with it. Holds `ROOT/networks.lock`; `den rm`
/// and a `--rm` supervisor both call this.
pub fn leave(net_dir: &Path, id: &str) -> std::io::Result<()> {
    let networks = net_dir.parent().unwrap_or(net_dir);
    let _lock = den_atomic::lock(&networks.with_extension("lock"))?;
    let containers = networks.with_file_name("containers");
    let NetworkMembers(members) = NetworkMembers::read(net_dir);
    let (gone, kept): (Vec<_>, Vec<_>) = members
        .into_iter()
        .partition(|(cid, _)| cid == id || !containers.join(cid).exists());
    if gone.is_empty() {
        return Ok(());
    }
    let members = NetworkMembers(kept.into_iter().collect());
    let ips: Vec<String> = gone.into_iter().map(|(_, m)| m.ip).collect();
    let mut freed = read_freed(net_dir);
    freed.retain(|ip| !ips.contains(ip));
    freed.extend(ips.iter().cloned());
    write_private(&net_dir.join("freed.json"), &serde_json::to_vec(&freed)?)?;
    write_private(&NetworkMembers::path(net_dir), &members.to_json())?;
    super::members::refresh_hosts(networks, members.0.keys().map(String::as_str));
    Ok(())
}

/// Freed addresses of a network, the longest free first.
pub fn read_freed(net_dir: &Path) -> Vec<String> {
    den_atomic::read_json(&net_dir.join("freed.json"), MAX_RECORD).unwrap_or_default()
}

/// Replaces `path` atomically, 0600 (`den_atomic`; the temp file beside
/// it, in the network's directory).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    den_atomic::replace_bytes(path, dir, den_atomic::Durability::Unsynced, bytes)
}
