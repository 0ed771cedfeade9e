//! `den create` (every `den run` flag, nothing started: `Created` in
//! `ps -a` and `inspect`) and `den start` of a created container, with
//! `-a` (output and exit code, like `docker start -a`) and `-i` (stdin).

use std::io::Write;
use std::process::Stdio;

use den_tests::{TestEnv, UserSandbox, inspect, require_env, stderr, stdout};

fn sandbox(env: &TestEnv, sub: bool) -> UserSandbox {
    den_tests::mirrored_sandbox(env, sub, true)
}

/// The `ps -a` row of the container `name`.
fn ps_row(sb: &UserSandbox, name: &str) -> Option<String> {
    sb.den_ok(&["ps", "-a"])
        .lines()
        .find(|l| l.ends_with(name))
        .map(str::to_owned)
}

#[test]
fn created_container_waits_for_start_which_attaches_output_and_exit_code() {
    let env = require_env!();
    for sub in [true, false] {
        let sb = sandbox(&env, sub);
        let id = sb.den_ok(&[
            "create",
            "--name",
            "job",
            "-e",
            "WHO=den",
            "-w",
            "/tmp",
            "--label",
            "k=v",
            "busybox",
            "sh",
            "-c",
            "echo out $WHO $(pwd); echo err >&2; touch /tmp/ran; exit 3",
        ]);
        let id = id.trim();
        assert_eq!(id.len(), 64, "create prints the full id: {id}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        // Nothing runs: not in `ps`, `Created` in `ps -a` and inspect.
        assert!(!sb.den_ok(&["ps"]).contains("job"));
        let row = ps_row(&sb, "job").expect("created container in ps -a");
        assert!(
            row.starts_with(&id[..12]) && row.contains("Created"),
            "{row}"
        );
        let info = inspect(&sb, "job");
        assert_eq!(info["State"]["Status"], "created", "{info}");
        assert_eq!(info["State"]["Running"], false);
        assert_eq!(info["State"]["StartedAt"], serde_json::Value::Null);
        assert_eq!(info["Config"]["Labels"]["k"], "v");
        assert_eq!(sb.den_ok(&["logs", "job"]), "", "nothing ran yet");
        // start -a: the container's output on den's, its exit code den's.
        let out = sb.den(&["start", "-a", "job"]);
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert_eq!(stdout(&out), "out den /tmp\n");
        assert_eq!(stderr(&out), "err\n");
        let info = inspect(&sb, "job");
        assert_eq!(info["State"]["Status"], "exited");
        assert_eq!(info["State"]["ExitCode"], 3);
        // The same container again, its filesystem kept.
        let out = sb.den(&["start", "-a", "job"]);
        assert_eq!(out.status.code(), Some(3));
        sb.den_ok(&["rm", "job"]);
        assert!(ps_row(&sb, "job").is_none());
    }
}

/// `den start -i` attaches (Docker: -i implies -a) and forwards stdin;
/// `-a -i` the same.
#[test]
fn start_i_forwards_stdin_to_a_created_container() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    sb.den_ok(&[
        "create",
        "-i",
        "--name",
        "reader",
        "busybox",
        "sh",
        "-c",
        "read line; echo got $line; exit 7",
    ]);
    for flags in [&["start", "-i"][..], &["start", "-a", "-i"]] {
        let mut args = flags.to_vec();
        args.push("reader");
        let mut child = sb
            .den_cmd(&[], &args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"hello from stdin\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(7), "den {args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "got hello from stdin\n", "den {args:?}");
    }
}

/// `den start` without -a runs it in the background; a `--rm` container
/// made by create goes after its run; bad input makes nothing.
#[test]
fn create_refuses_bad_input_and_rm_applies_after_start() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let err = sb.den_fail(&["create", "-d", "busybox", "true"], 125);
    assert_eq!(
        err.trim(),
        "den: den create takes no -d/--detach: start the container later with `den start`"
    );
    let err = sb.den_fail(
        &[
            "create",
            "--name",
            "bad",
            "--restart",
            "sometimes",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("invalid --restart"), "{err}");
    let err = sb.den_fail(&["create", "--name", "bad", "no-such-image-here"], 125);
    assert!(err.contains("no-such-image-here"), "{err}");
    assert!(ps_row(&sb, "bad").is_none(), "nothing made");
    // Background start, then the container's own exit.
    sb.den_ok(&["create", "--name", "bg", "busybox", "sleep", "0.3"]);
    assert_eq!(sb.den_ok(&["start", "bg"]), "bg\n");
    assert_eq!(sb.den_ok(&["wait", "bg"]).trim(), "0");
    // --rm: removed once it ran.
    sb.den_ok(&["create", "--rm", "--name", "once", "busybox", "echo", "hi"]);
    assert!(ps_row(&sb, "once").is_some_and(|r| r.contains("Created")));
    let out = sb.den(&["start", "-a", "once"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hi\n");
    let t = std::time::Instant::now();
    while ps_row(&sb, "once").is_some() {
        assert!(t.elapsed().as_secs() < 10, "--rm container still listed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `den create --rm`, then `den cp` into it before its start: the copy
/// mounts the root without `volatile` (overlayfs refuses any later mount
/// of an upper layer once mounted volatile), so the run mounts it, sees the
/// file, and the container is removed after.
#[test]
fn cp_into_a_created_rm_container_before_its_start() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let src = sb.write_file("in.txt", "copied\n");
    sb.den_ok(&[
        "create", "--rm", "--name", "once", "busybox", "cat", "/in.txt",
    ]);
    sb.den_ok(&["cp", src.to_str().unwrap(), "once:/in.txt"]);
    let out = sb.den(&["start", "-a", "once"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "copied\n");
    den_tests::wait_for(
        "the --rm container removed",
        std::time::Duration::from_secs(10),
        || ps_row(&sb, "once").is_none(),
    );
}
