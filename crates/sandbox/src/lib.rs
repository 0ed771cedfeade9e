//! den-sandbox: the isolation of a rootless container.
//!
//! - [`idmap::IdMapping`] says which host ids a container's ids map to:
//!   subordinate ranges from `/etc/subuid`/`/etc/subgid` through the setuid
//!   `newuidmap`/`newgidmap`, or only the user's own id (single-id mode).
//!   [`idmap::IdMapping::detect`] picks one for the current user;
//!   [`idmap::IdMapping::keep_id`] derives `--userns=keep-id` from it.
//! - [`userns::enter_user_namespace`] takes an `IdMapping` and moves the
//!   (single-threaded) calling process into a new user namespace as uid 0.
//! - [`probe::rootless_checks`] tries each host prerequisite for real and
//!   returns one [`probe::Check`] per item, with a fix for what is missing;
//!   it is what `den system check` prints.
//!
//! - [`cgroup::Hierarchy`] finds a delegated cgroup v2 subtree beneath a
//!   root it is given; [`cgroup::Child`] is a container's cgroup with its
//!   limits (`--memory`, `--cpus`, …), removed when dropped.
//!
//! Architecture invariant: only this crate calls fork/unshare, and only its
//! private `sys` module uses `unsafe`.

pub mod caps;
pub mod cgroup;
pub mod channel;
pub mod container;
mod fdpass;
pub mod idmap;
pub mod landlock;
pub mod probe;
pub mod pty;
pub mod seccomp;
pub mod trace;
pub mod userns;

mod sys;
