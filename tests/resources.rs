//! Resource limits as the unprivileged test users see them: `--ulimit`
//! inside the container and its refusal, the cgroup flags refused on this
//! host (no delegated cgroup v2), the same flags written to a prepared
//! cgroup tree (`DEN_CGROUP_ROOT`) and removed with the container, and
//! `den stats`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use den_tests::{UserSandbox, inspect, require_env, run_sleeper, stderr, stdout};

/// What `den run` says on this host (a hybrid v1/v2 hierarchy, nothing
/// delegated) after "cannot apply FLAGS … controller(s): ".
const NO_CGROUP: &str = "/sys/fs/cgroup is a hybrid v1/v2 hierarchy whose v2 part has no \
     controllers for users; boot with systemd.unified_cgroup_hierarchy=1 and delegate a cgroup \
     to your user (systemd: user@.service with Delegate=yes), or run without resource limits; \
     `den system check` shows the cgroup state";

/// This host's hierarchy is the one the refusal texts describe.
fn hybrid_host() -> bool {
    let v2 = |p: &str| {
        std::process::Command::new("stat")
            .args(["-f", "-c", "%T", p])
            .output()
            .is_ok_and(|o| o.stdout == b"cgroup2fs\n")
    };
    !v2("/sys/fs/cgroup") && v2("/sys/fs/cgroup/unified")
}

#[test]
fn ulimit_is_visible_inside_and_refused_above_the_hard_limit() {
    let env = require_env!();
    for sb in [den_tests::sandbox(&env), {
        let sb = env.sandbox_nosub();
        sb.write_registries_conf(&den_tests::mirror_conf("docker.io", &env.registry));
        sb
    }] {
        let out = sb.den_ok(&[
            "run",
            "--rm",
            "--ulimit",
            "nofile=512:1024",
            "--ulimit",
            "core=0",
            "busybox",
            "sh",
            "-c",
            "ulimit -n; ulimit -Hn; grep -E 'open files|core file' /proc/self/limits",
        ]);
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0], ["512"], "{out}");
        assert_eq!(lines[1], ["1024"], "{out}");
        assert_eq!(
            lines[2],
            ["Max", "core", "file", "size", "0", "0", "bytes"],
            "{out}"
        );
        assert_eq!(
            lines[3],
            ["Max", "open", "files", "512", "1024", "files"],
            "{out}"
        );
        // What `den exec` runs in the container has its limits too.
        run_sleeper(&sb, "lim", &["--ulimit", "nofile=256:512"], "300");
        assert_eq!(
            sb.den_ok(&["exec", "lim", "sh", "-c", "ulimit -n; ulimit -Hn"]),
            "256\n512\n",
            "den exec keeps the container's --ulimit"
        );
        sb.den_ok(&["rm", "-f", "lim"]);

        // Above the hard limit the user has: the kernel's EPERM, one line.
        let hard = sb.sh_ok("ulimit -Hn").trim().to_string();
        let above = hard.parse::<u64>().unwrap() + 1;
        let err = sb.den_fail(
            &[
                "run",
                "--rm",
                "--ulimit",
                &format!("nofile={above}"),
                "busybox",
                "true",
            ],
            125,
        );
        assert_eq!(
            err,
            format!(
                "den: container set-up failed at step \"set the resource limits (--ulimit)\": \
                 cannot set --ulimit nofile={above}:{above}: your hard limit for nofile is {hard}, \
                 and only root can raise it (lower the value, or raise the hard limit in \
                 /etc/security/limits.conf): Operation not permitted (os error 1)\n"
            )
        );
        let err = sb.den_fail(
            &["run", "--rm", "--ulimit", "files=3", "busybox", "true"],
            125,
        );
        assert_eq!(
            err,
            "den: bad --ulimit \"files=3\": unknown name; use one of core, cpu, data, fsize, \
             locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack\n"
        );
    }
}

#[test]
fn cgroup_flags_are_refused_without_a_delegated_cgroup() {
    let env = require_env!();
    assert!(
        hybrid_host(),
        "this test describes the hybrid hosts of HOST.md"
    );
    let sb = den_tests::sandbox(&env);
    let cases: [(&[&str], &str); 4] = [
        (
            &["--memory", "64m"],
            "--memory without a delegated cgroup v2 subtree with the memory controller",
        ),
        (
            &["-m", "1g", "--memory-swap", "-1", "--cpus", "0.5"],
            "--memory, --memory-swap, --cpus without a delegated cgroup v2 subtree with the memory, cpu controllers",
        ),
        (
            &["--pids-limit", "10"],
            "--pids-limit without a delegated cgroup v2 subtree with the pids controller",
        ),
        (
            &["-c", "512", "--cpuset-cpus", "0"],
            "--cpu-shares, --cpuset-cpus without a delegated cgroup v2 subtree with the cpu, cpuset controllers",
        ),
    ];
    for (flags, what) in cases {
        let mut args = vec!["run", "--rm", "--name", "limited"];
        args.extend(flags);
        args.extend(["busybox", "true"]);
        let err = sb.den_fail(&args, 125);
        assert_eq!(
            err,
            format!("den: cannot apply {what}: {NO_CGROUP}\n"),
            "{flags:?}"
        );
    }
    assert_eq!(sb.den_ok(&["ps", "-a", "-q"]), "", "nothing was made");
    // Bad values are refused before the host is asked.
    let err = sb.den_fail(&["run", "--rm", "--memory", "12x", "busybox", "true"], 125);
    assert_eq!(
        err,
        "den: --memory 12x: unknown unit; use a number with b, k, m, g, t or p (e.g. 512m)\n"
    );
}

/// A cgroup v2 subtree as the kernel would show it delegated, owned by the
/// test user: den's own cgroup on this host is `/` (`0::/`), so children
/// go in the root itself.
fn prepared_tree(sb: &UserSandbox) -> PathBuf {
    let root = sb.dir().join("cgroup");
    fs::create_dir(&root).unwrap();
    for (f, v) in [
        ("cgroup.controllers", "cpuset cpu io memory pids"),
        ("cgroup.subtree_control", ""),
        ("cgroup.procs", ""),
    ] {
        fs::write(root.join(f), v).unwrap();
    }
    sb.sh_ok("true"); // the user exists and can run
    let (uid, gid) = (sb.uid(), sb.gid());
    for p in
        std::iter::once(root.clone()).chain(fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()))
    {
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
    }
    fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
    root
}

fn wait_gone(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while path.exists() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

#[test]
fn limits_go_to_a_prepared_cgroup_tree_and_leave_with_the_container() {
    let env = require_env!();
    let sb = den_tests::sandbox(&env);
    let tree = prepared_tree(&sb);
    let tree_s = tree.to_str().unwrap();
    let cg = [("DEN_CGROUP_ROOT", tree_s)];
    sb.den_env_ok(
        &cg,
        &[
            "run",
            "-d",
            "--name",
            "lim",
            "--memory",
            "64m",
            "--memory-swap",
            "96m",
            "--cpus",
            "0.5",
            "--cpu-shares",
            "512",
            "--cpuset-cpus",
            "0",
            "--pids-limit",
            "20",
            "busybox",
            "sleep",
            "60",
        ],
    );
    let c = inspect(&sb, "lim");
    let id = c["Id"].as_str().unwrap();
    let pid = c["State"]["Pid"].as_i64().unwrap();
    let child = tree.join(format!("den-{id}"));
    let read = |f: &str| fs::read_to_string(child.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    assert_eq!(read("memory.max"), "67108864");
    assert_eq!(read("memory.swap.max"), "33554432");
    assert_eq!(read("cpu.max"), "50000 100000");
    assert_eq!(read("cpu.weight"), "20");
    assert_eq!(read("cpuset.cpus"), "0");
    assert_eq!(read("pids.max"), "20");
    assert_eq!(
        read("cgroup.procs"),
        pid.to_string(),
        "the init was moved in"
    );
    assert_eq!(
        fs::read_to_string(tree.join("cgroup.subtree_control")).unwrap(),
        "memory cpu cpuset pids",
        "the controllers were enabled for the children"
    );

    // What the kernel would report there, for den stats.
    for (f, v) in [
        ("memory.current", "1048576\n"),
        ("pids.current", "1\n"),
        ("cpu.stat", "usage_usec 1000\n"),
        ("io.stat", "8:0 rbytes=2000 wbytes=3000 rios=1 wios=1\n"),
    ] {
        fs::write(child.join(f), v).unwrap();
    }
    let out = sb.den_env(&cg, &["stats", "--no-stream"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let cols: Vec<&str> = lines[1]
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cols,
        [
            &id[..12],
            "lim",
            "0.00%",
            "1MiB / 64MiB",
            "1.56%",
            cols[5],
            "2kB / 3kB",
            "1"
        ],
        "{text}"
    );
    assert_eq!(
        stderr(&out),
        "",
        "a container with a cgroup needs no explanation"
    );
    let json = sb.den_env_ok(&cg, &["stats", "--no-stream", "--format", "json", "lim"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(
        (&v["Name"], &v["MemUsage"], &v["PIDs"], &v["ID"]),
        (
            &"lim".into(),
            &"1MiB / 64MiB".into(),
            &"1".into(),
            &id[..12].into()
        )
    );

    sb.den_ok(&["stop", "-t", "1", "lim"]);
    assert!(
        wait_gone(&child),
        "the cgroup is removed when the container exits"
    );
    sb.den_ok(&["rm", "lim"]);
}

#[test]
fn stats_without_a_cgroup_says_why_and_counts_pids() {
    let env = require_env!();
    assert!(
        hybrid_host(),
        "this test describes the hybrid hosts of HOST.md"
    );
    let sb = den_tests::sandbox(&env);
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "plain",
        "busybox",
        "sh",
        "-c",
        "sleep 60 & sleep 61; true",
    ]);
    let id = inspect(&sb, "plain")["Id"].as_str().unwrap().to_string();
    let out = sb.den(&["stats", "--no-stream"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!("den: plain: no CPU or memory figures: it has no cgroup: {NO_CGROUP}\n")
    );
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0]
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>(),
        [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        ]
    );
    let cols: Vec<&str> = lines[1]
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        (
            cols[0], cols[1], cols[2], cols[3], cols[4], cols[6], cols[7]
        ),
        (&id[..12], "plain", "--", "--", "--", "--", "3"),
        "sh and its two sleeps: {text}"
    );
    let out = sb.den_ok(&["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}"]);
    assert_eq!(out, "plain 3\n", "a Go template on stats' fields");
    // `{{json .}}` is the template engine's json: the same line as
    // `--format json` (NET I/O, which moves, masked).
    let masked = |s: String| {
        let a = s.find("\"NetIO\":\"").expect("a NetIO field") + 9;
        let b = a + s[a..].find('"').unwrap();
        format!("{}X{}", &s[..a], &s[b..])
    };
    let json = sb.den_ok(&["stats", "--no-stream", "--format", "json"]);
    assert!(json.starts_with("{\"") && json.ends_with("\"}\n"), "{json}");
    assert_eq!(json.lines().count(), 1, "{json}");
    let go = sb.den_ok(&["stats", "--no-stream", "--format", "{{json .}}"]);
    assert_eq!(masked(go), masked(json));
    let err = sb.den_fail(&["stats", "--no-stream", "--format", "{{.Nope}}"], 125);
    assert!(
        err.lines().last().unwrap_or_default().starts_with(
            "den: --format `{{.Nope}}`: can't evaluate field Nope: the fields here are"
        ),
        "{err}"
    );
    sb.den_ok(&["rm", "-f", "plain"]);
}

#[test]
fn system_prune_removes_what_nothing_uses_and_prints_one_total() {
    let env = require_env!();
    let sb = den_tests::sandbox(&env);
    sb.den_ok(&["pull", "-q", "busybox"]);
    sb.den_ok(&["network", "create", "idle"]);
    sb.den_ok(&["volume", "create", "keep"]);
    sb.den_ok(&[
        "run", "--name", "done", "-v", "/data", "-v", "keep:/k", "busybox", "true",
    ]);
    let stopped = inspect(&sb, "done")["Id"].as_str().unwrap().to_string();
    let anonymous: Vec<String> = sb
        .den_ok(&["volume", "ls", "-q"])
        .lines()
        .filter(|v| *v != "keep")
        .map(str::to_owned)
        .collect();
    assert_eq!(anonymous.len(), 1, "{anonymous:?}");

    // Without -a and --volumes: the image is tagged (not dangling), volumes stay.
    let out = sb.den_ok(&["system", "prune", "-f"]);
    assert!(
        out.starts_with(&format!(
            "Deleted Containers:\n{stopped}\nDeleted Networks:\nidle\n"
        )),
        "{out}"
    );
    assert_eq!(out.matches("Total reclaimed space: ").count(), 1, "{out}");
    assert_eq!(sb.den_ok(&["volume", "ls", "-q"]).lines().count(), 2);
    assert_ne!(sb.den_ok(&["images", "-q"]), "");

    // A running container keeps its image; -a and --volumes take the rest.
    run_sleeper(&sb, "up", &[], "60");
    let out = sb.den_ok(&["system", "prune", "-a", "-f", "--volumes"]);
    assert!(
        out.contains(&format!("Deleted Volumes:\n{}\n", anonymous[0])),
        "{out}"
    );
    assert!(!out.contains("Deleted Images:"), "busybox is in use: {out}");
    assert_eq!(out.matches("Total reclaimed space: ").count(), 1, "{out}");
    assert_eq!(
        sb.den_ok(&["volume", "ls", "-q"]),
        "keep\n",
        "named volumes stay"
    );
    sb.den_ok(&["rm", "-f", "up"]);
    let out = sb.den_ok(&["system", "prune", "-a", "-f"]);
    assert!(out.contains("Deleted Images:\nuntagged: busybox"), "{out}");
    let total = out.lines().last().unwrap();
    assert!(
        total.starts_with("Total reclaimed space: ") && !total.ends_with(" 0B"),
        "{out}"
    );
    assert_eq!(sb.den_ok(&["images", "-q"]), "");
    assert_eq!(sb.den_ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn compose_limits_become_den_run_flags() {
    let env = require_env!();
    assert!(
        hybrid_host(),
        "this test describes the hybrid hosts of HOST.md"
    );
    let sb = den_tests::sandbox(&env);
    let file = sb.write_file(
        "lim/compose.yaml",
        "services:\n  job:\n    image: busybox\n    command: sh -c 'ulimit -n; ulimit -Hn; ulimit -u'\n    ulimits:\n      nofile: {soft: 300, hard: 600}\n      nproc: 90\n",
    );
    let file = file.to_str().unwrap();
    let out = sb.den(&["compose", "-f", file, "-p", "lim", "up"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("ulimits"),
        "no ignored-key warning: {}",
        stderr(&out)
    );
    let id = sb.den_ok(&["ps", "-a", "-q"]);
    let logs = sb.den_ok(&["logs", id.trim()]);
    assert_eq!(logs, "300\n600\n90\n");
    sb.den_ok(&["compose", "-f", file, "-p", "lim", "down"]);

    let file = sb.write_file(
        "mem/compose.yaml",
        "services:\n  db:\n    image: busybox\n    command: sleep 30\n    mem_limit: 64m\n    pids_limit: 50\n",
    );
    let file = file.to_str().unwrap();
    let err = sb.den_fail(&["compose", "-f", file, "-p", "mem", "up", "-d"], 125);
    assert!(
        err.ends_with(&format!(
            "cannot apply --memory, --pids-limit without a delegated cgroup v2 subtree with the memory, pids controllers: {NO_CGROUP}\n"
        )),
        "{err}"
    );
    assert_eq!(sb.den_ok(&["ps", "-a", "-q"]), "", "nothing was started");
}
