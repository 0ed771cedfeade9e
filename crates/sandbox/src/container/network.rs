//! A container's network for one run ([`ContainerNet`]): a user network's
//! (see `bridge`), or `--network private` (den's default): a network namespace made by the
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

use std::os::fd::{AsFd, OwnedFd};

use super::SetupError;
use super::spec::PrivateNetwork;
use crate::channel::{Receiver, Sender, channel};
use den_net::pasta::{PastaConfig, PastaHandle, Starting, Target};

/// A container's network namespace and what serves it for one run.
#[expect(
    clippy::large_enum_variant,
    reason = "one value per run of a container, made once and never copied in a loop"
)]
pub(super) enum ContainerNet {
    /// `--network private`: a pasta of its own (starting, then ready).
    Private {
        netns: OwnedFd,
        starting: Option<Starting>,
        pasta: Option<PastaHandle>,
    },
    /// On a user network (see `bridge`): wired to the network's bridge, no
    /// pasta of its own; published ports through a proxy.
    User {
        netns: OwnedFd,
        proxy: Option<super::bridge::Proxy>,
    },
    /// `--network container:NAME`: that container's namespace (see
    /// `joined`); served by whatever serves it.
    Joined { netns: OwnedFd },
    /// `--network none`: a new namespace, the keeper's spare
    /// (`userns::spare`); served by nothing.
    Spare { netns: OwnedFd },
}

/// A container's namespace on its user networks; published ports through
/// the first network's proxy. The networks are those its `spec.json` in
/// `state_dir` names now: `den network connect|disconnect` may have changed
/// them since the supervisor read it (a restart by policy).
pub(super) fn create_user(
    nets: &[super::spec::UserNetwork],
    id: &str,
    infras: &[super::bridge::Infra],
    state_dir: Option<&std::path::Path>,
) -> Result<ContainerNet, SetupError> {
    let now = state_dir.and_then(current_networks);
    let (nets, infras) = match now {
        Some(now) if now.as_slice() != nets => {
            let infras = super::bridge::shared_infras(&now)?;
            (now, infras)
        }
        _ => (nets.to_vec(), infras.to_vec()),
    };
    let (nets, infras) = (nets.as_slice(), infras.as_slice());
    let netns = super::bridge::attach(nets, id, infras)?;
    let proxy = match (nets.first(), infras.first()) {
        (Some(net), Some(infra)) => super::bridge::Proxy::start(&net.ports, net, infra)?,
        _ => None,
    };
    Ok(ContainerNet::User { netns, proxy })
}

/// The user networks `spec.json` in `dir` names, if it reads and names some.
fn current_networks(dir: &std::path::Path) -> Option<Vec<super::spec::UserNetwork>> {
    match super::spec::ContainerSpec::read(&dir.join("spec.json"))
        .ok()?
        .network
    {
        super::spec::Network::User(nets) if !nets.is_empty() => Some(nets),
        _ => None,
    }
}

/// What the container process needs: the namespace to join, and the
/// channel on which the supervisor says the network is ready.
pub(super) struct NetJoin {
    pub netns: OwnedFd,
    ready: Receiver<NetReady>,
}

/// The supervisor's word to the container process once pasta is up (a
/// supervisor that failed closes the channel instead).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) enum NetReady {
    Up,
}

impl NetJoin {
    /// Blocks until the supervisor reports pasta ready.
    pub fn wait_ready(&mut self) -> Result<(), SetupError> {
        match self.ready.recv()? {
            Some(NetReady::Up) => Ok(()),
            None => Err(SetupError::NetworkDown),
        }
    }
}

impl ContainerNet {
    fn netns(&self) -> &OwnedFd {
        match self {
            Self::Private { netns, .. }
            | Self::User { netns, .. }
            | Self::Joined { netns }
            | Self::Spare { netns } => netns,
        }
    }

    /// The container's side, and the supervisor's end of the ready channel.
    pub fn join(&self) -> Result<(NetJoin, Sender<NetReady>), SetupError> {
        let (tx, rx) = channel()?;
        let netns = self.netns().try_clone().map_err(io("dup"))?;
        Ok((NetJoin { netns, ready: rx }, tx))
    }

    /// Waits for pasta (a private network's) and tells the container
    /// process (through `tell`).
    pub fn ready(&mut self, mut tell: Sender<NetReady>) -> Result<(), SetupError> {
        if let Self::Private {
            starting, pasta, ..
        } = self
            && let Some(s) = starting.take()
        {
            *pasta = Some(s.ready()?);
        }
        // A container process that already failed has closed its end; its
        // report says why, so a broken pipe here is not the error to show.
        tell.send(&NetReady::Up).ok();
        Ok(())
    }

    /// What the supervisor keeps for the run once the container process
    /// holds its own handle (it was forked): nothing of a spare, which
    /// nothing serves.
    pub fn kept(self) -> Option<Self> {
        match self {
            Self::Spare { .. } => None,
            other => Some(other),
        }
    }

    /// Ends pasta or the proxy; without waiting for pasta when the
    /// supervisor is done anyway.
    pub fn finish(self, wait: bool) {
        match self {
            Self::Private { pasta: Some(p), .. } if wait => p.stop(),
            Self::Private { pasta: Some(p), .. } => p.kill_nowait(),
            Self::Private { .. } => {}
            Self::User { proxy, .. } => drop(proxy),
            Self::Joined { .. } | Self::Spare { .. } => {}
        }
    }
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> SetupError + '_ {
    move |e| SetupError::Io {
        what: what.into(),
        path: "for a network namespace".into(),
        source: e,
    }
}

/// Creates the namespace and starts pasta for it.
/// `spare`: a new namespace made beforehand (the keeper's), else one is
/// made here.
pub(super) fn create(
    net: &PrivateNetwork,
    cache_dir: &std::path::Path,
    spare: Option<OwnedFd>,
) -> Result<ContainerNet, SetupError> {
    den_net::pasta::capabilities_cached(cache_dir)?;
    let mut config = PastaConfig {
        ports: net.ports.clone(),
        ..PastaConfig::default()
    };
    config.allow_host_loopback = net.allow_host_loopback;
    // IPv4 only, as Docker's default network, unless a port is published on
    // an IPv6 address: pasta starts faster without IPv6.
    config.ipv6 = config
        .ports
        .iter()
        .any(|p| p.host_ip.is_some_and(|ip| ip.is_ipv6()));
    let netns = match spare {
        Some(fd) => fd,
        None => super::netns::new_netns()?,
    };
    let starting = config.start_with(
        &Target::NetnsFd(netns.as_fd()),
        Some(crate::sys::kill_with_parent),
    )?;
    Ok(ContainerNet::Private {
        netns,
        starting: Some(starting),
        pasta: None,
    })
}
