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
//!   user namespace (den's mapping) ─ network namespace: den0 10.89.N.1/24, eth0 = pasta
//! container supervisor: setns into the infra's user namespace (so it may
//!   wire namespaces together), new network namespace, veth eth0 <-> vXXXX on den0
//! ```
//!
//! The kernel facts this rests on (checked rootless): veth, bridge,
//! ip_forward and nftables NAT all work with CAP_NET_ADMIN in the user
//! namespace that owns the network namespaces; a veth can join two
//! namespaces only when one user namespace owns both, which is why the
//! containers of a network enter its infra's user namespace.

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
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
    Ok(())
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

/// The guard of a container's bridge port `veth`: frames from it must carry
/// the container's own MAC (as Ethernet source and ARP sender), its own
/// address (as IPv4 source and ARP sender) and be IPv4 or ARP at all; all
/// else is dropped before the bridge learns or forwards it. So a container
/// with NET_RAW (or NET_ADMIN) can neither answer ARP for another
/// container's address nor send as it. Re-adding the guard of a port (a
/// restart) replaces it.
fn port_guard(veth: &str, mac: &str, ip: &str) -> String {
    format!(
        "add chain bridge den g_{veth}\n\
         flush chain bridge den g_{veth}\n\
         add rule bridge den g_{veth} ether saddr != {mac} drop\n\
         add rule bridge den g_{veth} ether type != {{ ip, arp }} drop\n\
         add rule bridge den g_{veth} arp saddr ether != {mac} drop\n\
         add rule bridge den g_{veth} arp saddr ip != {ip} drop\n\
         add rule bridge den g_{veth} ip saddr != {ip} drop\n\
         add element bridge den ports {{ \"{veth}\" : jump g_{veth} }}\n"
    )
}

/// The container's MAC on its network: locally administered, from its
/// address (as Docker does), so it is the same on every start.
fn mac_of(ip: &str) -> Result<String, SetupError> {
    let ip: std::net::Ipv4Addr = ip
        .parse()
        .map_err(|_| SetupError::BadAddress(ip.to_string()))?;
    let [a, b, c, d] = ip.octets();
    Ok(format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}"))
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
    crate::userns::enter_user_namespace(mapping)?;
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
    // port's guard chain (see `port_guard`).
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

/// Enters the user namespace of the network's infra (instead of a new one).
pub(super) fn enter_infra_userns(net: &UserNetwork) -> Result<Infra, SetupError> {
    let infra = Infra::read(&net.dir).ok_or_else(|| SetupError::NoInfra(net.name.clone()))?;
    let fd = rustix::fs::open(
        format!("/proc/{}/ns/user", infra.pid),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail("open the network's user namespace")(e.into()))?;
    setns(fd.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(|errno| SetupError::Namespace {
        what: "user (network)",
        errno,
    })?;
    Ok(infra)
}

/// A container's namespace on a user network, wired to the bridge.
pub(super) fn attach(net: &UserNetwork, id: &str, infra: &Infra) -> Result<OwnedFd, SetupError> {
    super::netns::with_netns_helper(|helper| wire(net, id, infra.pid, helper))
}

fn wire(net: &UserNetwork, id: &str, infra: i32, helper: i32) -> Result<OwnedFd, SetupError> {
    let (infra_ns, ctr_ns) = (
        format!("/proc/{infra}/ns/net"),
        format!("/proc/{helper}/ns/net"),
    );
    let fd = rustix::fs::open(&ctr_ns, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| fail("open the container's network namespace")(e.into()))?;
    let veth = format!("v{}", &id[..12]);
    let mac = mac_of(&net.ip)?;
    ip(
        Some(&infra_ns),
        &[
            "link",
            "add",
            &veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "address",
            &mac,
            "netns",
            &helper.to_string(),
        ],
    )?;
    // The guard is in place before the port joins the bridge.
    nft(Some(&infra_ns), &port_guard(&veth, &mac, &net.ip))?;
    ip(
        Some(&infra_ns),
        &["link", "set", &veth, "master", "den0", "up"],
    )?;
    let addr = format!("{}/24", net.ip);
    ip(Some(&ctr_ns), &["addr", "add", &addr, "dev", "eth0"])?;
    ip(Some(&ctr_ns), &["link", "set", "eth0", "up"])?;
    ip(Some(&ctr_ns), &["link", "set", "lo", "up"])?;
    ip(
        Some(&ctr_ns),
        &["route", "add", "default", "via", &net.gateway],
    )?;
    Ok(fd)
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

/// The most of a member's /etc/hosts den reads when it takes a name out:
/// the container may write its own file, and must not make every removal
/// on its network read gigabytes. A larger file is left as it is.
pub const HOSTS_MAX: u64 = 1 << 20;

/// Container `id` leaves the network whose directory is `net_dir`: its
/// address goes to the end of `freed.json` (handed out again last, so a
/// name others may still cache does not at once lead to a new container),
/// and its line leaves the other members' /etc/hosts. Members whose
/// containers are gone leave with it. Holds `ROOT/networks.lock`; `den rm`
/// and a `--rm` supervisor both call this.
pub fn leave(net_dir: &Path, id: &str) -> std::io::Result<()> {
    let networks = net_dir.parent().unwrap_or(net_dir);
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(networks.with_extension("lock"))?;
    lock.lock()?;
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
    for cid in members.0.keys() {
        drop_hosts_lines(&containers.join(cid).join("hosts"), &ips);
    }
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

/// Takes the lines of `ips` out of a member's /etc/hosts, in place (the
/// running container has the file's inode bind-mounted); a file that is
/// not a regular file or is larger than [`HOSTS_MAX`] is left alone.
fn drop_hosts_lines(hosts: &Path, ips: &[String]) {
    use std::io::{Read, Seek};
    let Ok(mut f) = std::fs::File::options()
        .read(true)
        .write(true)
        .custom_flags(libc_o_nofollow())
        .open(hosts)
    else {
        return;
    };
    if !f
        .metadata()
        .is_ok_and(|m| m.is_file() && m.len() <= HOSTS_MAX)
    {
        return;
    }
    let mut text = String::new();
    if (&mut f).take(HOSTS_MAX).read_to_string(&mut text).is_err() {
        return;
    }
    let kept: String = text
        .lines()
        .filter(|l| {
            !ips.iter().any(|ip| {
                l.strip_prefix(ip.as_str())
                    .is_some_and(|r| r.starts_with('\t'))
            })
        })
        .map(|l| format!("{l}\n"))
        .collect();
    if kept.len() != text.len() {
        f.set_len(0).ok();
        f.rewind().ok();
        f.write_all(kept.as_bytes()).ok();
    }
}

fn libc_o_nofollow() -> i32 {
    OFlags::NOFOLLOW.bits() as i32
}
