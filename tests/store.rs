//! The store is private to its user: another local user reads nothing of
//! it, whichever command made it; a root that someone else owns or that is
//! a symlink is refused; a root of the user's that others could read is
//! tightened with a warning.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown, symlink};
use std::path::{Path, PathBuf};

use den_tests::{TestEnv, UserSandbox, require_base_env, require_env, stderr, stdout, user_ids};

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
        .mode()
        & 0o7777
}

/// Every path under `dir` (itself included), as root sees it.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if !fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return;
    }
    for e in fs::read_dir(dir).unwrap().flatten() {
        walk(&e.path(), out);
    }
}

/// A sandbox whose directories up to den's root others may traverse, so
/// only the modes den gives its own files keep another user out.
fn traversable_sandbox(env: &TestEnv) -> UserSandbox {
    let sb = env.sandbox_sub();
    for d in [sb.dir().to_path_buf(), sb.home()] {
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    }
    sb
}

#[test]
fn another_user_cannot_read_anything_in_the_store() {
    let env = require_env!();
    let sb = traversable_sandbox(&env);
    sb.write_registries_conf(&den_tests::mirror_conf("docker.io", &env.registry));
    // A volume first: before, that made the root with the umask (0755).
    sb.den_ok(&["volume", "create", "vol"]);
    sb.den_ok(&["network", "create", "privnet"]);
    let out = sb.den_ok(&[
        "run",
        "--name",
        "secret",
        "-e",
        "DB_PASSWORD=hunter2",
        "-v",
        "vol:/data",
        "busybox",
        "sh",
        "-c",
        "echo the-output; echo data > /data/f",
    ]);
    assert_eq!(out, "the-output\n");
    let root = sb.root();
    let ctr = fs::read_dir(root.join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("the container's directory");
    for d in [
        root.clone(),
        root.join("containers"),
        ctr.clone(),
        root.join("volumes"),
        root.join("volumes/vol"),
        root.join("networks"),
        root.join("networks/privnet"),
        root.join("blobs"),
        root.join("layers"),
        root.join("tmp"),
    ] {
        assert_eq!(mode(&d), 0o700, "{} is private", d.display());
    }
    for f in ["config.json", "spec.json", "state.json", "ctr.log"] {
        assert_eq!(mode(&ctr.join(f)), 0o600, "{f} is private");
    }
    assert_eq!(mode(&root.join("volumes/vol/meta.json")), 0o600);
    assert_eq!(mode(&root.join("networks/privnet/config.json")), 0o600);

    let mut paths = Vec::new();
    walk(&root, &mut paths);
    let nosub = env.sandbox_nosub();
    let script = "for p; do if out=$(cat -- \"$p\" 2>&1 >/dev/null); then echo \"READ $p\"; else echo \"$out\"; fi; done";
    let mut args = vec!["-c".to_string(), script.to_string(), "sh".to_string()];
    args.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
    let o = nosub.command_as_user(&[], "sh", &args).output().unwrap();
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), paths.len(), "{text}{}", stderr(&o));
    for (line, p) in lines.iter().zip(&paths) {
        // GNU cat quotes names with special characters (`'/…/[': …`).
        let name = p.display().to_string();
        assert!(
            *line == format!("cat: {name}: Permission denied")
                || *line == format!("cat: '{name}': Permission denied"),
            "another user reading {name}: {line}"
        );
    }
    sb.den_ok(&["rm", "secret"]);
}

#[test]
fn a_root_of_the_users_open_to_others_is_tightened_with_a_warning() {
    let env = require_base_env!();
    let sb = env.sandbox_sub();
    let root = sb.root();
    sb.sh_ok(&format!(
        "mkdir -m 755 {0} && mkdir -m 777 {0}/containers",
        root.display()
    ));
    let err = sb.den_fail(&["ps", "-a"], 0);
    assert_eq!(
        err,
        format!(
            "den: warning: the den store directory {0} was mode 0755, open to other users; made it 0700\n\
             den: warning: the den store directory {0}/containers was mode 0777, open to other users; made it 0700\n",
            root.display()
        )
    );
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&root.join("containers")), 0o700);
    assert_eq!(sb.den_fail(&["ps", "-a"], 0), "", "warned once");
}

#[test]
fn a_root_made_by_another_user_is_refused() {
    let env = require_base_env!();
    let sb = env.sandbox_sub();
    let (other, _) = user_ids(&env.user_nosub);
    let shared = sb.dir().join("shared-root");
    fs::create_dir(&shared).unwrap();
    chown(&shared, Some(other), Some(other)).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    let root = shared.to_str().unwrap();
    let want = format!(
        "den: refusing the den store directory {root}: it belongs to uid {other}, not to you (uid {}); remove it, or choose a directory of your own with --root or DEN_ROOT\n",
        sb.uid()
    );
    assert_eq!(sb.den_env_fail(&[("DEN_ROOT", root)], &["ps"], 125), want);
    assert_eq!(
        sb.den_fail(&["--root", root, "volume", "create", "v"], 125),
        want
    );
    assert_eq!(fs::read_dir(&shared).unwrap().count(), 0, "nothing written");

    // A root of the user's whose `containers/` someone else planted.
    let mine = sb.dir().join("mine");
    sb.sh_ok(&format!("mkdir -m 700 {}", mine.display()));
    let planted = mine.join("containers");
    fs::create_dir(&planted).unwrap();
    chown(&planted, Some(other), Some(other)).unwrap();
    fs::set_permissions(&planted, fs::Permissions::from_mode(0o777)).unwrap();
    let err = sb.den_fail(&["--root", mine.to_str().unwrap(), "ps"], 125);
    assert_eq!(
        err,
        format!(
            "den: refusing the den store directory {}: it belongs to uid {other}, not to you (uid {}); remove it, or choose a directory of your own with --root or DEN_ROOT\n",
            planted.display(),
            sb.uid()
        )
    );
}

#[test]
fn a_symlinked_root_is_refused() {
    let env = require_base_env!();
    let sb = env.sandbox_sub();
    let real = sb.dir().join("real");
    let link = sb.dir().join("link");
    sb.sh_ok(&format!("mkdir -m 700 {}", real.display()));
    symlink(&real, &link).unwrap();
    let root = link.to_str().unwrap();
    let want = format!(
        "den: refusing the den store directory {root}: it is a symlink; pass the directory it points to with --root or DEN_ROOT\n"
    );
    assert_eq!(sb.den_env_fail(&[("DEN_ROOT", root)], &["ps"], 125), want);
    assert_eq!(sb.den_fail(&["--root", root, "images"], 125), want);
    assert_eq!(fs::read_dir(&real).unwrap().count(), 0, "nothing written");
}
