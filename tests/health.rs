//! Health checks run by each container's supervisor (`--health-*`, the
//! image's HEALTHCHECK, `den ps`/`den inspect`, `den healthcheck run`), and
//! stopping: fast stop of a PID 1 that would never see the stop signal,
//! the full grace period for one that catches it, `--stop-signal`,
//! `--stop-timeout` and the image's STOPSIGNAL.

use std::time::{Duration, Instant};

use den_tests::{
    TestEnv, UserSandbox, inspect, require_env, run_sleeper, stderr, stdout, wait_for,
};

fn sandbox(env: &TestEnv) -> UserSandbox {
    den_tests::mirrored_sandbox(env, true, true)
}

/// The STATUS column of the `den ps` row of container `name`.
fn ps_status(sb: &UserSandbox, name: &str) -> String {
    let out = sb.den_ok(&["ps", "-a", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["Names"][0] == name)
        .unwrap_or_else(|| panic!("{name} not in {out}"));
    row["Status"].as_str().unwrap().to_string()
}

fn health_status(sb: &UserSandbox, name: &str) -> String {
    inspect(sb, name)["State"]["Health"]["Status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn health_goes_from_starting_to_unhealthy_to_healthy() {
    let env = require_env!();
    let sb = sandbox(&env);
    run_sleeper(
        &sb,
        "hc",
        &[
            "--health-cmd",
            "echo probing; test -f /tmp/ok",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
        ],
        "1000",
    );
    assert!(
        ps_status(&sb, "hc").ends_with(" (health: starting)"),
        "{}",
        ps_status(&sb, "hc")
    );
    let v = inspect(&sb, "hc");
    assert_eq!(v["State"]["Health"]["Status"], "starting", "{v}");
    assert_eq!(
        v["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "echo probing; test -f /tmp/ok"])
    );
    assert_eq!(v["Config"]["Healthcheck"]["Interval"], 1_000_000_000u64);
    // Two failures in a row (one a second) make it unhealthy.
    wait_for("unhealthy", Duration::from_secs(10), || {
        health_status(&sb, "hc") == "unhealthy"
    });
    assert!(ps_status(&sb, "hc").ends_with(" (unhealthy)"));
    let h = inspect(&sb, "hc")["State"]["Health"].clone();
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 1, "{h}");
    assert_eq!(last["Output"], "probing\n", "{h}");
    assert!(last["Start"].as_str().unwrap() <= last["End"].as_str().unwrap());
    // `den healthcheck run` probes now: 1 and the status while failing.
    let out = sb.den(&["healthcheck", "run", "hc"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), "unhealthy\n");
    sb.den_ok(&["exec", "hc", "touch", "/tmp/ok"]);
    let out = sb.den(&["healthcheck", "run", "hc"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(health_status(&sb, "hc"), "healthy");
    assert!(ps_status(&sb, "hc").ends_with(" (healthy)"));
    let h = inspect(&sb, "hc")["State"]["Health"].clone();
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert!(h["Log"].as_array().unwrap().len() <= 5, "{h}");
    // The state files stay private.
    let mode = sb.sh_ok(&format!(
        "stat -c %a {}/containers/*/health.json",
        sb.root().display()
    ));
    assert_eq!(mode.trim(), "600");
    // Stopped, it shows no health in ps.
    sb.den_ok(&["rm", "-f", "hc"]);
}

#[test]
fn inspect_shows_the_check_as_docker_does() {
    let env = require_env!();
    let sb = sandbox(&env);
    run_sleeper(
        &sb,
        "shown",
        &[
            "--health-cmd",
            "test -d /tmp",
            "--health-interval",
            "1m30s",
            "--health-timeout",
            "500ms",
            "--health-start-period",
            "1.5h",
            "--health-start-interval",
            "2s500ms",
        ],
        "1000",
    );
    // A shell command is shown as given (CMD-SHELL), durations as Go's
    // nanosecond counts.
    assert_eq!(
        inspect(&sb, "shown")["Config"]["Healthcheck"],
        serde_json::json!({
            "Test": ["CMD-SHELL", "test -d /tmp"],
            "Interval": 90_000_000_000u64,
            "Timeout": 500_000_000u64,
            "StartPeriod": 5_400_000_000_000u64,
            "StartInterval": 2_500_000_000u64,
            "Retries": 3,
        })
    );
    // It still runs through /bin/sh -c.
    let out = sb.den(&["healthcheck", "run", "shown"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A negative duration is refused by name.
    let err = sb.den_fail(
        &[
            "run",
            "--rm",
            "--health-cmd=true",
            "--health-interval=-1s",
            "busybox",
            "true",
        ],
        125,
    );
    assert_eq!(
        err,
        "den: invalid --health-interval `-1s`: it cannot be negative\n"
    );
    sb.den_ok(&["rm", "-f", "shown"]);
}

#[test]
fn healthcheck_run_refuses_a_container_without_a_check() {
    let env = require_env!();
    let sb = sandbox(&env);
    run_sleeper(&sb, "plain", &[], "1000");
    let err = sb.den_fail(&["healthcheck", "run", "plain"], 125);
    assert_eq!(
        err,
        "den: container plain has no health check: give --health-cmd to den run, or use an image with a HEALTHCHECK\n"
    );
    assert!(!ps_status(&sb, "plain").contains("health"));
    assert!(inspect(&sb, "plain")["State"]["Health"].is_null());
    sb.den_ok(&["rm", "-f", "plain"]);
    // Bad flags: one line, exit 125, nothing made.
    let err = sb.den_fail(&["run", "--health-interval", "5", "busybox", "true"], 125);
    assert_eq!(
        err,
        "den: invalid --health-interval `5`: use a duration like 30s, 1m30s or 500ms\n"
    );
    let err = sb.den_fail(
        &[
            "run",
            "--no-healthcheck",
            "--health-cmd",
            "true",
            "busybox",
            "true",
        ],
        125,
    );
    assert_eq!(
        err,
        "den: --no-healthcheck conflicts with --health-* options: give one or the other\n"
    );
    let err = sb.den_fail(&["run", "--stop-signal", "BOGUS", "busybox", "true"], 125);
    assert_eq!(
        err,
        "den: invalid --stop-signal `BOGUS`: use a name like TERM or INT, or a number from 1 to 64\n"
    );
    assert_eq!(sb.den_ok(&["ps", "-aq"]), "");
}

#[test]
fn a_hanging_check_is_cut_at_its_timeout() {
    let env = require_env!();
    let sb = sandbox(&env);
    // Probes only when asked: the interval is long.
    run_sleeper(
        &sb,
        "hang",
        &[
            "--health-cmd",
            "sleep 300",
            "--health-timeout",
            "1s",
            "--health-interval",
            "10m",
            "--health-retries",
            "1",
        ],
        "1000",
    );
    let t = Instant::now();
    let out = sb.den(&["healthcheck", "run", "hang"]);
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), "unhealthy\n");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let h = inspect(&sb, "hang")["State"]["Health"].clone();
    assert_eq!(h["Status"], "unhealthy", "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], -1, "{h}");
    assert_eq!(
        h["Log"][0]["Output"], "Health check exceeded timeout (1s)",
        "{h}"
    );
    // The check's process (and its group) is gone, not left behind.
    let ps = sb.den_ok(&["exec", "hang", "ps"]);
    assert!(!ps.contains("sleep 300"), "{ps}");
    assert!(!ps.contains("/bin/sh -c"), "{ps}");
    sb.den_ok(&["rm", "-f", "hang"]);
}

#[test]
fn the_images_healthcheck_and_stopsignal_are_used() {
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    sb.write_file(
        "c/Dockerfile",
        "FROM busybox\n\
         STOPSIGNAL SIGUSR1\n\
         HEALTHCHECK --interval=1s --retries=1 CMD [\"test\", \"-f\", \"/etc/hostname\"]\n\
         CMD [\"sh\", \"-c\", \"trap 'echo usr1; exit 5' USR1; while true; do sleep 0.1; done\"]\n",
    );
    let ctx = sb.home().join("c").display().to_string();
    sb.den_ok(&["build", "-q", "-t", "hc-image", &ctx]);
    sb.den_ok(&["run", "-d", "--name", "img", "hc-image"]);
    let v = inspect(&sb, "img");
    assert_eq!(
        v["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "test", "-f", "/etc/hostname"])
    );
    assert_eq!(v["Config"]["StopSignal"], "SIGUSR1");
    wait_for("healthy", Duration::from_secs(10), || {
        health_status(&sb, "img") == "healthy"
    });
    // STOPSIGNAL: the trap on USR1 runs and the container exits by itself.
    sb.den_ok(&["stop", "img"]);
    assert_eq!(inspect(&sb, "img")["State"]["ExitCode"], 5);
    assert_eq!(sb.den_ok(&["logs", "img"]), "usr1\n");
    // --no-healthcheck: no check at all.
    sb.den_ok(&["run", "-d", "--name", "off", "--no-healthcheck", "hc-image"]);
    std::thread::sleep(Duration::from_millis(2500));
    let v = inspect(&sb, "off");
    assert!(v["State"]["Health"].is_null(), "{v}");
    assert!(v["Config"]["Healthcheck"].is_null(), "{v}");
    assert!(!ps_status(&sb, "off").contains("health"));
    sb.den_fail(&["healthcheck", "run", "off"], 125);
    // --stop-signal overrides the image's: TERM is not trapped, so the
    // shell (PID 1) would never see it and is killed at once.
    sb.den_ok(&["rm", "-f", "off"]);
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "term",
        "--stop-signal",
        "TERM",
        "hc-image",
    ]);
    assert_eq!(inspect(&sb, "term")["Config"]["StopSignal"], "TERM");
    let t = Instant::now();
    sb.den_ok(&["stop", "term"]);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(inspect(&sb, "term")["State"]["ExitCode"], 137);
    sb.den_ok(&["rm", "img", "term"]);
}

#[test]
fn a_pid_1_that_ignores_the_stop_signal_is_killed_at_once() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&["pull", "-q", "python:3.11-slim"]);
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "py",
        "python:3.11-slim",
        "python3",
        "-c",
        "import time; print('up', flush=True); time.sleep(1000)",
    ]);
    wait_for("python up", Duration::from_secs(10), || {
        sb.den_ok(&["logs", "py"]) == "up\n"
    });
    let t = Instant::now();
    assert_eq!(sb.den_ok(&["stop", "py"]), "py\n");
    let took = t.elapsed();
    assert!(took < Duration::from_secs(1), "den stop took {took:?}");
    let v = inspect(&sb, "py");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 137);
    sb.den_ok(&["rm", "py"]);
}

#[test]
fn a_pid_1_that_traps_the_stop_signal_gets_it_and_its_grace_period() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "trap",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got; exit 3' TERM; echo ready; while true; do sleep 0.1; done",
    ]);
    wait_for("the trap", Duration::from_secs(10), || {
        sb.den_ok(&["logs", "trap"]) == "ready\n"
    });
    sb.den_ok(&["stop", "-t", "20", "trap"]);
    let v = inspect(&sb, "trap");
    assert_eq!(v["State"]["ExitCode"], 3, "it exited by itself");
    assert_eq!(sb.den_ok(&["logs", "trap"]), "ready\ngot\n");
    // One that catches it and goes on gets the whole --stop-timeout, then
    // SIGKILL.
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "--stop-timeout",
        "2",
        "busybox",
        "sh",
        "-c",
        "trap 'echo not yet' TERM; echo ready; while true; do sleep 0.1; done",
    ]);
    assert_eq!(inspect(&sb, "stubborn")["Config"]["StopTimeout"], 2);
    wait_for("the trap", Duration::from_secs(10), || {
        sb.den_ok(&["logs", "stubborn"]) == "ready\n"
    });
    let t = Instant::now();
    sb.den_ok(&["stop", "stubborn"]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(inspect(&sb, "stubborn")["State"]["ExitCode"], 137);
    assert_eq!(sb.den_ok(&["logs", "stubborn"]), "ready\nnot yet\n");
    sb.den_ok(&["rm", "trap", "stubborn"]);
}

#[test]
fn health_checks_run_without_subordinate_ids() {
    let env = require_env!();
    let sb = env.sandbox_nosub();
    sb.write_registries_conf(&den_tests::mirror_conf("docker.io", &env.registry));
    sb.den_ok(&["pull", "-q", "busybox"]);
    run_sleeper(
        &sb,
        "single",
        &["--health-cmd", "id -u", "--health-interval", "1s"],
        "1000",
    );
    wait_for("healthy", Duration::from_secs(10), || {
        health_status(&sb, "single") == "healthy"
    });
    let h = inspect(&sb, "single")["State"]["Health"].clone();
    assert_eq!(h["Log"][0]["Output"], "0\n", "{h}");
    sb.den_ok(&["rm", "-f", "single"]);
}

#[test]
fn failures_in_the_start_period_do_not_count_and_probe_at_the_start_interval() {
    let env = require_env!();
    let sb = sandbox(&env);
    run_sleeper(
        &sb,
        "slow",
        &[
            "--health-cmd",
            "false",
            "--health-retries",
            "1",
            "--health-start-period",
            "1m",
            "--health-start-interval",
            "500ms",
        ],
        "1000",
    );
    // The interval is the default 30 s: only the start interval makes
    // three probes within seconds, and none of their failures counts.
    wait_for("three probes", Duration::from_secs(10), || {
        inspect(&sb, "slow")["State"]["Health"]["Log"]
            .as_array()
            .is_some_and(|l| l.len() >= 3)
    });
    let h = inspect(&sb, "slow")["State"]["Health"].clone();
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 1, "{h}");
    sb.den_ok(&["rm", "-f", "slow"]);
}
