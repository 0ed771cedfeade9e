//! Crash consistency (issue 16): den killed with SIGKILL between the steps
//! of `run -d`, `rm -f`, `volume rm` and `network rm` leaves nothing that
//! `ps -a`, `rm -f` of what it lists and the prunes do not remove.
//!
//! The test seam: with `DEN_TEST_STOP_AT=<step>` den stops itself (SIGSTOP)
//! at that step; the test finds the stopped process by a marker in its
//! command line and kills it with -9, exactly there.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use den_tests::{TestEnv, UserSandbox, require_env, run_sleeper};

fn sandbox(env: &TestEnv) -> UserSandbox {
    let sb = den_tests::sandbox(env);
    sb.den_ok(&["pull", "-q", "busybox"]);
    sb
}

/// A name no other test's process carries.
fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}{}x{n}", std::process::id())
}

/// `/proc/PID/stat`'s state letter.
fn state_of(pid: i64) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(
        stat[stat.rfind(')')? + 1..]
            .split_whitespace()
            .next()?
            .to_string(),
    )
}

/// Live (not zombie) pids whose command line contains `marker`, with
/// their state and command line.
fn procs_with(marker: &str) -> Vec<(i64, String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(marker)
            && let Some(s) = state_of(pid).filter(|s| s != "Z" && s != "X")
        {
            out.push((pid, s, cmd));
        }
    }
    out
}

fn pids_with(marker: &str) -> Vec<i64> {
    procs_with(marker).into_iter().map(|(p, _, _)| p).collect()
}

/// Runs `den args` with `DEN_TEST_STOP_AT=step`, waits until that den
/// process stopped itself at the step (its command line holds `marker`),
/// then kills it with -9.
fn kill_at(sb: &UserSandbox, step: &str, marker: &str, args: &[&str]) {
    let mut child: Child = sb
        .den_cmd(&[("DEN_TEST_STOP_AT", step)], args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let pid = loop {
        // runuser stops itself too when its child stops: skip it.
        let stopped: Vec<i64> = procs_with(marker)
            .into_iter()
            .filter(|(_, s, cmd)| s == "T" && !cmd.starts_with("runuser"))
            .map(|(p, _, _)| p)
            .collect();
        if let [pid] = stopped[..] {
            break pid;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("den {args:?} ended ({status}) before reaching step {step}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "den {args:?} never stopped at {step}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    // Let runuser (the child we started) go on and see its child's end.
    std::process::Command::new("kill")
        .args(["-CONT", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}

/// What must hold after any crash: `ps -a`, `rm -f` of what it lists and
/// the prunes leave an empty store of containers, volumes and networks,
/// and no process or mount of this test's containers.
fn recovers(sb: &UserSandbox, marker: &str) {
    let listed = sb.den_ok(&["ps", "-aq", "--no-trunc"]);
    for id in listed.lines().filter(|l| !l.is_empty()) {
        sb.den_ok(&["rm", "-f", id]);
    }
    sb.den_ok(&["container", "prune", "-f"]);
    // -a: named volumes too (plain `volume prune` keeps them, as Docker 23+).
    sb.den_ok(&["volume", "prune", "-a", "-f"]);
    sb.den_ok(&["network", "prune", "-f"]);
    assert_eq!(sb.den_ok(&["ps", "-aq"]).trim(), "");
    assert_eq!(den_tests::containers_left(sb), Vec::<String>::new());
    for dir in ["volumes", "networks"] {
        let left: Vec<String> = std::fs::read_dir(sb.root().join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, Vec::<String>::new(), "left in {dir}");
    }
    assert_eq!(
        pids_with(marker),
        Vec::<i64>::new(),
        "processes of the test's containers"
    );
    let root = sb.root().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&root), "a mount under {root} is left");
}

#[test]
fn run_d_killed_while_its_directory_is_staged() {
    let env = require_env!();
    let sb = sandbox(&env);
    let name = unique("staged");
    kill_at(
        &sb,
        "run:staged",
        &name,
        &["run", "-d", "--name", &name, "busybox", "sleep", "1000"],
    );
    // Made but not yet named: not listed, and the name is free again.
    assert!(!sb.den_ok(&["ps", "-a"]).contains(&name));
    run_sleeper(&sb, &name, &[], "1000");
    recovers(&sb, &name);
}

#[test]
fn run_d_killed_after_the_record() {
    let env = require_env!();
    let sb = sandbox(&env);
    let name = unique("recorded");
    kill_at(
        &sb,
        "run:created",
        &name,
        &["run", "-d", "--name", &name, "busybox", "sleep", "1000"],
    );
    let ps = sb.den_ok(&["ps", "-a"]);
    assert!(ps.contains(&name), "the record is listed: {ps}");
    recovers(&sb, &name);
}

#[test]
fn rm_f_killed_after_the_container_was_set_aside() {
    let env = require_env!();
    let sb = sandbox(&env);
    let name = unique("rmf");
    let marker = format!("sleep 1{}", name.trim_start_matches("rmf").replace('x', ""));
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "-v",
        &format!("{name}-vol:/data"),
        "busybox",
        "sh",
        "-c",
        &format!("echo x > /data/f; exec {marker}"),
    ]);
    kill_at(&sb, "rm:detached", &name, &["rm", "-f", &name]);
    // The record is gone with the rename: not listed any more.
    assert!(!sb.den_ok(&["ps", "-a"]).contains(&name));
    assert_eq!(pids_with(&marker), Vec::<i64>::new());
    recovers(&sb, &marker);
}

#[test]
fn volume_rm_killed_after_the_volume_was_set_aside() {
    let env = require_env!();
    let sb = sandbox(&env);
    let name = unique("vol");
    sb.den_ok(&["volume", "create", &name]);
    sb.den_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{name}:/data"),
        "busybox",
        "sh",
        "-c",
        "mkdir /data/d && echo x > /data/d/f && chown -R 1000 /data/d",
    ]);
    kill_at(&sb, "volume-rm:detached", &name, &["volume", "rm", &name]);
    assert!(!sb.den_ok(&["volume", "ls", "-q"]).contains(&name));
    recovers(&sb, &name);
}

#[test]
fn network_rm_killed_after_its_infra_stopped() {
    let env = require_env!();
    let sb = sandbox(&env);
    let name = unique("net");
    sb.den_ok(&["network", "create", &name]);
    sb.den_ok(&["run", "--rm", "--network", &name, "busybox", "true"]);
    kill_at(&sb, "network-rm:stopped", &name, &["network", "rm", &name]);
    assert!(!sb.den_ok(&["network", "ls"]).contains(&name));
    recovers(&sb, &name);
}

/// Every record is replaced through the store's tmp/ (issue 17.6): den
/// killed between writing a container's new record and renaming it in
/// leaves the old record whole, no temp file beside it, and a temp file in
/// tmp/ that the next command opening the store sweeps.
#[test]
fn rename_killed_before_the_record_is_replaced() {
    let env = require_env!();
    let sb = sandbox(&env);
    let old = unique("rec");
    let new = format!("{old}-new");
    let id = sb.den_ok(&["run", "-d", "--name", &old, "busybox", "true"]);
    let id = id.trim();
    sb.den_ok(&["wait", &old]);
    kill_at(&sb, "write:before-rename", &new, &["rename", &old, &new]);
    let dir = sb.root().join("containers").join(id);
    let beside: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp") || n.starts_with("write-"))
        .collect();
    assert_eq!(
        beside,
        Vec::<String>::new(),
        "temp files in {}",
        dir.display()
    );
    let temps = || -> Vec<String> {
        std::fs::read_dir(sb.root().join("tmp"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("write-"))
            .collect()
    };
    assert_eq!(
        temps().len(),
        1,
        "the killed write's temp file: {:?}",
        temps()
    );
    // The old record is whole: the container keeps its old name.
    let ps = sb.den_ok(&["ps", "-a", "--format", "json"]);
    assert!(
        ps.contains(&format!("\"{old}\"")) && !ps.contains(&new),
        "{ps}"
    );
    sb.den_ok(&["images", "-q"]);
    assert_eq!(
        temps(),
        Vec::<String>::new(),
        "swept when the store was opened"
    );
    recovers(&sb, &old);
}

/// `den run --rm` returns with the container's status while its files are
/// still being deleted, out of sight (`.rm-<id>`, locked by its deleter);
/// the name is free at once. A deleter killed with -9 leaves `.rm-<id>`
/// unlocked, and the next command's sweep deletes it.
#[test]
fn a_killed_rm_deleter_is_swept_by_the_next_command() {
    let env = require_env!();
    let sb = sandbox(&env);
    let name = unique("junk");
    // 20,000 files in the upper layer: their deletion takes a while.
    let fill = "mkdir /junk && cd /junk && seq 1 20000 | xargs touch && exit 7";
    let o = sb.den(&["run", "--rm", "--name", &name, "busybox", "sh", "-c", fill]);
    assert_eq!(o.status.code(), Some(7), "{}", den_tests::stderr(&o));
    let trash: Vec<String> = std::fs::read_dir(sb.root().join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let [gone] = &trash[..] else {
        panic!("one directory being deleted, not {trash:?}");
    };
    let id = gone
        .strip_prefix(".rm-")
        .expect("a directory being deleted");
    assert_eq!(sb.den_ok(&["ps", "-aq"]), "");
    // The deleter is a fork of the supervisor (its command line) that
    // holds `.rm-<id>` open (its lock); the guard may still be ending.
    let holds_trash = |pid: i64| {
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.ends_with(gone.as_str())))
        })
    };
    let deleter: Vec<i64> = procs_with(&format!("__internal container {}", &id[..12]))
        .into_iter()
        .map(|(pid, _, _)| pid)
        .filter(|&pid| holds_trash(pid))
        .collect();
    let [pid] = &deleter[..] else {
        panic!("one deleter, not {deleter:?}");
    };
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    den_tests::wait_for("the deleter's end", Duration::from_secs(5), || {
        state_of(*pid).is_none_or(|s| s == "Z")
    });
    // The name was free all along; this run's command also sweeps.
    sb.den_ok(&["run", "--rm", "--name", &name, "busybox", "true"]);
    assert_eq!(den_tests::containers_left(&sb), Vec::<String>::new());
}
