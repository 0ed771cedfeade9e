//! Containers with a terminal (`-t`), driven through a real pty
//! (`script(1)` gives den a terminal): `run -dit` then `attach` and the
//! Ctrl-P Ctrl-Q detach, `start -ai` and restarts with a fresh pty, logs of
//! what went through the pty, `-it` without a terminal, and the terminal
//! being one of the container's own /dev/pts (for `run` and `exec`).

use std::time::{Duration, Instant};

use den_tests::{TestEnv, UserSandbox, require_env, run_sleeper, stderr, stdout};

fn sandbox(env: &TestEnv) -> UserSandbox {
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&den_tests::mirror_conf("docker.io", &env.registry));
    sb.den_ok(&["pull", "-q", "busybox"]);
    sb
}

/// Runs `den ARGS` on a terminal made by script(1), typing `keys` (each
/// after a pause, so den has put the terminal in raw mode); returns what
/// appeared on the terminal, which ends with `rc=CODE`.
fn on_terminal(env: &TestEnv, sb: &UserSandbox, args: &str, keys: &[&str]) -> String {
    let typing: String = keys
        .iter()
        .map(|k| format!("sleep 2; printf '{k}'; "))
        .collect();
    let script = format!(
        "({typing} sleep 3) | script -qec \"{} {args}; echo rc=\\$?\" /dev/null",
        env.bin.display()
    );
    stdout(&sb.sh(&script))
}

fn status(sb: &UserSandbox, name: &str) -> String {
    sb.den_ok(&["ps", "-a", "--filter", &format!("name={name}")])
}

#[test]
fn dit_then_attach_types_a_command_and_ctrl_p_ctrl_q_detaches() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&["run", "-dit", "--name", "t2", "busybox", "sh"]);
    assert!(status(&sb, "t2").contains("Up"), "{}", status(&sb, "t2"));

    // Type a command, see its output, detach with Ctrl-P Ctrl-Q.
    let out = on_terminal(
        &env,
        &sb,
        "attach t2",
        &["echo hello-$((6*7))\\r", "\\020\\021"],
    );
    assert!(out.contains("hello-42"), "{out}");
    assert!(out.trim_end().ends_with("rc=0"), "detach exits 0: {out}");
    assert!(
        status(&sb, "t2").contains("Up"),
        "still runs after the detach"
    );

    // Other keys with --detach-keys; a lone Ctrl-P is passed on, not eaten.
    let out = on_terminal(
        &env,
        &sb,
        "attach --detach-keys ctrl-x,y t2",
        &["echo again\\r", "\\030y"],
    );
    assert!(out.contains("again"), "{out}");
    assert!(out.trim_end().ends_with("rc=0"), "{out}");
    assert!(status(&sb, "t2").contains("Up"));

    // Attaching again and exiting ends with the shell's code.
    let out = on_terminal(&env, &sb, "attach t2", &["exit 5\\r"]);
    assert!(out.trim_end().ends_with("rc=5"), "{out}");
    assert!(
        status(&sb, "t2").contains("Exited (5)"),
        "{}",
        status(&sb, "t2")
    );

    // The log kept what went through the pty, attached or not.
    let logs = sb.den_ok(&["logs", "t2"]);
    assert!(
        logs.contains("hello-42") && logs.contains("again"),
        "{logs}"
    );

    let err = sb.den_fail(&["attach", "--detach-keys", "ctrl-pq", "t2"], 125);
    assert!(err.contains("invalid --detach-keys `ctrl-pq`"), "{err}");
    run_sleeper(&sb, "plain", &[], "60");
    let err = sb.den_fail(&["attach", "plain"], 125);
    assert_eq!(
        err.trim(),
        "den: cannot attach to container plain: it has no terminal (run it with -t); follow its output with `den logs -f plain`"
    );
    sb.den_ok(&["rm", "-f", "plain"]);
}

#[test]
fn exit_from_it_then_start_ai_start_and_restart_get_a_fresh_terminal() {
    let env = require_env!();
    let sb = sandbox(&env);
    let out = on_terminal(&env, &sb, "run -it --name i1 busybox sh", &["exit 3\\r"]);
    assert!(out.trim_end().ends_with("rc=3"), "{out}");

    let out = on_terminal(
        &env,
        &sb,
        "start -ai i1",
        &["echo back-$((2*3))\\r", "tty; exit 4\\r"],
    );
    assert!(out.contains("back-6"), "{out}");
    assert!(out.contains("/dev/pts/0"), "a terminal again: {out}");
    assert!(out.trim_end().ends_with("rc=4"), "{out}");

    // Without a terminal to attach: start and restart still give it one.
    sb.den_ok(&["start", "i1"]);
    assert!(status(&sb, "i1").contains("Up"), "{}", status(&sb, "i1"));
    sb.den_ok(&["restart", "-t", "1", "i1"]);
    assert!(status(&sb, "i1").contains("Up"), "{}", status(&sb, "i1"));
    let out = on_terminal(&env, &sb, "attach i1", &["exit 6\\r"]);
    assert!(out.trim_end().ends_with("rc=6"), "{out}");
}

#[test]
fn terminal_output_is_logged() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&["run", "-t", "--name", "tt", "busybox", "echo", "hi"]);
    assert_eq!(sb.den_ok(&["logs", "tt"]).replace('\r', ""), "hi\n");
    let out = on_terminal(
        &env,
        &sb,
        "run -it --name it busybox sh -c 'echo from-it'",
        &[],
    );
    assert!(out.contains("from-it"), "{out}");
    assert!(sb.den_ok(&["logs", "it"]).contains("from-it"));
}

#[test]
fn it_without_a_terminal_says_so_at_once() {
    let env = require_env!();
    let sb = sandbox(&env);
    let t = Instant::now();
    let o = sb.den(&["run", "-it", "busybox", "sh"]);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(stderr(&o).trim(), "den: the input device is not a TTY");
    assert_eq!(
        sb.den_ok(&["ps", "-a", "-q"]),
        "",
        "no container is left behind"
    );
    // With -d there is nothing to read from, as in Docker.
    sb.den_ok(&["run", "-dit", "--name", "bg", "busybox", "sh"]);
    sb.den_ok(&["rm", "-f", "bg"]);
}

/// The terminal of `-t` is a pty of the container's own /dev/pts, as with
/// Docker: `tty` (glibc's ttyname) names it, the node exists in the
/// container, and /dev/console is the same terminal; `den exec -t` gets the
/// next one. With and without subordinate ids.
#[test]
fn the_terminal_is_a_pty_of_the_containers_own_devpts() {
    let env = require_env!();
    let nosub = env.sandbox_nosub();
    nosub.write_registries_conf(&den_tests::mirror_conf("docker.io", &env.registry));
    nosub.den_ok(&["pull", "-q", "busybox"]);
    for sb in [sandbox(&env), nosub] {
        let user = sb.user().to_string();
        let check = "t=$(tty); echo tty=$t; [ -c $t ] && echo exists; \
                     [ /dev/console -ef $t ] && echo is-console; exit 3";
        let o = sb.den(&["run", "--rm", "-t", "busybox", "sh", "-c", check]);
        assert_eq!(o.status.code(), Some(3), "{user}: {o:?}");
        assert_eq!(
            stdout(&o).replace('\r', ""),
            "tty=/dev/pts/0\nexists\nis-console\n",
            "{user}"
        );

        sb.den_ok(&["run", "-dt", "--name", "pts", "busybox", "sleep", "300"]);
        let check = "t=$(tty); echo tty=$t; [ -c $t ] && echo exists; ls /dev/pts | wc -w; exit 4";
        let o = sb.den(&["exec", "-t", "pts", "sh", "-c", check]);
        assert_eq!(o.status.code(), Some(4), "{user}: {o:?}");
        // Its own pts/1 beside ptmx and the container's pts/0.
        assert_eq!(
            stdout(&o).replace(['\r', ' '], ""),
            "tty=/dev/pts/1\nexists\n3\n",
            "{user}"
        );
        // Typed input and the exit code through a real terminal.
        let out = on_terminal(&env, &sb, "exec -it pts sh", &["tty; exit 5\\r"]);
        assert!(out.contains("/dev/pts/1"), "{user}: {out}");
        assert!(out.trim_end().ends_with("rc=5"), "{user}: {out}");
        sb.den_ok(&["rm", "-f", "pts"]);
    }
}

/// Runs the shell commands `inner` on a terminal made by script(1) whose
/// input stays open and empty (a FIFO nobody writes to: at the end of a
/// plain input script would type an end-of-file that `-i` passes on);
/// returns what appeared on the terminal, carriage returns dropped.
fn on_quiet_terminal(sb: &UserSandbox, inner: &str) -> String {
    let fifo = sb.home().join("quiet-input");
    let fifo = fifo.display();
    let o = sb.sh(&format!(
        "rm -f {fifo}; mkfifo {fifo}; sleep 600 >{fifo} & s=$!; \
         script -qec '{inner}' /dev/null <{fifo}; kill $s; rm -f {fifo}"
    ));
    assert!(o.status.success(), "{o:?}");
    stdout(&o).replace('\r', "")
}

/// A command that reads its terminal's size at once sees the caller's
/// (37 rows, 91 columns): `den exec -it` and `den run -it` give the pty
/// its size before the command starts, 10 times each, and also when the
/// den CLI is slow (its ioctls delayed by strace, as on a loaded machine:
/// the CLI used to set the size only after the command had started); a
/// resize still reaches a running command. With and without subordinate
/// ids.
#[test]
fn the_terminal_has_the_callers_size_from_the_start() {
    let env = require_env!();
    let nosub = env.sandbox_nosub();
    nosub.write_registries_conf(&den_tests::mirror_conf("docker.io", &env.registry));
    nosub.den_ok(&["pull", "-q", "busybox"]);
    let den = env.bin.display();
    let slow =
        format!("strace -o /dev/null -e trace=ioctl -e inject=ioctl:delay_exit=100000 {den}");
    let ten = |cmd: &str| format!("for i in 1 2 3 4 5 6 7 8 9 10; do {cmd}; done");
    for sb in [sandbox(&env), nosub] {
        let user = sb.user().to_string();
        sb.den_ok(&["run", "-dt", "--name", "sz", "busybox", "sleep", "300"]);
        for args in ["exec -it sz", "run --rm -it busybox"] {
            let out = on_quiet_terminal(
                &sb,
                &format!(
                    "stty rows 37 cols 91; {}",
                    ten(&format!("{den} {args} stty size"))
                ),
            );
            assert_eq!(out, "37 91\n".repeat(10), "{user}: den {args}");
            let out = on_quiet_terminal(
                &sb,
                &format!("stty rows 37 cols 91; {slow} {args} stty size"),
            );
            assert_eq!(out, "37 91\n", "{user}: a slow den {args}");
        }
        // A resize (SIGWINCH to den) reaches a running exec's terminal.
        let out = on_quiet_terminal(
            &sb,
            &format!(
                "stty rows 37 cols 91; {den} exec -it sz sh -c \"stty size; sleep 3; stty size\" </dev/tty & \
                 sleep 1.5; stty rows 20 cols 50; kill -WINCH $!; wait"
            ),
        );
        assert_eq!(out, "37 91\n20 50\n", "{user}: a resize");
        sb.den_ok(&["rm", "-f", "sz"]);
    }
}
