//! `den run` end to end, as the unprivileged test users: images from the
//! loopback registry, exit codes, the image config, terminals, volumes,
//! single-id mode, --rootfs, and what a container must not be able to do.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use den_tests::{TestEnv, UserSandbox, require_env, run_sleeper, stderr, stdout};

fn sandbox(env: &TestEnv, sub: bool) -> UserSandbox {
    if sub {
        return den_tests::sandbox(env);
    }
    let sb = env.sandbox_nosub();
    sb.write_registries_conf(&den_tests::mirror_conf("docker.io", &env.registry));
    sb
}

#[test]
fn runs_busybox_and_returns_exit_codes_like_docker() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    assert_eq!(
        sb.den_ok(&["run", "--rm", "busybox", "echo", "hello"]),
        "hello\n"
    );
    let cases: [(&[&str], i32, &str); 5] = [
        (&["sh", "-c", "exit 3"], 3, ""),
        (&["nosuchcommand"], 127, "executable file not found"),
        (&["/etc/passwd"], 126, "permission denied"),
        (&["/nonexistent/x"], 127, "no such file"),
        (&["sh", "-c", "kill -9 $$"], 137, ""),
    ];
    for (cmd, code, msg) in cases {
        let mut args = vec!["run", "--rm", "--init", "busybox"];
        args.extend(cmd);
        let out = sb.den(&args);
        assert_eq!(out.status.code(), Some(code), "{cmd:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(msg), "{cmd:?}: {}", stderr(&out));
    }
    let err = sb.den_fail(&["run", "--rm", "nosuchimage:1"], 125);
    assert!(err.contains("not found"), "{err}");
    let err = sb.den_fail(
        &[
            "run",
            "--rm",
            "-v",
            "/nonexistent/dir:/x",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("does not exist"), "{err}");
    let err = sb.den_fail(
        &["run", "--rm", "-v", "relative:dir", "busybox", "true"],
        125,
    );
    assert!(err.contains("absolute"), "{err}");
    sb.den_ok(&["run", "--name", "taken", "busybox", "true"]);
    let err = sb.den_fail(&["run", "--rm", "--name", "taken", "busybox", "true"], 125);
    assert!(err.contains("already in use"), "{err}");
}

/// A set-up failure in the container process names the step that failed
/// and its errno, attached (`run`), detached (`run -d`: the supervisor
/// reports through its channel) and in `den exec` (issue 17.1: it used to
/// say "failed before it could report").
#[test]
fn setup_failure_names_its_step_and_errno() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    sb.den_ok(&["pull", "busybox"]);
    let want = "den: container set-up failed at step \"enter the working directory\": \
                cannot enter the working directory /etc/passwd: Not a directory (os error 20)\n";
    for detach in [&[][..], &["-d"][..]] {
        let mut args = vec!["run", "--rm"];
        args.extend(detach);
        args.extend(["-w", "/etc/passwd", "busybox", "true"]);
        assert_eq!(sb.den_fail(&args, 125), want, "{args:?}");
    }
    run_sleeper(&sb, "steps", &[], "60");
    assert_eq!(
        sb.den_fail(&["exec", "-w", "/etc/passwd", "steps", "true"], 125),
        want
    );
    assert_eq!(
        sb.den_fail(&["exec", "steps", "nosuchcommand"], 127),
        "den: container set-up failed at step \"find the command\": \
         nosuchcommand: executable file not found in $PATH\n"
    );
    sb.den_ok(&["rm", "-f", "steps"]);
}

#[test]
fn honours_image_config_and_flags() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    // python's image sets LANG; -e overrides and adds; -e KEY copies den's value.
    let out = sb.den_env_ok(
        &[("FROM_HOST", "yes")],
        &[
            "run",
            "--rm",
            "-e",
            "A=1",
            "-e",
            "FROM_HOST",
            "-e",
            "LANG=C",
            "-w",
            "/tmp/work",
            "python:3.11-slim",
            "sh",
            "-c",
            "echo $A $FROM_HOST $LANG; pwd; echo $HOME; hostname",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1 yes C", "{out}");
    assert_eq!(lines[1], "/tmp/work");
    assert_eq!(lines[2], "/root");
    assert_eq!(lines[3].len(), 12, "hostname is the short id: {out}");
    sb.write_file("envfile", "# comment\nFROMFILE=ok\n\n");
    let envfile = sb.home().join("envfile");
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "--env-file",
        envfile.to_str().unwrap(),
        "--hostname",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo $FROMFILE $(hostname) $(cat /etc/hostname)",
    ]);
    assert_eq!(out.trim(), "ok box box");
    // The image's Entrypoint and Cmd, and --entrypoint.
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        "busybox",
        "via",
        "entrypoint",
    ]);
    assert_eq!(out.trim(), "via entrypoint");
    // -u: by uid:gid and by name (mariadb's mysql user is 999).
    assert_eq!(
        sb.den_ok(&["run", "--rm", "-u", "1234:5678", "busybox", "id"])
            .trim(),
        "uid=1234 gid=5678 groups=5678"
    );
    let out = sb.den_ok(&["run", "--rm", "-u", "mysql", "mariadb:10.11", "id", "-u"]);
    assert_eq!(out.trim(), "999");
}

#[test]
fn pipes_and_terminals() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    sb.den_ok(&["pull", "-q", "busybox"]);
    let mut child = sb
        .den_cmd(&[], &["run", "--rm", "-i", "busybox", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hi through a pipe\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "hi through a pipe\n");
    // Without -i the container's stdin is empty.
    assert_eq!(
        sb.den_ok(&["run", "--rm", "busybox", "sh", "-c", "cat; echo end"]),
        "end\n"
    );
    // -it through a real pty (script(1) gives den a terminal): the container
    // sees a tty of the caller's size, and its exit code comes back.
    let den = format!(
        "{} run --rm -it busybox sh -c 'tty; stty size; exit 7'",
        env.bin.display()
    );
    let out = sb.sh(&format!(
        "stty cols 99 rows 33 2>/dev/null; script -qec \"stty cols 99 rows 33; {den}\" /dev/null"
    ));
    // script(1)'s own errors go to its stderr, the container's to the pty.
    let text = format!(
        "{}\nscript's stderr: {}\nstatus: {:?}",
        stdout(&out),
        stderr(&out),
        out.status
    );
    assert!(stdout(&out).contains("/dev/pts/0"), "{text}");
    assert!(stdout(&out).contains("33 99"), "window size: {text}");
    assert_eq!(out.status.code(), Some(7), "{text}");
}

#[test]
fn volumes_bind_read_write_and_read_only() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    sb.write_file("data/in.txt", "from host\n");
    let data = sb.home().join("data");
    let rw = format!("{}:/data", data.display());
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "-v",
        &rw,
        "busybox",
        "sh",
        "-c",
        "cat /data/in.txt; echo from container > /data/out.txt",
    ]);
    assert_eq!(out, "from host\n");
    let written = data.join("out.txt");
    assert_eq!(fs::read_to_string(&written).unwrap(), "from container\n");
    assert_eq!(
        fs::metadata(&written).unwrap().uid(),
        sb.uid(),
        "root in the container writes as the user"
    );
    let ro = format!("{}:/data:ro", data.display());
    let out = sb.den(&[
        "run",
        "--rm",
        "-v",
        &ro,
        "busybox",
        "sh",
        "-c",
        "echo x > /data/in.txt",
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("Read-only"), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(data.join("in.txt")).unwrap(),
        "from host\n"
    );
    // Relative host paths, --mount and --tmpfs.
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "-v",
        "./data:/d",
        "--mount",
        &format!("type=bind,source={},target=/m,readonly", data.display()),
        "--tmpfs",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "ls /d /m; touch /scratch/x && echo tmpfs-ok; touch /m/y || echo m-ro",
    ]);
    assert!(
        out.contains("in.txt") && out.contains("tmpfs-ok") && out.contains("m-ro"),
        "{out}"
    );
    // --read-only keeps the root read-only but volumes writable.
    let out = sb.den(&[
        "run",
        "--rm",
        "--read-only",
        "-v",
        &rw,
        "busybox",
        "sh",
        "-c",
        "touch /x; touch /data/ok && echo vol-ok",
    ]);
    assert!(
        stderr(&out).contains("Read-only") && stdout(&out).contains("vol-ok"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn single_id_mode_runs_and_maps_only_the_user() {
    let env = require_env!();
    let sb = sandbox(&env, false);
    assert_eq!(
        sb.den_ok(&["run", "--rm", "busybox", "id", "-u"]).trim(),
        "0"
    );
    let out = sb.den_ok(&["run", "--rm", "busybox", "cat", "/proc/self/uid_map"]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", &sb.uid().to_string(), "1"]
    );
    let err = sb.den_fail(&["run", "--rm", "-u", "999", "busybox", "true"], 125);
    assert!(err.contains("subordinate ids"), "{err}");
    // The subordinate-id user maps 65536 ids.
    let sub = sandbox(&env, true);
    let out = sub.den_ok(&["run", "--rm", "busybox", "cat", "/proc/self/uid_map"]);
    assert!(out.contains("65535"), "{out}");
}

#[test]
fn rootfs_runs_the_host_root_without_changing_it() {
    let env = require_env!();
    let sb = sandbox(&env, false);
    let marker = format!("/etc/den-rootfs-test-{}", std::process::id());
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "--rootfs",
        "/",
        "sh",
        "-c",
        &format!("echo written > {marker} && cat {marker} && id -u"),
    ]);
    assert_eq!(out, "written\n0\n");
    assert!(
        !std::path::Path::new(&marker).exists(),
        "the host's /etc is unchanged"
    );
    let out = sb.den_ok(&["run", "--rm", "--rootfs", "/", "cat", "/etc/debian_version"]);
    assert_eq!(out, fs::read_to_string("/etc/debian_version").unwrap());
}

/// `--rootfs /` shows the host's directory modes: /tmp stays 1777, so a
/// user other than root can write there, as on the host; the same in a
/// tree the container builds and in one the keeper built ahead of time
/// (the second run with subordinate ids).
#[test]
fn rootfs_keeps_the_hosts_directory_modes() {
    let env = require_env!();
    let host = |p: &str| {
        use std::os::unix::fs::PermissionsExt;
        format!(
            "{:o}",
            fs::metadata(p).unwrap().permissions().mode() & 0o7777
        )
    };
    let want = format!("{} {} {}\n", host("/tmp"), host("/etc"), host("/"));
    assert_eq!(want.split(' ').next(), Some("1777"), "the host's /tmp");
    let stat = [
        "run", "--rm", "--rootfs", "/", "stat", "-c", "%a", "/tmp", "/etc", "/",
    ];
    let nosub = sandbox(&env, false);
    assert_eq!(
        nosub.den_ok(&stat).replace('\n', " ").trim_end(),
        want.trim_end()
    );
    let sub = sandbox(&env, true);
    let touch = "touch /tmp/by-1000 && stat -c '%u %a' /tmp/by-1000 /tmp";
    for _ in 0..2 {
        let args = [
            "run", "--rm", "--rootfs", "/", "-u", "1000", "sh", "-c", touch,
        ];
        assert_eq!(sub.den_ok(&args), "1000 644\n0 1777\n");
    }
    assert!(
        !std::path::Path::new("/tmp/by-1000").exists(),
        "the host's /tmp is unchanged"
    );
}

/// `--read-only --rootfs /` makes the whole tree read-only, as Docker's
/// `--read-only` does an image's root: `/etc` and `/tmp` (overlays of
/// their own below the root) too, not only `/`; a volume stays writable.
/// Both in a tree the container builds and in the keeper's (second run).
#[test]
fn rootfs_read_only_covers_the_whole_tree_but_not_volumes() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let vol = sb.home().join("vol");
    sb.sh_ok(&format!("mkdir -p {}", vol.display()));
    let script =
        "for f in /x /etc/x /tmp/x /data/x; do touch $f 2>/dev/null && echo $f; done; true";
    let volume = format!("{}:/data", vol.display());
    for _ in 0..2 {
        let args = [
            "run",
            "--rm",
            "--read-only",
            "-v",
            &volume,
            "--rootfs",
            "/",
            "sh",
            "-c",
            script,
        ];
        assert_eq!(sb.den_ok(&args), "/data/x\n");
    }
    let args = ["run", "--rm", "--rootfs", "/", "sh", "-c", script];
    assert_eq!(
        sb.den_ok(&args),
        "/x\n/etc/x\n/tmp/x\n",
        "without --read-only"
    );
}

/// no_new_privs is off by default, as in Docker: a setuid-root program
/// gains the container's root; `--security-opt no-new-privileges` sets it
/// and the program keeps the caller's ids.
#[test]
fn no_new_privs_only_when_asked_and_setuid_works_without_it() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let nnp = "grep NoNewPrivs /proc/self/status";
    let out = sb.den_ok(&["run", "--rm", "busybox", "sh", "-c", nnp]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "0"]
    );
    let opt = ["--security-opt", "no-new-privileges"];
    let out = sb.den_ok(&[&["run", "--rm"][..], &opt, &["busybox", "sh", "-c", nnp]].concat());
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "1"]
    );
    // As root in the container, a setuid-root copy of python, then run as
    // uid 1000 (debian's `passwd -S root` is no probe: it checks the real uid).
    let setuid = "cp $(readlink -f $(command -v python3)) /usr/local/bin/supy && chmod 4755 /usr/local/bin/supy && \
                  setpriv --reuid 1000 --regid 1000 --clear-groups \
                  /usr/local/bin/supy -c 'import os; print(os.getuid(), os.geteuid())'";
    let py = ["python:3.11-slim", "sh", "-c", setuid];
    let out = sb.den_ok(&[&["run", "--rm"][..], &py].concat());
    assert_eq!(
        out, "1000 0\n",
        "the setuid program gains the container's root"
    );
    let out = sb.den_ok(&[&["run", "--rm"][..], &opt, &py].concat());
    assert_eq!(out, "1000 1000\n", "no-new-privileges: setuid is ignored");
}

/// Every mount under /sys is read-only, the cgroup hierarchies included.
#[test]
fn sys_submounts_are_read_only() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let out = sb.den(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "grep ' /sys' /proc/self/mountinfo; mkdir /sys/fs/cgroup/x",
    ]);
    let mounts: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert!(
        mounts.iter().any(|l| l.contains(" /sys/fs/cgroup")),
        "no cgroup mount under /sys: {mounts:?}"
    );
    for line in &mounts {
        let options = line.split_whitespace().nth(5).unwrap_or("");
        assert!(
            options.starts_with("ro"),
            "writable mount under /sys: {line}"
        );
    }
    assert!(
        stderr(&out)
            .contains("mkdir: can't create directory '/sys/fs/cgroup/x': Read-only file system"),
        "{}",
        stderr(&out)
    );
}

/// Each of these must fail from inside a default container.
#[test]
fn container_cannot_escape() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let secret = sb.write_file("secret/host-only.txt", "host secret\n");
    let secret_dir = secret.parent().unwrap().to_path_buf();
    // Each probe makes one system call from python and prints the errno's
    // text, so the assertion names the exact refusal: a probe that broke
    // for another reason (a missing tool, a typo) cannot pass.
    let call = |body: &str| {
        format!(
            "import ctypes,os,stat\nl=ctypes.CDLL(None,use_errno=True)\ntry:\n    r={body}\n    print('OK' if r in (0,None) else 'ERR:'+os.strerror(ctypes.get_errno()))\nexcept OSError as e:\n    print('ERR:'+os.strerror(e.errno))\n"
        )
    };
    let probes: [(&str, String, &str); 6] = [
        (
            "read a host file outside the volumes",
            call(&format!(
                "open({:?}).read() and 0",
                secret.display().to_string()
            )),
            "ERR:No such file or directory",
        ),
        (
            "mount",
            call("l.mount(b'none',b'/mnt',b'tmpfs',0,None)"),
            "ERR:Operation not permitted",
        ),
        (
            "create a device node",
            call("os.mknod('/tmp/sda',stat.S_IFBLK|0o600,os.makedev(8,0))"),
            "ERR:Operation not permitted",
        ),
        (
            "load a kernel module",
            call("l.syscall(175,0,0,b'')"),
            "ERR:Operation not permitted",
        ),
        (
            "ptrace",
            call("l.ptrace(16,1,0,0)"),
            "ERR:Operation not permitted",
        ),
        (
            "write kernel settings",
            call("open('/proc/sys/kernel/panic','w').write('1') and 0"),
            "ERR:Read-only file system",
        ),
    ];
    for (what, script, refusal) in &probes {
        let out = sb.den(&["run", "--rm", "python:3.11-slim", "python3", "-c", script]);
        assert_eq!(
            stdout(&out).trim(),
            *refusal,
            "{what}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    // Host processes: the container's /proc shows only its own.
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "python:3.11-slim",
        "python3",
        "-c",
        "import os; print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))",
    ]);
    assert_eq!(out.trim(), "[1]", "the container sees other processes");
    // A host directory passed in as an open fd cannot be used to open host
    // files: landlock confines the container to its own mounts.
    let script = format!(
        "exec 3<{}; {} run --rm --preserve-fds 1 busybox sh -c 'ls /proc/self/fd/3/ && cat /proc/self/fd/3/host-only.txt'",
        secret_dir.display(),
        env.bin.display()
    );
    let out = sb.sh(&script);
    assert_ne!(
        out.status.code(),
        Some(0),
        "opened a host file through fd 3: {}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("host secret"));
    assert!(
        stderr(&out).contains("Permission denied"),
        "landlock's refusal (EACCES): {}",
        stderr(&out)
    );
    // The same probe with landlock off shows the fd really leads to the host.
    let script = script.replace(
        "--preserve-fds 1",
        "--preserve-fds 1 --security-opt landlock=off",
    );
    assert!(
        stdout(&sb.sh(&script)).contains("host secret"),
        "control: without landlock the fd reaches the host"
    );
}

#[test]
fn mariadb_runs_as_999_and_keeps_its_data_in_a_named_volume() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    sb.den_ok(&["pull", "-q", "mariadb:10.11"]);
    let start = |name: &str| {
        sb.den_cmd(
            &[],
            &[
                "run",
                "--rm",
                "--name",
                name,
                "-v",
                "dbdata:/var/lib/mysql",
                "-v",
                "dbsock:/run/mysqld",
                "-e",
                "MARIADB_ROOT_PASSWORD=rootpw",
                "mariadb:10.11",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let query = |sql: &str| {
        sb.den(&[
            "run",
            "--rm",
            "-v",
            "dbsock:/run/mysqld",
            "mariadb:10.11",
            "mariadb",
            "-uroot",
            "-prootpw",
            "-N",
            "-e",
            sql,
        ])
    };
    let wait_ready = || {
        let t = Instant::now();
        loop {
            let out = query("select 1");
            if out.status.success() {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(90),
                "mariadb did not come up: {}",
                stderr(&out)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    let stop = |mut c: std::process::Child| {
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        let t = Instant::now();
        while c.try_wait().unwrap().is_none() {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "mariadb did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let db = start("db1");
    wait_ready();
    // The image's entrypoint first runs a temporary server to initialise
    // the datadir, then restarts it: a query may land in that gap and not
    // connect at all (ERROR 2002), which is safe to retry.
    let t = Instant::now();
    let out = loop {
        let out =
            query("create database kept; select user from mysql.user where user='root' limit 1");
        if out.status.success()
            || !stderr(&out).contains("ERROR 2002")
            || t.elapsed() > Duration::from_secs(60)
        {
            break out;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(out.status.success(), "{}", stderr(&out));
    let datadir = sb.root().join("volumes/dbdata/_data");
    stop(db);
    // The datadir belongs to the mysql user (999 inside, a subordinate id outside).
    let owner = fs::metadata(datadir.join("mysql")).unwrap().uid();
    assert_eq!(owner, 100_000 + 998);
    let db = start("db2");
    wait_ready();
    let out = query("show databases like 'kept'");
    assert_eq!(stdout(&out).trim(), "kept", "{}", stderr(&out));
    stop(db);
}

#[test]
fn many_run_rm_cycles_leave_nothing_behind() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    sb.den_ok(&["pull", "-q", "busybox"]);
    let mounts_before = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    let script = format!(
        "for i in $(seq 200); do {} run --rm busybox true || exit 1; done",
        env.bin.display()
    );
    let out = sb.sh(&script);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        den_tests::containers_left(&sb),
        Vec::<String>::new(),
        "per-container files left"
    );
    assert_eq!(
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .count(),
        mounts_before,
        "mounts left on the host"
    );
    // Supervisors carry `--root STORE` on their command line.
    let procs = den_tests::den_processes_left(&sb);
    assert!(procs.is_empty(), "den processes left: {procs}");
}

/// An interactive shell under `script(1)`: lines go in one at a time, and
/// what the terminal shows comes back.
struct Terminal {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Terminal {
    fn start(sb: &UserSandbox) -> Terminal {
        let mut child = sb
            .command_as_user(
                &[("PS1", "$ ")],
                "script",
                &["-qfc", "bash --norc --noprofile -i", "/dev/null"],
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Terminal {
            child,
            input,
            output,
        }
    }

    /// Types `line`, then waits until the shell has run it: the line ends
    /// by printing `step-N`, computed, so the echo of the line never matches.
    fn run(&mut self, line: &str, step: u32) -> String {
        let before = self.output.lock().unwrap().len();
        writeln!(self.input, "{line}; echo step-$((0+{step}))").unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let out = self.output.lock().unwrap()[before..].to_string();
            if out.contains(&format!("step-{step}")) {
                return out;
            }
            assert!(Instant::now() < deadline, "`{line}` did not finish: {out}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        writeln!(self.input, "exit").ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Issue 8, item 1: a container never shares the user's controlling
/// terminal, and seccomp refuses TIOCSTI, so what a container "types" is
/// never run by the user's shell (here `dev.tty.legacy_tiocsti` is 1).
#[test]
fn container_cannot_type_into_the_users_terminal() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    sb.den_ok(&["pull", "-q", "python:3.11-slim"]);
    let marker = sb.dir().join("typed-by-the-container");
    // Types `touch MARKER` into /dev/tty and into each of fds 0-2 that is a
    // terminal, and reports what each attempt got.
    let probe = format!(
        r#"import fcntl, os, termios
def push(fd):
    try:
        for c in b"touch {marker}\n":
            fcntl.ioctl(fd, termios.TIOCSTI, bytes([c]))
        return "typed"
    except OSError as e:
        return os.strerror(e.errno)
try:
    print("dev-tty:", push(os.open("/dev/tty", os.O_RDWR)))
except OSError as e:
    print("dev-tty:", os.strerror(e.errno))
for fd in (0, 1, 2):
    print("fd%d:" % fd, push(fd) if os.isatty(fd) else "not a tty")
"#,
        marker = marker.display()
    );
    let probe_dir = sb.dir().join("probe");
    sb.write_file(probe_dir.join("probe.py"), &probe);
    let den = env.bin.display().to_string();
    let vol = format!("{}:/probe:ro", probe_dir.display());
    let mut term = Terminal::start(&sb);
    // Attached `den run` (no -d): /dev/tty leads nowhere.
    let out = term.run(
        &format!("{den} run --rm -v {vol} python:3.11-slim python3 /probe/probe.py"),
        1,
    );
    assert!(out.contains("dev-tty: No such device or address"), "{out}");
    assert!(!out.contains("typed"), "{out}");
    // `den exec` without -t: its stdout and stderr are the user's terminal,
    // but not its controlling one, and seccomp refuses TIOCSTI anyway.
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "tty-victim",
        "-v",
        &vol,
        "python:3.11-slim",
        "sleep",
        "300",
    ]);
    let out = term.run(&format!("{den} exec tty-victim python3 /probe/probe.py"), 2);
    assert!(out.contains("dev-tty: No such device or address"), "{out}");
    assert!(!out.contains("typed"), "{out}");
    // With -t the container's own pty is its controlling terminal, which the
    // kernel would let it type into: seccomp refuses the ioctl.
    let out = term.run(
        &format!("{den} run --rm -t -v {vol} python:3.11-slim python3 /probe/probe.py"),
        3,
    );
    assert!(out.contains("dev-tty: Operation not permitted"), "{out}");
    assert!(out.contains("fd0: Operation not permitted"), "{out}");
    // Give the shell the chance to run anything typed, then check.
    term.run("sleep 1", 4);
    sb.den_ok(&["rm", "-f", "tty-victim"]);
    assert!(
        !marker.exists(),
        "the user's shell ran what a container typed"
    );
    // Control: the same probe run directly by the user's shell does type
    // into it, so the checks above can see an injection.
    let out = term.run(&format!("python3 {}/probe.py", probe_dir.display()), 5);
    assert!(out.contains("dev-tty: typed"), "control: {out}");
    term.run("sleep 1", 6);
    assert!(marker.exists(), "control: the injected line was not run");
}

/// The host pid of a running container's PID 1, from its state file.
fn init_pid(sb: &UserSandbox, name: &str) -> i32 {
    let inspect: serde_json::Value = serde_json::from_str(&sb.den_ok(&["inspect", name])).unwrap();
    let id = inspect[0]["Id"].as_str().unwrap();
    let state: serde_json::Value = serde_json::from_slice(
        &fs::read(sb.root().join("containers").join(id).join("state.json")).unwrap(),
    )
    .unwrap();
    state["pid"].as_i64().unwrap() as i32
}

/// The open descriptors of a host process, with what each leads to.
fn open_fds(pid: i32) -> Vec<(u32, String)> {
    let mut fds: Vec<(u32, String)> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let to = fs::read_link(e.path()).unwrap_or_default();
            (
                e.file_name().to_str().unwrap().parse().unwrap(),
                to.display().to_string(),
            )
        })
        .collect();
    fds.sort();
    fds
}

/// Issue 8, item 6: den's `--init` never execs, so it must close den's
/// descriptors itself: its PID 1 holds only stdio and the fds passed on
/// with --preserve-fds (the user's, not a signalfd of den's).
#[test]
fn init_keeps_only_stdio_and_preserved_fds() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    sb.den_ok(&["pull", "-q", "busybox"]);
    run_sleeper(&sb, "plain", &["--init"], "300");
    let fds = open_fds(init_pid(&sb, "plain"));
    let numbers: Vec<u32> = fds.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [0, 1, 2], "PID 1 under --init: {fds:?}");
    let passed = sb.write_file("passed-on.txt", "for the container\n");
    let out = sb.sh(&format!(
        "exec 3<{}; {} run -d --init --preserve-fds 1 --name passed busybox sleep 300",
        passed.display(),
        env.bin.display()
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let fds = open_fds(init_pid(&sb, "passed"));
    let numbers: Vec<u32> = fds.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [0, 1, 2, 3], "--preserve-fds 1: {fds:?}");
    assert_eq!(fds[3].1, passed.display().to_string(), "{fds:?}");
    // With nothing at fd 3, --preserve-fds 1 passes nothing of den's on.
    run_sleeper(&sb, "nothing", &["--init", "--preserve-fds", "1"], "300");
    let fds = open_fds(init_pid(&sb, "nothing"));
    assert!(
        fds.iter().all(|(n, to)| *n < 3 || !to.contains("signalfd")),
        "{fds:?}"
    );
    assert!(
        fds.len() <= 4 && fds.iter().all(|(n, _)| *n <= 3),
        "{fds:?}"
    );
    sb.den_ok(&["rm", "-f", "plain", "passed", "nothing"]);
}

/// `--security-opt label=disable` (compose files carry it) is accepted and
/// documented as doing nothing (den sets no SELinux labels); an option den
/// does not know is refused with the list of those it does.
#[test]
fn security_opt_label_disable_is_a_documented_no_op() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let help = sb.den_ok(&["run", "--help"]);
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("label=disable is accepted (compose files use it) and does nothing"),
        "{help}"
    );
    let opt = ["--security-opt", "label=disable"];
    let out = sb.den_ok(&[&["run", "--rm"], &opt[..], &["busybox", "echo", "ok"]].concat());
    assert_eq!(out, "ok\n");
    let err = sb.den_fail(
        &[
            "run",
            "--rm",
            "--security-opt",
            "label=bogus",
            "busybox",
            "true",
        ],
        125,
    );
    assert_eq!(
        err,
        "den: unsupported --security-opt `label=bogus`: use seccomp=unconfined, landlock=off, \
         no-new-privileges[=true|false] or label=disable (a no-op)\n"
    );
}

/// A container's command starts with every signal at its default and none
/// blocked, as under Docker, whatever den's own runtime (Rust's ignores
/// SIGPIPE) or the caller (`nohup` ignores SIGHUP) had: so `yes | head -1`
/// ends quietly instead of printing "Broken pipe". The same for `den exec`.
#[test]
fn the_command_starts_with_default_signal_actions() {
    let env = require_env!();
    let clean = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n";
    let probe = "grep -E '^Sig(Blk|Ign)' /proc/self/status; yes | head -1";
    for sub in [true, false] {
        let sb = sandbox(&env, sub);
        sb.den_ok(&["pull", "-q", "busybox"]);
        let bin = env.bin.display();
        let out = sb.sh(&format!("nohup {bin} run --rm busybox sh -c \"{probe}\""));
        assert_eq!(
            (stdout(&out).as_str(), stderr(&out).as_str()),
            (format!("{clean}y\n").as_str(), ""),
            "sub={sub}"
        );
        assert!(out.status.success(), "sub={sub}: {out:?}");
        run_sleeper(&sb, "sig", &[], "60");
        let out = sb.sh(&format!("nohup {bin} exec sig sh -c \"{probe}\""));
        assert_eq!(
            (stdout(&out).as_str(), stderr(&out).as_str()),
            (format!("{clean}y\n").as_str(), ""),
            "exec, sub={sub}"
        );
        sb.den_ok(&["rm", "-f", "sig"]);
    }
}
