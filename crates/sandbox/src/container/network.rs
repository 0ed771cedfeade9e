//! `--network private` (den's default): a network namespace made by the
//! supervisor, served by a pasta the supervisor owns for the container's
//! lifetime (see `den_net::pasta` for why it must be started this way).
//!
//! ```text
//! supervisor (in the container's user namespace)
//!   1. fork a helper that unshares CLONE_NEWNET and waits
//!   2. open /proc/HELPER/ns/net, let the helper exit
//!   3. pasta --netns /proc/self/fd/N: tap eth0, routes, DNS, published ports
//!   4. the container process joins the namespace (setns) instead of making one
//!   5. after the container exits, pasta is stopped with the handle
//! ```

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use den_net::pasta::{PastaConfig, PastaHandle, Starting, Target};
use den_net::ports::PortMapping;
use rustix::fs::{Mode, OFlags};

use super::SetupError;
use super::spec::PrivateNetwork;
use crate::sys;

/// A private network: its namespace and the pasta serving it (starting,
/// then ready).
pub(super) struct Private {
    pub netns: OwnedFd,
    starting: Option<Starting>,
    pasta: Option<PastaHandle>,
    /// On a user network: the published ports' proxy.
    proxy: Option<super::bridge::Proxy>,
}

/// A container's namespace on a user network (see `bridge`): no pasta of its
/// own, published ports through a proxy.
pub(super) fn create_user(
    net: &super::spec::UserNetwork,
    id: &str,
    infra: &super::bridge::Infra,
) -> Result<Private, SetupError> {
    let netns = super::bridge::attach(net, id, infra)?;
    let mut ports = Vec::new();
    for p in &net.ports {
        ports.extend(PortMapping::parse(p)?);
    }
    let proxy = super::bridge::Proxy::start(&ports, net, infra)?;
    Ok(Private {
        netns,
        starting: None,
        pasta: None,
        proxy,
    })
}

/// What the container process needs: the namespace to join, and a pipe on
/// which the supervisor says the network is ready (one byte `y`).
pub(super) struct NetJoin {
    pub netns: OwnedFd,
    ready: OwnedFd,
}

impl NetJoin {
    /// Blocks until the supervisor reports pasta ready.
    pub fn wait_ready(&self) -> Result<(), SetupError> {
        let mut b = [0u8; 1];
        match rustix::io::read(&self.ready, &mut b) {
            Ok(1) if b[0] == b'y' => Ok(()),
            _ => Err(SetupError::Security(
                "the container's network did not come up (see the error above)".into(),
            )),
        }
    }
}

impl Private {
    /// The container's side, and the supervisor's end of the ready pipe.
    pub fn join(&self) -> Result<(NetJoin, OwnedFd), SetupError> {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| io("pipe")(e.into()))?;
        let netns = self.netns.try_clone().map_err(io("dup"))?;
        Ok((NetJoin { netns, ready: r }, w))
    }

    /// Waits for pasta and tells the container process (through `tell`).
    pub fn ready(&mut self, tell: OwnedFd) -> Result<(), SetupError> {
        if let Some(starting) = self.starting.take() {
            self.pasta = Some(starting.ready()?);
        }
        // A container process that already failed has closed its end; its
        // report says why, so a broken pipe here is not the error to show.
        std::fs::File::from(tell).write_all(b"y").ok();
        Ok(())
    }

    /// Ends pasta; without waiting for it when the supervisor is done anyway.
    pub fn finish(mut self, wait: bool) {
        drop(self.proxy.take());
        match (self.pasta.take(), wait) {
            (Some(p), true) => p.stop(),
            (Some(p), false) => p.kill_nowait(),
            (None, _) => {}
        }
    }
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> SetupError + '_ {
    move |e| SetupError::Io {
        what: what.into(),
        path: "network namespace".into(),
        source: e,
    }
}

/// Creates the namespace and starts pasta for it.
pub(super) fn create(
    net: &PrivateNetwork,
    cache_dir: &std::path::Path,
) -> Result<Private, SetupError> {
    den_net::pasta::capabilities_cached(cache_dir)?;
    let mut config = PastaConfig::default();
    for p in &net.ports {
        config.ports.extend(PortMapping::parse(p)?);
    }
    config.allow_host_loopback = net.allow_host_loopback;
    // IPv4 only, as Docker's default network, unless a port is published on
    // an IPv6 address: pasta starts faster without IPv6.
    config.ipv6 = config
        .ports
        .iter()
        .any(|p| p.host_ip.is_some_and(|ip| ip.is_ipv6()));
    let netns = new_netns()?;
    let starting = config.start(&Target::NetnsFd(netns.as_fd()))?;
    Ok(Private {
        netns,
        starting: Some(starting),
        pasta: None,
        proxy: None,
    })
}

/// A new network namespace, held open by a descriptor, without entering it.
pub(super) fn new_netns() -> Result<OwnedFd, SetupError> {
    with_netns_helper(|helper| {
        rustix::fs::open(
            format!("/proc/{helper}/ns/net"),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io("open")(e.into()))
    })
}

/// Runs `f` with the pid of a helper process that sits in a new network
/// namespace until `f` returns (so `f` can open or configure it).
pub(super) fn with_netns_helper<T>(
    f: impl FnOnce(i32) -> Result<T, SetupError>,
) -> Result<T, SetupError> {
    let (ready_r, ready_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| io("pipe")(e.into()))?;
    let (go_r, go_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| io("pipe")(e.into()))?;
    let (child, (ready_r, go_w)) = sys::fork_child((ready_r, go_w), move || {
        let ok = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).is_ok();
        if ok {
            allow_ping_sockets();
        }
        std::fs::File::from(ready_w)
            .write_all(if ok { b"y" } else { b"n" })
            .ok();
        let _ = std::fs::File::from(go_r).read_exact(&mut [0u8; 1]);
        i32::from(!ok)
    })
    .map_err(|e| SetupError::Security(e.to_string()))?;
    let mut answer = [0u8; 1];
    std::fs::File::from(ready_r)
        .read_exact(&mut answer)
        .map_err(io("wait for the network helper"))?;
    let result = match answer {
        [b'y'] => f(child.pid().as_raw()),
        _ => Err(SetupError::Namespace {
            what: "network",
            errno: nix::Error::EPERM,
        }),
    };
    drop(go_w);
    child.wait().ok();
    result
}

/// Lets every group of the user namespace open ICMP "ping sockets"
/// (`SOCK_DGRAM`, `IPPROTO_ICMP`) in this new network namespace, so `ping`
/// works without CAP_NET_RAW, which den drops by default (Docker and podman
/// set the same sysctl). A new namespace starts with `1 0` (nobody); the
/// range must be mapped, so it ends at the highest group id of the mapping.
/// Best effort: without it only ping needs `--cap-add NET_RAW`.
fn allow_ping_sockets() {
    let Ok(map) = std::fs::read_to_string("/proc/self/gid_map") else {
        return;
    };
    let top = map
        .lines()
        .filter_map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (f.len() == 3 && f[2] > 0).then(|| f[0] + f[2] - 1)
        })
        .max();
    if let Some(top) = top {
        std::fs::write("/proc/sys/net/ipv4/ping_group_range", format!("0 {top}")).ok();
    }
}
