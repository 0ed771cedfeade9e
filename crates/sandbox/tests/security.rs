//! The security policy applied for real, in child processes: this binary
//! re-executes itself as `child-<mode>`, the child applies a policy the way
//! the container init does and reports one `probe=result` line per check,
//! and the parent compares. It runs without the libtest harness: entering a
//! user namespace needs a single-threaded process, and a filter applied in a
//! test thread would confine only that thread.
//!
//! Run as root (CI), the children act as host root; otherwise they first
//! enter a user namespace (single-id mode) to hold CAP_SYS_ADMIN there, as
//! the container init does.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use caps::{Capability, CapsHashSet};
use den_sandbox::caps::{CapPolicy, DOCKER_DEFAULT};
use den_sandbox::container::security::{self, Choices, Prepared};
use den_sandbox::container::user::User;
use den_sandbox::idmap::IdMapping;
use den_sandbox::landlock::LandlockPolicy;
use den_sandbox::seccomp;
use den_sandbox::userns::enter_user_namespace;
use nix::unistd::{Gid, Pid, Uid};
use rustix::fs::{Mode, OFlags};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(mode) = args.get(1).and_then(|a| a.strip_prefix("child-")) {
        std::process::exit(child(mode, &args[2..]));
    }
    if args.iter().any(|a| a == "--list") {
        println!("security: test"); // what `cargo test -- --list` expects
        return;
    }
    let tests: [(&str, fn()); 7] = [
        (
            "seccomp_refuses_what_docker_refuses",
            seccomp_refuses_what_docker_refuses,
        ),
        (
            "seccomp_follows_kept_capabilities",
            seccomp_follows_kept_capabilities,
        ),
        (
            "seccomp_compile_and_cache_times",
            seccomp_compile_and_cache_times,
        ),
        (
            "landlock_confines_a_leaked_host_fd",
            landlock_confines_a_leaked_host_fd,
        ),
        (
            "capabilities_for_root_and_other_users",
            capabilities_for_root_and_other_users,
        ),
        ("production_apply_then_exec", production_apply_then_exec),
        (
            "production_apply_with_no_new_privs",
            production_apply_with_no_new_privs,
        ),
    ];
    // A failing test panics and ends the binary with a non-zero status; the
    // count printed is the number that ran to the end.
    let mut passed = 0;
    for (name, test) in tests {
        test();
        println!("test {name} ... ok");
        passed += 1;
    }
    println!("test result: ok. {passed} passed");
}

// --- parent side -------------------------------------------------------------

type Report = BTreeMap<String, String>;

/// Where a child runs: as the test's own user, or in a new user namespace
/// as its uid 0 (as the container init does; always so when not root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Host,
    UserNs,
}

/// The places worth testing: both when root, only a user namespace otherwise.
fn places() -> Vec<Place> {
    match is_root() {
        true => vec![Place::Host, Place::UserNs],
        false => vec![Place::UserNs],
    }
}

const USERNS_ENV: &str = "DEN_SECURITY_TEST_USERNS";

fn run_child(mode: &str, place: Place, args: &[&Path]) -> Report {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.arg(format!("child-{mode}")).args(args);
    if place == Place::UserNs {
        cmd.env(USERNS_ENV, "1");
    }
    let out = cmd.output().expect("spawn child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child {mode} failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let report: Report = stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    println!("{mode} ({place:?}): {report:?}");
    report
}

fn expect(report: &Report, want: &[(&str, &str)], what: &str) {
    for (probe, value) in want {
        assert_eq!(
            report.get(*probe).map(String::as_str),
            Some(*value),
            "{what}: {probe}"
        );
    }
}

fn is_root() -> bool {
    Uid::effective().is_root()
}

fn seccomp_refuses_what_docker_refuses() {
    for place in places() {
        seccomp_default_profile(place);
    }
}

fn seccomp_default_profile(place: Place) {
    let control = run_child("seccomp", place, &[Path::new("none")]);
    let want = [
        ("getpid", "ok"),
        ("mount", "EPERM"),
        ("unshare_user", "EPERM"),
        ("clone3", "ENOSYS"),
        ("keyctl", "EPERM"),
        ("init_module", "EPERM"),
        // Stricter than Docker: debugging needs CAP_SYS_PTRACE.
        ("ptrace", "EPERM"),
        ("thread", "ok"),
        ("spawn_true", "ok"),
        ("no_new_privs", "0"),
    ];
    let filtered = run_child("seccomp", place, &[Path::new("default")]);
    expect(&filtered, &want, "Docker's default caps");
    // Without the filter the same calls reach the kernel.
    expect(
        &control,
        &[
            ("mount", "ENOENT"),
            ("unshare_user", "ok"),
            ("clone3", "EINVAL"),
        ],
        "no filter",
    );
    assert_ne!(control.get("keyctl").map(String::as_str), Some("EPERM"));
    if place == Place::Host {
        // As host root the kernel itself would not refuse init_module.
        assert_ne!(
            control.get("init_module").map(String::as_str),
            Some("EPERM")
        );
    }
}

fn seccomp_follows_kept_capabilities() {
    let admin = run_child(
        "seccomp",
        *places().last().unwrap(),
        &[Path::new("sys_admin")],
    );
    let want = [
        ("mount", "ENOENT"),
        ("unshare_user", "ok"),
        ("clone3", "EINVAL"),
        ("keyctl", "EPERM"),
        ("init_module", "EPERM"),
        ("spawn_true", "ok"),
    ];
    expect(&admin, &want, "with CAP_SYS_ADMIN");
}

fn seccomp_compile_and_cache_times() {
    let caps: CapsHashSet = DOCKER_DEFAULT.into_iter().collect();
    let rounds = 200;
    let start = Instant::now();
    seccomp::compile(&caps).expect("compile");
    let first_compile = start.elapsed();
    let start = Instant::now();
    for _ in 0..rounds {
        seccomp::compile(&caps).expect("compile");
    }
    let compile = start.elapsed() / rounds;
    let dir = tempfile::tempdir().expect("tempdir");
    let start = Instant::now();
    let first = seccomp::compile_cached(&caps, dir.path()).expect("cache miss");
    let miss = start.elapsed();
    let start = Instant::now();
    for _ in 0..rounds {
        let cached = seccomp::compile_cached(&caps, dir.path()).expect("cache hit");
        assert_eq!(cached, first);
    }
    let hit = start.elapsed() / rounds;
    let sizes: Vec<usize> = first.iter().map(Vec::len).collect();
    println!(
        "seccomp: first compile {first_compile:?}, compile {compile:?}, cache miss (compile + write) {miss:?}, cache hit {hit:?}; instructions {sizes:?}"
    );
}

fn landlock_confines_a_leaked_host_fd() {
    let outside = tempfile::tempdir().expect("tempdir");
    let ro = tempfile::tempdir().expect("tempdir");
    let rw = tempfile::tempdir().expect("tempdir");
    fs_err::write(outside.path().join("file"), "outside").expect("write");
    fs_err::write(ro.path().join("file"), "inside").expect("write");
    let dirs = [outside.path(), ro.path(), rw.path()];
    let report = run_child("landlock", places()[0], &dirs);
    let want = [
        ("status", "FullyEnforced"),
        ("leaked_fd_openat", "EACCES"),
        ("leaked_fd_create", "EACCES"),
        ("outside_by_path", "EACCES"),
        ("read_only_read", "inside"),
        ("read_only_write", "EACCES"),
        ("read_write_write", "ok"),
        ("no_new_privs", "0"),
    ];
    expect(&report, &want, "landlock");
    assert!(rw.path().join("new").exists());
    assert!(!outside.path().join("new").exists());
}

fn capabilities_for_root_and_other_users() {
    let file = tempfile::NamedTempFile::new().expect("tempfile");
    let keep = policy_for_caps_test().keep;
    let keep_mask = format!("{:016x}", mask(&keep));
    let place = places()[0];
    let root = run_child("caps", place, &[Path::new("root"), file.path()]);
    let want = [
        ("CapBnd", keep_mask.as_str()),
        ("CapPrm", keep_mask.as_str()),
        ("CapEff", keep_mask.as_str()),
        ("CapInh", "0000000000000000"),
        ("CapAmb", "0000000000000000"),
        ("exec_CapEff", keep_mask.as_str()),
    ];
    expect(&root, &want, "uid 0");
    match root.get("chown").map(String::as_str) {
        Some("unmapped") => println!("caps: chown not checked: uid 1 is not mapped"),
        chown => assert_eq!(chown, Some("EPERM"), "chown without CAP_CHOWN"),
    }
    let user = run_child("caps", place, &[Path::new("user"), file.path()]);
    if user.get("uid").map(String::as_str) == Some("unmapped") {
        println!("caps: non-root user not checked: uid 65534 is not mapped");
        return;
    }
    let want = [
        ("uid", "65534"),
        ("CapBnd", keep_mask.as_str()),
        ("CapPrm", "0000000000000000"),
        ("CapEff", "0000000000000000"),
        ("CapInh", "0000000000000000"),
        ("CapAmb", "0000000000000000"),
        ("exec_CapEff", "0000000000000000"),
        ("exec_CapBnd", keep_mask.as_str()),
    ];
    expect(&user, &want, "uid 65534");
}

/// `container::security::apply`, the production privilege drop, as the
/// container process runs it (here with a narrower Landlock policy, so a
/// write outside it shows Landlock in force), then exec.
fn production_apply_then_exec() {
    for place in places() {
        let rw = tempfile::tempdir().expect("tempdir");
        // Writable for the container user (nobody on the host): only
        // Landlock may refuse a write outside it.
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(rw.path(), std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        let report = run_child("apply", place, &[rw.path(), Path::new("off")]);
        let want = [
            ("apply", "ok"),
            ("spawn_true", "ok"),
            ("thread", "ok"),
            ("mount", "EPERM"),
            ("write_outside", "EACCES"),
            ("write_inside", "ok"),
            ("no_new_privs", "0"),
            ("CapInh", "0000000000000000"),
            ("CapAmb", "0000000000000000"),
        ];
        expect(&report, &want, "security::apply, then exec");
        let bnd = format!("{:016x}", mask(&default_caps()));
        let user = match place {
            Place::Host => [("uid", "65534"), ("CapEff", "0000000000000000")],
            Place::UserNs => [("uid", "0"), ("CapEff", bnd.as_str())],
        };
        expect(&report, &user, "the container user");
        expect(&report, &[("CapBnd", bnd.as_str())], "bounding set");
    }
}

/// With `--security-opt no-new-privileges`, `apply` sets no_new_privs last.
fn production_apply_with_no_new_privs() {
    let rw = tempfile::tempdir().expect("tempdir");
    let report = run_child("apply", Place::UserNs, &[rw.path(), Path::new("nnp")]);
    expect(
        &report,
        &[("apply", "ok"), ("no_new_privs", "1")],
        "security::apply with no_new_privs",
    );
}

// --- child side --------------------------------------------------------------

fn child(mode: &str, args: &[String]) -> i32 {
    if std::env::var_os(USERNS_ENV).is_some()
        && let Err(e) = enter_user_namespace(&IdMapping::detect())
    {
        eprintln!("enter_user_namespace: {e}");
        return 1;
    }
    let arg = |i: usize| PathBuf::from(&args[i]);
    match mode {
        "seccomp" => seccomp_child(&args[0]),
        "landlock" => landlock_child(&arg(0), &arg(1), &arg(2)),
        "caps" => caps_child(&args[0], &arg(1)),
        "apply" => apply_child(&arg(0), &args[1] == "nnp"),
        _ => panic!("unknown child mode {mode}"),
    }
    0
}

fn report(probe: &str, value: impl std::fmt::Display) {
    println!("{probe}={value}");
}

fn outcome<T>(r: Result<T, nix::errno::Errno>) -> String {
    match r {
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("{e:?}"),
    }
}

fn errno<T>(r: rustix::io::Result<T>) -> String {
    outcome(r.map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error())))
}

fn io_outcome<T>(r: std::io::Result<T>) -> String {
    outcome(r.map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))))
}

/// "ok", or the error's message (a den error: no errno to show).
fn done<E: std::fmt::Display>(r: Result<(), E>) -> String {
    r.map_or_else(|e| e.to_string(), |()| "ok".to_owned())
}

fn default_caps() -> CapsHashSet {
    DOCKER_DEFAULT.into_iter().collect()
}

fn seccomp_child(which: &str) {
    // A mount namespace of its own, as a container has: then mount(2) gets
    // as far as looking up its target (ENOENT) unless the filter stops it.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare mount ns");
    let mut caps = default_caps();
    match which {
        "none" => {}
        "default" => seccomp::apply(&seccomp::compile(&caps).unwrap()).unwrap(),
        "sys_admin" => {
            caps.insert(Capability::CAP_SYS_ADMIN);
            seccomp::apply(&seccomp::compile(&caps).unwrap()).unwrap();
        }
        other => panic!("{other}"),
    }
    report(
        "getpid",
        match std::process::id() == nix::unistd::getpid().as_raw() as u32 {
            true => "ok",
            false => "wrong",
        },
    );
    let target = "/nonexistent-den-security-test";
    let mount = nix::mount::mount(
        None::<&str>,
        target,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    );
    report("mount", outcome(mount));
    report("clone3", format!("{:?}", seccomp::probe_clone3()));
    report("keyctl", outcome(seccomp::probe_keyctl()));
    report("init_module", outcome(nix::kmod::init_module(&[], c"")));
    report("ptrace", outcome(nix::sys::ptrace::cont(Pid::this(), None)));
    report("thread", io_outcome(spawn_thread()));
    report("spawn_true", spawn_true());
    report("no_new_privs", status_field("NoNewPrivs"));
    // Last: when allowed, it moves this child into a new user namespace.
    let unshare = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER);
    report("unshare_user", outcome(unshare));
}

fn spawn_thread() -> std::io::Result<()> {
    let handle = std::thread::Builder::new().spawn(|| 42)?;
    assert_eq!(handle.join().expect("thread"), 42);
    Ok(())
}

fn spawn_true() -> String {
    match Command::new("/bin/true").status() {
        Ok(s) if s.success() => "ok".to_owned(),
        Ok(s) => format!("{s}"),
        Err(e) => format!("spawn: {e}"),
    }
}

fn status_field(name: &str) -> String {
    status_of(
        &fs_err::read_to_string("/proc/self/status").expect("status"),
        name,
    )
}

fn status_of(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| format!("no {name}"))
}

fn landlock_child(outside: &Path, ro: &Path, rw: &Path) {
    // Opened before the policy, like a host fd leaked into the container.
    let leaked = rustix::fs::open(outside, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
        .expect("open outside dir");
    // Opened before too: /proc is outside the policy.
    let mut proc_status = fs_err::File::open("/proc/self/status").expect("status");
    let policy = LandlockPolicy {
        read_write: vec![rw.to_owned()],
        read_only: vec![ro.to_owned()],
    };
    report("status", format!("{:?}", policy.apply().expect("landlock")));
    let read = OFlags::RDONLY | OFlags::CLOEXEC;
    let create = OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC;
    let mode = Mode::from_raw_mode(0o644);
    report(
        "leaked_fd_openat",
        errno(rustix::fs::openat(
            leaked.as_fd(),
            "file",
            read,
            Mode::empty(),
        )),
    );
    report(
        "leaked_fd_create",
        errno(rustix::fs::openat(leaked.as_fd(), "new", create, mode)),
    );
    report(
        "outside_by_path",
        errno(rustix::fs::open(outside.join("file"), read, Mode::empty())),
    );
    let content = fs_err::read_to_string(ro.join("file")).unwrap_or_else(|e| format!("{e}"));
    report("read_only_read", content);
    report(
        "read_only_write",
        errno(rustix::fs::open(ro.join("new"), create, mode)),
    );
    report(
        "read_write_write",
        io_outcome(fs_err::write(rw.join("new"), "x")),
    );
    let mut status = String::new();
    std::io::Read::read_to_string(&mut proc_status, &mut status).expect("read status");
    report("no_new_privs", status_of(&status, "NoNewPrivs"));
}

/// Docker's default, plus NET_ADMIN, minus CHOWN.
fn policy_for_caps_test() -> CapPolicy {
    let strings = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    CapPolicy::from_flags(&strings(&["NET_ADMIN"]), &strings(&["CHOWN"]), false).unwrap()
}

fn mask(caps: &CapsHashSet) -> u64 {
    let supported = caps::runtime::thread_all_supported();
    caps.intersection(&supported)
        .map(|c| c.bitmask())
        .fold(0, |a, b| a | b)
}

fn caps_child(who: &str, file: &Path) {
    let policy = policy_for_caps_test();
    policy.apply_bounding().expect("bounding");
    let root = who == "root";
    if !root {
        if !uid_is_mapped(65534) {
            return report("uid", "unmapped");
        }
        become_nobody().expect("setuid 65534");
        report("uid", Uid::current());
    }
    policy.set_process_caps(root).expect("process caps");
    for field in ["CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"] {
        report(field, status_field(field));
    }
    let exec = Command::new("/bin/cat")
        .arg("/proc/self/status")
        .output()
        .expect("cat");
    let status = String::from_utf8_lossy(&exec.stdout);
    report("exec_CapEff", status_of(&status, "CapEff"));
    report("exec_CapBnd", status_of(&status, "CapBnd"));
    if root && !uid_is_mapped(1) {
        report("chown", "unmapped");
    } else if root {
        let chown = nix::unistd::chown(file, Some(Uid::from_raw(1)), None);
        report("chown", outcome(chown));
    }
}

/// Whether `uid` exists in this user namespace (and setgroups is allowed,
/// which single-id mode denies).
fn uid_is_mapped(uid: u32) -> bool {
    let setgroups = fs_err::read_to_string("/proc/self/setgroups").expect("setgroups");
    let map = fs_err::read_to_string("/proc/self/uid_map").expect("uid_map");
    let ranges = map.lines().filter_map(|l| {
        let n: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        (n.len() == 3).then(|| (n[0], n[2]))
    });
    setgroups.trim() == "allow"
        && ranges
            .into_iter()
            .any(|(start, count)| (start..start + count).contains(&u64::from(uid)))
}

fn become_nobody() -> nix::Result<()> {
    let (uid, gid) = (Uid::from_raw(65534), Gid::from_raw(65534));
    nix::unistd::setgroups(&[])?;
    nix::unistd::setresgid(gid, gid, gid)?;
    nix::unistd::setresuid(uid, uid, uid)
}

/// The production drop (`security::apply`) with Docker's default
/// capabilities and seccomp filter, then what the process can still do.
fn apply_child(rw: &Path, no_new_privs: bool) {
    let root = std::env::var_os(USERNS_ENV).is_some();
    let prepared = Prepared::new(Choices {
        caps: CapPolicy::docker_default(),
        seccomp_cache: Some(rw),
        single_id: false,
        landlock: Some(LandlockPolicy {
            read_write: vec![rw.to_owned(), PathBuf::from("/dev"), PathBuf::from("/proc")],
            read_only: vec![PathBuf::from("/")],
        }),
        no_new_privs,
    })
    .expect("prepare");
    // On the host (as root) the container user is nobody; in a user
    // namespace (single-id mode: only uid 0 exists) it is root.
    let id = if root { 0 } else { 65534 };
    let user = User {
        uid: id,
        gid: id,
        groups: vec![id],
        home: None,
    };
    report("apply", done(security::apply(&prepared, &user)));
    report("uid", Uid::current());
    report("spawn_true", spawn_true());
    report("thread", io_outcome(spawn_thread()));
    let mount = nix::mount::mount(
        None::<&str>,
        "/nonexistent",
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    );
    report("mount", outcome(mount));
    let create = OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC;
    let outside = std::env::temp_dir().join(format!("den-security-{}", std::process::id()));
    report(
        "write_outside",
        errno(rustix::fs::open(
            &outside,
            create,
            Mode::from_raw_mode(0o644),
        )),
    );
    let inside = rw.join("inside");
    report(
        "write_inside",
        errno(rustix::fs::open(
            &inside,
            create,
            Mode::from_raw_mode(0o644),
        )),
    );
    for field in ["NoNewPrivs", "CapEff", "CapBnd", "CapInh", "CapAmb"] {
        let probe = match field {
            "NoNewPrivs" => "no_new_privs",
            f => f,
        };
        report(probe, status_field(field));
    }
}
