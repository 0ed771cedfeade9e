//! `--network container:NAME`: a container that shares another running
//! container's network namespace (Docker's container network mode, and
//! compose's `network_mode: service:NAME`).
//!
//! The target's network namespace is owned by the user namespace its
//! processes live in (its supervisor's, or its user network's infra's),
//! and only a process with CAP_SYS_ADMIN there may join it. So the
//! supervisor, still den's user outside every namespace (the owner of
//! that user namespace), enters it first, as a user network's container
//! enters its infra's, and keeps a handle on the network namespace; the
//! container process joins that namespace instead of making one. Nothing
//! serves it here: the target's pasta or bridge does.

use std::os::fd::OwnedFd;

use nix::sched::{CloneFlags, setns};

use super::SetupError;
use super::nsfds::{Kind, Namespaces};
use super::spec::JoinedNetwork;
use super::state::{State, Status};

/// Enters the user namespace of `net`'s container and returns its network
/// namespace, both from the target's supervisor (`nsfds`: its init may be
/// non-dumpable). Must be called in the single-threaded supervisor, before
/// it makes any namespace of its own.
pub(super) fn enter(net: &JoinedNetwork) -> Result<OwnedFd, SetupError> {
    running_pid(net)?;
    let ns =
        Namespaces::fetch(&net.dir).map_err(|_| SetupError::JoinTargetDown(net.name.clone()))?;
    setns(ns.get(Kind::User), CloneFlags::CLONE_NEWUSER).map_err(|errno| {
        SetupError::Namespace {
            what: "user (joined container)",
            errno,
        }
    })?;
    Ok(ns.into_fd(Kind::Net))
}

/// The host pid of the target's init, when it runs under a live supervisor.
fn running_pid(net: &JoinedNetwork) -> Result<i32, SetupError> {
    State::read(&net.dir)
        .filter(|s| s.status == Status::Running && s.pid > 0 && s.supervisor_alive())
        .map(|s| s.pid)
        .ok_or_else(|| SetupError::JoinTargetDown(net.name.clone()))
}
