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
    let (o, calls) = den_under_strace(
        &env,
        &sb,
        "execve,nanosleep,clock_nanosleep",
        &["rm", "-f", "victim"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "victim\n");
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

/// The resident pages of one mapping of `pid` (`[stack]`, `[heap]`), in KiB.
fn mapping_rss_kib(pid: i32, name: &str) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut lines = smaps.lines().skip_while(|l| !l.ends_with(name));
    lines
        .next()
        .unwrap_or_else(|| panic!("no {name} mapping in {pid}'s smaps"));
    lines
        .find_map(|l| l.strip_prefix("Rss:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no Rss for {name} in {pid}'s smaps"))
}

/// A forked supervisor lets go of the stack pages the CLI's deeper calls
/// (flag parsing, the store, the spec) dirtied before the fork: they were
/// 152 KiB of its own in each supervisor and each guard.
#[test]
fn a_forked_supervisor_keeps_no_copy_of_the_clis_stack() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    den_tests::run_sleeper(&sb, "st", &["--network", "none"], "1000");
    let sup = supervisor_pid(&only_container(&sb));
    let stack = mapping_rss_kib(sup, "[stack]");
    assert!(stack <= 64, "the supervisor's stack holds {stack} KiB");
    sb.den_ok(&["rm", "-f", "st"]);
}

/// The targets of a process's descriptors by number: pipes, sockets and
/// anonymous inodes without their inode numbers, paths in the container's
/// directory as `DIR/…`.
fn fd_targets(pid: i32, dir: &std::path::Path) -> std::collections::BTreeMap<u32, String> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap();
    fds.flatten()
        .map(|e| {
            let n: u32 = e.file_name().to_str().unwrap().parse().unwrap();
            let target = std::fs::read_link(e.path()).unwrap();
            let t = target.to_string_lossy().to_string();
            const KINDS: [&str; 9] = [
                "pipe", "socket", "cgroup", "ipc", "mnt", "net", "pid", "user", "uts",
            ];
            let t = match t.split_once(":[") {
                Some((kind, _)) if KINDS.contains(&kind) => kind.to_string(),
                _ => t.replace(dir.to_str().unwrap(), "DIR"),
            };
            (n, t)
        })
        .collect()
}

/// A field of /proc/PID/status.
fn status_field(pid: i32, field: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or_else(|| panic!("no {field} in:\n{text}"))
        .trim()
        .to_string()
}

/// A supervisor started clean has the signal dispositions of a fresh den:
/// only Rust's own SIGSEGV and SIGBUS handlers (its stack overflow report)
/// are caught, and of the standard signals only SIGPIPE is ignored (the
/// real-time ones are inherited, as across exec).
fn assert_clean_signals(pid: i32) {
    let mask = |field: &str| u64::from_str_radix(&status_field(pid, field), 16).unwrap();
    let bit = |sig: u64| 1u64 << (sig - 1);
    assert_eq!(mask("SigCgt:"), bit(7) | bit(11), "caught: SIGBUS, SIGSEGV");
    assert_eq!(mask("SigIgn:") & 0x7fff_ffff, bit(13), "ignored: SIGPIPE");
}

/// Whether descriptor `fd` of `pid` is close-on-exec (its fdinfo flags).
fn cloexec(pid: i32, fd: u32) -> bool {
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap();
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
        .unwrap();
    flags & 0o2_000_000 != 0
}

/// A process's descriptors: the targets of 0, 1 and 2; its own from 3 up
/// (close-on-exec, sorted); and those it inherited without close-on-exec,
/// by number (an exec keeps them too: `--preserve-fds` relies on it).
type Fds = (
    Vec<String>,
    Vec<String>,
    std::collections::BTreeMap<u32, String>,
);

fn fds_of(pid: i32, dir: &std::path::Path) -> Fds {
    let (mut stdio, mut own, mut inherited) = (Vec::new(), Vec::new(), Default::default());
    let inherited: &mut std::collections::BTreeMap<u32, String> = &mut inherited;
    for (n, target) in fd_targets(pid, dir) {
        match n {
            0..=2 => stdio.push(target),
            _ if cloexec(pid, n) => own.push(target),
            _ => {
                inherited.insert(n, target);
            }
        }
    }
    own.sort();
    (stdio, own, std::mem::take(inherited))
}

/// A supervisor's own descriptors: its signalfd and ctl FIFO, pidfds of
/// the container's init and of the guard, the read ends of the container's
/// stdout and stderr; no store lock, and, detached, no pipe to the den
/// that started it (its step timer's copy of stderr, with `--log-level
/// debug`, is closed when it lets go of the others).
fn supervisor_fds() -> Vec<&'static str> {
    let mut fds = vec![
        "DIR/ctl",
        "anon_inode:[pidfd]",
        "anon_inode:[pidfd]",
        "anon_inode:[signalfd]",
        "pipe",
        "pipe",
        // The container's namespaces and ns.sock, for den exec (`nsfds`).
        "cgroup",
        "ipc",
        "mnt",
        "net",
        "pid",
        "user",
        "uts",
        "socket",
    ];
    fds.sort();
    fds
}

/// A forked supervisor's command line is `den __internal container ID`
/// (cut to the length of the `den run` it came from), never the
/// container's command, which `ps` and `pkill -f` would match.
fn assert_retitled(pid: i32, id: &str) {
    let cmd = cmdline(pid);
    let cmd = cmd.trim_end();
    let title = format!("den __internal container {id}");
    assert!(
        cmd.len() > "den __internal container ".len() && title.starts_with(cmd),
        "the supervisor {pid}'s command line: {cmd:?}"
    );
}

fn cmdline(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .unwrap()
        .replace('\0', " ")
}

/// `den run -d` with the image present forks its supervisor instead of
/// executing den again (its command line is the `den run` it came from),
/// and the fork is as clean as an exec: it outlives the CLI, holds exactly
/// its own descriptors (no store lock, no pipe to the CLI), catches no
/// signal; `ps` lists it and `rm -f` ends it. Both test users.
#[test]
fn a_detached_supervisor_is_a_clean_fork_of_den_run() {
    let env = require_env!();
    for sub in [true, false] {
        let sb = sandbox(&env, sub);
        let run = [
            "--log-level",
            "debug",
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "forked",
            "busybox",
            "sleep",
            "1000",
        ];
        let o = sb.den(&run);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("den: debug: forking the supervisor"),
            "{}",
            stderr(&o)
        );
        let id = stdout(&o).trim().to_string();
        let dir = container_dir(&sb, &id);
        let sup = supervisor_pid(&dir);
        let init = init_pid(&sb, &id);
        assert_retitled(sup, &id);
        // Right after its report it lets go of the CLI's pipes.
        den_tests::wait_for(
            "stdio on /dev/null",
            std::time::Duration::from_secs(5),
            || fds_of(sup, &dir).0 == ["/dev/null"; 3],
        );
        let (_, own, _) = fds_of(sup, &dir);
        assert_eq!(
            own,
            supervisor_fds(),
            "sub={sub}: the supervisor's descriptors"
        );
        assert_clean_signals(sup);
        assert_eq!(sb.den_ok(&["ps", "-q"]).trim(), &id[..12]);
        assert!(std::path::Path::new(&format!("/proc/{init}")).exists());
        assert_eq!(sb.den_ok(&["rm", "-f", "forked"]), "forked\n");
        let gone = std::fs::read_to_string(format!("/proc/{sup}/stat"))
            .map_or(true, |s| den_sandbox_dead(&s));
        assert!(gone, "sub={sub}: the supervisor {sup} ended");
        assert!(!std::path::Path::new(&format!("/proc/{init}")).exists());
    }
}

/// Whether a /proc/PID/stat line is a zombie's or a dead process's.
fn den_sandbox_dead(stat: &str) -> bool {
    let state = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .next();
    matches!(state, Some("Z" | "X"))
}

/// An attached `den run` catches SIGINT and SIGQUIT (they reach the
/// container straight from the terminal, den must outlive them): the
/// supervisor it forks has those handlers reset, and holds the CLI's
/// stdout and stderr but no other descriptor of the CLI's.
#[test]
fn an_attached_supervisor_is_forked_without_the_clis_handlers() {
    let env = require_env!();
    for sub in [true, false] {
        let sb = sandbox(&env, sub);
        let cli = sb
            .den_cmd(
                &[],
                &[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--name",
                    "att",
                    "busybox",
                    "sleep",
                    "1000",
                ],
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut sup = 0;
        den_tests::wait_for(
            "the container running",
            std::time::Duration::from_secs(20),
            || {
                let Ok(dirs) = std::fs::read_dir(sb.root().join("containers")) else {
                    return false;
                };
                let dirs: Vec<_> = dirs
                    .flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .collect();
                let Some(d) = dirs.first() else { return false };
                let Ok(state) = std::fs::read_to_string(d.path().join("state.json")) else {
                    return false;
                };
                let v: serde_json::Value = serde_json::from_str(&state).unwrap();
                sup = v["supervisor_pid"].as_i64().unwrap() as i32;
                v["status"] == "running"
            },
        );
        let dir = only_container(&sb);
        let id = dir.file_name().unwrap().to_str().unwrap().to_string();
        assert_retitled(sup, &id);
        assert_clean_signals(sup);
        let cli_pid: i32 = status_field(sup, "PPid:").parse().unwrap();
        assert!(
            cmdline(cli_pid).contains(" run --rm "),
            "{}",
            cmdline(cli_pid)
        );
        // SIGINT and SIGQUIT: the CLI's, not the supervisor's.
        let cli_caught = u64::from_str_radix(&status_field(cli_pid, "SigCgt:"), 16).unwrap();
        assert_eq!(cli_caught & 0b110, 0b110, "{cli_caught:x}");
        // stdout and stderr are the CLI's (the test's pipes)
        let (stdio, own, inherited) = fds_of(sup, &dir);
        assert_eq!(stdio, ["/dev/null", "pipe", "pipe"], "sub={sub}");
        assert_eq!(
            own,
            supervisor_fds(),
            "sub={sub}: the supervisor's descriptors"
        );
        assert_eq!(
            inherited,
            fds_of(cli_pid, &dir).2,
            "sub={sub}: as the CLI's"
        );
        sb.den_ok(&["kill", "att"]);
        let o = cli.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    }
}

/// A `den run` that pulls its image first has run an async runtime; it
/// still starts the container (with a fresh exec of den when threads are
/// left, else a fork), and `--log-level debug` says which.
#[test]
fn a_run_that_pulls_first_still_starts_its_supervisor() {
    let env = require_env!();
    for sub in [true, false] {
        let sb = den_tests::mirrored_sandbox(&env, sub, false);
        let o = sb.den(&[
            "--log-level",
            "debug",
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "echo",
            "hi",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), "hi\n");
        let err = stderr(&o);
        assert!(err.contains("pulling "), "it pulled:\n{err}");
        assert!(
            err.contains("__internal container") || err.contains("forking the supervisor"),
            "{err}"
        );
    }
}

/// Runs `den args` as the user under `strace -f -e trace=TRACE`; returns
/// den's output and the calls strace saw.
fn den_under_strace(
    env: &TestEnv,
    sb: &UserSandbox,
    trace: &str,
    args: &[&str],
) -> (std::process::Output, String) {
    let log = sb.home().join("strace.log");
    let trace = format!("trace={trace}");
    let mut argv = vec!["-f", "-qq", "-e", &trace, "-o", log.to_str().unwrap()];
    argv.push(env.bin.to_str().unwrap());
    argv.extend_from_slice(args);
    let o = sb.command_as_user(&[], "strace", &argv).output().unwrap();
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    (o, calls)
}

/// The file operations on `name` in an strace log: (writes of it through
/// a rename onto it, opens that create it).
fn renames_and_creates(log: &str, name: &str) -> (usize, usize) {
    let quoted = format!("/{name}\"");
    let renames = log
        .lines()
        .filter(|l| l.contains("rename") && l.trim_end().contains(&quoted))
        .count();
    let creates = log
        .lines()
        .filter(|l| l.contains("open") && l.contains(&quoted) && l.contains("O_CREAT"))
        .count();
    (renames, creates)
}

/// A `--rm` run records its state once (when it has started: nobody reads
/// it after, the directory goes) and makes no log when the container
/// prints nothing; a kept silent container has no `ctr.log` either, and
/// `den logs` of it prints nothing and succeeds.
#[test]
fn state_is_written_once_and_a_silent_container_makes_no_log() {
    let env = require_env!();
    // The user without subordinate ids: under strace, newuidmap runs
    // without its setuid bit.
    let sb = sandbox(&env, false);
    let (o, calls) = den_under_strace(
        &env,
        &sb,
        "rename,renameat,renameat2,open,openat",
        &["run", "--rm", "--network", "none", "busybox", "true"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(renames_and_creates(&calls, "state.json").0, 1, "{calls}");
    assert_eq!(renames_and_creates(&calls, "ctr.log"), (0, 0), "{calls}");
    let id = sb
        .den_ok(&[
            "run",
            "--name",
            "quiet",
            "--network",
            "none",
            "busybox",
            "true",
        ])
        .to_string();
    assert_eq!(id, "");
    let dir = only_container(&sb);
    assert!(!dir.join("ctr.log").exists(), "a log of nothing");
    assert_eq!(sb.den_ok(&["logs", "quiet"]), "");
    let state = den_tests::inspect(&sb, "quiet");
    assert_eq!(state["State"]["ExitCode"], 0, "{state}");
    assert_eq!(sb.den_ok(&["start", "-a", "quiet"]), "");
    sb.den_ok(&["rm", "quiet"]);
}

/// `--rootfs /` tries no overlay mount the kernel refuses (a directory
/// with mounts below it cannot be a lower layer in a user namespace; each
/// refusal cost 1–3 ms): den reads the mount table first.
#[test]
fn a_rootfs_run_tries_no_overlay_mount_that_fails() {
    let env = require_env!();
    // Without subordinate ids: under strace, newuidmap loses its setuid bit.
    let sb = sandbox(&env, false);
    let (o, calls) = den_under_strace(
        &env,
        &sb,
        "fsopen,fsconfig",
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--rootfs",
            "/",
            "cat",
            "/etc/hostname",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim().len(), 12, "{}", stdout(&o));
    // Made with the new mount API: refused at FSCONFIG_CMD_CREATE.
    let overlays = calls.lines().filter(|l| l.contains("fsopen(\"overlay\""));
    let created = calls.lines().filter(|l| l.contains("FSCONFIG_CMD_CREATE"));
    let failed: Vec<&str> = created.filter(|l| l.contains("= -1")).collect();
    assert!(overlays.count() > 1, "split into overlays:\n{calls}");
    assert_eq!(failed, Vec::<&str>::new(), "refused overlay mounts");
}

/// `--rootfs /` gives an empty host directory no overlay of its own (one
/// costs about 60 µs to mount and as much to unmount): it is a plain
/// directory of the container's root, writable and looking as an overlay's
/// would, while a directory with content keeps its overlay.
#[test]
fn a_rootfs_run_mounts_no_overlay_for_an_empty_directory() {
    let env = require_env!();
    let sb = sandbox(&env, false);
    let empty = format!("/den-empty-{}", std::process::id());
    std::fs::create_dir(&empty).unwrap();
    let script = format!(
        "grep -c ' {empty} ' /proc/self/mountinfo; grep -c ' /etc .* overlay ' /proc/self/mountinfo; \
         stat -c '%U %a' {empty} /etc; touch {empty}/written && ls {empty}"
    );
    let out = sb.den(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--rootfs",
        "/",
        "sh",
        "-c",
        &script,
    ]);
    let listed = std::fs::read_dir(&empty).unwrap().count();
    std::fs::remove_dir(&empty).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "0\n1\nroot 755\nroot 755\nwritten\n",
        "{}",
        stderr(&out)
    );
    assert_eq!(listed, 0, "the host's directory is unchanged");
}

/// The keeper's children (pids), from `/proc/PID/task/*/children`.
fn children_of(pid: i32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .flat_map(|t| {
            let path = t.unwrap().path().join("children");
            let text = std::fs::read_to_string(path).unwrap_or_default();
            text.split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Waits until the keeper built its next tree: its builder, which ends
/// about 2 s after its last tree, is gone.
fn wait_for_keeper_build(keeper: i32) {
    std::thread::sleep(std::time::Duration::from_millis(300));
    for _ in 0..200 {
        if children_of(keeper).is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!(
        "the keeper's builder did not end: {:?}",
        children_of(keeper)
    );
}

/// `--rootfs DIR` with mounts below DIR (split into an overlay per entry):
/// after a first run asked for one, the keeper builds the next tree ahead
/// of time, and a run attaches it (one `move_mount`, no overlay mounted)
/// with the same contents as a tree built at start, writes going to memory.
/// A tree built before an entry was added to DIR, or before a mount below
/// it went, is not used: the run builds its own and sees the change.
#[test]
fn a_rootfs_tree_comes_from_the_keeper_only_while_what_it_was_built_from_holds() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let dir = rootfs_dir(
        &sb,
        "tree",
        "mkdir -m 0755 $d/a $d/m; echo one > $d/f; chown -R $u: $d; \
         mount -t tmpfs -o mode=0755 den-tree $d/m; echo in > $d/m/inside",
    );
    let d = dir.display().to_string();
    let cleanup = |d: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("umount {d}/m 2>/dev/null; rm -rf {d}"))
            .status()
            .ok();
    };
    // The host's programs, through a volume.
    let list = "ls /m; cat /f; ls -d /b 2>/dev/null; touch /a/written && ls /a";
    let run = [
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/usr:/usr:ro",
        "--rootfs",
        &d,
        "sh",
        "-c",
        list,
    ];
    let attached = |calls: &str| {
        let onto = |l: &&str| l.contains("move_mount(") && l.contains("/merged\"");
        let overlays = calls
            .lines()
            .filter(|l| l.contains("fsopen(\"overlay\""))
            .count();
        (calls.lines().filter(onto).count(), overlays)
    };
    // The first run asks; the keeper has none yet, and builds one. The
    // step timer says why this run built its own.
    let first = sb.den_env(&[("DEN_TRACE", "1")], &run);
    let why = "den: trace note: --rootfs tree built here: none from the keeper\n";
    let keeper = keeper_pid(&sb).expect("a keeper record");
    wait_for_keeper_build(keeper);
    let (o, calls) = den_under_strace(&env, &sb, "fsopen,move_mount", &run);
    let want = "inside\none\nwritten\n";
    let results = [(stdout(&first), stderr(&first)), (stdout(&o), stderr(&o))];
    let used = attached(&calls);
    // An entry added: the tree built after the last run is not used.
    wait_for_keeper_build(keeper);
    std::fs::create_dir(dir.join("b")).unwrap();
    let (added, added_calls) = den_under_strace(&env, &sb, "fsopen,move_mount", &run);
    // The mount below it gone: neither.
    wait_for_keeper_build(keeper);
    std::process::Command::new("umount")
        .arg(dir.join("m"))
        .status()
        .unwrap();
    let (unmounted, unmounted_calls) = den_under_strace(&env, &sb, "fsopen,move_mount", &run);
    let host_a: Vec<_> = std::fs::read_dir(dir.join("a")).unwrap().collect();
    cleanup(&d);
    for (out, err) in &results {
        assert_eq!(out, want, "{err}");
    }
    assert!(results[0].1.contains(why), "{}", results[0].1);
    assert_eq!(used, (1, 0), "the keeper's tree, attached: {calls}");
    assert_eq!(host_a.len(), 0, "writes went to memory");
    assert_eq!(
        stdout(&added),
        "inside\none\n/b\nwritten\n",
        "{}",
        stderr(&added)
    );
    // Built at start: its own overlays (its root attached as the tree is).
    let (_, overlays) = attached(&added_calls);
    assert!(overlays > 0, "built at start: {added_calls}");
    assert_eq!(
        stdout(&unmounted),
        "one\n/b\nwritten\n",
        "{}",
        stderr(&unmounted)
    );
    let (_, overlays) = attached(&unmounted_calls);
    assert!(overlays > 0, "built at start: {unmounted_calls}");
}

/// The identity of `pid`'s user namespace (`user:[INODE]`).
fn userns_of(pid: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/user"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The test's own user namespace: the host's.
fn host_userns() -> String {
    userns_of(std::process::id() as i32)
}

/// The pid the den root's keeper record names, if there is one.
/// The keeper builds the next `--rootfs` tree only once the container that
/// took the last one is gone, mounts and all (or a second after it asked):
/// its build competes with none of that container's work. A run that asks
/// before then has the build start at once and waits for it, rather than
/// building its own.
#[test]
fn the_next_rootfs_tree_is_built_once_the_last_container_is_gone_or_another_asks() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let dir = rootfs_dir(&sb, "next", "");
    let d = dir.display().to_string();
    let flags = ["--network", "none", "-v", "/usr:/usr:ro", "--rootfs", &d];
    let mut first = vec!["run", "-d", "--name", "first"];
    first.extend_from_slice(&flags);
    first.extend(["sleep", "30"]);
    sb.den_ok(&first);
    let keeper = keeper_pid(&sb).expect("a keeper record");
    // Well within the keeper's second for a container that runs on.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let while_running = children_of(keeper);
    // Asked while the first runs: built now, for it.
    let mut next = vec!["run", "--rm"];
    next.extend_from_slice(&flags);
    next.push("true");
    let (o, calls) = den_under_strace(&env, &sb, "fsopen,move_mount", &next);
    sb.den_ok(&["rm", "-f", "first"]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        while_running,
        Vec::<String>::new(),
        "no build while it runs"
    );
    let onto = |l: &&str| l.contains("move_mount(") && l.contains("/merged\"");
    let attached = calls.lines().filter(onto).count();
    let overlays = calls
        .lines()
        .filter(|l| l.contains("fsopen(\"overlay\""))
        .count();
    assert_eq!((attached, overlays), (1, 0), "the keeper's tree: {calls}");
}

/// A directory for `--rootfs`, `/tmp/den-NAME-PID`, the user's: an empty
/// `usr` (for a `-v /usr:/usr:ro`) and its links; then the shell commands
/// `more`, run as root with `$d` the directory and `$u` the user.
fn rootfs_dir(sb: &UserSandbox, name: &str, more: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(format!("/tmp/den-{name}-{}", std::process::id()));
    let script = "set -e; mkdir -m 0755 $d $d/usr; \
         for l in bin lib lib64; do ln -s usr/$l $d/$l; done; chown -R $u: $d";
    let setup = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{script}; {more}"))
        .env("d", &dir)
        .env("u", sb.user())
        .status()
        .unwrap();
    assert!(setup.success());
    dir
}

fn keeper_pid(sb: &UserSandbox) -> Option<i32> {
    let bytes = std::fs::read(sb.root().join("userns.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    Some(v["pid"].as_i64().expect("a pid") as i32)
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !den_sandbox_dead(&s))
}

/// The keepers of this den root that run (their command lines).
fn keepers(sb: &UserSandbox) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-a", "-u", sb.user(), "-f", "__internal userns-keeper"])
        .output()
        .unwrap();
    let root = format!("--root {} ", sb.root().display());
    stdout(&out)
        .lines()
        .filter(|l| l.contains(&root))
        .map(str::to_owned)
        .collect()
}

fn run_d(sb: &UserSandbox, name: &str, flags: &[&str]) -> i32 {
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    args.extend_from_slice(flags);
    args.extend(["busybox", "sleep", "infinity"]);
    let id = sb.den_ok(&args).trim().to_string();
    init_pid(sb, &id)
}

/// With subordinate ids, containers share one user namespace per den root,
/// held by a keeper that holds nothing else; the ids inside are the same
/// as in a namespace of the container's own. `--userns=keep-id` (another
/// mapping) gets one of its own.
#[test]
fn containers_share_the_keepers_user_namespace() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let keeper_info = || sb.den_ok(&["info", "-f", "{{.UserNamespaceKeeper}}"]);
    assert_eq!(
        keeper_info(),
        "none running (the next container starts it)\n"
    );
    let a = run_d(&sb, "a", &[]);
    let b = run_d(&sb, "b", &[]);
    let k = run_d(&sb, "k", &["--userns=keep-id"]);
    let keeper = keeper_pid(&sb).expect("a keeper record");
    assert!(alive(keeper), "the keeper {keeper} runs");
    assert_eq!(userns_of(a), userns_of(keeper));
    assert_eq!(userns_of(b), userns_of(keeper));
    assert_ne!(userns_of(k), userns_of(keeper), "keep-id maps other ids");
    assert_ne!(userns_of(keeper), host_userns(), "not the host's namespace");
    let uid_map = sb.den_ok(&["exec", "a", "cat", "/proc/self/uid_map"]);
    let lines: Vec<Vec<&str>> = uid_map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let own = sb.uid().to_string();
    assert_eq!(lines[0], ["0", own.as_str(), "1"], "{uid_map}");
    assert_eq!(lines[1][0], "1", "{uid_map}");
    assert_eq!(lines.len(), 2, "{uid_map}");
    // It holds nothing of whoever started it: /dev/null on 0-2, its socket
    // and the spare network namespace (not the one it is in), /.
    let fds = fd_targets(keeper, std::path::Path::new("/nowhere"));
    // In any order: which descriptor a spare gets depends on when it was made.
    let mut kinds: Vec<&str> = fds.values().map(String::as_str).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        ["/dev/null", "/dev/null", "/dev/null", "net", "socket"]
    );
    let spare = fds
        .iter()
        .find(|(_, t)| *t == "net")
        .map(|(n, _)| *n)
        .unwrap();
    let spare = std::fs::read_link(format!("/proc/{keeper}/fd/{spare}")).unwrap();
    assert_ne!(spare.to_string_lossy(), netns_of(keeper), "not its own");
    assert_eq!(
        std::fs::read_link(format!("/proc/{keeper}/cwd")).unwrap(),
        std::path::Path::new("/")
    );
    assert_eq!(status_field(keeper, "Threads:"), "1");
    assert_eq!(keepers(&sb).len(), 1, "{:?}", keepers(&sb));
    assert_eq!(keeper_info(), format!("pid {keeper}\n"));
    sb.den_ok(&["rm", "-f", "a", "b", "k"]);
}

/// The identity of `pid`'s network namespace (`net:[INODE]`).
fn netns_of(pid: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// A container on `--network none` or den's private network starts in a
/// network namespace the keeper made beforehand (`userns::spare`): its own,
/// fresh (loopback up), none twice, never one the keeper is in; without
/// the keeper's socket it makes one itself, as before.
#[test]
fn a_new_network_namespace_comes_from_the_keeper() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let a = run_d(&sb, "a", &[]);
    let keeper = keeper_pid(&sb).expect("a keeper record");
    let b = run_d(&sb, "b", &[]);
    let private = sb.den_ok(&["run", "-d", "--name", "p", "busybox", "sleep", "infinity"]);
    let p = init_pid(&sb, private.trim());
    let nets: std::collections::BTreeSet<String> =
        [a, b, p, keeper].into_iter().map(netns_of).collect();
    assert_eq!(nets.len(), 4, "each its own: {nets:?}");
    let userns = userns_of(keeper);
    assert_eq!((userns_of(a), userns_of(p)), (userns.clone(), userns));
    let lo = sb.den_ok(&["exec", "b", "ip", "-o", "link", "show", "lo"]);
    assert!(lo.contains("<LOOPBACK,UP,LOWER_UP>"), "{lo}");
    let eth = sb.den_ok(&["exec", "p", "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(eth.contains("inet "), "pasta set it up: {eth}");
    // The container process joins the spare; it makes none.
    let run = ["run", "--rm", "--network", "none", "busybox", "true"];
    let (o, calls) = den_under_strace(&env, &sb, "unshare,setns", &run);
    assert!(o.status.success(), "{}", stderr(&o));
    let joins = |l: &&str| l.contains("setns(") && l.contains(", CLONE_NEWNET)");
    let makes = |l: &&str| l.contains("unshare(") && l.contains("CLONE_NEWNET");
    let joined: Vec<&str> = calls.lines().filter(joins).collect();
    assert!(
        joined.len() == 1 && joined[0].trim_end().ends_with("= 0"),
        "{calls}"
    );
    assert_eq!(calls.lines().filter(makes).count(), 0, "{calls}");
    // Without the socket: a namespace of its own.
    std::fs::remove_file(sb.root().join("userns.sock")).unwrap();
    let (o, calls) = den_under_strace(&env, &sb, "unshare,setns", &run);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(calls.lines().filter(makes).count(), 1, "{calls}");
    assert_eq!(calls.lines().filter(joins).count(), 0, "{calls}");
    sb.den_ok(&["rm", "-f", "a", "b", "p"]);
}

/// Without subordinate ids there is nothing to share: no keeper starts.
#[test]
fn without_subordinate_ids_no_keeper_starts() {
    let env = require_env!();
    let sb = sandbox(&env, false);
    let a = run_d(&sb, "a", &[]);
    let b = run_d(&sb, "b", &[]);
    assert_ne!(userns_of(a), userns_of(b));
    assert_eq!(keeper_pid(&sb), None);
    assert_eq!(keepers(&sb), Vec::<String>::new());
    assert_eq!(
        sb.den_ok(&["info", "-f", "{{.UserNamespaceKeeper}}"]),
        "none (each container has a user namespace of its own)\n"
    );
    sb.den_ok(&["rm", "-f", "a", "b"]);
}

/// A keeper killed is replaced by the next run; a record naming a process
/// that is not a keeper (here the user's own shell, in the host's user
/// namespace, its start time right) is not joined; a keeper whose record
/// is gone (its den root removed) ends.
#[test]
fn a_keeper_is_replaced_when_gone_and_never_trusted_blindly() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let run = |sb: &UserSandbox| {
        let o = sb.den_ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "readlink",
            "/proc/self/ns/user",
        ]);
        o.trim().to_string()
    };
    let first_ns = run(&sb);
    let first = keeper_pid(&sb).expect("a keeper record");
    assert_eq!(first_ns, userns_of(first));
    assert_eq!(run(&sb), first_ns, "the second run joins the same");
    kill_9(first);
    wait_for_gone(first);
    let second_ns = run(&sb);
    let second = keeper_pid(&sb).expect("a new keeper record");
    assert_ne!(second, first);
    assert_eq!(second_ns, userns_of(second));
    assert_eq!(keepers(&sb).len(), 1, "{:?}", keepers(&sb));

    // A false record: a process of the user in the host's user namespace.
    let mut decoy = sb
        .command_as_user(&[], "sleep", &["100"])
        .spawn()
        .expect("sleep as the user");
    let decoy_pid = decoy_child(decoy.id() as i32);
    let stat = std::fs::read_to_string(format!("/proc/{decoy_pid}/stat")).unwrap();
    let start: u64 = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    kill_9(second);
    wait_for_gone(second);
    sb.sh_ok(&format!(
        "printf '{{\"pid\":{decoy_pid},\"start\":{start}}}' > {}/userns.json",
        sb.root().display()
    ));
    let third_ns = run(&sb);
    assert_ne!(third_ns, host_userns(), "never the host's user namespace");
    let third = keeper_pid(&sb).expect("a keeper replaced the false record");
    assert_ne!(third, decoy_pid);
    assert_eq!(third_ns, userns_of(third));
    kill_9(decoy_pid);
    decoy.wait().ok();

    // The record gone: the keeper ends (it looks once a second).
    std::fs::remove_file(sb.root().join("userns.json")).unwrap();
    wait_for_gone(third);
    assert_eq!(keepers(&sb), Vec::<String>::new());
}

fn kill_9(pid: i32) {
    let ok = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -9 {pid}");
}

fn wait_for_gone(pid: i32) {
    den_tests::wait_for(
        &format!("process {pid} to end"),
        std::time::Duration::from_secs(5),
        || !alive(pid),
    );
}

/// `command_as_user` runs through runuser: the pid of its `sleep` child.
fn decoy_child(runuser: i32) -> i32 {
    den_tests::retry("the decoy sleep", std::time::Duration::from_secs(5), || {
        let children =
            std::fs::read_to_string(format!("/proc/{runuser}/task/{runuser}/children")).ok()?;
        let pid: i32 = children.split_whitespace().next()?.parse().ok()?;
        cmdline(pid).starts_with("sleep").then_some(pid)
    })
}
