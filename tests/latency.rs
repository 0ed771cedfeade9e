//! Start and lifecycle latency (issue 9), as the unprivileged test users.
//!
//! `DEN_TRACE=1`, den's step timer: each phase of a `den run` is one line on
//! den's stderr, in order, across the CLI, the supervisor and the container
//! process; none of it reaches the container's own output or log, and
//! nothing is printed without it.

use den_tests::{TestEnv, UserSandbox, require_env, stderr, stdout};

/// The phases of an attached `den run`, in the order they end.
const ATTACHED: [&str; 11] = [
    "parse", "store", "spec", "spawn", "userns", "prepare", "mounts", "security", "exec",
    "started", "exit",
];

fn sandbox(env: &TestEnv, sub: bool) -> UserSandbox {
    den_tests::mirrored_sandbox(env, sub, true)
}

/// The trace lines of `err`: (phase, total ms), in order; panics on a
/// malformed one.
fn trace_lines(err: &str) -> Vec<(String, f64)> {
    err.lines()
        .filter(|l| l.starts_with("den: trace: "))
        .map(|l| {
            let mut w = l["den: trace: ".len()..].split_whitespace();
            let phase = w.next().expect("a phase name").to_string();
            let total: f64 = w.next().and_then(|t| t.parse().ok()).expect(l);
            assert_eq!(w.next(), Some("ms"), "{l}");
            assert!(w.next().is_some_and(|d| d.starts_with("(+")), "{l}");
            (phase, total)
        })
        .collect()
}

fn assert_phases(err: &str, want: &[&str]) {
    let lines = trace_lines(err);
    let names: Vec<&str> = lines.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, want, "phases in stderr:\n{err}");
    for pair in lines.windows(2) {
        assert!(
            pair[0].1 <= pair[1].1,
            "times since the start must grow: {pair:?}\n{err}"
        );
    }
}

fn attached_run(sb: &UserSandbox, envs: &[(&str, &str)]) -> (String, String) {
    let o = sb.den_env(
        envs,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    (stdout(&o), stderr(&o))
}

#[test]
fn trace_prints_each_phase_of_run_once_and_in_order() {
    let env = require_env!();
    for sub in [true, false] {
        let sb = sandbox(&env, sub);
        let (out, err) = attached_run(&sb, &[("DEN_TRACE", "1")]);
        assert_eq!(out, "out\n", "the container's stdout carries no trace");
        assert_phases(&err, &ATTACHED);
        let others: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with("den: trace: "))
            .collect();
        assert_eq!(others, ["err"], "stderr besides the trace:\n{err}");
    }
}

#[test]
fn no_trace_without_den_trace() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    for envs in [&[][..], &[("DEN_TRACE", "0")][..], &[("DEN_TRACE", "")][..]] {
        let (out, err) = attached_run(&sb, envs);
        assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"), "{envs:?}");
    }
}

#[test]
fn trace_of_a_detached_run_stops_at_started_and_stays_out_of_the_log() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let o = sb.den_env(
        &[("DEN_TRACE", "1")],
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "traced",
            "busybox",
            "sh",
            "-c",
            "echo ready; sleep 60",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim().len(), 64, "the id only: {}", stdout(&o));
    assert_phases(&stderr(&o), &ATTACHED[..ATTACHED.len() - 1]);
    let mut logs = String::new();
    for _ in 0..50 {
        logs = sb.den_ok(&["logs", "traced"]);
        if !logs.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(logs, "ready\n");
    sb.den_ok(&["rm", "-f", "traced"]);
}

/// The container's directory in the store, from its id.
fn container_dir(sb: &UserSandbox, id: &str) -> std::path::PathBuf {
    sb.root().join("containers").join(id)
}

/// The host pid of the container's init, from its state file.
fn init_pid(sb: &UserSandbox, id: &str) -> i32 {
    let state = std::fs::read_to_string(container_dir(sb, id).join("state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&state).unwrap();
    v["pid"].as_i64().expect("a running container's pid") as i32
}

/// `den rm -f` of a running container waits for nothing but its end: it
/// neither sleeps (it waits on the supervisor's pidfd) nor starts another
/// process (the files are the user's and deleted in place), as strace sees.
#[test]
fn rm_f_of_a_running_container_neither_sleeps_nor_starts_a_process() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let id = sb
        .den_ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "victim",
            "busybox",
            "sleep",
            "infinity",
        ])
        .trim()
        .to_string();
    let pid = init_pid(&sb, &id);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let log = sb.home().join("strace.log");
    let o = sb
        .command_as_user(
            &[],
            "strace",
            &[
                "-f",
                "-qq",
                "-e",
                "trace=execve,nanosleep,clock_nanosleep",
                "-o",
                log.to_str().unwrap(),
                env.bin.to_str().unwrap(),
                "rm",
                "-f",
                "victim",
            ],
        )
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "victim\n");
    let calls = std::fs::read_to_string(&log).unwrap();
    let execs = calls.lines().filter(|l| l.contains("execve(")).count();
    assert_eq!(execs, 1, "only den itself runs:\n{calls}");
    assert!(!calls.contains("nanosleep("), "no sleeping:\n{calls}");
    assert!(!container_dir(&sb, &id).exists(), "the files are gone");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the container's init {pid} is gone"
    );
    assert_eq!(sb.den_ok(&["ps", "-aq"]), "");
}

/// A container whose files are not all the user's (a subordinate id's, a
/// directory nobody may read) is still removed whole by `rm -f`: inside
/// the user namespace.
#[test]
fn rm_f_removes_files_of_subordinate_ids_and_unreadable_directories() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let id = sb
        .den_ok(&[
            "run", "-d", "--network", "none", "--name", "owned", "busybox", "sh", "-c",
            "mkdir -p /d/e && touch /d/e/f && chown -R 1000:1000 /d/e && chmod 000 /d && echo ok && sleep 1000",
        ])
        .trim()
        .to_string();
    for _ in 0..100 {
        if sb.den_ok(&["logs", "owned"]) == "ok\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(sb.den_ok(&["logs", "owned"]), "ok\n");
    let upper = container_dir(&sb, &id).join("upper/d");
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(upper.join("e/f")).unwrap()),
        100_999,
        "a file of the container's uid 1000"
    );
    assert_eq!(sb.den_ok(&["rm", "-f", "owned"]), "owned\n");
    assert!(!container_dir(&sb, &id).exists());
    let left: Vec<_> = std::fs::read_dir(sb.root().join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "nothing left: {left:?}");
}

/// The mountinfo line of the container's root, as the container sees it.
fn root_mount(sb: &UserSandbox, args: &[&str]) -> String {
    let out = sb.den_ok(args);
    out.lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no root mount in:\n{out}"))
        .to_string()
}

/// A `--rm` container's overlay is volatile: its unmount at exit does not
/// sync the whole upper filesystem. A kept container's is not: its upper
/// must survive a host crash.
#[test]
fn only_a_removed_containers_overlay_is_volatile() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let gone = root_mount(
        &sb,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "cat",
            "/proc/self/mountinfo",
        ],
    );
    assert!(gone.contains(" overlay "), "{gone}");
    // `volatile`, shown as `fsync=volatile` by kernels that have that option
    assert!(gone.contains("volatile"), "{gone}");
    let kept = root_mount(
        &sb,
        &[
            "run",
            "--network",
            "none",
            "--name",
            "kept",
            "busybox",
            "cat",
            "/proc/self/mountinfo",
        ],
    );
    assert!(kept.contains(" overlay "), "{kept}");
    assert!(!kept.contains("volatile"), "{kept}");
    // and it starts again on the same upper
    sb.den_ok(&["start", "-a", "kept"]);
    sb.den_ok(&["rm", "kept"]);
}

/// The only container directory in the store (the test's one container).
fn only_container(sb: &UserSandbox) -> std::path::PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(sb.root().join("containers"))
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// A container on no user network gets /etc/hosts, /etc/hostname and
/// /etc/resolv.conf from a tmpfs of its own mount namespace, written at
/// each start: its directory holds none of them, and its upper layer stays
/// empty (the mount points come from den's `etc-base` layer, not from a
/// copy of the image's /etc). What the container adds lasts one run.
#[test]
fn etc_files_of_a_container_on_no_user_network_are_not_written_to_disk() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let script = "cat /etc/hostname; grep -c localhost /etc/hosts; \
        echo 10.9.8.7 added >> /etc/hosts && grep -c added /etc/hosts; \
        grep ' /etc/resolv.conf ' /proc/self/mountinfo | sed 's/.* - //' | cut -d' ' -f1";
    let run = [
        "run",
        "--name",
        "kept",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        script,
    ];
    let first = sb.den_ok(&run);
    let dir = only_container(&sb);
    let id = dir.file_name().unwrap().to_string_lossy().to_string();
    assert_eq!(first, format!("{}\n2\n1\ntmpfs\n", &id[..12]));
    for name in ["hosts", "hostname", "resolv.conf"] {
        assert!(
            !dir.join(name).exists(),
            "{name} written to {}",
            dir.display()
        );
    }
    let upper: Vec<_> = std::fs::read_dir(dir.join("upper"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(upper.is_empty(), "the upper layer holds {upper:?}");
    assert_eq!(sb.den_ok(&["start", "-a", "kept"]), first, "the next start");
    sb.den_ok(&["rm", "kept"]);
}

/// The supervisor's pid, from the container's state file.
fn supervisor_pid(dir: &std::path::Path) -> i32 {
    let state = std::fs::read_to_string(dir.join("state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&state).unwrap();
    v["supervisor_pid"].as_i64().unwrap() as i32
}

/// A field of /proc/PID/smaps_rollup, in KiB.
fn rollup_kib(pid: i32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in:\n{text}"))
}

/// The guard (the supervisor's child that kills the container if the
/// supervisor dies) gives back the heap pages the fork left it: it dirties
/// little of its own (it was 476 KiB before it trimmed its heap).
#[test]
fn the_guard_keeps_no_private_copy_of_the_supervisors_heap() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "g",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    let dir = only_container(&sb);
    let sup = supervisor_pid(&dir);
    let init = init_pid(&sb, dir.file_name().unwrap().to_str().unwrap());
    let children = std::fs::read_to_string(format!("/proc/{sup}/task/{sup}/children")).unwrap();
    let guards: Vec<i32> = children
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .filter(|&p| p != init)
        .collect();
    assert_eq!(guards.len(), 1, "the supervisor's children: {children}");
    let dirty = rollup_kib(guards[0], "Private_Dirty:");
    assert!(
        dirty <= 256,
        "the guard has {dirty} KiB of private dirty memory"
    );
    sb.den_ok(&["rm", "-f", "g"]);
}
