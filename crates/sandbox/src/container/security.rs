//! Stage 3 of the container set-up: dropping privileges. This module is the
//! one source of truth for the order; the docs of `crate::caps`,
//! `crate::seccomp` and `crate::landlock` describe their own step and point
//! here, and `crates/sandbox/tests/security.rs` runs [`apply`] itself.
//!
//! [`apply`] runs in the container process (single-threaded, uid 0 with
//! every capability of its user namespace, after the mounts and
//! pivot_root), then only exec (or `--init`) remains:
//!
//! 1. single-id mode only: setgroups/setresgid/setresuid to the container
//!    user, before the shim of step 3 could turn a refused switch into a
//!    silent success (only uid 0 is mapped, so every capability stays);
//! 2. Landlock ([`crate::landlock::LandlockPolicy::apply`]), unless
//!    `--security-opt landlock=off`;
//! 3. single-id mode only: the id shim ([`crate::seccomp::single_id`]),
//!    first so that the allow-list's denials win over its answers;
//! 4. the seccomp allow-list ([`crate::seccomp::apply`]), unless
//!    `seccomp=unconfined`;
//! 5. the bounding set ([`CapPolicy::apply_bounding`], needs CAP_SETPCAP);
//! 6. subordinate mode: setgroups/setresgid/setresuid (CAP_SETUID and
//!    CAP_SETGID still held);
//! 7. the process capabilities ([`CapPolicy::set_process_caps`]);
//! 8. no_new_privs ([`crate::seccomp::set_no_new_privs`]) only with
//!    `--security-opt no-new-privileges`.
//!
//! Landlock and the filters (2 to 4) go while the process still holds
//! CAP_SYS_ADMIN in its user namespace: the kernel then installs them
//! without no_new_privs, which stays optional as in Docker, so setuid
//! programs in the image (`su`, `sudo`) work. The filter allows every call
//! of steps 5 to 8 (prctl, capset, setgroups, set*id, execve).

use std::path::Path;

use seccompiler::BpfProgram;

use super::SetupError;
use super::spec::ContainerSpec;
use super::user::User;
use crate::caps::CapPolicy;
use crate::landlock::LandlockPolicy;

/// What is worked out before pivot_root, while den's store is still
/// reachable: the capability set, the compiled (cached) seccomp filters and
/// the Landlock policy.
pub struct Prepared {
    caps: CapPolicy,
    seccomp: Option<Vec<BpfProgram>>,
    /// Single-id mode's shim (`crate::seccomp::single_id`), installed
    /// before `seccomp`.
    id_shim: Option<BpfProgram>,
    landlock: Option<LandlockPolicy>,
    no_new_privs: bool,
}

/// The choices [`Prepared::new`] turns into filters and policies.
pub struct Choices<'a> {
    pub caps: CapPolicy,
    /// Where the compiled filter is cached; `None`: no seccomp filter.
    pub seccomp_cache: Option<&'a Path>,
    /// The user namespace maps only the user's id.
    pub single_id: bool,
    pub landlock: Option<LandlockPolicy>,
    pub no_new_privs: bool,
}

impl Prepared {
    /// Compiles what [`apply`] installs.
    pub fn new(c: Choices<'_>) -> Result<Self, SetupError> {
        let seccomp = match c.seccomp_cache {
            None => None,
            Some(dir) => Some(
                crate::seccomp::compile_cached(&c.caps.keep, dir)
                    .or_else(|_| crate::seccomp::compile(&c.caps.keep))?,
            ),
        };
        let id_shim = match c.single_id {
            false => None,
            true => Some(crate::seccomp::single_id::compile()?),
        };
        Ok(Self {
            caps: c.caps,
            seccomp,
            id_shim,
            landlock: c.landlock,
            no_new_privs: c.no_new_privs,
        })
    }

    /// The user namespace maps only the user's id: the container gets the
    /// single-id shim and den's APT configuration.
    pub fn single_id(&self) -> bool {
        self.id_shim.is_some()
    }
}

/// The container's choices, from its spec. Landlock: the whole tree
/// read-write (it confines what the container reaches through descriptors
/// from outside its root, and TCP on kernels with ABI 4+).
pub(super) fn prepare(spec: &ContainerSpec, single_id: bool) -> Result<Prepared, SetupError> {
    let sec = &spec.security;
    Prepared::new(Choices {
        caps: CapPolicy::keeping(&sec.capabilities),
        seccomp_cache: sec.seccomp.then_some(spec.cache_dir.as_path()),
        single_id,
        landlock: sec.landlock.then(|| LandlockPolicy {
            read_write: vec!["/".into()],
            read_only: vec![],
        }),
        no_new_privs: sec.no_new_privs,
    })
}

/// Drops privileges in the order of the module doc; afterwards only exec
/// (or the mini init) remains.
pub fn apply(prepared: &Prepared, user: &User) -> Result<(), SetupError> {
    if prepared.single_id() {
        switch_user(user)?;
    }
    if let Some(policy) = &prepared.landlock {
        let status = policy.apply()?;
        if let Some(w) = status.warning() {
            eprintln!("den: warning: {w}");
        }
    }
    if let Some(shim) = &prepared.id_shim {
        crate::seccomp::apply(std::slice::from_ref(shim))?;
    }
    if let Some(programs) = &prepared.seccomp {
        crate::seccomp::apply(programs)?;
    }
    prepared.caps.apply_bounding()?;
    if !prepared.single_id() {
        switch_user(user)?;
    }
    prepared.caps.set_process_caps(user.uid == 0)?;
    if prepared.no_new_privs {
        crate::seccomp::set_no_new_privs()?;
    }
    Ok(())
}

/// setgroups, setresgid, setresuid. In single-id mode only the user's own
/// id exists in the namespace: other ids are refused with advice (`apply`
/// runs this before the single-id shim is installed, so `-u 999` is an
/// error there, not a no-op that would leave the command running as root).
fn switch_user(user: &User) -> Result<(), SetupError> {
    use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
    let groups_allowed = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "allow")
        .unwrap_or(false);
    if groups_allowed {
        let groups: Vec<Gid> = user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        setgroups(&groups).map_err(|errno| SetupError::SetGroups {
            groups: user.groups.clone(),
            errno,
        })?;
    }
    let unmapped = |what, id, errno| SetupError::SwitchId { what, id, errno };
    let gid = Gid::from_raw(user.gid);
    setresgid(gid, gid, gid).map_err(|e| unmapped("group", user.gid, e))?;
    let uid = Uid::from_raw(user.uid);
    setresuid(uid, uid, uid).map_err(|e| unmapped("user", user.uid, e))
}
