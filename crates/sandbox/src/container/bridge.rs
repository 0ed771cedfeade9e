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
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use rustix::fs::{Mode, OFlags};
use serde::{Deserialize, Serialize};

use super::SetupError;
use super::spec::UserNetwork;
use super::state::{State, start_time};
use crate::sys;

/// `infra.json` in the network's directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Infra {
    pub pid: i32,
    pub start: u64,
}

impl Infra {
    pub fn read(dir: &Path) -> Option<Infra> {
        let i: Infra = serde_json::from_slice(&std::fs::read(dir.join("infra.json")).ok()?).ok()?;
        (start_time(i.pid) == Some(i.start)).then_some(i)
    }
}

fn fail(what: &str) -> impl FnOnce(std::io::Error) -> SetupError + '_ {
    move |e| SetupError::Io {
        what: what.into(),
        path: "user network".into(),
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
        return Err(SetupError::Security(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
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
    crate::userns::enter_user_namespace(mapping)?;
    den_net::pasta::capabilities_cached(cache_dir)?;
    let netns = super::network::new_netns()?;
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
    let rules = format!(
        "table ip den {{\n chain post {{\n  type nat hook postrouting priority 100; policy accept;\n  ip saddr 10.89.{octet}.0/24 oifname != \"den0\" masquerade\n }}\n chain isolate {{\n  type filter hook forward priority 0; policy accept;\n  ip daddr 10.89.0.0/16 ip daddr != 10.89.{octet}.0/24 reject\n }}\n}}\n"
    );
    let mut nft = Command::new(tool("nft"))
        .args(["-f", "-"])
        .stdin(Stdio::piped())
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
        return Err(SetupError::Security(format!(
            "nft: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let me = std::process::id() as i32;
    let info = Infra {
        pid: me,
        start: start_time(me).unwrap_or(0),
    };
    let tmp = dir.join(format!("infra.json.tmp-{me}"));
    std::fs::write(&tmp, serde_json::to_vec(&info).expect("serializes"))
        .and_then(|()| std::fs::rename(&tmp, dir.join("infra.json")))
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
        let members: std::collections::BTreeMap<String, serde_json::Value> =
            std::fs::read(dir.join("ipam.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
        members.keys().any(|id| {
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
    let infra = Infra::read(&net.dir).ok_or_else(|| {
        SetupError::Security(format!(
            "network {} has no running infra process: run the container again",
            net.name
        ))
    })?;
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
    super::network::with_netns_helper(|helper| wire(net, id, infra.pid, helper))
}

fn wire(net: &UserNetwork, id: &str, infra: i32, helper: i32) -> Result<OwnedFd, SetupError> {
    let (infra_ns, ctr_ns) = (
        format!("/proc/{infra}/ns/net"),
        format!("/proc/{helper}/ns/net"),
    );
    let fd = rustix::fs::open(&ctr_ns, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| fail("open the container's network namespace")(e.into()))?;
    let veth = format!("v{}", &id[..12]);
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
            "netns",
            &helper.to_string(),
        ],
    )?;
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
/// here, in the host's network namespace) whose connections are passed on
/// to the container's 127.0.0.1 from inside its namespace. TCP only.
pub(super) struct Proxy {
    child: sys::ForkedChild,
}

impl Proxy {
    pub fn start(
        ports: &[den_net::ports::PortMapping],
        netns: &OwnedFd,
    ) -> Result<Option<Proxy>, SetupError> {
        if ports.is_empty() {
            return Ok(None);
        }
        let mut listeners = Vec::new();
        for p in ports {
            let ip = p
                .host_ip
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
            let l = TcpListener::bind((ip, p.host_port)).map_err(fail("bind a published port"))?;
            listeners.push((l, p.container_port));
        }
        let ns = netns.try_clone().map_err(fail("dup"))?;
        let (child, ()) = sys::fork_child((), move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).ok();
            // Hold none of the supervisor's pipes (den run -d waits for them).
            if let Ok(null) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                rustix::stdio::dup2_stdin(&null).ok();
                rustix::stdio::dup2_stdout(&null).ok();
                rustix::stdio::dup2_stderr(&null).ok();
            }
            if setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).is_err() {
                return 1;
            }
            let handles: Vec<_> = listeners
                .into_iter()
                .map(|(l, port)| std::thread::spawn(move || serve(l, port)))
                .collect();
            handles.into_iter().for_each(|h| drop(h.join()));
            0
        })
        .map_err(|e| SetupError::Security(e.to_string()))?;
        Ok(Some(Proxy { child }))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        nix::sys::signal::kill(self.child.pid(), nix::sys::signal::Signal::SIGKILL).ok();
    }
}

fn serve(listener: TcpListener, port: u16) {
    for conn in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let Ok(upstream) = TcpStream::connect(("127.0.0.1", port)) else {
                return;
            };
            let (mut a, mut b) = (conn, upstream);
            let (Ok(mut a2), Ok(mut b2)) = (a.try_clone(), b.try_clone()) else {
                return;
            };
            let t = std::thread::spawn(move || {
                std::io::copy(&mut a2, &mut b2).ok();
                b2.shutdown(std::net::Shutdown::Write).ok();
            });
            std::io::copy(&mut b, &mut a).ok();
            a.shutdown(std::net::Shutdown::Write).ok();
            t.join().ok();
        });
    }
}

/// Where a network's files are.
pub fn network_dir(root: &Path, name: &str) -> PathBuf {
    root.join("networks").join(name)
}
