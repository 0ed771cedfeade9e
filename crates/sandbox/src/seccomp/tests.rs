//! Unit tests of the seccomp policy. The compiled filters are run here by a
//! small classic-BPF interpreter with the kernel's rule for stacked filters,
//! so the tests check what the kernel would answer, for both architectures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use caps::{Capability, CapsHashSet};

use super::profile::{self, ArgCheck};
use super::*;
use crate::caps::DOCKER_DEFAULT;

const ALLOW: u32 = 0x7fff_0000;
const KILL_PROCESS: u32 = 0x8000_0000;
const fn errno(e: i32) -> u32 {
    0x0005_0000 | e as u32
}
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn audit_arch(arch: Arch) -> u32 {
    match arch {
        Arch::X86_64 => AUDIT_ARCH_X86_64,
        Arch::Aarch64 => AUDIT_ARCH_AARCH64,
    }
}

/// `struct seccomp_data`: nr, arch, instruction pointer, six arguments.
struct Call {
    nr: u32,
    arch: u32,
    args: [u64; 6],
}

impl Call {
    fn word(&self, offset: u32) -> u32 {
        match offset {
            0 => self.nr,
            4 => self.arch,
            8 | 12 => 0,
            16..=63 if offset.is_multiple_of(4) => {
                let arg = self.args[(offset as usize - 16) / 8];
                match offset % 8 {
                    0 => arg as u32, // little endian: low half first
                    _ => (arg >> 32) as u32,
                }
            }
            _ => panic!("filter loads seccomp_data offset {offset}"),
        }
    }
}

/// Run one classic-BPF program on `call` (only the instructions seccompiler
/// emits; anything else fails the test).
fn run(program: &[seccompiler::sock_filter], call: &Call) -> u32 {
    run_counted(program, call).0
}

/// [`run`], and how many instructions ran.
fn run_counted(program: &[seccompiler::sock_filter], call: &Call) -> (u32, usize) {
    let (mut acc, mut pc, mut steps) = (0u32, 0usize, 0usize);
    loop {
        steps += 1;
        let ins = &program[pc];
        let k = ins.k;
        let jump = |taken: bool| usize::from(if taken { ins.jt } else { ins.jf });
        pc += 1;
        match ins.code {
            0x20 => acc = call.word(k),   // BPF_LD | BPF_W | BPF_ABS
            0x54 => acc &= k,             // BPF_ALU | BPF_AND | BPF_K
            0x05 => pc += k as usize,     // BPF_JMP | BPF_JA
            0x15 => pc += jump(acc == k), // BPF_JMP | BPF_JEQ | BPF_K
            0x25 => pc += jump(acc > k),  // BPF_JMP | BPF_JGT | BPF_K
            0x35 => pc += jump(acc >= k), // BPF_JMP | BPF_JGE | BPF_K
            0x06 => return (k, steps),    // BPF_RET | BPF_K
            code => panic!("unexpected BPF instruction {code:#x} at {}", pc - 1),
        }
    }
}

/// The kernel's rule (`seccomp_run_filters`): run every filter, newest
/// first; keep the result whose action (as a signed number) is lowest, and
/// among equal actions the first seen, i.e. the newest filter's.
fn run_stack(programs: &[BpfProgram], call: &Call) -> u32 {
    let action = |r: u32| (r & 0xffff_0000) as i32;
    let mut result = ALLOW;
    for program in programs.iter().rev() {
        let r = run(program, call);
        if action(r) < action(result) {
            result = r;
        }
    }
    result
}

fn default_caps() -> CapsHashSet {
    DOCKER_DEFAULT.into_iter().collect()
}

fn with(extra: Capability) -> CapsHashSet {
    let mut caps = default_caps();
    caps.insert(extra);
    caps
}

struct Filter {
    arch: Arch,
    programs: Vec<BpfProgram>,
}

impl Filter {
    fn new(arch: Arch, caps: &CapsHashSet) -> Self {
        let programs = compile_for(arch, caps).expect("compile");
        Filter { arch, programs }
    }

    fn answer(&self, name: &str, args: [u64; 6]) -> u32 {
        let nr = self
            .arch
            .number(name)
            .unwrap_or_else(|| panic!("no {name}"));
        let call = Call {
            nr: nr as u32,
            arch: audit_arch(self.arch),
            args,
        };
        run_stack(&self.programs, &call)
    }

    fn call(&self, name: &str) -> u32 {
        self.answer(name, [0; 6])
    }
}

const ARCHES: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

#[test]
fn syscall_tables_are_sorted_and_unique() {
    for arch in ARCHES {
        let table = arch.table();
        assert!(
            table.windows(2).all(|w| w[0].0 < w[1].0),
            "{} table must be sorted by name, without duplicates",
            arch.name()
        );
        let numbers: BTreeSet<u32> = table.iter().map(|(_, nr)| *nr).collect();
        assert_eq!(numbers.len(), table.len(), "{} numbers unique", arch.name());
    }
}

#[test]
fn syscall_table_agrees_with_libc() {
    let arch = Arch::current().expect("test host arch");
    let known: &[(&str, libc::c_long)] = &[
        ("read", libc::SYS_read),
        ("openat", libc::SYS_openat),
        ("clone", libc::SYS_clone),
        ("clone3", libc::SYS_clone3),
        ("mount", libc::SYS_mount),
        ("unshare", libc::SYS_unshare),
        ("keyctl", libc::SYS_keyctl),
        ("init_module", libc::SYS_init_module),
        ("ptrace", libc::SYS_ptrace),
        ("personality", libc::SYS_personality),
        ("socket", libc::SYS_socket),
        ("landlock_restrict_self", libc::SYS_landlock_restrict_self),
        ("mseal", libc::SYS_mseal),
    ];
    for (name, nr) in known {
        assert_eq!(arch.number(name), Some(*nr), "{name}");
    }
}

#[test]
fn every_profile_name_is_a_real_syscall() {
    let groups = (profile::ALWAYS.iter())
        .chain(profile::X86_64_ONLY)
        .chain(profile::BY_CAPABILITY.iter().map(|(_, g)| g));
    let names = groups
        .flat_map(|g| g.syscalls.iter().copied())
        .chain(profile::CONDITIONAL.iter().map(|c| c.syscall))
        .chain(profile::ENOSYS_UNLESS.iter().map(|(n, _)| *n));
    for name in names {
        let known = ARCHES.iter().any(|a| a.number(name).is_some());
        assert!(known, "{name:?} is no system call of x86_64 or aarch64");
    }
    for name in profile::X86_64_ONLY.iter().flat_map(|g| g.syscalls) {
        assert!(Arch::X86_64.number(name).is_some(), "{name}");
    }
}

#[test]
fn filters_are_nonempty_and_clone3_filter_only_without_sys_admin() {
    for arch in ARCHES {
        let default = compile_for(arch, &default_caps()).unwrap();
        assert_eq!(default.len(), 2, "allow-list and clone3 filter");
        assert!(default.iter().all(|p| p.len() > 3));
        let admin = compile_for(arch, &with(Capability::CAP_SYS_ADMIN)).unwrap();
        assert_eq!(admin.len(), 1, "no clone3 filter with CAP_SYS_ADMIN");
    }
}

#[test]
fn everyday_calls_are_allowed_and_the_rest_is_eperm() {
    for arch in ARCHES {
        let f = Filter::new(arch, &default_caps());
        for name in [
            "read",
            "openat",
            "execve",
            "getpid",
            "futex",
            "setresuid",
            "capset",
        ] {
            assert_eq!(f.call(name), ALLOW, "{name} on {}", arch.name());
        }
        for name in [
            "keyctl",
            "add_key",
            "io_uring_setup",
            "kexec_load",
            "swapon",
        ] {
            assert_eq!(
                f.call(name),
                errno(libc::EPERM),
                "{name} on {}",
                arch.name()
            );
        }
    }
}

#[test]
fn capability_groups_need_their_capability() {
    use Capability::*;
    let cases: &[(Capability, &[&str])] = &[
        (
            CAP_SYS_ADMIN,
            &["mount", "umount2", "unshare", "setns", "sethostname"],
        ),
        (
            CAP_SYS_MODULE,
            &["init_module", "finit_module", "delete_module"],
        ),
        (CAP_SYS_PTRACE, &["kcmp", "pidfd_getfd", "process_madvise"]),
        (CAP_SYS_BOOT, &["reboot"]),
        (CAP_SYS_TIME, &["settimeofday", "clock_settime"]),
        (CAP_DAC_READ_SEARCH, &["open_by_handle_at"]),
        (CAP_BPF, &["bpf"]),
        (CAP_SYS_NICE, &["mbind", "set_mempolicy"]),
    ];
    for arch in ARCHES {
        let without = Filter::new(arch, &default_caps());
        for (cap, names) in cases {
            let with_cap = Filter::new(arch, &with(*cap));
            for name in *names {
                assert_eq!(
                    without.call(name),
                    errno(libc::EPERM),
                    "{name} without {cap}"
                );
                assert_eq!(with_cap.call(name), ALLOW, "{name} with {cap}");
            }
        }
        // chroot is in Docker's default set, so allowed by default.
        assert_eq!(without.call("chroot"), ALLOW);
        let no_chroot: CapsHashSet = default_caps()
            .into_iter()
            .filter(|c| *c != CAP_SYS_CHROOT)
            .collect();
        assert_eq!(
            Filter::new(arch, &no_chroot).call("chroot"),
            errno(libc::EPERM)
        );
    }
}

#[test]
fn clone_namespaces_and_clone3() {
    let thread_flags = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;
    for arch in ARCHES {
        let f = Filter::new(arch, &default_caps());
        let admin = Filter::new(arch, &with(Capability::CAP_SYS_ADMIN));
        let clone = |f: &Filter, flags: u64| f.answer("clone", [flags, 0, 0, 0, 0, 0]);
        assert_eq!(clone(&f, thread_flags), ALLOW);
        assert_eq!(clone(&f, libc::SIGCHLD as u64), ALLOW);
        for ns in [
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWNS,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWCGROUP,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWIPC,
        ] {
            let flags = libc::SIGCHLD as u64 | ns as u64;
            assert_eq!(clone(&f, flags), errno(libc::EPERM), "{ns:#x}");
            assert_eq!(clone(&admin, flags), ALLOW, "{ns:#x} with CAP_SYS_ADMIN");
        }
        assert_eq!(f.call("clone3"), errno(libc::ENOSYS));
        assert_eq!(run(&f.programs[0], &call(arch, "clone3")), ALLOW);
        assert_eq!(admin.call("clone3"), ALLOW);
    }
}

fn call(arch: Arch, name: &str) -> Call {
    Call {
        nr: arch.number(name).unwrap() as u32,
        arch: audit_arch(arch),
        args: [0; 6],
    }
}

#[test]
fn socket_and_personality_arguments() {
    let f = Filter::new(Arch::X86_64, &default_caps());
    let socket = |domain: u64| f.answer("socket", [domain, 1, 0, 0, 0, 0]);
    assert_eq!(socket(libc::AF_INET as u64), ALLOW);
    assert_eq!(socket(libc::AF_UNIX as u64), ALLOW);
    assert_eq!(socket(libc::AF_NETLINK as u64), ALLOW);
    assert_eq!(socket(39), ALLOW, "AF_NFC");
    assert_eq!(socket(libc::AF_ALG as u64), errno(libc::EPERM));
    assert_eq!(socket(libc::AF_VSOCK as u64), errno(libc::EPERM));
    // An int argument: the kernel ignores the upper half of the register.
    assert_eq!(
        socket(0xdead_beef_0000_0000 | libc::AF_VSOCK as u64),
        errno(libc::EPERM)
    );
    assert_eq!(socket(0xdead_beef_0000_0000 | libc::AF_INET as u64), ALLOW);
    let personality = |p: u64| f.answer("personality", [p, 0, 0, 0, 0, 0]);
    for allowed in [0, 8, 0x2_0000, 0x2_0008, 0xffff_ffff] {
        assert_eq!(personality(allowed), ALLOW, "{allowed:#x}");
    }
    let addr_no_randomize = 0x004_0000;
    assert_eq!(personality(addr_no_randomize), errno(libc::EPERM));
}

#[test]
fn ioctl_refuses_typing_into_a_terminal_only() {
    for arch in ARCHES {
        for caps in [default_caps(), caps::all()] {
            let f = Filter::new(arch, &caps);
            let ioctl = |request: u64| f.answer("ioctl", [0, request, 0, 0, 0, 0]);
            assert_eq!(ioctl(libc::TIOCSTI), errno(libc::EPERM), "TIOCSTI");
            assert_eq!(ioctl(libc::TIOCLINUX), errno(libc::EPERM), "TIOCLINUX");
            // The kernel reads the request as a 32-bit int: high bits set
            // in the register must not get it past the filter.
            assert_eq!(
                ioctl(0xdead_beef_0000_0000 | libc::TIOCSTI),
                errno(libc::EPERM)
            );
            for request in [
                libc::TCGETS,
                libc::TIOCGWINSZ,
                libc::TIOCSCTTY,
                libc::FIONREAD,
            ] {
                assert_eq!(ioctl(request), ALLOW, "{request:#x}");
            }
            assert_eq!(ioctl(libc::TIOCSTI + 1), ALLOW);
            assert_eq!(ioctl(libc::TIOCSTI - 1), ALLOW);
        }
    }
}

#[test]
fn other_abis_are_refused() {
    let f = Filter::new(Arch::X86_64, &default_caps());
    let getpid = Arch::X86_64.number("getpid").unwrap() as u32;
    let x32 = Call {
        nr: getpid | X32_SYSCALL_BIT,
        arch: AUDIT_ARCH_X86_64,
        args: [0; 6],
    };
    assert_eq!(run_stack(&f.programs, &x32), errno(libc::EPERM), "x32");
    let i386 = Call {
        nr: 20, // getpid on i386
        arch: AUDIT_ARCH_I386,
        args: [0; 6],
    };
    assert_eq!(run_stack(&f.programs, &i386), KILL_PROCESS, "i386");
}

// --- Docker's reference profile --------------------------------------------

/// What a filter answers for a call, as Docker's JSON would say it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Allow,
    /// Allowed when one of these (arg index, op, value) checks passes.
    When(BTreeSet<(u64, String, u64)>),
    Errno(u64),
}

fn reference_profile() -> Option<serde_json::Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/seccomp/moby-profiles-default.json");
    match fs_err::read_to_string(&path) {
        Ok(text) => Some(serde_json::from_str(&text).expect("reference profile is JSON")),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but the reference profile is missing: {e}")
        }
        Err(e) => {
            eprintln!("skipping the comparison with Docker's profile: {e}");
            None
        }
    }
}

/// Docker's verdicts for `arch` ("amd64"/"arm64") and `caps`, the way moby
/// evaluates `includes`/`excludes` (every kernel is >= its minKernel here).
fn docker_verdicts(
    json: &serde_json::Value,
    arch: Arch,
    caps: &CapsHashSet,
) -> BTreeMap<String, Verdict> {
    let docker_arch = match arch {
        Arch::X86_64 => "amd64",
        Arch::Aarch64 => "arm64",
    };
    let cap_names: BTreeSet<String> = caps.iter().map(|c| c.to_string()).collect();
    let list = |v: &serde_json::Value, key: &str| -> Vec<String> {
        v.get(key)
            .and_then(|l| l.as_array())
            .map(|l| l.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    let mut out: BTreeMap<String, Verdict> = BTreeMap::new();
    for rule in json["syscalls"].as_array().unwrap() {
        let (inc, exc) = (&rule["includes"], &rule["excludes"]);
        let arches = list(inc, "arches");
        if !arches.is_empty() && !arches.iter().any(|a| a == docker_arch) {
            continue;
        }
        if list(exc, "arches").iter().any(|a| a == docker_arch) {
            continue;
        }
        if !list(inc, "caps").iter().all(|c| cap_names.contains(c)) {
            continue;
        }
        if list(exc, "caps").iter().any(|c| cap_names.contains(c)) {
            continue;
        }
        let args = rule["args"].as_array().cloned().unwrap_or_default();
        let verdict = match rule["action"].as_str().unwrap() {
            "SCMP_ACT_ALLOW" if args.is_empty() => Verdict::Allow,
            "SCMP_ACT_ALLOW" => {
                assert_eq!(args.len(), 1, "one condition per rule in Docker's profile");
                let a = &args[0];
                let check = (
                    a["index"].as_u64().unwrap(),
                    a["op"].as_str().unwrap().to_owned(),
                    a["value"].as_u64().unwrap(),
                );
                Verdict::When([check].into())
            }
            "SCMP_ACT_ERRNO" => Verdict::Errno(rule["errnoRet"].as_u64().unwrap()),
            other => panic!("action {other}"),
        };
        for name in list(rule, "names") {
            if arch.number(&name).is_some() {
                merge(&mut out, name, verdict.clone());
            }
        }
    }
    out
}

fn merge(out: &mut BTreeMap<String, Verdict>, name: String, v: Verdict) {
    let merged = match (out.remove(&name), v) {
        (None, v) => v,
        (Some(Verdict::Allow), _) | (_, Verdict::Allow) => Verdict::Allow,
        (Some(Verdict::When(mut a)), Verdict::When(b)) => {
            a.extend(b);
            Verdict::When(a)
        }
        (Some(a), b) => panic!("{name}: cannot merge {a:?} and {b:?}"),
    };
    out.insert(name, merged);
}

/// The same verdicts from den's profile data.
fn den_verdicts(arch: Arch, caps: &CapsHashSet) -> BTreeMap<String, Verdict> {
    let mut out = BTreeMap::new();
    for c in profile::CONDITIONAL {
        if arch.number(c.syscall).is_none() || c.unless.is_some_and(|u| caps.contains(&u)) {
            continue;
        }
        let checks = c.any_of.iter().flat_map(|check| {
            let ops: Vec<(&str, u64)> = match *check {
                ArgCheck::Eq(v) => vec![("SCMP_CMP_EQ", v)],
                ArgCheck::Lt(v) => vec![("SCMP_CMP_LT", v)],
                ArgCheck::Gt(v) => vec![("SCMP_CMP_GT", v)],
                ArgCheck::NoBitsOf(m) => vec![("SCMP_CMP_MASKED_EQ", m)],
                // Docker has no such rule: only compared for inequality.
                ArgCheck::NoneOf(vs) => vs.iter().map(|v| ("SCMP_CMP_NE", *v)).collect(),
            };
            ops.into_iter()
                .map(|(op, value)| (u64::from(c.arg), op.to_owned(), value))
        });
        merge(
            &mut out,
            c.syscall.to_owned(),
            Verdict::When(checks.collect()),
        );
    }
    for name in unconditional_names(arch, caps) {
        if arch.number(name).is_some() {
            merge(&mut out, name.to_owned(), Verdict::Allow);
        }
    }
    for (name, cap) in profile::ENOSYS_UNLESS {
        if !caps.contains(cap) {
            out.insert(name.to_string(), Verdict::Errno(libc::ENOSYS as u64));
        }
    }
    out
}

#[test]
fn matches_docker_reference() {
    let Some(json) = reference_profile() else {
        return;
    };
    assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(json["defaultErrnoRet"], libc::EPERM);
    let cap_sets = [
        CapsHashSet::new(),
        default_caps(),
        with(Capability::CAP_SYS_ADMIN),
        with(Capability::CAP_SYS_PTRACE),
        caps::all(),
    ];
    for arch in ARCHES {
        for caps in &cap_sets {
            let docker = docker_verdicts(&json, arch, caps);
            let den = den_verdicts(arch, caps);
            let names: BTreeSet<&String> = docker.keys().chain(den.keys()).collect();
            // den's deliberate differences: debugging calls need
            // CAP_SYS_PTRACE, and ioctl refuses TIOCSTI and TIOCLINUX.
            let stricter = |n: &str| {
                n == "ioctl"
                    || !caps.contains(&Capability::CAP_SYS_PTRACE)
                        && ["ptrace", "process_vm_readv", "process_vm_writev"].contains(&n)
            };
            for n in names.iter().filter(|n| stricter(n)) {
                assert_ne!(
                    docker.get(*n),
                    den.get(*n),
                    "{n} should be stricter than Docker"
                );
            }
            let differences: Vec<String> = names
                .into_iter()
                .filter(|n| !stricter(n))
                .filter(|n| docker.get(*n) != den.get(*n))
                .map(|n| format!("{n}: docker {:?}, den {:?}", docker.get(n), den.get(n)))
                .collect();
            assert!(
                differences.is_empty(),
                "{} with {} caps differs from Docker:\n{}",
                arch.name(),
                caps.len(),
                differences.join("\n")
            );
        }
    }
}

// --- cache -------------------------------------------------------------------

#[test]
fn cache_round_trips_and_recovers_from_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let caps = default_caps();
    let fresh = compile(&caps).unwrap();
    let first = compile_cached(&caps, dir.path()).unwrap();
    assert_eq!(first, fresh);
    let files: Vec<_> = fs_err::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one cache file, no temporary left: {files:?}"
    );
    let file = &files[0];
    assert_eq!(
        compile_cached(&caps, dir.path()).unwrap(),
        fresh,
        "from the cache"
    );

    let good = fs_err::read(file).unwrap();
    let key = cache_key(Arch::current().unwrap(), &caps);
    assert_eq!(decode(&good, &key).as_ref(), Some(&fresh));
    let mut wrong_key = good.clone();
    let at = CACHE_MAGIC.len() + 1;
    wrong_key[at] ^= 1;
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated by one byte", good[..good.len() - 1].to_vec()),
        ("half an instruction", good[..good.len() - 4].to_vec()),
        ("trailing byte", [&good[..], &[0]].concat()),
        ("other key", wrong_key),
        ("no magic", good[1..].to_vec()),
    ];
    for (what, bytes) in bad {
        assert_eq!(decode(&bytes, &key), None, "{what}");
        fs_err::write(file, &bytes).unwrap();
        assert_eq!(compile_cached(&caps, dir.path()).unwrap(), fresh, "{what}");
        assert_eq!(fs_err::read(file).unwrap(), good, "{what}: rewritten");
    }
}

#[test]
fn cache_key_depends_only_on_caps_the_profile_mentions() {
    let arch = Arch::X86_64;
    let default = cache_key(arch, &default_caps());
    assert_eq!(default, cache_key(arch, &with(Capability::CAP_NET_ADMIN)));
    assert_ne!(default, cache_key(arch, &with(Capability::CAP_SYS_ADMIN)));
    assert_ne!(default, cache_key(Arch::Aarch64, &default_caps()));
}

/// Single-id mode: the shim, installed before the allow-list (see
/// `single_id`'s module doc), turns calls with unmapped ids into no-ops and
/// leaves everything else to the allow-list.
#[test]
fn single_id_shim_makes_unmapped_id_calls_no_ops() {
    const NONE: u64 = 0xffff_ffff; // -1 as a 32-bit id: "unchanged"
    let done = errno(0);
    for arch in ARCHES {
        let shim = single_id::compile_for(arch).expect("compile the shim");
        let mut f = Filter::new(arch, &default_caps());
        f.programs.insert(0, shim);
        let chowns: &[(&str, usize)] = match arch {
            Arch::X86_64 => &[("chown", 1), ("lchown", 1), ("fchown", 1), ("fchownat", 2)],
            Arch::Aarch64 => &[("fchown", 1), ("fchownat", 2)],
        };
        for &(name, uid_arg) in chowns {
            let chown = |uid: u64, gid: u64| {
                let mut args = [3, 0, 0, 0, 0, 0];
                args[uid_arg] = uid;
                args[uid_arg + 1] = gid;
                f.answer(name, args)
            };
            assert_eq!(chown(42, 42), done, "{name} 42:42 on {arch:?}");
            assert_eq!(chown(42, 0), done, "{name} 42:0");
            assert_eq!(chown(0, 42), done, "{name} 0:42");
            assert_eq!(chown(NONE, 42), done, "{name} -1:42");
            assert_eq!(chown(0, 0), ALLOW, "{name} 0:0 reaches the kernel");
            assert_eq!(chown(NONE, NONE), ALLOW, "{name} -1:-1");
            assert_eq!(chown(0, NONE), ALLOW, "{name} 0:-1");
            // Ids are 32 bits: the upper half of the register is ignored.
            assert_eq!(chown(0xdead_beef_0000_0000, 0), ALLOW, "{name}");
            assert_eq!(chown(0xdead_beef_0000_002a, 0), done, "{name}");
        }
        for name in ["setuid", "setgid", "setfsuid", "setfsgid"] {
            assert_eq!(f.answer(name, [42, 0, 0, 0, 0, 0]), done, "{name}(42)");
            assert_eq!(f.answer(name, [0; 6]), ALLOW, "{name}(0)");
            assert_eq!(f.answer(name, [NONE, 0, 0, 0, 0, 0]), ALLOW, "{name}(-1)");
        }
        for (name, n) in [
            ("setreuid", 2),
            ("setregid", 2),
            ("setresuid", 3),
            ("setresgid", 3),
        ] {
            for i in 0..n {
                let mut args = [NONE; 6];
                args[i] = 42;
                assert_eq!(f.answer(name, args), done, "{name} with 42 as arg {i}");
                args[i] = 0;
                assert_eq!(f.answer(name, args), ALLOW, "{name} with 0 as arg {i}");
            }
            assert_eq!(f.answer(name, [0; 6]), ALLOW, "{name}(0, ...)");
        }
        assert_eq!(f.answer("setgroups", [1, 0x1000, 0, 0, 0, 0]), done);
        assert_eq!(f.call("setgroups"), done);
        // Everything else is the allow-list's answer, unchanged.
        for name in ["getresuid", "getgroups", "read", "capset", "fchmodat"] {
            assert_eq!(f.call(name), ALLOW, "{name}");
        }
        for name in ["kexec_load", "init_module", "mount", "unshare"] {
            assert_eq!(f.call(name), errno(libc::EPERM), "{name}");
        }
        assert_eq!(f.call("clone3"), errno(libc::ENOSYS));
    }
}

/// If the allow-list ever denied a call the shim answers, the denial wins:
/// the shim is installed first, and between two errno answers the kernel
/// keeps the newer filter's.
#[test]
fn single_id_shim_never_overrides_a_denial() {
    let arch = Arch::X86_64;
    let shim = single_id::compile_for(arch).unwrap();
    let deny_setuid: Rules = [(arch.number("setuid").unwrap(), Vec::new())].into();
    let deny = SeccompFilter::new(
        deny_setuid,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch.target(),
    )
    .and_then(BpfProgram::try_from)
    .unwrap();
    let f = Filter {
        arch,
        programs: vec![shim, deny],
    };
    assert_eq!(f.answer("setuid", [42, 0, 0, 0, 0, 0]), errno(libc::EPERM));
    assert_eq!(f.answer("setgid", [42, 0, 0, 0, 0, 0]), errno(0));
}

#[test]
fn single_id_shim_names_are_real_syscalls() {
    for no_op in single_id::NO_OPS {
        assert!(
            Arch::X86_64.number(no_op.syscall).is_some(),
            "{} is not an x86_64 system call",
            no_op.syscall
        );
        assert!(no_op.id_args.iter().all(|&a| a < 6), "{}", no_op.syscall);
    }
}

/// seccompiler's linear program of the whole allow-list: what den compiled
/// before `dispatch`, and the reference it must answer exactly as.
fn linear_allow_list(arch: Arch, caps: &CapsHashSet) -> BpfProgram {
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let rules = allow_list(arch, caps).unwrap();
    SeccompFilter::new(rules, eperm, SeccompAction::Allow, arch.target())
        .and_then(BpfProgram::try_from)
        .unwrap()
}

/// Argument values that reach every branch of the checked calls: zero, all
/// ones, and each value and mask the profile names (and one off each).
fn probe_args() -> Vec<[u64; 6]> {
    let mut values: BTreeSet<u64> = [0, u64::MAX, u32::MAX as u64].into();
    for c in profile::CONDITIONAL {
        for check in c.any_of {
            let vs: Vec<u64> = match *check {
                ArgCheck::Eq(v) | ArgCheck::Lt(v) | ArgCheck::Gt(v) | ArgCheck::NoBitsOf(v) => {
                    vec![v]
                }
                ArgCheck::NoneOf(vs) => vs.to_vec(),
            };
            for v in vs {
                values.extend([v, v.wrapping_add(1), v.wrapping_sub(1), v | 1 << 40]);
            }
        }
    }
    values.into_iter().map(|v| [v; 6]).collect()
}

#[test]
fn the_number_search_answers_every_call_as_the_linear_filter() {
    let numbers: Vec<u32> = (0..1100)
        .chain((0..600).map(|n| n | X32_SYSCALL_BIT))
        .chain([u32::MAX, 0x8000_0000, 0x7fff_ffff])
        .collect();
    let args = probe_args();
    for arch in [Arch::X86_64, Arch::Aarch64] {
        for caps in [
            default_caps(),
            with(Capability::CAP_SYS_ADMIN),
            CapsHashSet::new(),
        ] {
            let linear = linear_allow_list(arch, &caps);
            let searched = &compile_for(arch, &caps).unwrap()[0];
            assert!(searched.len() < 4096, "{} instructions", searched.len());
            for &nr in &numbers {
                for a in &args {
                    let call = |arch| Call { nr, arch, args: *a };
                    for audit in [audit_arch(arch), AUDIT_ARCH_I386] {
                        assert_eq!(
                            run(searched, &call(audit)),
                            run(&linear, &call(audit)),
                            "{} nr {nr:#x} arch {audit:#x} args {a:?}",
                            arch.name()
                        );
                    }
                }
            }
        }
    }
}

/// A call not argument-checked is answered in a few comparisons, not by
/// walking every listed number (the kernel runs the filter for every number
/// when it installs it, and on each call the container makes).
#[test]
fn every_call_is_answered_in_a_few_instructions() {
    for arch in [Arch::X86_64, Arch::Aarch64] {
        let searched = &compile_for(arch, &default_caps()).unwrap()[0];
        let linear = linear_allow_list(arch, &default_caps());
        let steps = |program: &[seccompiler::sock_filter], nr| {
            let call = Call {
                nr,
                arch: audit_arch(arch),
                args: [0; 6],
            };
            run_counted(program, &call).1
        };
        let checked: BTreeSet<u32> = profile::CONDITIONAL
            .iter()
            .filter_map(|c| arch.number(c.syscall))
            .map(|nr| nr as u32)
            .collect();
        let most = (0..1100)
            .filter(|nr| !checked.contains(nr))
            .map(|nr| steps(searched, nr))
            .max()
            .unwrap();
        assert!(most <= 24, "{}: up to {most} instructions", arch.name());
        let linear_most = (0..1100).map(|nr| steps(&linear, nr)).max().unwrap();
        assert!(linear_most > 200, "the linear filter took {linear_most}");
    }
}
