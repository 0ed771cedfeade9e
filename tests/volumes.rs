//! Named volumes and what containers keep alive, as the unprivileged test
//! users: a new volume filled from the image once, `den volume
//! create|ls|inspect|rm|prune`, and images, layers and volumes that a
//! container record still uses surviving `rmi`, `image prune -a` and
//! `volume rm|prune`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use den_tests::{TestEnv, UserSandbox, require_env};

/// 2025-05-20 00:00 UTC: the mtime of every file in the test images.
const IMAGE_MTIME: i64 = 1_747_699_200;

/// Container id n (1..65535) is host id 100000 + n - 1 for den-sub.
fn sub_id(n: u32) -> u32 {
    100_000 + n - 1
}

fn sandbox(env: &TestEnv) -> UserSandbox {
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&den_tests::mirror_conf("docker.io", &env.registry));
    sb
}

/// Deletes a stopped container's record and files (den has no `rm` yet).
fn remove_container(sb: &UserSandbox, name: &str) {
    let dir = sb.root().join("containers");
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        // `.rm-<id>`: a `--rm` container being deleted.
        if path.file_name().unwrap().to_string_lossy().starts_with('.') {
            continue;
        }
        let record: serde_json::Value =
            serde_json::from_slice(&fs::read(path.join("config.json")).unwrap()).unwrap();
        if record["name"] == name {
            sb.den_ok(&["unshare", "rm", "-rf", path.to_str().unwrap()]);
            return;
        }
    }
    panic!("no container named {name}");
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn a_new_volume_is_filled_from_the_image_once() {
    let env = require_env!();
    let sb = sandbox(&env);
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "--hostname",
        "volbox",
        "-v",
        "etc:/etc",
        "debian:bookworm-slim",
        "sh",
        "-c",
        "cat /etc/debian_version; grep volbox /etc/hosts",
    ]);
    assert!(
        out.starts_with("12.") && out.contains("127.0.1.1\tvolbox"),
        "the image's /etc, with den's /etc/hosts mounted over the volume: {out}"
    );
    let data = sb.root().join("volumes/etc/_data");
    let meta = |p: &str| fs::symlink_metadata(data.join(p)).unwrap();
    // Owners shifted like the image's layers: root is the user, gid 42 (shadow) a subordinate id.
    assert_eq!(meta("passwd").uid(), sb.uid());
    let shadow = meta("shadow");
    assert_eq!((shadow.uid(), shadow.gid()), (sb.uid(), sub_id(42)));
    assert_eq!(shadow.permissions().mode() & 0o7777, 0o640);
    assert_eq!(shadow.mtime(), IMAGE_MTIME, "timestamps kept");
    // A symlink is copied as a symlink, never followed.
    assert!(meta("os-release").file_type().is_symlink());
    assert_eq!(
        fs::read_link(data.join("os-release")).unwrap(),
        PathBuf::from("../usr/lib/os-release")
    );
    // The volume is never filled again: changes stay.
    sb.den_ok(&[
        "run",
        "--rm",
        "-v",
        "etc:/etc",
        "debian:bookworm-slim",
        "sh",
        "-c",
        "echo changed > /etc/debian_version; rm /etc/issue",
    ]);
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "-v",
        "etc:/etc",
        "debian:bookworm-slim",
        "sh",
        "-c",
        "cat /etc/debian_version; test -e /etc/issue && echo issue-back; true",
    ]);
    assert_eq!(out, "changed\n");
    // A directory of a subordinate id (mysql, 999) with a setuid file in it;
    // the volume's own directory takes the target's owner and mode.
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "-v",
        "plugins:/usr/lib/mysql/plugin/auth_pam_tool_dir",
        "mariadb:10.11",
        "stat",
        "-c",
        "%u %a",
        "/usr/lib/mysql/plugin/auth_pam_tool_dir",
        "/usr/lib/mysql/plugin/auth_pam_tool_dir/auth_pam_tool",
    ]);
    assert_eq!(out, "999 700\n0 4755\n");
    let data = sb.root().join("volumes/plugins/_data");
    assert_eq!(fs::metadata(&data).unwrap().uid(), sub_id(999));
    // A target the image does not have: an empty volume, no error.
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "-v",
        "fresh:/no/such/dir",
        "busybox",
        "ls",
        "-A",
        "/no/such/dir",
    ]);
    assert_eq!(out, "");
    // Single-id mode: ids the namespace lacks cannot be kept, the copy still works.
    let nosub = env.sandbox_nosub();
    nosub.write_registries_conf(&den_tests::mirror_conf("docker.io", &env.registry));
    let out = nosub.den_ok(&[
        "run",
        "--rm",
        "-v",
        "etc:/etc",
        "debian:bookworm-slim",
        "cat",
        "/etc/debian_version",
    ]);
    assert!(out.starts_with("12."), "{out}");
    let shadow = nosub.root().join("volumes/etc/_data/shadow");
    assert_eq!(fs::metadata(shadow).unwrap().uid(), nosub.uid());
}

#[test]
fn volume_commands_like_docker() {
    let env = require_env!();
    let sb = sandbox(&env);
    assert_eq!(sb.den_ok(&["volume", "create", "data1"]), "data1\n");
    assert_eq!(
        sb.den_ok(&["volume", "create", "data1"]),
        "data1\n",
        "an existing name is kept"
    );
    let random = sb.den_ok(&["volume", "create"]).trim().to_string();
    assert!(
        random.len() == 64 && random.chars().all(|c| c.is_ascii_hexdigit()),
        "{random}"
    );
    let err = sb.den_fail(&["volume", "create", "bad/name"], 125);
    assert!(err.contains("invalid volume name"), "{err}");
    let mut names = ["data1".to_string(), random.clone()];
    names.sort();
    assert_eq!(
        sb.den_ok(&["volume", "ls", "-q"]),
        format!("{}\n", names.join("\n"))
    );
    let table = sb.den_ok(&["volume", "ls"]);
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["DRIVER", "VOLUME", "NAME"]
    );
    assert!(
        lines.any(|l| l.split_whitespace().collect::<Vec<_>>() == ["local", "data1"]),
        "{table}"
    );
    let listed = json(&sb.den_ok(&["volume", "ls", "--format", "json"]));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let inspected = json(&sb.den_ok(&["volume", "inspect", "data1"]));
    let v = &inspected[0];
    assert_eq!(v["Name"], "data1");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"], serde_json::json!({}));
    assert_eq!(
        v["Mountpoint"],
        sb.root().join("volumes/data1/_data").to_str().unwrap()
    );
    assert!(v["CreatedAt"].as_str().unwrap().starts_with("20"), "{v}");
    let err = sb.den_fail(&["volume", "inspect", "data1", "nosuch"], 125);
    assert_eq!(err.trim(), "den: no such volume: nosuch");

    // A stopped container keeps its volume; the files it wrote belong to
    // subordinate ids and a directory of them is closed to the user.
    sb.den_ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "data1:/data",
        "busybox",
        "sh",
        "-c",
        "mkdir /data/d && touch /data/d/x && chown -R 4321:4321 /data/d && chmod 700 /data/d",
    ]);
    let err = sb.den_fail(&["volume", "rm", "data1"], 125);
    assert!(
        err.contains("in use by container writer (") && err.lines().count() == 1,
        "{err}"
    );
    // Nothing half-done: one bad name and no volume is removed.
    let err = sb.den_fail(&["volume", "rm", &random, "nosuch"], 125);
    assert!(err.contains("no such volume: nosuch"), "{err}");
    assert_eq!(sb.den_ok(&["volume", "ls", "-q"]).lines().count(), 2);
    sb.den_ok(&["volume", "rm", "-f", "nosuch"]);
    // A volume made by `volume create` is a named one: only -a prunes it.
    assert_eq!(
        sb.den_ok(&["volume", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    let out = sb.den_ok(&["volume", "prune", "-a", "-f"]);
    assert!(
        out.starts_with(&format!("Deleted Volumes:\n{random}\n"))
            && out.contains("Total reclaimed space: "),
        "{out}"
    );
    assert_eq!(sb.den_ok(&["volume", "ls", "-q"]), "data1\n");
    let df = sb.den_ok(&["system", "df"]);
    let row = |kind: &str| -> Vec<String> {
        df.lines()
            .find(|l| l.starts_with(kind))
            .unwrap_or_else(|| panic!("no {kind} row: {df}"))[kind.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("Local Volumes")[..2], ["1", "1"], "{df}");
    assert_eq!(row("Containers")[0], "1", "{df}");

    remove_container(&sb, "writer");
    assert_eq!(sb.den_ok(&["volume", "rm", "data1"]), "data1\n");
    let left: Vec<_> = fs::read_dir(sb.root().join("volumes"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_eq!(
        sb.den_ok(&["volume", "prune", "-a", "-f"]),
        "Total reclaimed space: 0B\n"
    );
}

#[test]
fn images_and_layers_of_a_container_are_kept() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&["run", "--name", "keeper", "busybox", "true"]);
    let id = sb.den_ok(&["images", "-q", "busybox"]).trim().to_string();
    let layers = || fs::read_dir(sb.root().join("layers")).unwrap().count();
    assert_eq!(layers(), 1);
    let err = sb.den_fail(&["rmi", "busybox"], 125);
    assert!(
        err.contains("image is in use by container keeper (")
            && err.contains("remove the container first"),
        "{err}"
    );
    sb.den_ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(sb.den_ok(&["images", "-q"]).trim(), id);
    assert_eq!(layers(), 1);
    // -f takes only the name; the image and its layers stay.
    assert_eq!(
        sb.den_ok(&["rmi", "-f", "busybox"]),
        "Untagged: busybox:latest\n"
    );
    sb.den_ok(&["image", "prune", "-a", "-f"]);
    let images = json(&sb.den_ok(&["images", "--format", "json"]));
    assert_eq!(images[0]["Dangling"], true, "{images}");
    assert_eq!(layers(), 1);
    // The container can still start from it.
    sb.den_ok(&["run", "--rm", &id, "true"]);
    remove_container(&sb, "keeper");
    sb.den_ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(sb.den_ok(&["images", "-q"]), "");
    assert_eq!(layers(), 0);
}

#[test]
fn prune_keeps_named_volumes_and_asks_first() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&["pull", "-q", "busybox"]);
    sb.den_ok(&[
        "run",
        "--rm",
        "-v",
        "dbdata:/data",
        "busybox",
        "sh",
        "-c",
        "echo precious > /data/db",
    ]);
    // An anonymous volume (`-v /path`), unused once its container is gone.
    sb.den_ok(&[
        "run",
        "--name",
        "anon",
        "-v",
        "/scratch",
        "busybox",
        "touch",
        "/scratch/x",
    ]);
    let names = sb.den_ok(&["volume", "ls", "-q"]);
    let anon: Vec<&str> = names.lines().filter(|n| *n != "dbdata").collect();
    assert_eq!(anon.len(), 1, "{names}");
    let anon = anon[0].to_string();
    assert_eq!(anon.len(), 64, "a random name: {anon}");

    // Without -f and without a terminal: nothing is removed.
    for kind in ["container", "image", "volume", "network", "system"] {
        let err = sb.den_fail(&[kind, "prune"], 125);
        assert_eq!(
            err.trim(),
            format!(
                "den: {kind} prune has been cancelled: standard input is not a terminal to ask on; use -f to prune without asking"
            )
        );
    }
    assert_eq!(sb.den_ok(&["ps", "-a", "-q"]).lines().count(), 1);

    // On a terminal it asks; anything but y/yes cancels.
    let den = env.bin.display();
    let out = sb.sh(&format!(
        "(sleep 2; printf 'n\\r'; sleep 2) | script -qec '{den} volume prune; echo rc=$?' /dev/null"
    ));
    let text = den_tests::stdout(&out);
    assert!(
        text.contains(
            "WARNING! This will remove anonymous local volumes not used by at least one container."
        ) && text.contains("Are you sure you want to continue? [y/N]")
            && text.contains("volume prune has been cancelled")
            && text.trim_end().ends_with("rc=125"),
        "{text}"
    );

    sb.den_ok(&["system", "prune", "-f", "--volumes"]);
    assert_eq!(
        sb.den_ok(&["ps", "-a", "-q"]),
        "",
        "the stopped container went"
    );
    assert_eq!(
        sb.den_ok(&["volume", "ls", "-q"]),
        "dbdata\n",
        "the anonymous one went"
    );
    let out = sb.den_ok(&["volume", "prune", "-f"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    let kept = sb.den_ok(&[
        "run",
        "--rm",
        "-v",
        "dbdata:/data",
        "busybox",
        "cat",
        "/data/db",
    ]);
    assert_eq!(kept, "precious\n");
    // -a takes named volumes too.
    assert!(
        sb.den_ok(&["volume", "prune", "-a", "-f"])
            .contains("dbdata")
    );
    assert_eq!(sb.den_ok(&["volume", "ls", "-q"]), "");
}

/// Issue 8, item 2: filling a volume never follows a symlink that another
/// container sharing the volume put in place of a fresh entry, and a volume
/// is filled only once: a second start of the same container (whose spec
/// still says "fill") while the volume is empty copies nothing, so the
/// swap below would have made den chmod the user's own file.
#[test]
fn filling_a_volume_never_follows_a_swapped_symlink() {
    let env = require_env!();
    let sb = sandbox(&env);
    let victim = sb.write_file("victim.txt", "the user's own file\n");
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
    // First start: /usr/lib of the python image (thousands of files
    // under python3.11/) fills the new volume.
    sb.den_ok(&[
        "run",
        "--name",
        "filler",
        "-v",
        "shared:/usr/lib",
        "python:3.11-slim",
        "true",
    ]);
    let data = sb.root().join("volumes/shared/_data");
    assert!(data.join("python3.11/os.py").exists(), "first fill");
    sb.den_ok(&[
        "run",
        "--rm",
        "-v",
        "shared:/v",
        "busybox",
        "sh",
        "-c",
        "rm -rf /v/* && test -z \"$(ls -A /v)\"",
    ]);
    // The attacker: as soon as a fill has started copying into python3.11/,
    // move that directory away and leave a symlink to the victim in its
    // place, before den sets the directory's mode.
    let swap = format!(
        "until [ -n \"$(ls -A /v/python3.11 2>/dev/null)\" ]; do :; done; \
         mv /v/python3.11 /v/moved && ln -s {} /v/python3.11 && echo swapped; sleep 300",
        victim.display()
    );
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "swapper",
        "-v",
        "shared:/v",
        "busybox",
        "sh",
        "-c",
        &swap,
    ]);
    // Not filled again, the empty volume hides the image's /usr/lib, so
    // the command cannot run; before, the start filled it (through the
    // symlink) and ran.
    let out = sb.den(&["start", "filler"]);
    let err = den_tests::stderr(&out);
    assert!(
        err.contains("/usr/bin/true: no such file or directory"),
        "the second start: {err}"
    );
    let mode = fs::metadata(&victim).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        mode, 0o600,
        "the host file's mode was changed through the volume"
    );
    assert_eq!(
        fs::read_dir(&data).unwrap().count(),
        0,
        "a second start filled the volume again"
    );
    sb.den_ok(&["rm", "-f", "swapper", "filler"]);
}
