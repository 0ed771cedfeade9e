//! A new network namespace without entering it: a helper child unshares
//! CLONE_NEWNET and waits while its parent opens or configures
//! `/proc/HELPER/ns/net` (a private network's pasta, a user network's veth).
//!
//! ```text
//!   parent (supervisor)                     helper
//!   fork_reporting ───────────────────────► unshare(CLONE_NEWNET)
//!   recv ◄───────────────────────────────── Unshared | Failed{errno}
//!   f(helper pid): open or wire the ns
//!   close `go` ───────────────────────────► EOF: _exit
//!   reap
//! ```

use std::io::Read;
use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags};

use super::SetupError;
use crate::channel::fork_reporting;

/// The helper's one message.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum HelperReport {
    Unshared,
    Failed { errno: i32 },
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> SetupError + '_ {
    move |e| SetupError::Io {
        what: what.into(),
        path: "for a network namespace".into(),
        source: e,
    }
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
    let (go_r, go_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| io("create a pipe for")(e.into()))?;
    let (child, mut report, go_w) = fork_reporting(false, go_w, move |mut report| {
        let msg = match nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
            Ok(()) => {
                allow_ping_sockets();
                HelperReport::Unshared
            }
            Err(errno) => HelperReport::Failed {
                errno: errno as i32,
            },
        };
        let failed = matches!(msg, HelperReport::Failed { .. });
        report.send(&msg).ok();
        drop(report);
        let _ = std::fs::File::from(go_r).read_exact(&mut [0u8; 1]);
        i32::from(failed)
    })?;
    let result = match report.recv_some()? {
        HelperReport::Unshared => f(child.pid().as_raw()),
        HelperReport::Failed { errno } => Err(SetupError::Namespace {
            what: "network",
            errno: nix::Error::from_raw(errno),
        }),
    };
    drop(go_w);
    child.wait().ok();
    result
}

/// What a container's own new network namespace gets, as Docker's
/// `none`: loopback up (127.0.0.1 works inside) and ping sockets open
/// (best effort). Runs in the namespace; the loopback's error, if any.
pub(crate) fn set_up_here() -> std::io::Result<()> {
    let up = crate::sys::loopback_up();
    allow_ping_sockets();
    up
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
