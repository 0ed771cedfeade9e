//! What a container is made of, as the `cli` decided it: validated, plain
//! data, handed to the container process as JSON.

use std::path::PathBuf;

use caps::Capability;
use den_net::ports::PortMapping;
use serde::{Deserialize, Deserializer, Serialize};

/// The largest `spec.json` a reader accepts (environment, mounts and
/// arguments of one container; den's own write is far below).
pub const MAX_FILE: u64 = 16 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub id: String,
    pub rootfs: Rootfs,
    /// `--read-only`: the root is remounted read-only after set-up.
    pub read_only: bool,
    /// Mounts in the order they are made; targets are container paths.
    pub mounts: Vec<Mount>,
    pub hostname: String,
    pub process: Process,
    pub network: Network,
    pub security: Security,
    /// `--userns`: how the container's ids map to host ids.
    #[serde(default)]
    pub userns: Userns,
    /// `--init`: a minimal init is PID 1 and runs the command as its child.
    pub init: bool,
    /// Where compiled seccomp filters are cached.
    pub cache_dir: PathBuf,
    /// The container's directory: the supervisor keeps `state.json` and the
    /// logs there.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// `--restart`, applied by the supervisor.
    #[serde(default)]
    pub restart: Restart,
    /// `--stop-signal`, else the image's StopSignal (`den stop` sends it first).
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// `--stop-timeout`: seconds `den stop` waits before SIGKILL (default 10).
    #[serde(default)]
    pub stop_timeout: Option<u64>,
    /// `--health-*` or the image's HEALTHCHECK, run by the supervisor.
    #[serde(default)]
    pub health: Option<super::health::Check>,
    /// `--rm`: the supervisor deletes this directory (the container's) once
    /// the container has exited.
    #[serde(default)]
    pub remove_when_done: Option<PathBuf>,
    /// `--ulimit`: set by the container process before it drops privileges.
    #[serde(default)]
    pub ulimits: Vec<super::rlimit::Ulimit>,
    /// `--memory`, `--cpus`, …: the cgroup the supervisor makes, checked
    /// usable by the CLI (`None`: no limits asked for).
    #[serde(default)]
    pub cgroup: Option<crate::cgroup::Plan>,
    /// `--log-driver` and `--log-opt`.
    #[serde(default)]
    pub log: super::logs::LogConfig,
}

impl ContainerSpec {
    /// A container's `spec.json`, bounded ([`MAX_FILE`]).
    pub fn read(path: &std::path::Path) -> Result<Self, den_atomic::ReadError> {
        den_atomic::read_json(path, MAX_FILE)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Rootfs {
    /// An image: read-only layers (top first, relative to `layers_dir`) and
    /// the container's own upper and work directories.
    Overlay {
        layers_dir: PathBuf,
        lowers: Vec<String>,
        upper: PathBuf,
        work: PathBuf,
        merged: PathBuf,
        /// A `--rm` container's, mounted `volatile`: its unmount does not
        /// sync the whole upper filesystem (tens of ms on a busy disk, paid
        /// at every exit), the layer being deleted right after. Never for
        /// a kept container, whose upper must survive a host crash.
        #[serde(default)]
        volatile: bool,
    },
    /// `--rootfs DIR`: any directory as the read-only lower layer; the
    /// writable upper lives on a tmpfs mounted nowhere (gone when the
    /// container exits; `rootdir`).
    Directory { lower: PathBuf, merged: PathBuf },
}

/// Beside a volume's directory (outside what containers see): the volume
/// has not been filled from an image yet. Created by the cli when it
/// decides a volume is filled, under the volume lock; removed by the one
/// container start that fills it, so a restart never fills it again.
pub const PREFILL_PENDING: &str = "prefill-pending";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Mount {
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    /// A named volume: its directory is bind-mounted like `Bind`. With
    /// `prefill` (the cli decided it is the volume's first use, and the volume
    /// is empty), the image's content at `target` is copied into it first,
    /// once: only while the file [`PREFILL_PENDING`] beside `source` exists,
    /// and the container process that removes it is the one that fills.
    Volume {
        source: PathBuf,
        target: String,
        read_only: bool,
        prefill: bool,
    },
    Tmpfs {
        target: String,
        options: String,
    },
    /// A file den generates (`/etc/hosts`, `/etc/hostname`,
    /// `/etc/resolv.conf` of a container on no user network): written on a
    /// small tmpfs of the container's own mount namespace and bind-mounted
    /// on `target`, so a start creates no file on disk for it. Its content
    /// lives in the spec; writes from the container last as long as the run.
    File {
        target: String,
        content: String,
    },
}

impl Mount {
    /// The container path it is mounted on.
    pub fn target(&self) -> &str {
        match self {
            Self::Bind { target, .. }
            | Self::Volume { target, .. }
            | Self::Tmpfs { target, .. }
            | Self::File { target, .. } => target,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Process {
    pub args: Vec<String>,
    /// `KEY=VALUE`, image first, then the user's.
    pub env: Vec<String>,
    pub cwd: String,
    /// `uid[:gid]` or `name[:group]`, resolved against the container's
    /// /etc/passwd and /etc/group; empty means root.
    pub user: String,
    /// stdin/stdout/stderr are a terminal (the pty slave).
    pub terminal: bool,
    /// Extra fds passed on (`--preserve-fds N`): 3..3+N stay open.
    pub preserve_fds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// A new, empty network namespace (loopback only).
    None,
    /// The host's network namespace.
    Host,
    /// A new network namespace with outbound access and DNS through pasta,
    /// owned by the supervisor.
    Private(PrivateNetwork),
    /// User networks (`den network create`), one or more: a namespace with
    /// a veth on each network's bridge (eth0, eth1, … in this order), an
    /// address on each; the first network's gateway is the default route
    /// and its proxy serves the published ports. A spec from an older den
    /// holds one network, not a list: it still reads.
    #[serde(deserialize_with = "one_or_many")]
    User(Vec<UserNetwork>),
    /// `--network container:NAME`: another running container's network
    /// namespace, joined (with the user namespace that owns it).
    Container(JoinedNetwork),
}

/// The container whose network namespace a `--network container:NAME`
/// container joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinedNetwork {
    /// Its name, for messages.
    pub name: String,
    /// Its directory (its state.json says which process to join).
    pub dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserNetwork {
    pub name: String,
    /// The network's directory (its infra.json).
    pub dir: PathBuf,
    pub ip: String,
    pub gateway: String,
    /// Published ports, resolved (TCP); only the first network's.
    #[serde(deserialize_with = "ports_compat")]
    pub ports: Vec<PortMapping>,
    /// The container's names on this network: its own, then its aliases
    /// (empty in an older den's spec).
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// A spec's user networks: a list, or one network as an older den wrote it.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<UserNetwork>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Many(Vec<UserNetwork>),
        One(UserNetwork),
    }
    Ok(match Stored::deserialize(d)? {
        Stored::Many(v) => v,
        Stored::One(n) => vec![n],
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateNetwork {
    /// Published ports, resolved (no random host port left).
    #[serde(deserialize_with = "ports_compat")]
    pub ports: Vec<PortMapping>,
    /// Let the container reach the host's loopback services.
    pub allow_host_loopback: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Security {
    /// Capabilities kept, in kernel order (JSON: names like `CAP_CHOWN`,
    /// as an older den wrote them too).
    pub capabilities: Vec<Capability>,
    pub seccomp: bool,
    pub landlock: bool,
    /// `--security-opt no-new-privileges`: set no_new_privs before exec
    /// (off by default, as in Docker; records from before it read as off).
    #[serde(default)]
    pub no_new_privs: bool,
    /// `--privileged`: no masked paths, /sys writable where the kernel allows.
    pub privileged: bool,
}

/// Published ports as this den writes them, or in `-p` syntax
/// (`127.0.0.1:8080:5000/tcp`) as an older den did: its containers still
/// start.
fn ports_compat<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PortMapping>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Typed(PortMapping),
        Flag(String),
    }
    let mut ports = Vec::new();
    for p in Vec::<Stored>::deserialize(d)? {
        match p {
            Stored::Typed(p) => ports.push(p),
            Stored::Flag(s) => {
                ports.extend(PortMapping::parse(&s).map_err(serde::de::Error::custom)?)
            }
        }
    }
    Ok(ports)
}

/// `--userns`: which id mapping the container gets (see `crate::idmap`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Userns {
    /// Container root is the user: subordinate ids when the user has them,
    /// else single-id mode.
    #[default]
    Default,
    /// `--userns=keep-id`: the user's uid and gid are the same inside, the
    /// rest comes from the subordinate ranges (which it requires).
    KeepId,
}

/// `--restart no|on-failure[:N]|always|unless-stopped`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Restart {
    #[default]
    No,
    /// Restart after a non-zero exit, at most this many times (0: no limit).
    OnFailure(u32),
    Always,
    UnlessStopped,
}

impl Restart {
    pub fn parse(s: &str) -> Option<Self> {
        match s.split_once(':') {
            None => match s {
                "no" | "" => Some(Self::No),
                "on-failure" => Some(Self::OnFailure(0)),
                "always" => Some(Self::Always),
                "unless-stopped" => Some(Self::UnlessStopped),
                _ => None,
            },
            Some(("on-failure", n)) => n.parse().ok().map(Self::OnFailure),
            _ => None,
        }
    }

    /// Should a container that exited with `code` after `restarts` restarts,
    /// and was not stopped on purpose, run again?
    pub fn again(self, code: i32, restarts: u32, stopped: bool) -> bool {
        match self {
            _ if stopped => false,
            Self::No => false,
            Self::OnFailure(max) => code != 0 && (max == 0 || restarts < max),
            Self::Always | Self::UnlessStopped => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_capabilities_of_an_older_spec_still_read() {
        let old = serde_json::json!({
            "ports": ["127.0.0.1:8080:5000/tcp", "[::1]:9090:90/udp"],
            "allow_host_loopback": false
        });
        let net: PrivateNetwork = serde_json::from_value(old).unwrap();
        let want = [
            PortMapping::parse("127.0.0.1:8080:5000/tcp").unwrap(),
            PortMapping::parse("[::1]:9090:90/udp").unwrap(),
        ]
        .concat();
        assert_eq!(net.ports, want);
        // This den's form round-trips.
        let back: PrivateNetwork =
            serde_json::from_value(serde_json::to_value(&net).unwrap()).unwrap();
        assert_eq!(back, net);
        let sec: Security = serde_json::from_value(serde_json::json!({
            "capabilities": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
            "seccomp": true, "landlock": true, "privileged": false
        }))
        .unwrap();
        assert_eq!(
            sec.capabilities,
            [Capability::CAP_CHOWN, Capability::CAP_NET_BIND_SERVICE]
        );
        // A bad port in an old spec is named.
        let e = serde_json::from_value::<PrivateNetwork>(serde_json::json!({
            "ports": ["99999:80"], "allow_host_loopback": false
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains("99999:80"), "{e}");
    }

    #[test]
    fn an_older_spec_with_one_user_network_still_reads() {
        let one = serde_json::json!({"User": {
            "name": "a", "dir": "/r/networks/a", "ip": "10.89.1.2",
            "gateway": "10.89.1.1", "ports": ["8080:80/tcp"]
        }});
        let Network::User(nets) = serde_json::from_value(one).unwrap() else {
            panic!("not a user network");
        };
        assert_eq!(nets.len(), 1);
        assert_eq!(
            (nets[0].ip.as_str(), nets[0].aliases.len()),
            ("10.89.1.2", 0)
        );
        let two = Network::User(vec![nets[0].clone(), nets[0].clone()]);
        let back: Network = serde_json::from_value(serde_json::to_value(&two).unwrap()).unwrap();
        assert_eq!(back, two);
    }

    #[test]
    fn restart_policies() {
        assert_eq!(Restart::parse("on-failure:3"), Some(Restart::OnFailure(3)));
        assert_eq!(Restart::parse("bogus"), None);
        assert!(Restart::OnFailure(2).again(1, 1, false));
        assert!(!Restart::OnFailure(2).again(1, 2, false));
        assert!(!Restart::OnFailure(0).again(0, 0, false));
        assert!(Restart::Always.again(0, 100, false));
        assert!(!Restart::Always.again(0, 0, true));
        assert!(!Restart::No.again(1, 0, false));
    }
}
