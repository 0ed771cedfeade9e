//! `den exec`, `den cp`, `den top`, health probes and `--network
//! container:` join a container through the namespace handles its
//! supervisor keeps (`ns.sock`), never through /proc/PID/ns of a container
//! process: so den's own processes in the container (`--init`'s PID 1, a
//! `den exec` child before its exec) are non-dumpable, and the container's
//! processes can read neither their memory nor their environment.
//!
//! The containers here run with `--security-opt landlock=off`: Landlock,
//! where the kernel has it, already keeps a sandboxed process from
//! inspecting any process outside its own domain (each den exec'd process
//! and the init have one of their own), and den must not depend on it.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::time::Duration;

use den_tests::{UserSandbox, inspect, mirrored_sandbox, require_env, retry, stderr, stdout};

/// The container's directory in the sandbox's store.
fn container_dir(sb: &UserSandbox, name: &str) -> PathBuf {
    let id = inspect(sb, name)["Id"].as_str().unwrap().to_string();
    sb.root().join("containers").join(id)
}

/// `--init`'s PID 1 is den's code, forked from the supervisor: its
/// environment is the one `den run` had (the user's) and its
/// /proc/1/exe den's binary on the host. Non-dumpable, it is closed to the
/// container; den still joins the container through the supervisor, for
/// every command that does, for both kinds of user.
#[test]
fn init_is_closed_to_the_container_and_den_still_joins_it() {
    let env = require_env!();
    for sub in [true, false] {
        let sb = mirrored_sandbox(&env, sub, true);
        let secret = [("DEN_TEST_HOST_SECRET", "host-only-value")];
        sb.den_env_ok(
            &secret,
            &[
                "run",
                "-d",
                "--init",
                "--security-opt",
                "landlock=off",
                "--name",
                "nd",
                "--health-cmd",
                "true",
                "--health-interval",
                "1s",
                "busybox",
                "sleep",
                "300",
            ],
        );
        let out = sb.den(&["exec", "nd", "cat", "/proc/1/environ"]);
        assert!(
            !stdout(&out).contains("host-only-value"),
            "sub={sub}: the container read den's environment: {}",
            stdout(&out)
        );
        assert_eq!(out.status.code(), Some(1), "sub={sub}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            "cat: can't open '/proc/1/environ': Permission denied\n",
            "sub={sub}"
        );
        let out = sb.den(&["exec", "nd", "readlink", "/proc/1/exe"]);
        assert_eq!(stdout(&out), "", "sub={sub}: den's binary on the host");

        assert_eq!(sb.den_ok(&["exec", "nd", "echo", "joined"]), "joined\n");
        let top = sb.den_ok(&["top", "nd"]);
        assert!(top.contains("sleep 300"), "sub={sub}: {top}");
        assert!(
            top.contains("__internal container"),
            "sub={sub}: the init: {top}"
        );

        let host = sb.write_file("in.txt", "copied in\n");
        sb.den_ok(&["cp", host.to_str().unwrap(), "nd:/tmp/in.txt"]);
        assert_eq!(
            sb.den_ok(&["exec", "nd", "cat", "/tmp/in.txt"]),
            "copied in\n"
        );
        let back = sb.dir().join("back.txt");
        sb.den_ok(&["cp", "nd:/tmp/in.txt", back.to_str().unwrap()]);
        assert_eq!(std::fs::read_to_string(&back).unwrap(), "copied in\n");

        retry("a healthy probe", Duration::from_secs(30), || {
            (inspect(&sb, "nd")["State"]["Health"]["Status"] == "healthy").then_some(())
        });
        let joined = sb.den_ok(&[
            "run",
            "--rm",
            "--network",
            "container:nd",
            "busybox",
            "echo",
            "shares its network",
        ]);
        assert_eq!(joined, "shares its network\n", "sub={sub}");
        sb.den_ok(&["rm", "-f", "nd"]);
    }
}

/// A container process that watches for `den exec`'s child (SIGSTOP holds
/// it before its exec, while it is still den's code with every capability
/// of the container's user namespace) finds it closed: its environment and
/// root are "Permission denied".
#[test]
fn exec_child_is_closed_to_the_container_before_its_exec() {
    let env = require_env!();
    let sb = mirrored_sandbox(&env, true, false);
    let watcher = r#"
import os, signal, time
seen = set()
while True:
    for p in os.listdir('/proc'):
        if not p.isdigit() or p in seen:
            continue
        try:
            comm = open('/proc/%s/comm' % p).read().strip()
        except OSError:
            continue
        if comm != 'den':
            seen.add(p)
            continue
        os.kill(int(p), signal.SIGSTOP)
        found = []
        try:
            found.append('environ: %d bytes' % len(open('/proc/%s/environ' % p, 'rb').read()))
        except OSError as e:
            found.append('environ: ' + e.strerror)
        try:
            found.append('root: ' + os.readlink('/proc/%s/root' % p))
        except OSError as e:
            found.append('root: ' + e.strerror)
        os.kill(int(p), signal.SIGCONT)
        open('/tmp/caught.new', 'w').write('\n'.join(found) + '\n')
        os.rename('/tmp/caught.new', '/tmp/caught')
        time.sleep(600)
        raise SystemExit(0)
"#;
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "watch",
        "--security-opt",
        "landlock=off",
        "python:3.11-slim",
        "python3",
        "-c",
        watcher,
    ]);
    let caught = retry(
        "the watcher to catch a den exec child",
        Duration::from_secs(120),
        || {
            sb.den(&["exec", "watch", "true"]);
            let out = sb.den(&["exec", "watch", "cat", "/tmp/caught"]);
            out.status.success().then(|| stdout(&out))
        },
    );
    assert_eq!(
        caught, "environ: Permission denied\nroot: Permission denied\n",
        "the container could look into den exec's child"
    );
    sb.den_ok(&["rm", "-f", "watch"]);
}

/// The socket is the user's alone: 0600 in the 0700 container directory, so
/// another user cannot reach it, and the supervisor answers nobody but the
/// directory's owner (here: the host's root, which can reach it). With
/// `--userns=keep-id` the supervisor is a subordinate id outside: the
/// socket is still the user's, and den exec joins.
#[test]
fn namespace_socket_answers_only_the_user() {
    let env = require_env!();
    let sb = mirrored_sandbox(&env, true, true);
    sb.den_ok(&[
        "run",
        "-d",
        "--userns=keep-id",
        "--name",
        "sock",
        "busybox",
        "sleep",
        "300",
    ]);
    let uid = sb.den_ok(&["exec", "sock", "id", "-u"]);
    assert_eq!(uid.trim(), sb.uid().to_string(), "keep-id: the user's id");
    let path = container_dir(&sb, "sock").join("ns.sock");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), sb.uid(), "the user's, as the directory");
    // A socket address holds about 100 bytes: a short link to the socket.
    let short = tempfile::tempdir().unwrap();
    std::fs::set_permissions(short.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let link = short.path().join("ns");
    std::os::unix::fs::symlink(&path, &link).unwrap();

    let connect = format!(
        "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({:?})",
        link.to_str().unwrap()
    );
    let other = env.sandbox_nosub();
    let out = other
        .command_as_user(&[], "python3", &["-c", &connect])
        .output()
        .unwrap();
    assert!(
        stderr(&out).ends_with("PermissionError: [Errno 13] Permission denied\n"),
        "{}",
        stderr(&out)
    );

    // Root reaches it, but is not the owner: the connection closes unanswered.
    let mut s = std::os::unix::net::UnixStream::connect(&link).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert!(got.is_empty(), "answered a stranger: {got:?}");

    sb.den_ok(&["stop", "-t", "1", "sock"]);
    let err = std::os::unix::net::UnixStream::connect(&link).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    sb.den_ok(&["rm", "sock"]);
}

/// A container an older den started has no `ns.sock` (stood in for by a
/// running container whose socket is removed): den never falls back to
/// /proc/PID/ns (ARCHITECTURE.md says why), so `den exec`, `den cp` and
/// `den top` refuse with one line saying what to do, its health checks
/// (the supervisor's own) go on, and after the `den restart` it names
/// everything works. For both kinds of user.
#[test]
fn a_container_an_older_den_started_is_refused_with_what_to_do() {
    let env = require_env!();
    for sub in [true, false] {
        let sb = mirrored_sandbox(&env, sub, true);
        let flags = ["--health-cmd", "true", "--health-interval", "1h"];
        den_tests::run_sleeper(&sb, "old", &flags, "300");
        std::fs::remove_file(container_dir(&sb, "old").join("ns.sock")).unwrap();
        let to = sb.home().join("hostname-copy");
        let to = to.to_str().unwrap();
        for args in [
            vec!["exec", "old", "true"],
            vec!["exec", "-t", "old", "true"],
            vec!["cp", "old:/etc/hostname", to],
            vec!["cp", "/etc/hostname", "old:/tmp/"],
            vec!["top", "old"],
        ] {
            let err = sb.den_fail(&args, 125);
            assert_eq!(
                err.trim(),
                "den: container old was started by an older den, which does not hand out its \
                 namespaces (it has no ns.sock): restart it with `den restart old`, then run this again",
                "sub={sub}: {args:?}"
            );
        }
        assert!(!std::path::Path::new(to).exists());
        sb.den_ok(&["healthcheck", "run", "old"]);
        sb.den_ok(&["restart", "-t", "0", "old"]);
        assert_eq!(sb.den_ok(&["exec", "old", "echo", "in"]), "in\n");
        sb.den_ok(&["cp", "old:/etc/hostname", to]);
        assert!(sb.den_ok(&["top", "old"]).contains("sleep 300"));
        sb.den_ok(&["rm", "-f", "old"]);
    }
}
