//! Landlock for a container: its processes may open files only beneath the
//! hierarchies the container is given (its root, volumes, /proc, /dev, ...).
//!
//! # What it adds
//!
//! Mount namespaces and `pivot_root` decide what a path names; Landlock
//! decides what may be opened, whatever path or descriptor leads there.
//! Rules are attached to inodes: a file may be opened with a right if one of
//! the directories above it, walking up from the file through whatever mount
//! it was reached by, carries a rule granting that right. So a descriptor of
//! a host directory leaked into the container (opened before `pivot_root`)
//! cannot be used to open anything outside the allowed trees: walking up
//! from `leaked/file` never meets the container's `/` or a volume. (The
//! leaked descriptor itself keeps working as opened: a directory can still be
//! listed, but nothing beneath it opened.) Landlock does not replace
//! permission checks: "read_write" here only means Landlock adds no limit.
//!
//! # The policy
//!
//! [`LandlockPolicy`]: `read_write` trees get every filesystem right of
//! Landlock ABI [`TARGET_ABI`]; `read_only` trees get read and execute. The
//! caller (container init, after `pivot_root`) passes `/` (read-write or
//! read-only as the container's root), every volume mount point, and `/proc`,
//! `/dev`, `/sys`, `/tmp`, `/dev/shm` etc. as read-write: their own mount
//! flags and permissions limit them already, and the device rights of ABI 5
//! (ioctl on device files: terminals!) are only granted with read-write. A
//! path may be a file (a bind-mounted `/etc/resolv.conf`): it then gets the
//! file rights only. Network rules are not used yet.
//!
//! # Compatibility (best effort)
//!
//! The rights of ABI 1 to [`TARGET_ABI`] are requested; an older kernel
//! enforces what it knows ([`LandlockStatus::PartiallyEnforced`]). One
//! exception: without ABI 2 (Linux < 5.19) Landlock forbids every rename or
//! link across directories, which breaks package managers, so on such a
//! kernel nothing is enforced ([`LandlockStatus::NotEnforced`], as on kernels
//! without Landlock). The caller should warn then and continue.
//!
//! # Order of the security steps
//!
//! `crate::container::security` gives the order: Landlock goes before the
//! seccomp filters, while the process still holds CAP_SYS_ADMIN in the
//! container's user namespace (the kernel requires that or no_new_privs).
//! [`LandlockPolicy::apply`] does not set no_new_privs itself.

use std::io;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, BitFlags, CompatLevel, Compatible, PathBeneath, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, RulesetError, RulesetStatus,
};
use rustix::fs::{FileType, Mode, OFlags};

/// The newest Landlock ABI whose filesystem rights den requests. Raising it
/// is a review step: each ABI can restrict something new.
pub const TARGET_ABI: ABI = ABI::V7;

/// The trees a container's processes may open files in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LandlockPolicy {
    /// Every filesystem right.
    pub read_write: Vec<PathBuf>,
    /// Read files, list directories, execute.
    pub read_only: Vec<PathBuf>,
}

/// How much of the policy the running kernel enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LandlockStatus {
    FullyEnforced,
    /// An older kernel: the rights it knows are enforced.
    PartiallyEnforced,
    /// No Landlock (not built, disabled at boot, or older than ABI 2).
    NotEnforced,
}

impl LandlockStatus {
    /// What to tell the user, if anything.
    pub fn warning(self) -> Option<&'static str> {
        match self {
            LandlockStatus::FullyEnforced => None,
            LandlockStatus::PartiallyEnforced => Some(
                "this kernel's Landlock is older than ABI 7: file access is restricted only partially",
            ),
            LandlockStatus::NotEnforced => Some(
                "Landlock is not available (kernel older than 5.19, or not enabled with lsm=...,landlock); continuing without it",
            ),
        }
    }
}

/// Why a Landlock policy could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    #[error("cannot open {path} for a Landlock rule")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create the Landlock ruleset")]
    Create(#[source] RulesetError),
    #[error("cannot add the Landlock rule for {path}")]
    AddRule {
        path: PathBuf,
        #[source]
        source: RulesetError,
    },
    #[error(
        "cannot enforce the Landlock ruleset (the kernel requires no_new_privs or CAP_SYS_ADMIN in the process's user namespace)"
    )]
    RestrictSelf(#[source] RulesetError),
}

impl LandlockPolicy {
    /// Restrict the calling thread (and what it execs) to the policy's trees.
    /// Every path must exist. Irreversible.
    pub fn apply(&self) -> Result<LandlockStatus, LandlockError> {
        let mut ruleset = create_ruleset().map_err(LandlockError::Create)?;
        let rw = AccessFs::from_all(TARGET_ABI);
        let ro = AccessFs::from_read(TARGET_ABI);
        let rules =
            (self.read_write.iter().map(|p| (p, rw))).chain(self.read_only.iter().map(|p| (p, ro)));
        for (path, access) in rules {
            ruleset = add_rule(ruleset, path, access)?;
        }
        let status = ruleset
            .restrict_self()
            .map_err(LandlockError::RestrictSelf)?;
        Ok(match status.ruleset {
            RulesetStatus::FullyEnforced => LandlockStatus::FullyEnforced,
            RulesetStatus::PartiallyEnforced => LandlockStatus::PartiallyEnforced,
            RulesetStatus::NotEnforced => LandlockStatus::NotEnforced,
        })
    }
}

/// A ruleset handling every filesystem right up to [`TARGET_ABI`], or a
/// no-op one on kernels without the Refer right (ABI 2): see the module doc.
fn create_ruleset() -> Result<RulesetCreated, RulesetError> {
    Ok(Ruleset::default()
        .set_compatibility(CompatLevel::SoftRequirement)
        .handle_access(AccessFs::Refer)?
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(TARGET_ABI))?
        .create()?
        .no_new_privs(false))
}

fn add_rule(
    ruleset: RulesetCreated,
    path: &Path,
    access: BitFlags<AccessFs>,
) -> Result<RulesetCreated, LandlockError> {
    let open_err = |e: rustix::io::Errno| LandlockError::Open {
        path: path.to_owned(),
        source: e.into(),
    };
    let fd =
        rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).map_err(open_err)?;
    let stat = rustix::fs::fstat(&fd).map_err(open_err)?;
    let access = match FileType::from_raw_mode(stat.st_mode) {
        FileType::Directory => access,
        // The kernel refuses directory rights on a file.
        _ => access & AccessFs::from_file(TARGET_ABI),
    };
    ruleset
        .add_rule(PathBeneath::new(fd, access))
        .map_err(|source| LandlockError::AddRule {
            path: path.to_owned(),
            source,
        })
}
