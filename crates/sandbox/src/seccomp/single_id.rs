//! Single-id mode's compatibility shim: what lets package managers (and
//! other programs that hand files to, or switch to, system users) work in a
//! user namespace that maps only one id.
//!
//! # The problem
//!
//! Without subordinate ids the container's user namespace maps exactly one
//! id: container root is the user (`crate::idmap`). Every other id is
//! unmapped, so
//!
//! - `chown(path, 42, …)` fails with EINVAL: dpkg chowns every file it
//!   installs to the owner in the package, and maintainer scripts chown to
//!   the system users they create;
//! - `setgroups` fails with EPERM (it must be denied before a single-id
//!   `gid_map` can be written) and `setresuid(42, …)` with EINVAL: APT drops
//!   its download methods to the user `_apt` that way.
//!
//! # What den does, in single-id mode only
//!
//! 1. **A seccomp filter that turns those calls into successful no-ops**
//!    ([`compile`]; rules are data in [`NO_OPS`]). The ownership calls
//!    (`chown`, `fchown`, `lchown`, `fchownat`) when the uid or the gid
//!    argument is neither 0 nor -1, the id switches (`setuid`, `setgid`,
//!    `setreuid`, `setregid`, `setresuid`, `setresgid`, `setfsuid`,
//!    `setfsgid`) when any id argument is neither 0 nor -1, and every
//!    `setgroups` (its list is in memory, out of a filter's reach, and the
//!    kernel refuses every `setgroups` here anyway) return 0 without
//!    entering the kernel: `SECCOMP_RET_ERRNO` with errno 0. Calls with only
//!    0 and -1 still reach the kernel and behave as always.
//! 2. **An APT configuration that keeps APT from dropping privileges**: a
//!    read-only tmpfs at [`APT_CONFIG_DIR`] holding `apt.conf` with
//!    [`APT_CONFIG_TEXT`] (`APT::Sandbox::User "root";`), and `APT_CONFIG`
//!    pointing at it unless the user set that variable. The no-op alone is
//!    not enough for APT: after switching it verifies the result with
//!    `getgid`/`getuid`/`getresuid` (and, when configured, that it cannot
//!    switch back); the truthful answer, still 0, makes it stop with "Could
//!    not switch group". Lying there would need a supervisor answering the
//!    get*id calls of every process through seccomp user notification, and
//!    keeping the lies consistent (`/proc/self/status`, files created "as"
//!    `_apt`); one line of configuration is simpler, and it comes from den,
//!    not from the image: the tmpfs is den's own mount, so it works with any
//!    image that has APT, and it is read-only in the container (an image
//!    whose own APT configuration sets `APT::Sandbox::User` overrides it:
//!    APT reads `APT_CONFIG` first).
//!
//! # What this grants: nothing
//!
//! A call answered by the filter never reaches the kernel: no file changes
//! owner, no process changes an id, no group is added or dropped. The
//! process keeps exactly the ids and capabilities it had: root of the
//! container's user namespace, which is the user on the host, confined by
//! the container's other filters and namespaces. No call that the kernel
//! would have carried out is changed (only 0 and -1 ever succeed here, and
//! those pass through), and the filter is installed *before* den's
//! allow-list, so that where both answer with an errno the allow-list's
//! answer wins: a call den denies stays denied.
//!
//! What changes is what programs believe. A daemon that "drops privileges"
//! to `nobody` with `setuid`, `su`, `runuser` or `setpriv` to another user,
//! and APT's download methods keep running as the namespace's root; a file
//! chowned to `_apt` stays owned by root. The user's security is unchanged
//! (every process of the container is the user anyway, as any single-id
//! container process is); only the privilege separation *inside* the
//! container is not there. `getuid` and friends answer truthfully, so a
//! program that checks sees it. Likewise a failure the kernel would have
//! reported for such a call (a missing file, a read-only mount) is not
//! reported: the call does nothing and succeeds.
//!
//! den's own `-u USER` is not affected: den switches to the container user
//! before any filter is installed, so `-u 999` in single-id mode is still
//! refused with an error rather than silently running as root.
//!
//! The filter is applied whenever the container runs in single-id mode,
//! also with `--security-opt seccomp=unconfined` and `--privileged`: it
//! belongs to the id mapping (it makes one id look like many), not to the
//! security policy, and it restricts nothing. It is a few dozen
//! instructions and compiled at each start (well under a millisecond); it
//! is not cached.

use std::collections::BTreeMap;

use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};

use super::{Arch, BpfProgram, SeccompError};

/// A system call the shim may answer, and which of its arguments hold ids.
#[derive(Debug)]
pub struct NoOp {
    pub syscall: &'static str,
    /// Argument positions (from 0) holding a uid or gid: the call is a no-op
    /// when any of them is neither 0 nor -1. Empty: always a no-op.
    pub id_args: &'static [u8],
}

/// The calls the shim answers with success, and when.
#[rustfmt::skip] // one call a line: easier to review
pub const NO_OPS: &[NoOp] = &[
    // Ownership: chown(path, uid, gid) and its variants. aarch64 has only
    // fchown and fchownat.
    NoOp { syscall: "chown", id_args: &[1, 2] },
    NoOp { syscall: "lchown", id_args: &[1, 2] },
    NoOp { syscall: "fchown", id_args: &[1, 2] },
    NoOp { syscall: "fchownat", id_args: &[2, 3] },
    // Switching ids; -1 means "unchanged" for the re/res variants.
    NoOp { syscall: "setuid", id_args: &[0] },
    NoOp { syscall: "setgid", id_args: &[0] },
    NoOp { syscall: "setreuid", id_args: &[0, 1] },
    NoOp { syscall: "setregid", id_args: &[0, 1] },
    NoOp { syscall: "setresuid", id_args: &[0, 1, 2] },
    NoOp { syscall: "setresgid", id_args: &[0, 1, 2] },
    // These return the previous fs id, which is 0, the answer of a no-op.
    NoOp { syscall: "setfsuid", id_args: &[0] },
    NoOp { syscall: "setfsgid", id_args: &[0] },
    // The group list is behind a pointer; the kernel refuses every call in a
    // single-id namespace (setgroups is denied there).
    NoOp { syscall: "setgroups", id_args: &[] },
];

/// Where den's APT configuration is mounted in a single-id container.
pub const APT_CONFIG_DIR: &str = "/run/den";

/// The file `APT_CONFIG` names.
pub const APT_CONFIG_PATH: &str = "/run/den/apt.conf";

/// Its content: APT runs its download methods as root instead of switching
/// to `_apt`, a switch it would verify and find undone.
pub const APT_CONFIG_TEXT: &str = "// Written by den: single-id mode maps only one id, so APT cannot\n\
// switch to _apt (see den's seccomp::single_id).\n\
APT::Sandbox::User \"root\";\n";

/// Build the shim for the running architecture. Install it with
/// [`super::apply`] *before* the allow-list (see the module doc).
pub fn compile() -> Result<BpfProgram, SeccompError> {
    compile_for(Arch::current()?)
}

pub(super) fn compile_for(arch: Arch) -> Result<BpfProgram, SeccompError> {
    let err = |source| SeccompError::Build {
        arch: arch.name(),
        source,
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for no_op in NO_OPS {
        let Some(nr) = arch.number(no_op.syscall) else {
            continue;
        };
        // Rules of one call are alternatives, conditions of one rule all
        // hold: "arg i is neither 0 nor -1" for any id argument i. Ids are
        // 32 bits: compare the low half only, as the kernel reads them.
        let mut alternatives = Vec::new();
        for &arg in no_op.id_args {
            let not = |value| {
                SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, value)
            };
            let conditions = vec![not(0).map_err(err)?, not(u64::from(u32::MAX)).map_err(err)?];
            alternatives.push(SeccompRule::new(conditions).map_err(err)?);
        }
        rules.insert(nr, alternatives);
    }
    SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(0),
        arch.target(),
    )
    .and_then(BpfProgram::try_from)
    .map_err(err)
}
