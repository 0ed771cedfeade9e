//! User namespace modes of `den run`, as the unprivileged test users:
//! `--userns=keep-id` (den-sub), and single-id mode (den-nosub) with APT
//! installing a local .deb through den's no-op shim for ownership and
//! id-switch calls, which must grant nothing.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::Command;

use den_tests::{TestEnv, UserSandbox, require_env, stderr, stdout};

fn sandbox(env: &TestEnv, sub: bool) -> UserSandbox {
    let sb = if sub {
        env.sandbox_sub()
    } else {
        env.sandbox_nosub()
    };
    sb.write_registries_conf(&den_tests::mirror_conf("docker.io", &env.registry));
    sb
}

/// A directory under the user's home, owned by the user, for a bind volume.
fn volume_dir(sb: &UserSandbox, name: &str) -> PathBuf {
    let dir = sb
        .write_file(format!("{name}/.keep"), "")
        .parent()
        .unwrap()
        .to_path_buf();
    fs::remove_file(dir.join(".keep")).unwrap();
    dir
}

fn containers_left(sb: &UserSandbox) -> usize {
    den_tests::containers_left(sb).len()
}

#[test]
fn keep_id_maps_the_user_to_the_same_id_inside() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    let (uid, gid) = (sb.uid(), sb.gid());
    let data = volume_dir(&sb, "data");
    let vol = format!("{}:/data", data.display());
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "--userns=keep-id",
        "-v",
        &vol,
        "busybox",
        "sh",
        "-c",
        "id -u; id -g; echo $HOME; stat -c %u /etc/passwd; echo mine > /data/by-user",
    ]);
    // The image's root-owned files show as the user's: layers were unpacked
    // with container root = the user (podman behaves the same).
    assert_eq!(out, format!("{uid}\n{gid}\n/\n{uid}\n"));
    let meta = fs::metadata(data.join("by-user")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (uid, gid),
        "owned by the user on the host"
    );
    assert_eq!(
        sb.den_ok(&["run", "--rm", "--userns=keep-id", "busybox", "id", "-u"])
            .trim(),
        uid.to_string()
    );
    // Container 0..U-1 and U+1..65535 come from the range 100000:65536.
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "--userns=keep-id",
        "busybox",
        "cat",
        "/proc/self/uid_map",
    ]);
    let lines: Vec<Vec<u32>> = out
        .lines()
        .map(|l| l.split_whitespace().map(|n| n.parse().unwrap()).collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec![0, 100_000, uid],
            vec![uid, uid, 1],
            vec![uid + 1, 100_000 + uid, 65_535 - uid],
        ],
        "{out}"
    );
    // -u still wins; container root is then a subordinate id.
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "--userns=keep-id",
        "-u",
        "0",
        "-v",
        &vol,
        "busybox",
        "sh",
        "-c",
        "id -u; echo root > /data/by-root",
    ]);
    assert_eq!(out, "0\n");
    assert_eq!(fs::metadata(data.join("by-root")).unwrap().uid(), 100_000);
    assert_eq!(containers_left(&sb), 0, "--rm removed the containers");
}

#[test]
fn keep_id_without_subordinate_ids_is_a_one_line_error() {
    let env = require_env!();
    let sb = sandbox(&env, false);
    let err = sb.den_fail(&["run", "--rm", "--userns=keep-id", "busybox", "true"], 125);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("--userns=keep-id needs subordinate ids") && err.contains("usermod"),
        "{err}"
    );
    assert_eq!(containers_left(&sb), 0, "nothing left behind");
    let err = sb.den_fail(&["run", "--rm", "--userns=bogus", "busybox", "true"], 125);
    assert!(err.contains("unsupported --userns"), "{err}");
}

/// Builds `den-test-hello.deb` with `dpkg-deb` into `out` (as root, so the
/// archive can hold a file owned by uid 42): /usr/share/den-test/hello, a
/// file owned by 42:42, and a postinst that chowns a file to `_apt`.
fn build_deb(work: &Path, out: &Path) -> PathBuf {
    let root = work.join("pkg");
    let share = root.join("usr/share/den-test");
    fs::create_dir_all(root.join("DEBIAN")).unwrap();
    fs::create_dir_all(&share).unwrap();
    fs::write(
        root.join("DEBIAN/control"),
        "Package: den-test-hello\nVersion: 1.0\nArchitecture: all\n\
         Maintainer: den tests <den@example.invalid>\n\
         Description: den test package\n a file, a file owned by 42, a chown to _apt\n",
    )
    .unwrap();
    let postinst = root.join("DEBIAN/postinst");
    fs::write(
        &postinst,
        "#!/bin/sh\nset -e\nchown _apt:nogroup /usr/share/den-test/x\n",
    )
    .unwrap();
    fs::set_permissions(&postinst, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(share.join("hello"), "hello from den-test-hello\n").unwrap();
    fs::write(share.join("x"), "x\n").unwrap();
    fs::write(share.join("owned42"), "42\n").unwrap();
    chown(share.join("owned42"), Some(42), Some(42)).unwrap();
    let deb = out.join("den-test-hello.deb");
    let built = Command::new("dpkg-deb")
        .args(["-Zgzip", "--build"])
        .arg(&root)
        .arg(&deb)
        .output()
        .expect("dpkg-deb (Debian's dpkg package) must be installed");
    assert!(built.status.success(), "dpkg-deb: {}", stderr(&built));
    deb
}

#[test]
fn single_id_mode_apt_installs_a_local_deb() {
    let env = require_env!();
    let sb = sandbox(&env, false);
    let debs = volume_dir(&sb, "debs");
    let deb = build_deb(sb.dir(), &debs);
    chown(&deb, Some(sb.uid()), Some(sb.gid())).unwrap();
    let vol = format!("{}:/debs:ro", debs.display());
    let script = "apt-get install -y /debs/den-test-hello.deb \
                  && cat /usr/share/den-test/hello \
                  && dpkg-query -W -f '${Status}\\n' den-test-hello";
    let out = sb.den(&[
        "run",
        "--rm",
        "-v",
        &vol,
        "debian:bookworm-slim",
        "sh",
        "-c",
        script,
    ]);
    let text = stdout(&out);
    assert!(
        out.status.success()
            && text.contains("hello from den-test-hello\n")
            && text.contains("install ok installed"),
        "apt-get install in single-id mode: {}\n{text}\n{}",
        out.status,
        stderr(&out)
    );
    // Control: without den's APT configuration APT tries its privilege drop
    // to _apt, verifies it, and fails.
    let out = sb.den(&[
        "run",
        "--rm",
        "-e",
        "APT_CONFIG=/nonexistent",
        "-v",
        &vol,
        "debian:bookworm-slim",
        "apt-get",
        "install",
        "-y",
        "/debs/den-test-hello.deb",
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// The no-op shim changes nothing: no owner, no id. It exists only in
/// single-id mode, and den's own `-u` is still refused there.
#[test]
fn single_id_mode_no_ops_grant_nothing() {
    let env = require_env!();
    let sb = sandbox(&env, false);
    let data = volume_dir(&sb, "data");
    let file = sb.write_file("data/f", "host file\n");
    let rw = format!("{}:/data", data.display());
    let ro = format!("{}:/ro:ro", data.display());
    let script = "chown 42:42 /data/f && echo chown-done; stat -c %u:%g /data/f; \
                  setpriv --reuid=42 --regid=42 --clear-groups sh -c 'id -u; id -g'; \
                  chown 42 /ro/f && echo ro-no-op; chown 0:0 /ro/f || echo ro-refused; \
                  echo $APT_CONFIG";
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "-v",
        &rw,
        "-v",
        &ro,
        "debian:bookworm-slim",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(
        out,
        "chown-done\n0:0\n0\n0\nro-no-op\nro-refused\n/run/den/apt.conf\n"
    );
    let meta = fs::metadata(&file).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (sb.uid(), sb.gid()));
    // The user's own APT_CONFIG is kept.
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "-e",
        "APT_CONFIG=/etc/mine",
        "busybox",
        "sh",
        "-c",
        "echo $APT_CONFIG",
    ]);
    assert_eq!(out, "/etc/mine\n");
    // den itself does not pretend: -u to an unmapped id is an error.
    let err = sb.den_fail(&["run", "--rm", "-u", "999", "busybox", "true"], 125);
    assert!(err.contains("subordinate ids"), "{err}");
    // With subordinate ids the calls are real, and there is no shim.
    let sub = sandbox(&env, true);
    let data = volume_dir(&sub, "data");
    let file = sub.write_file("data/f", "host file\n");
    let out = sub.den_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/data", data.display()),
        "busybox",
        "sh",
        "-c",
        "chown 42:42 /data/f; test -e /run/den || echo no-shim; echo \"[$APT_CONFIG]\"",
    ]);
    assert_eq!(out, "no-shim\n[]\n");
    assert_eq!(fs::metadata(&file).unwrap().uid(), 100_000 + 41);
}
