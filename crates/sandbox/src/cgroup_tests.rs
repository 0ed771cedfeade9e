use super::*;

/// A delegated subtree as the kernel shows it: `user/den.scope` is den's
/// own cgroup, `user` the parent containers go beside it in.
fn tree(controllers: &str, enabled: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let user = root.path().join("user");
    fs_err::create_dir_all(user.join("den.scope")).unwrap();
    fs_err::write(user.join("cgroup.controllers"), controllers).unwrap();
    fs_err::write(user.join("cgroup.subtree_control"), enabled).unwrap();
    fs_err::write(user.join("cgroup.procs"), "").unwrap();
    root
}

const SELF: &str = "1:name=systemd:/\n0::/user/den.scope\n";

fn all_limits() -> Limits {
    Limits {
        memory: Some(64 << 20),
        memory_swap: Some(Some(96 << 20)),
        cpu_quota: Some(150_000),
        cpu_shares: Some(512),
        cpuset_cpus: Some("0-1".into()),
        pids: Some(Some(50)),
    }
}

#[test]
fn own_cgroup_is_the_unified_line() {
    assert_eq!(own_cgroup(SELF), Some("/user/den.scope"));
    assert_eq!(own_cgroup("4:memory:/x\n"), None);
}

#[test]
fn docker_share_to_weight_conversion() {
    for (shares, weight) in [(2, 1), (1024, 39), (512, 20), (262_144, 10_000), (0, 1)] {
        assert_eq!(shares_to_weight(shares), weight, "{shares}");
    }
}

#[test]
fn files_and_their_values() {
    let files = all_limits().files();
    let want = [
        ("memory.max", "67108864"),
        ("memory.swap.max", "33554432"),
        ("cpu.max", "150000 100000"),
        ("cpu.weight", "20"),
        ("cpuset.cpus", "0-1"),
        ("pids.max", "50"),
    ];
    let got: Vec<(&str, &str)> = files.iter().map(|(f, v)| (*f, v.as_str())).collect();
    assert_eq!(got, want);
    // Docker's defaults: swap as large as memory; -1 is "max".
    let only_memory = Limits {
        memory: Some(100),
        ..Limits::default()
    };
    assert_eq!(only_memory.files()[1], ("memory.swap.max", "100".into()));
    let unlimited = Limits {
        memory: Some(100),
        memory_swap: Some(None),
        pids: Some(None),
        ..Limits::default()
    };
    let f = unlimited.files();
    assert_eq!((f[1].1.as_str(), f[2].1.as_str()), ("max", "max"));
    assert_eq!(
        all_limits().controllers(),
        ["memory", "cpu", "cpuset", "pids"]
    );
}

#[test]
fn child_written_joined_and_removed() {
    let root = tree("cpuset cpu io memory pids", "cpu memory");
    let h = Hierarchy::prepared(root.path(), SELF).unwrap();
    assert_eq!(h.base, root.path().join("user"));
    h.check(&all_limits().controllers()).unwrap();
    // The controllers the parent offered were enabled for its children.
    let enabled = fs_err::read_to_string(h.base.join("cgroup.subtree_control")).unwrap();
    assert_eq!(enabled, "cpu memory cpuset pids");
    let plan = Plan {
        dir: h.child_dir("abc"),
        kernel: h.kernel,
        limits: all_limits(),
    };
    let child = Child::create(&plan).unwrap();
    child.add(4242).unwrap();
    let dir = root.path().join("user/den-abc");
    let read = |f: &str| fs_err::read_to_string(dir.join(f)).unwrap();
    assert_eq!(read("memory.max"), "67108864");
    assert_eq!(read("cpu.max"), "150000 100000");
    assert_eq!(read("cpu.weight"), "20");
    assert_eq!(read("pids.max"), "50");
    assert_eq!(read("cgroup.procs"), "4242");
    drop(child);
    assert!(!dir.exists(), "the child is removed with the container");
    // A stale child (a supervisor killed with -9) is replaced.
    fs_err::create_dir(&dir).unwrap();
    fs_err::write(dir.join("memory.max"), "1").unwrap();
    let child = Child::create(&plan).unwrap();
    assert_eq!(read("memory.max"), "67108864");
    drop(child);
}

#[test]
fn refusals_name_the_missing_piece() {
    let root = tree("cpu memory", "cpu memory");
    let h = Hierarchy::prepared(root.path(), SELF).unwrap();
    let e = h.check(&["memory", "pids"]).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "the pids controller is not delegated to {} (its cgroup.controllers: cpu memory); boot with",
            h.base.display()
        )),
        "{e}"
    );
    let e = Hierarchy::prepared(root.path(), "4:memory:/\n").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/proc/self/cgroup has no cgroup v2 (0::) line;")
    );
    // Not writable by this user: tested as root through a missing file.
    fs_err::remove_file(root.path().join("user/cgroup.subtree_control")).unwrap();
    let e = Hierarchy::prepared(root.path(), SELF).unwrap_err();
    assert!(
        e.to_string()
            .contains("is not delegated to this user (not writable)")
    );
    // A directory that is no cgroup2 filesystem is not the kernel's.
    let e = Hierarchy::locate(root.path(), SELF).unwrap_err();
    assert!(
        e.to_string().contains("is not a cgroup v2 hierarchy"),
        "{e}"
    );
}

#[test]
fn usage_from_the_interface_files() {
    let dir = tempfile::tempdir().unwrap();
    let w = |f: &str, v: &str| fs_err::write(dir.path().join(f), v).unwrap();
    w("cpu.stat", "usage_usec 1500000\nuser_usec 1000000\n");
    w("memory.current", "1048576\n");
    w("memory.max", "max\n");
    w("pids.current", "3\n");
    w(
        "io.stat",
        "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2\n8:16 rbytes=1 wbytes=0\n",
    );
    let u = usage(dir.path()).unwrap();
    assert_eq!(
        u,
        Usage {
            cpu_usec: 1_500_000,
            memory: 1_048_576,
            memory_limit: None,
            pids: 3,
            read_bytes: 4097,
            write_bytes: 8192,
        }
    );
    assert_eq!(usage(&dir.path().join("gone")), None);
}
