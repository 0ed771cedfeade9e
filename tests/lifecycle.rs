//! Detached containers and their lifecycle without a daemon: run -d, ps,
//! logs, stop, kill, start, restart, exec, rm, inspect, wait, rename,
//! restart policies, and a supervisor killed with -9.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use den_tests::{
    TestEnv, UserSandbox, inspect, require_env, run_sleeper, stderr, stdout, wait_for,
};

fn sandbox(env: &TestEnv) -> UserSandbox {
    den_tests::mirrored_sandbox(env, true, true)
}

#[test]
fn detached_container_lists_logs_stops_starts_and_is_removed() {
    let env = require_env!();
    let sb = sandbox(&env);
    let id = sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "echo to-err >&2; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "run -d prints the full id: {id}");
    let ps = sb.den_ok(&["ps"]);
    let header = ps.lines().next().unwrap();
    for col in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let row = ps
        .lines()
        .find(|l| l.starts_with(&id[..12]))
        .unwrap_or_else(|| panic!("{ps}"));
    assert!(row.contains("Up ") && row.ends_with("ticker"), "{row}");
    assert_eq!(sb.den_ok(&["ps", "-q"]).trim(), &id[..12]);
    assert_eq!(
        sb.den_ok(&["ps", "-q", "--no-trunc", "--filter", "name=tick"])
            .trim(),
        id
    );
    assert_eq!(
        sb.den_ok(&["ps", "-q", "--filter", "ancestor=busybox"])
            .trim(),
        &id[..12]
    );
    assert_eq!(
        sb.den_ok(&["ps", "-q", "--filter", "status=exited"]).trim(),
        ""
    );
    // Logs keep stdout and stderr apart.
    wait_for("three ticks", Duration::from_secs(5), || {
        sb.den_ok(&["logs", "ticker"]).lines().count() >= 3
    });
    let out = sb.den(&["logs", "--tail", "2", &id[..8]]);
    assert_eq!(stdout(&out).lines().count(), 2, "{}", stdout(&out));
    assert!(stdout(&out).lines().all(|l| l.starts_with("tick ")));
    assert_eq!(stderr(&sb.den(&["logs", "ticker"])).trim(), "to-err");
    let stamped = sb.den_ok(&["logs", "-t", "--tail", "1", "ticker"]);
    assert!(
        stamped.starts_with("20") && stamped.contains("Z tick "),
        "{stamped}"
    );
    // logs -f follows new output and ends when the container stops.
    let mut follow = sb
        .den_cmd(&[], &["logs", "-f", "--tail", "0", "ticker"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("tick "), "{first}");
    // exec joins the running container.
    let out = sb.den_ok(&[
        "exec",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "ticker",
        "sh",
        "-c",
        "echo $X $(pwd); ps | grep -c 'while true'",
    ]);
    assert_eq!(out.lines().next().unwrap(), "1 /tmp");
    assert_eq!(
        sb.den(&["exec", "ticker", "sh", "-c", "exit 4"])
            .status
            .code(),
        Some(4)
    );
    assert_eq!(
        sb.den(&["exec", "ticker", "nosuch"]).status.code(),
        Some(127)
    );
    assert_eq!(
        sb.den_ok(&["exec", "-u", "1000:1000", "ticker", "id", "-u"])
            .trim(),
        "1000"
    );
    let top = sb.den_ok(&["top", "ticker"]);
    assert!(
        top.starts_with("UID") && top.contains("while true"),
        "{top}"
    );
    let err = sb.den_fail(&["rm", "ticker"], 125);
    assert!(err.contains("running"), "{err}");
    // sh as PID 1 ignores SIGTERM: stop falls back to SIGKILL after -t.
    let t = Instant::now();
    assert_eq!(sb.den_ok(&["stop", "-t", "1", "ticker"]).trim(), "ticker");
    assert!(t.elapsed() < Duration::from_secs(5));
    let state = inspect(&sb, "ticker");
    assert_eq!(state["State"]["Status"], "exited");
    assert_eq!(state["State"]["ExitCode"], 137);
    let t = Instant::now();
    while lines.next().is_some() {
        assert!(t.elapsed() < Duration::from_secs(5));
    }
    follow.wait().unwrap();
    assert!(sb.den_ok(&["ps", "-a"]).contains("Exited (137)"));
    let err = sb.den_fail(&["exec", "ticker", "true"], 125);
    assert!(err.contains("not running"), "{err}");
    // start keeps the container's filesystem.
    sb.den_ok(&["start", "ticker"]);
    sb.den_ok(&["exec", "ticker", "sh", "-c", "echo kept > /marker"]);
    sb.den_ok(&["restart", "-t", "0", "ticker"]);
    assert_eq!(
        sb.den_ok(&["exec", "ticker", "cat", "/marker"]).trim(),
        "kept"
    );
    sb.den_ok(&["rename", "ticker", "ticker2"]);
    sb.den_ok(&["kill", "ticker2"]);
    assert_eq!(sb.den_ok(&["wait", "ticker2"]).trim(), "137");
    sb.den_ok(&["rm", "ticker2"]);
    assert_eq!(sb.den_ok(&["ps", "-aq"]).trim(), "");
    assert_eq!(
        std::fs::read_dir(sb.root().join("containers"))
            .unwrap()
            .count(),
        0
    );
    let err = sb.den_fail(&["stop", "ticker2"], 125);
    assert!(err.contains("no such container"), "{err}");
}

#[test]
fn container_survives_the_cli_and_its_process_group() {
    let env = require_env!();
    let sb = sandbox(&env);
    let script = format!(
        "{} run -d --name survivor busybox sleep 1000; sleep 30",
        env.bin.display()
    );
    let mut shell = sb
        .command_as_user(&[], "sh", &["-c", &script])
        .process_group(0)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the container to run", Duration::from_secs(10), || {
        sb.den_ok(&["ps", "-q", "--filter", "name=survivor"])
            .trim()
            .len()
            == 12
    });
    Command::new("kill")
        .args(["-9", "--", &format!("-{}", shell.id())])
        .status()
        .unwrap();
    shell.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        sb.den_ok(&["ps"]).contains("survivor"),
        "still running after the CLI's group was killed"
    );
    sb.den_ok(&["rm", "-f", "survivor"]);
}

#[test]
fn stop_of_a_pid1_server_with_and_without_init() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&["pull", "-q", "python:3.11-slim"]);
    sb.den_ok(&[
        "run",
        "-d",
        "--init",
        "--name",
        "with-init",
        "python:3.11-slim",
        "python3",
        "-m",
        "http.server",
    ]);
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "no-init",
        "python:3.11-slim",
        "python3",
        "-m",
        "http.server",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    sb.den_ok(&["stop", "-t", "3", "with-init"]);
    let quick = t.elapsed();
    assert!(
        quick < Duration::from_secs(2),
        "--init forwards SIGTERM to the server: {quick:?}"
    );
    // PID 1 neither catches nor blocks SIGTERM, so the kernel would drop
    // it: den sends SIGKILL at once instead of waiting out the timeout
    // (fast stop, issue 11; tests/health.rs has the details).
    let t = Instant::now();
    sb.den_ok(&["stop", "-t", "5", "no-init"]);
    let fast = t.elapsed();
    assert!(
        fast < Duration::from_secs(1),
        "PID 1 ignores SIGTERM, SIGKILL at once: {fast:?}"
    );
    assert_eq!(inspect(&sb, "no-init")["State"]["ExitCode"], 137);
    sb.den_ok(&["rm", "with-init", "no-init"]);
}

#[test]
fn restart_policies_are_applied_by_the_supervisor() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&[
        "run",
        "-d",
        "--restart",
        "on-failure:2",
        "--name",
        "flaky",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    wait_for("two restarts", Duration::from_secs(20), || {
        let s = inspect(&sb, "flaky");
        s["State"]["Status"] == "exited" && s["RestartCount"] == 2
    });
    assert_eq!(sb.den_ok(&["logs", "flaky"]).matches("run").count(), 3);
    assert_eq!(inspect(&sb, "flaky")["State"]["ExitCode"], 3);
    sb.den_ok(&[
        "run",
        "-d",
        "--restart",
        "always",
        "--name",
        "loop",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2",
    ]);
    wait_for("a restart", Duration::from_secs(10), || {
        inspect(&sb, "loop")["RestartCount"].as_u64().unwrap_or(0) >= 1
    });
    sb.den_ok(&["stop", "-t", "1", "loop"]);
    let count = inspect(&sb, "loop")["RestartCount"].clone();
    std::thread::sleep(Duration::from_millis(800));
    let after = inspect(&sb, "loop");
    assert_eq!(
        after["State"]["Status"], "exited",
        "stop is final for --restart always"
    );
    assert_eq!(after["RestartCount"], count);
    let err = sb.den_fail(
        &["run", "--rm", "--restart", "always", "busybox", "true"],
        125,
    );
    assert!(err.contains("conflict"), "{err}");
    let err = sb.den_fail(&["run", "--restart", "sometimes", "busybox", "true"], 125);
    assert!(err.contains("invalid --restart"), "{err}");
    sb.den_ok(&["container", "prune", "-f"]);
    assert_eq!(sb.den_ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn killed_supervisor_leaves_ps_truthful_and_rm_cleans_up() {
    let env = require_env!();
    let sb = sandbox(&env);
    run_sleeper(&sb, "victim", &[], "1000");
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            sb.root()
                .join("containers")
                .join(inspect(&sb, "victim")["Id"].as_str().unwrap())
                .join("state.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let (supervisor, init) = (
        state["supervisor_pid"].as_i64().unwrap(),
        state["pid"].as_i64().unwrap(),
    );
    // The container's pasta (den's default network), which holds the
    // namespace itself: only its parent-death signal ends it.
    let children =
        std::fs::read_to_string(format!("/proc/{supervisor}/task/{supervisor}/children")).unwrap();
    let pasta: Vec<&str> = children
        .split_whitespace()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim().starts_with("pas"))
        })
        .collect();
    assert_eq!(pasta.len(), 1, "{children}");
    Command::new("kill")
        .args(["-9", &supervisor.to_string()])
        .status()
        .unwrap();
    wait_for(
        "the container to die with its supervisor",
        Duration::from_secs(5),
        || !std::path::Path::new(&format!("/proc/{init}")).exists(),
    );
    wait_for(
        "pasta to die with its supervisor",
        Duration::from_secs(5),
        || !std::path::Path::new(&format!("/proc/{}", pasta[0])).exists(),
    );
    let t = Instant::now();
    let ps = sb.den_ok(&["ps", "-a"]);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "ps never waits on a dead supervisor"
    );
    assert!(
        ps.lines()
            .any(|l| l.contains("victim") && l.contains("Exited")),
        "{ps}"
    );
    assert_eq!(inspect(&sb, "victim")["State"]["Status"], "exited");
    sb.den_ok(&["rm", "victim"]);
    assert_eq!(
        std::fs::read_dir(sb.root().join("containers"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn twenty_containers_at_once() {
    let env = require_env!();
    let sb = sandbox(&env);
    let bin = env.bin.display();
    let script = format!(
        "for i in $(seq 20); do {bin} run -d --name c$i busybox sleep 1000 >/dev/null & done; wait"
    );
    let out = sb.sh(&script);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sb.den_ok(&["ps", "-q"]).lines().count(), 20);
    let names: Vec<String> = (1..=20).map(|i| format!("c{i}")).collect();
    let script = format!(
        "for n in {}; do {bin} stop -t 1 $n >/dev/null & done; wait",
        names.join(" ")
    );
    assert!(sb.sh(&script).status.success());
    assert_eq!(sb.den_ok(&["ps", "-q"]).trim(), "");
    let script = format!(
        "for n in {}; do {bin} rm $n >/dev/null & done; wait",
        names.join(" ")
    );
    assert!(sb.sh(&script).status.success());
    assert_eq!(sb.den_ok(&["ps", "-aq"]).trim(), "");
    let procs = den_tests::den_processes_left(&sb);
    assert!(procs.is_empty(), "supervisors left: {procs}");
}

#[test]
fn cp_both_ways_running_and_stopped_without_leaving_the_container() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.write_file("src/sub/f", "hello\n");
    let src = sb.home().join("src");
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "busybox",
        "sh",
        "-c",
        "ln -s /etc /link-to-etc; ln -s / /up; sleep 1000",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    sb.den_ok(&["cp", src.to_str().unwrap(), "box:/tmp/"]);
    assert_eq!(
        sb.den_ok(&["exec", "box", "cat", "/tmp/src/sub/f"]),
        "hello\n"
    );
    assert_eq!(
        sb.den_ok(&["exec", "box", "stat", "-c", "%u", "/tmp/src/sub/f"])
            .trim(),
        "0",
        "copied files belong to root"
    );
    let out = sb.home().join("passwd.txt");
    sb.den_ok(&["cp", "box:/etc/passwd", out.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&out).unwrap().starts_with("root:"));
    sb.den_ok(&["stop", "-t", "0", "box"]);
    // Stopped: the root is mounted privately; symlinks resolve inside it.
    let back = sb.home().join("back");
    sb.den_ok(&["cp", "box:/tmp/src", back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(back.join("sub/f")).unwrap(),
        "hello\n"
    );
    let host_marker = sb.write_file("host-only", "host\n");
    let via = format!("box:/up{}", host_marker.display());
    let err = sb.den(&["cp", &via, sb.home().join("stolen").to_str().unwrap()]);
    assert_ne!(
        err.status.code(),
        Some(0),
        "a symlink to / leads to the container's root, not the host's"
    );
    assert!(!sb.home().join("stolen").exists());
    sb.den_ok(&["cp", out.to_str().unwrap(), "box:/renamed.txt"]);
    sb.den_ok(&["start", "box"]);
    assert!(
        sb.den_ok(&["exec", "box", "cat", "/renamed.txt"])
            .starts_with("root:")
    );
    let err = sb.den_fail(
        &["cp", "box:/nonexistent", sb.home().to_str().unwrap()],
        125,
    );
    assert!(err.contains("no such file"), "{err}");
    sb.den_ok(&["rm", "-f", "box"]);
}

// ---- A container never outlives its supervisor (issue 14 item 1).

/// A process as /proc shows it: alive (not a zombie) with this start time.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Proc {
    pid: i64,
    start: u64,
}

/// `/proc/PID/stat`'s state (field 3) and start time (field 22).
fn stat_of(pid: i64) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    Some((rest[0].to_string(), rest[19].parse().ok()?))
}

impl Proc {
    fn of(pid: i64) -> Option<Proc> {
        stat_of(pid).map(|(_, start)| Proc { pid, start })
    }

    /// Still running: same start time (not a recycled pid), not a zombie.
    fn alive(&self) -> bool {
        matches!(stat_of(self.pid), Some((s, start)) if start == self.start && s != "Z" && s != "X")
    }
}

/// Live processes whose command line contains `marker`.
fn procs_with(marker: &str) -> Vec<Proc> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(marker)
            && let Some(p) = Proc::of(pid).filter(Proc::alive)
        {
            out.push(p);
        }
    }
    out
}

/// The supervisor of a running container and every process under it
/// (guard, pasta, the container's init), from its state file.
fn supervisor_tree(sb: &UserSandbox, name: &str) -> (Proc, Vec<Proc>) {
    let id = inspect(sb, name)["Id"].as_str().unwrap().to_string();
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(sb.root().join("containers").join(id).join("state.json")).unwrap(),
    )
    .unwrap();
    let sup = Proc::of(state["supervisor_pid"].as_i64().unwrap()).unwrap();
    let mut tree = vec![sup];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i].pid;
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i64>() else {
                continue;
            };
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let Some(close) = stat.rfind(')') else {
                continue;
            };
            let ppid = stat[close + 1..].split_whitespace().nth(1);
            if ppid == Some(&parent.to_string())
                && let Some(p) = Proc::of(pid)
            {
                tree.push(p);
            }
        }
        i += 1;
    }
    (sup, tree)
}

/// A marker no other test's process carries: `sleep <it>` is findable.
fn marker() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}{:06}",
        7_000_000 + std::process::id() % 1000,
        n % 1_000_000
    )
}

#[test]
fn killing_the_supervisor_ends_root_user_keep_id_and_setuid_containers() {
    let env = require_env!();
    let sb = sandbox(&env);
    let m = marker();
    // A copy of busybox owned by uid 1000 with the setuid bit, exec'd by
    // root: were the bit honoured (den sets no_new_privs today, which makes
    // it inert), the exec would change the effective uid and clear
    // PDEATHSIG.
    let setuid = format!(
        "cp /bin/busybox /tmp/sleep && chown 1000 /tmp/sleep && chmod u+s /tmp/sleep && exec /tmp/sleep {m}4"
    );
    let kinds: [(&str, Vec<&str>, Vec<String>); 4] = [
        ("root", vec![], vec!["sleep".into(), format!("{m}1")]),
        (
            "user",
            vec!["-u", "1000"],
            vec!["sleep".into(), format!("{m}2")],
        ),
        (
            "keepid",
            vec!["--userns=keep-id"],
            vec!["sleep".into(), format!("{m}3")],
        ),
        ("setuid", vec![], vec!["sh".into(), "-c".into(), setuid]),
    ];
    for (i, (name, flags, cmd)) in kinds.iter().enumerate() {
        let mark = format!("{m}{}", i + 1);
        let mut args = vec!["run", "-d", "--name", name];
        args.extend(flags.iter().copied());
        args.push("busybox");
        args.extend(cmd.iter().map(String::as_str));
        sb.den_ok(&args);
        wait_for(
            &format!("{name}: its command"),
            Duration::from_secs(10),
            || procs_with(&format!("sleep {mark}")).len() == 1,
        );
        let (sup, tree) = supervisor_tree(&sb, name);
        Command::new("kill")
            .args(["-9", &sup.pid.to_string()])
            .status()
            .unwrap();
        wait_for(
            &format!("{name}: the container to die with its supervisor"),
            Duration::from_secs(5),
            || procs_with(&format!("sleep {mark}")).is_empty(),
        );
        wait_for(
            &format!("{name}: every process the supervisor started to end"),
            Duration::from_secs(5),
            || tree.iter().all(|p| !p.alive()),
        );
    }
    sb.den_ok(&["rm", "root", "user", "keepid", "setuid"]);
}

#[test]
fn rm_f_ends_every_process_of_a_keep_id_container() {
    let env = require_env!();
    let sb = sandbox(&env);
    let m = marker();
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "kl",
        "--userns=keep-id",
        "busybox",
        "sh",
        "-c",
        &format!("sleep {m}1 & exec sleep {m}2"),
    ]);
    wait_for("its commands", Duration::from_secs(10), || {
        procs_with(&format!("sleep {m}")).len() == 2
    });
    let (_, tree) = supervisor_tree(&sb, "kl");
    assert!(tree.len() >= 3, "supervisor, guard, container: {tree:?}");
    let t = Instant::now();
    assert_eq!(sb.den_ok(&["rm", "-f", "kl"]).trim(), "kl");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "rm -f waited {:?}",
        t.elapsed()
    );
    wait_for(
        "every process of the container, its supervisor, guard and pasta to end",
        Duration::from_secs(5),
        || tree.iter().all(|p| !p.alive()) && procs_with(&format!("sleep {m}")).is_empty(),
    );
    // No den process of this store is left, whatever id it runs as.
    let root = sb.root().display().to_string();
    assert_eq!(procs_with(&root), vec![], "den processes of {root}");
    assert_eq!(sb.den_ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn keep_id_runs_as_the_user_or_as_root_with_user_0() {
    let env = require_env!();
    let sb = sandbox(&env);
    let own = sb.den_ok(&["run", "--rm", "--userns=keep-id", "busybox", "id", "-u"]);
    assert_eq!(own.trim(), sb.uid().to_string());
    for user in ["0", "root", "0:0"] {
        let out = sb.den_ok(&[
            "run",
            "--rm",
            "--userns=keep-id",
            "--user",
            user,
            "busybox",
            "sh",
            "-c",
            "id -u; id -g; grep CapEff /proc/self/status",
        ]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[..2], ["0", "0"], "--user {user}: {out}");
        assert_ne!(
            lines[2], "CapEff:\t0000000000000000",
            "--user {user}: {out}"
        );
    }
}

#[test]
fn ps_shows_a_killed_supervisor_exited_at_once() {
    let env = require_env!();
    let sb = sandbox(&env);
    // `den run -d` under a child subreaper that never reaps: the orphaned
    // supervisor becomes its child, and once killed stays a zombie, as
    // under an init that is slow to reap (or never does).
    let run = sb.den_cmd(
        &[],
        &["run", "-d", "--name", "zombie", "busybox", "sleep", "1000"],
    );
    let mut reaper = Command::new("python3")
        .args([
            "-c",
            "import ctypes, subprocess, sys, time\n\
             ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER\n\
             subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n\
             print('up', flush=True)\n\
             time.sleep(60)",
        ])
        .arg(run.get_program())
        .args(run.get_args())
        .current_dir(run.get_current_dir().unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut up = String::new();
    BufReader::new(reaper.stdout.take().unwrap())
        .read_line(&mut up)
        .unwrap();
    assert_eq!(up.trim(), "up");
    let (sup, _) = supervisor_tree(&sb, "zombie");
    Command::new("kill")
        .args(["-9", &sup.pid.to_string()])
        .status()
        .unwrap();
    wait_for(
        "the supervisor to be a zombie",
        Duration::from_secs(5),
        || stat_of(sup.pid).is_some_and(|(s, _)| s == "Z"),
    );
    let ps = sb.den_ok(&["ps", "-a"]);
    let row = ps.lines().find(|l| l.ends_with("zombie")).unwrap();
    assert!(row.contains("Exited (255)"), "{ps}");
    reaper.kill().unwrap();
    reaper.wait().unwrap();
    sb.den_ok(&["rm", "zombie"]);
}

#[test]
fn cp_out_never_replaces_a_host_directory_nor_brings_setuid_bits_or_fifos() {
    use std::os::unix::fs::PermissionsExt;
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "echo tool > /tmp/tool; chmod 6755 /tmp/tool; mkdir /tmp/d; echo f > /tmp/d/f; \
         mkfifo /tmp/d/pipe /tmp/fifo; echo new > /tmp/name; touch /ready; sleep 1000",
    ]);
    wait_for("the container's files", Duration::from_secs(20), || {
        sb.den(&["exec", "src", "test", "-e", "/ready"])
            .status
            .success()
    });
    let out = sb.home().join("out");
    let keep = sb.write_file("out/name/keep", "mine\n");
    let o = out.display();
    // A host directory named like the container's file: refused, untouched.
    let err = sb.den_fail(&["cp", "src:/tmp/name", &format!("{o}/")], 125);
    assert_eq!(
        err,
        format!(
            "den: cannot overwrite directory \"{o}/name\" with non-directory \"src:/tmp/name\"\n"
        )
    );
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "mine\n");
    // Also deep in a copied directory; then nothing at all is copied.
    let keep2 = sb.write_file("out2/d/f/keep", "mine\n");
    let o2 = sb.home().join("out2");
    let err = sb.den_fail(&["cp", "src:/tmp/d", o2.to_str().unwrap()], 125);
    assert!(
        err.ends_with(&format!(
            "den: cannot overwrite directory \"{}/d/f\" with non-directory \"src:/tmp/d/f\"\n",
            o2.display()
        )),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&keep2).unwrap(), "mine\n");
    assert_eq!(std::fs::read_dir(o2.join("d")).unwrap().count(), 1);
    // Setuid and setgid bits stay in the container.
    sb.den_ok(&["cp", "src:/tmp/tool", &format!("{o}/")]);
    let mode = std::fs::metadata(out.join("tool"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755, "copied {mode:o}");
    // FIFOs (and device nodes) are never created on the host.
    let err = sb.den_fail(&["cp", "src:/tmp/fifo", &format!("{o}/")], 125);
    assert_eq!(
        err,
        "den: warning: not copied: /tmp/fifo is a FIFO; den creates only files, directories and links on the host\n\
         den: nothing copied: src:/tmp/fifo is not a file, directory or link\n"
    );
    let o_dir = sb.den(&["cp", "src:/tmp/d", &format!("{o}/")]);
    assert!(o_dir.status.success(), "{}", stderr(&o_dir));
    assert_eq!(
        stderr(&o_dir),
        "den: warning: not copied: /tmp/d/pipe is a FIFO; den creates only files, directories and links on the host\n"
    );
    assert_eq!(std::fs::read_to_string(out.join("d/f")).unwrap(), "f\n");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["d", "name", "tool"], "no FIFO, no leftovers");
    assert!(!out.join("d/pipe").exists());
    sb.den_ok(&["rm", "-f", "src"]);
}

#[test]
fn cp_keeps_mtimes_and_streams_tar_archives_like_docker() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.write_file("in/old.txt", "old\n");
    sb.sh_ok("chmod 640 in/old.txt && touch -d @1000000000 in/old.txt");
    run_sleeper(&sb, "box", &[], "1000");
    let src = sb.home().join("in");
    sb.den_ok(&["cp", src.to_str().unwrap(), "box:/tmp/"]);
    assert_eq!(
        sb.den_ok(&["exec", "box", "stat", "-c", "%Y %a %u", "/tmp/in/old.txt"]),
        "1000000000 640 0\n",
        "mtime and mode kept, owned by root"
    );
    let den = env.bin.display();
    assert_eq!(
        sb.sh_ok(&format!(
            "{den} cp box:/tmp/in - | tar -tvf - | awk '{{print $1, $6}}' | sed 's#/$##'"
        )),
        "drwxr-xr-x in\n-rw-r----- in/old.txt\n"
    );
    sb.sh_ok(&format!(
        "mkdir -p t/sub && echo hi > t/sub/x && tar -cf - -C t sub | {den} cp - box:/tmp/"
    ));
    assert_eq!(sb.den_ok(&["exec", "box", "cat", "/tmp/sub/x"]), "hi\n");
    assert!(!sb.home().join("-").exists(), "no file named -");
    let o = sb.sh(&format!("tar -cf - -C t sub | {den} cp - box:/tmp/sub/x"));
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(
        stderr(&o),
        "den: box:/tmp/sub/x is not a directory: copying a tar archive from stdin needs a directory to unpack it in\n"
    );
    sb.den_ok(&["rm", "-f", "box"]);
}

#[test]
fn top_and_ps_escape_control_characters_from_the_container() {
    let env = require_env!();
    let sb = sandbox(&env);
    // Retitle the window, clear the screen: both must reach the user as text.
    let evil = "\u{1b}]0;owned\u{7}\u{1b}[2J";
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "esc",
        "busybox",
        "sh",
        "-c",
        "sleep 1000; :",
        evil,
    ]);
    let shown = "\\x1b]0;owned\\x07\\x1b[2J";
    wait_for("sh in den top", Duration::from_secs(20), || {
        sb.den_ok(&["top", "esc"]).contains("sleep 1000")
    });
    for args in [&["top", "esc"][..], &["ps", "--no-trunc"][..]] {
        let out = sb.den_ok(args);
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{7}'),
            "den {args:?} printed a raw control character: {out:?}"
        );
        assert!(out.contains(shown), "den {args:?}: {out}");
    }
    sb.den_ok(&["rm", "-f", "esc"]);
}

#[test]
fn rm_f_of_a_running_rm_container_succeeds_twenty_times() {
    let env = require_env!();
    let sb = sandbox(&env);
    for i in 0..20 {
        let name = format!("tmp{i}");
        run_sleeper(&sb, &name, &["--rm"], "300");
        assert_eq!(sb.den_ok(&["rm", "-f", &name]).trim(), name, "round {i}");
    }
    assert_eq!(sb.den_ok(&["ps", "-a", "-q"]), "");
    let left: Vec<_> = den_tests::containers_left(&sb)
        .into_iter()
        .filter(|n| n != "lock" && n != ".lock")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn df_inspect_and_ps_show_what_is_true() {
    let env = require_env!();
    let sb = sandbox(&env);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{port}:80");
    let long = "sleep 60; echo a-command-longer-than-twenty-characters";
    sb.den_ok(&[
        "run", "-d", "--name", "n1", "-p", &publish, "busybox", "sh", "-c", long,
    ]);

    // A running container is an active one.
    let df = sb.den_ok(&["system", "df"]);
    let row: Vec<&str> = df
        .lines()
        .find(|l| l.starts_with("Containers"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row[1..3], ["1", "1"], "{df}");

    // Each argument by its kind, in the order given.
    let v: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["inspect", "n1", "busybox"])).unwrap();
    assert_eq!(v[0]["Name"], "/n1", "{v}");
    assert_eq!(v[1]["RepoTags"][0], "busybox:latest", "{v}");
    let err = sb.den_fail(&["inspect", "n1", "nosuch"], 125);
    assert_eq!(err.trim(), "den: no such container or image: nosuch");

    // --no-trunc keeps the whole command; ports only while running.
    let ps = sb.den_ok(&["ps", "--no-trunc"]);
    assert!(ps.contains(&format!("\"sh -c {long}\"")), "{ps}");
    assert!(!sb.den_ok(&["ps"]).contains(long), "shortened without it");
    assert!(ps.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");
    sb.den_ok(&["stop", "-t", "1", "n1"]);
    let ps = sb.den_ok(&["ps", "-a"]);
    assert!(ps.contains("Exited") && !ps.contains("->80/tcp"), "{ps}");
    let df = sb.den_ok(&["system", "df"]);
    let row: Vec<&str> = df
        .lines()
        .find(|l| l.starts_with("Containers"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row[1..3], ["1", "0"], "{df}");
}

#[test]
fn help_says_only_what_works() {
    let env = den_tests::require_base_env!();
    let sb = env.sandbox_sub();
    let help = sb.den_ok(&["--help"]);
    let first = help.lines().next().unwrap();
    assert_eq!(
        first,
        "Rootless containers: pull, build, run and share images without root or a daemon"
    );
    // Every command the first line promises is listed; none it does not.
    for cmd in ["pull", "build", "run", "push", "compose"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(cmd)),
            "`den {cmd}` missing from: {help}"
        );
    }
}
