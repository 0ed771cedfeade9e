//! The seccomp filter of a container: Docker's default profile, compiled to
//! classic BPF for the running architecture: a binary search on the call
//! number ([`dispatch`]), and `seccompiler` for the calls whose arguments
//! are checked.
//!
//! # What it enforces
//!
//! The policy is data, in [`profile`]: an allow-list where every system call
//! not named fails with EPERM; a few calls allowed only with certain argument
//! values (`personality`, `socket` without AF_ALG/AF_VSOCK, `clone` without
//! namespace flags, `ioctl` without TIOCSTI/TIOCLINUX); groups allowed only when the container keeps a
//! capability (mount/unshare/setns with CAP_SYS_ADMIN, init_module with
//! CAP_SYS_MODULE, ...); and `clone3` answered with ENOSYS unless
//! CAP_SYS_ADMIN is kept.
//!
//! # Two stacked filters
//!
//! A seccompiler filter has one action for matches and one for the rest, so
//! "EPERM for unknown calls" and "ENOSYS for clone3" need two filters:
//!
//! 1. the allow-list (mismatch: EPERM), which allows clone3;
//! 2. only without CAP_SYS_ADMIN: clone3 → ENOSYS, everything else allowed.
//!
//! With several filters the kernel runs them all and keeps the result of
//! highest precedence (kill > trap > errno > ... > allow; for two results of
//! the same action, the filter installed last wins). Because filter 1
//! *allows* clone3, the only errno for clone3 is filter 2's ENOSYS, and the
//! outcome does not depend on the tie rule. For every other call filter 2
//! says allow, so filter 1 decides. glibc (2.34+) and musl treat ENOSYS from
//! clone3 as "old kernel" and fall back to clone, whose flags filter 1 checks
//! (clone3 passes its flags in memory, where a filter cannot look).
//!
//! # Other architectures and ABIs
//!
//! Filters are built for x86_64 and aarch64. A call made through another ABI
//! of the same CPU (i386 `int 0x80`, arm32) carries a different audit arch,
//! and seccompiler kills the process: unlike Docker, 32-bit programs do not
//! run. x32 calls carry the x86_64 audit arch with bit 30 set in the number;
//! seccompiler does not check that bit, which would make a deny-list
//! bypassable, but this filter is an allow-list of exact 64-bit numbers: an
//! x32 number never equals one of them, so every x32 call gets EPERM.
//!
//! # Order of the security steps
//!
//! `crate::container::security::apply` installs the filters (after
//! Landlock and, in single-id mode, the [`single_id`] shim; before the
//! bounding set, the switch to the container user and the process
//! capabilities; no_new_privs last and only when asked); its module doc
//! gives the whole order and why. What matters here: the kernel installs a
//! filter only for a process with no_new_privs set or CAP_SYS_ADMIN in its
//! user namespace. Installing it while the process still holds
//! CAP_SYS_ADMIN keeps no_new_privs optional, as in Docker, so setuid
//! programs (`sudo`, `su`) keep working in the container. Nothing applied
//! after the filter is refused by it: prctl, capset, setgroups, set*id and
//! execve are allowed.
//!
//! Compile (with [`compile_cached`]) before `pivot_root`, while den's cache
//! directory is reachable; apply after pivot_root. The container must not be able
//! to write that directory.
//!
//! `--security-opt seccomp=unconfined` means: do not call [`apply`]. Nothing
//! else changes.
//!
//! # Single-id mode
//!
//! When the container's user namespace maps only the user's id, one more
//! filter, [`single_id`], is installed just before these: it answers
//! ownership and id-switch calls to unmapped ids with success and does
//! nothing, so package managers work. It grants nothing; its module doc says
//! why, and why it is installed first.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use caps::{Capability, CapsHashSet};
use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

pub use seccompiler::BpfProgram;

mod dispatch;
pub mod profile;
pub mod single_id;
mod syscalls;
#[cfg(test)]
mod tests;

use profile::ArgCheck;

/// Bump when the way this module turns the profile into filters changes
/// (the profile data itself is hashed into the cache key).
const COMPILER_REVISION: u32 = 2;

/// Why a filter could not be built, cached or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp filters are built for x86_64 and aarch64 only, not {0}")]
    UnsupportedArch(&'static str),
    #[error("cannot build the seccomp filter for {arch}")]
    Build {
        arch: &'static str,
        #[source]
        source: seccompiler::BackendError,
    },
    #[error("cannot set no_new_privs")]
    NoNewPrivs(#[source] io::Error),
    #[error("no seccomp filter to install: compile() returns at least one")]
    NothingToInstall,
    #[error(
        "cannot install seccomp filter {index} of {count}: the process has neither no_new_privs nor CAP_SYS_ADMIN in its user namespace; install it before dropping capabilities, or set no_new_privs first"
    )]
    NeedsPrivilege { index: usize, count: usize },
    #[error("cannot install seccomp filter {index} of {count}")]
    Install {
        index: usize,
        count: usize,
        #[source]
        source: io::Error,
    },
    #[error("cannot create the seccomp cache directory {path}")]
    CacheDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the compiled seccomp filter to {path}")]
    CacheWrite {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The architectures den builds filters for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    fn current() -> Result<Self, SeccompError> {
        match std::env::consts::ARCH {
            "x86_64" => Ok(Arch::X86_64),
            "aarch64" => Ok(Arch::Aarch64),
            other => Err(SeccompError::UnsupportedArch(other)),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// `AUDIT_ARCH_*` (linux/audit.h), as `seccomp_data.arch` carries it.
    fn audit(self) -> u32 {
        match self {
            Arch::X86_64 => 0xc000_003e,
            Arch::Aarch64 => 0xc000_00b7,
        }
    }

    fn target(self) -> TargetArch {
        match self {
            Arch::X86_64 => TargetArch::x86_64,
            Arch::Aarch64 => TargetArch::aarch64,
        }
    }

    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Arch::X86_64 => syscalls::X86_64,
            Arch::Aarch64 => syscalls::AARCH64,
        }
    }

    fn only_here(self) -> &'static [profile::Group] {
        match self {
            Arch::X86_64 => profile::X86_64_ONLY,
            Arch::Aarch64 => &[],
        }
    }

    /// The number of `name` here, or None when this architecture lacks it.
    fn number(self, name: &str) -> Option<i64> {
        let table = self.table();
        let i = table.binary_search_by(|(n, _)| (*n).cmp(name)).ok()?;
        Some(i64::from(table[i].1))
    }
}

/// Build the filters for a container that keeps `kept_caps`, for the running
/// architecture: the allow-list, then (without CAP_SYS_ADMIN) the clone3
/// filter. Install them in this order with [`apply`].
pub fn compile(kept_caps: &CapsHashSet) -> Result<Vec<BpfProgram>, SeccompError> {
    compile_for(Arch::current()?, kept_caps)
}

fn compile_for(arch: Arch, kept: &CapsHashSet) -> Result<Vec<BpfProgram>, SeccompError> {
    let build = |rules, mismatch, on_match| -> Result<BpfProgram, SeccompError> {
        SeccompFilter::new(rules, mismatch, on_match, arch.target())
            .and_then(BpfProgram::try_from)
            .map_err(|source| SeccompError::Build {
                arch: arch.name(),
                source,
            })
    };
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    // The argument-checked calls through seccompiler, the rest by number
    // (`dispatch`).
    let (plain, checked): (Rules, Rules) = allow_list(arch, kept)?
        .into_iter()
        .partition(|(_, rules)| rules.is_empty());
    let numbers = |r: &Rules| -> BTreeSet<u32> { r.keys().map(|&nr| nr as u32).collect() };
    let checked_nrs = numbers(&checked);
    let checked_program = match checked.is_empty() {
        true => None,
        false => Some((
            &checked_nrs,
            build(checked, eperm.clone(), SeccompAction::Allow)?,
        )),
    };
    let mut programs = vec![dispatch::dispatch(
        arch.audit(),
        &numbers(&plain),
        checked_program,
        u32::from(eperm),
    )];
    let enosys: Rules = profile::ENOSYS_UNLESS
        .iter()
        .filter(|(_, cap)| !kept.contains(cap))
        .filter_map(|(name, _)| arch.number(name))
        .map(|nr| (nr, Vec::new()))
        .collect();
    if !enosys.is_empty() {
        let enosys_action = SeccompAction::Errno(libc::ENOSYS as u32);
        programs.push(build(enosys, SeccompAction::Allow, enosys_action)?);
    }
    Ok(programs)
}

type Rules = std::collections::BTreeMap<i64, Vec<SeccompRule>>;

/// The allow-list as seccompiler rules: an empty rule list allows the call
/// whatever its arguments; otherwise any one rule must match.
fn allow_list(arch: Arch, kept: &CapsHashSet) -> Result<Rules, SeccompError> {
    let err = |source| SeccompError::Build {
        arch: arch.name(),
        source,
    };
    let mut rules = Rules::new();
    for c in profile::CONDITIONAL {
        let Some(nr) = arch.number(c.syscall) else {
            continue;
        };
        if c.unless.is_some_and(|cap| kept.contains(&cap)) {
            continue;
        }
        let len = match c.is_int {
            true => SeccompCmpArgLen::Dword,
            false => SeccompCmpArgLen::Qword,
        };
        for check in c.any_of {
            let conds: Vec<(SeccompCmpOp, u64)> = match *check {
                ArgCheck::Eq(v) => vec![(SeccompCmpOp::Eq, v)],
                ArgCheck::Lt(v) => vec![(SeccompCmpOp::Lt, v)],
                ArgCheck::Gt(v) => vec![(SeccompCmpOp::Gt, v)],
                ArgCheck::NoBitsOf(mask) => vec![(SeccompCmpOp::MaskedEq(mask), 0)],
                ArgCheck::NoneOf(values) => values.iter().map(|v| (SeccompCmpOp::Ne, *v)).collect(),
            };
            let conds = conds
                .into_iter()
                .map(|(op, value)| SeccompCondition::new(c.arg, len.clone(), op, value))
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            let rule = SeccompRule::new(conds).map_err(err)?;
            rules.entry(nr).or_default().push(rule);
        }
    }
    // Unconditional entries replace conditional ones for the same call (clone
    // with CAP_SYS_ADMIN).
    for name in unconditional_names(arch, kept) {
        if let Some(nr) = arch.number(name) {
            rules.insert(nr, Vec::new());
        }
    }
    Ok(rules)
}

/// Names the allow-list allows whatever the arguments. The ENOSYS calls are
/// among them: the second filter answers those (see the module doc).
fn unconditional_names(arch: Arch, kept: &CapsHashSet) -> impl Iterator<Item = &'static str> {
    let by_cap = profile::BY_CAPABILITY
        .iter()
        .filter(|(cap, _)| kept.contains(cap))
        .map(|(_, group)| group);
    let groups = profile::ALWAYS.iter().chain(arch.only_here()).chain(by_cap);
    let enosys = profile::ENOSYS_UNLESS.iter().map(|(name, _)| *name);
    groups
        .flat_map(|g| g.syscalls.iter().copied())
        .chain(enosys)
}

/// Install `programs` on the calling thread, in order. Does not set
/// no_new_privs: see the module doc for when that is needed.
pub fn apply(programs: &[BpfProgram]) -> Result<(), SeccompError> {
    if programs.is_empty() {
        return Err(SeccompError::NothingToInstall);
    }
    let count = programs.len();
    for (i, program) in programs.iter().enumerate() {
        let index = i + 1;
        crate::sys::seccomp_set_mode_filter(program).map_err(|source| {
            match source.raw_os_error() {
                Some(libc::EACCES) => SeccompError::NeedsPrivilege { index, count },
                _ => SeccompError::Install {
                    index,
                    count,
                    source,
                },
            }
        })?;
    }
    Ok(())
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`: from now on exec never grants privileges
/// (setuid bits and file capabilities are ignored). Irreversible, inherited.
pub fn set_no_new_privs() -> Result<(), SeccompError> {
    rustix::thread::set_no_new_privs(true).map_err(|e| SeccompError::NoNewPrivs(e.into()))
}

/// Call `clone3` in a way that never creates a task, and return the errno:
/// EINVAL when the call reached the kernel, ENOSYS when den's filter (or an
/// old kernel) answered. For tests and in-container probes.
pub fn probe_clone3() -> nix::errno::Errno {
    crate::sys::clone3_null()
}

/// Look up the thread keyring with `keyctl` (changes nothing): Err(EPERM)
/// under den's filter, which denies the (not namespaced) keyring calls.
pub fn probe_keyctl() -> Result<(), nix::errno::Errno> {
    crate::sys::keyctl_thread_keyring_id().map(drop)
}

// ---------------------------------------------------------------------------
// The compiled-filter cache.
//
// One file per (den version, compiler revision, profile data, architecture,
// kept capabilities that the profile mentions), named by a hash of that key.
// Layout, little endian:
//
//   "den-seccomp-cache 1\n"   magic and format version
//   <key>\n                   the full key, compared on load (the file name
//                             is only a hash, so a collision cannot load the
//                             wrong filter)
//   u32 program count, then per program: u32 instruction count and that many
//   8-byte instructions (code u16, jt u8, jf u8, k u32).
//
// Written to a temporary file in the same directory and renamed over the
// final name, so readers see a whole file or none; a file that does not
// parse or whose key differs is recompiled and replaced. Concurrent writers
// write identical contents, and the last rename wins.
// ---------------------------------------------------------------------------

const CACHE_MAGIC: &[u8] = b"den-seccomp-cache 1\n";

/// [`compile`], through a cache of compiled filters in `cache_dir` (created
/// if missing). Fails only when the cache cannot be written; a caller that
/// prefers to start without the cache can fall back to [`compile`].
pub fn compile_cached(
    kept_caps: &CapsHashSet,
    cache_dir: &Path,
) -> Result<Vec<BpfProgram>, SeccompError> {
    let arch = Arch::current()?;
    let key = cache_key(arch, kept_caps);
    let path = cache_dir.join(format!("seccomp-{:016x}.bpf", fnv1a(key.as_bytes())));
    if let Some(programs) = fs_err::read(&path).ok().and_then(|b| decode(&b, &key)) {
        return Ok(programs);
    }
    let programs = compile_for(arch, kept_caps)?;
    write_atomically(cache_dir, &path, &encode(&programs, &key))?;
    Ok(programs)
}

fn cache_key(arch: Arch, kept: &CapsHashSet) -> String {
    let mentioned = profile::BY_CAPABILITY
        .iter()
        .map(|(cap, _)| *cap)
        .chain(profile::CONDITIONAL.iter().filter_map(|c| c.unless))
        .chain(profile::ENOSYS_UNLESS.iter().map(|(_, cap)| *cap));
    let mut relevant: Vec<Capability> = mentioned.filter(|c| kept.contains(c)).collect();
    relevant.sort_by_key(|c| c.index());
    relevant.dedup();
    let caps: Vec<String> = relevant.iter().map(|c| c.to_string()).collect();
    format!(
        "den {} compiler {COMPILER_REVISION} profile {:016x} arch {} caps {}",
        env!("CARGO_PKG_VERSION"),
        profile_fingerprint(arch),
        arch.name(),
        caps.join(","),
    )
}

/// A hash of everything in the profile and syscall table that shapes the
/// filter for `arch` (not the `why` texts).
fn profile_fingerprint(arch: Arch) -> u64 {
    let mut h = Fnv::default();
    h.str(profile::DOCKER_PROFILE);
    for group in profile::ALWAYS.iter().chain(arch.only_here()) {
        h.names(group.syscalls);
    }
    for (cap, group) in profile::BY_CAPABILITY {
        h.u64(u64::from(cap.index()));
        h.names(group.syscalls);
    }
    for c in profile::CONDITIONAL {
        h.str(c.syscall);
        h.u64(u64::from(c.arg) | u64::from(c.is_int) << 8);
        h.u64(c.unless.map_or(u64::MAX, |cap| u64::from(cap.index())));
        for check in c.any_of {
            let (tag, values) = match *check {
                ArgCheck::Eq(v) => (1, vec![v]),
                ArgCheck::Lt(v) => (2, vec![v]),
                ArgCheck::Gt(v) => (3, vec![v]),
                ArgCheck::NoBitsOf(v) => (4, vec![v]),
                ArgCheck::NoneOf(vs) => (5, vs.to_vec()),
            };
            h.u64(tag);
            h.u64(values.len() as u64);
            values.into_iter().for_each(|v| h.u64(v));
        }
    }
    for (name, cap) in profile::ENOSYS_UNLESS {
        h.str(name);
        h.u64(u64::from(cap.index()));
    }
    for (name, nr) in arch.table() {
        h.str(name);
        h.u64(u64::from(*nr));
    }
    h.0
}

/// 64-bit FNV-1a: stable across Rust versions (unlike `DefaultHasher`), and
/// enough for naming cache files, whose full key is checked on load.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
        self.bytes(&[0]);
    }

    fn names(&mut self, names: &[&str]) {
        names.iter().for_each(|n| self.str(n));
        self.bytes(&[0xff]);
    }

    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = Fnv::default();
    h.bytes(bytes);
    h.0
}

fn encode(programs: &[BpfProgram], key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + programs.iter().map(|p| 4 + 8 * p.len()).sum::<usize>());
    out.extend_from_slice(CACHE_MAGIC);
    out.extend_from_slice(key.as_bytes());
    out.push(b'\n');
    let count = |n: usize| u32::try_from(n).expect("a BPF program has at most 4096 instructions");
    out.extend_from_slice(&count(programs.len()).to_le_bytes());
    for program in programs {
        out.extend_from_slice(&count(program.len()).to_le_bytes());
        for ins in program {
            out.extend_from_slice(&ins.code.to_le_bytes());
            out.extend_from_slice(&[ins.jt, ins.jf]);
            out.extend_from_slice(&ins.k.to_le_bytes());
        }
    }
    out
}

/// The programs in a cache file, or None if it is not exactly a cache file
/// for `key`.
fn decode(bytes: &[u8], key: &str) -> Option<Vec<BpfProgram>> {
    let rest = bytes.strip_prefix(CACHE_MAGIC)?;
    let rest = rest.strip_prefix(key.as_bytes())?.strip_prefix(b"\n")?;
    let (count, mut rest) = take_u32(rest)?;
    let mut programs = Vec::new();
    for _ in 0..count {
        let (len, after) = take_u32(rest)?;
        let len = len as usize;
        if len == 0 || len > 4096 || after.len() < len * 8 {
            return None;
        }
        let (body, tail) = after.split_at(len * 8);
        programs.push(body.chunks_exact(8).map(instruction).collect());
        rest = tail;
    }
    (rest.is_empty() && !programs.is_empty()).then_some(programs)
}

fn take_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*head), rest))
}

fn instruction(b: &[u8]) -> seccompiler::sock_filter {
    seccompiler::sock_filter {
        code: u16::from_le_bytes([b[0], b[1]]),
        jt: b[2],
        jf: b[3],
        k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
    }
}

fn write_atomically(dir: &Path, path: &Path, contents: &[u8]) -> Result<(), SeccompError> {
    fs_err::create_dir_all(dir).map_err(|source| SeccompError::CacheDir {
        path: dir.to_owned(),
        source,
    })?;
    let write_err = |source| SeccompError::CacheWrite {
        path: path.to_owned(),
        source,
    };
    den_atomic::replace_bytes(path, dir, den_atomic::Durability::Unsynced, contents)
        .map_err(write_err)
}
