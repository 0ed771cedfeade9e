//! Stage 3 of the container set-up: dropping privileges, in the order the
//! kernel needs (see `crate::caps` for why this order).

use seccompiler::BpfProgram;

use super::SetupError;
use super::spec::ContainerSpec;
use super::user::User;
use crate::caps::CapPolicy;
use crate::landlock::LandlockPolicy;

/// What is worked out before pivot_root, while den's store is still
/// reachable: the capability set and the compiled (cached) seccomp filter.
pub(super) struct Prepared {
    caps: CapPolicy,
    seccomp: Option<Vec<BpfProgram>>,
    /// Single-id mode's shim (`crate::seccomp::single_id`), installed
    /// before `seccomp`.
    id_shim: Option<BpfProgram>,
}

impl Prepared {
    /// The user namespace maps only the user's id: the container gets the
    /// single-id shim and den's APT configuration.
    pub(super) fn single_id(&self) -> bool {
        self.id_shim.is_some()
    }
}

/// `single_id`: the container's user namespace maps only the user's id.
pub(super) fn prepare(spec: &ContainerSpec, single_id: bool) -> Result<Prepared, SetupError> {
    let caps = CapPolicy::from_flags(&spec.security.capabilities, &["ALL".to_string()], false)
        .map_err(|e| SetupError::Security(e.to_string()))?;
    let seccomp = match spec.security.seccomp {
        false => None,
        true => Some(
            crate::seccomp::compile_cached(&caps.keep, &spec.cache_dir)
                .or_else(|_| crate::seccomp::compile(&caps.keep))
                .map_err(|e| SetupError::Security(e.to_string()))?,
        ),
    };
    let id_shim = match single_id {
        false => None,
        true => Some(crate::seccomp::single_id::compile().map_err(sec)?),
    };
    Ok(Prepared {
        caps,
        seccomp,
        id_shim,
    })
}

fn sec(e: impl std::fmt::Display) -> SetupError {
    SetupError::Security(e.to_string())
}

/// Landlock, seccomp, bounding set, user ids, process capabilities, and
/// no_new_privs only with `--security-opt no-new-privileges` (the order and
/// why are in `crate::caps`); afterwards only exec (or the mini init)
/// remains. Landlock and seccomp go first, while the process still holds
/// CAP_SYS_ADMIN in its user namespace, so that no_new_privs can stay off
/// and setuid programs in the image work, as in Docker.
pub(super) fn apply(
    spec: &ContainerSpec,
    prepared: &Prepared,
    user: &User,
) -> Result<(), SetupError> {
    if prepared.single_id() {
        // Before the single-id shim, which answers id switches to unmapped
        // ids with a silent success: here `-u 999` must be an error, not a
        // command left running as root. Only uid 0 is mapped, so the
        // switch keeps every capability the steps below need.
        switch_user(user)?;
    }
    if spec.security.landlock {
        let policy = LandlockPolicy {
            read_write: vec!["/".into()],
            read_only: vec![],
        };
        let status = policy.apply().map_err(sec)?;
        if let Some(w) = status.warning() {
            eprintln!("den: warning: {w}");
        }
    }
    if let Some(shim) = &prepared.id_shim {
        // First, so that the allow-list's denials win over its answers.
        crate::seccomp::apply(std::slice::from_ref(shim)).map_err(sec)?;
    }
    if let Some(programs) = &prepared.seccomp {
        crate::seccomp::apply(programs).map_err(sec)?;
    }
    prepared.caps.apply_bounding().map_err(sec)?;
    if !prepared.single_id() {
        switch_user(user)?;
    }
    prepared.caps.set_process_caps(user.uid == 0).map_err(sec)?;
    if spec.security.no_new_privs {
        crate::seccomp::set_no_new_privs().map_err(sec)?;
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
        setgroups(&groups).map_err(|e| {
            SetupError::User(format!(
                "cannot set supplementary groups {:?}: {e}",
                user.groups
            ))
        })?;
    }
    let unmapped = |what: &str, id: u32, e: nix::Error| {
        SetupError::User(format!(
            "cannot switch to {what} {id}: {e}; this user namespace maps only ids it has (add subordinate ids to /etc/subuid and /etc/subgid, or run as root with --user 0)"
        ))
    };
    let gid = Gid::from_raw(user.gid);
    setresgid(gid, gid, gid).map_err(|e| unmapped("group", user.gid, e))?;
    let uid = Uid::from_raw(user.uid);
    setresuid(uid, uid, uid).map_err(|e| unmapped("user", user.uid, e))
}
