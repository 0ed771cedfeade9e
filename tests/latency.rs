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
    let sb = if sub {
        env.sandbox_sub()
    } else {
        env.sandbox_nosub()
    };
    sb.write_registries_conf(&den_tests::mirror_conf("docker.io", &env.registry));
    sb.den_ok(&["pull", "-q", "busybox"]);
    sb
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
