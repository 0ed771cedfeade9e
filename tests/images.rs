//! Images end to end: pull / store / images / rmi / save / load / push /
//! login, run as the unprivileged test users against real registries on
//! loopback (plain, basic auth, token auth).

mod fake_registry;
mod oci_layout;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use den_tests::{
    insecure_conf, inspect_image, mirror_conf, require_env, require_shared, stderr, stdout,
};
use fake_registry::FakeRegistry;
use oci_layout::{Entry, tar, write_layout, write_multiarch_layout};

/// Every image `tests/run.sh` pushes, as `library/NAME:TAG`.
const ALL_IMAGES: [&str; 7] = [
    "busybox:latest",
    "debian:bookworm-slim",
    "python:3.11-slim",
    "mariadb:10.11",
    "busybox:1.38.0-musl",
    "busybox:1.38.0-glibc",
    "hello-world:latest",
];

fn count_entries(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn pulls_every_test_image_and_keeps_owners_through_the_user_namespace() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&env.insecure_all());
    for name in ALL_IMAGES {
        let image = env.image(name);
        let out = sb.den_ok(&["pull", "-q", &image]);
        assert_eq!(out.trim(), image, "pull -q prints the full name");
    }
    let list = sb.den_ok(&["images"]);
    assert!(list.starts_with("REPOSITORY"), "{list}");
    for name in ALL_IMAGES {
        let (repo, tag) = name.split_once(':').unwrap();
        let repo = format!("{}/library/{repo}", env.registry);
        assert!(
            list.lines()
                .any(|l| l.starts_with(&repo) && l.split_whitespace().nth(1) == Some(tag)),
            "{name} missing in\n{list}"
        );
    }
    // mariadb's datadir belongs to uid 999 in the image: on the host it is the
    // matching subordinate id (container 1 is the range start).
    let maria = inspect_image(&sb, &env.image("mariadb:10.11"));
    let top = maria["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let datadir = sb
        .root()
        .join("layers")
        .join(&top[7..])
        .join("diff/var/lib/mysql");
    let meta = fs::metadata(&datadir).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (100_000 + 998, 100_000 + 998),
        "{}",
        datadir.display()
    );
    // setuid bits survive unpacking (su in debian's layer is setuid root).
    let debian = inspect_image(&sb, &env.image("debian:bookworm-slim"));
    let base = debian["RootFS"]["Layers"][0].as_str().unwrap().to_string();
    let su = fs::metadata(
        sb.root()
            .join("layers")
            .join(&base[7..])
            .join("diff/usr/bin/su"),
    )
    .unwrap();
    assert_eq!(su.mode() & 0o4000, 0o4000, "su lost its setuid bit");
    assert_eq!(
        su.uid(),
        sb.uid(),
        "root in the image is the user on the host"
    );
    let json: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["images", "--format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), ALL_IMAGES.len());
    let ids = sb.den_ok(&["images", "-q"]);
    assert!(ids.lines().all(|l| l.len() == 12), "{ids}");
}

#[test]
fn single_id_user_pulls_and_owns_every_file() {
    let env = require_env!();
    let sb = env.sandbox_nosub();
    sb.write_registries_conf(&env.insecure_all());
    sb.den_ok(&["pull", "-q", &env.image("mariadb:10.11")]);
    let foreign = sb.sh_ok(&format!(
        "find {} ! -user {} | head -3",
        sb.root().join("layers").display(),
        sb.uid()
    ));
    assert_eq!(
        foreign.trim(),
        "",
        "single-id mode leaves every file to the user"
    );
    let maria = inspect_image(&sb, &env.image("mariadb:10.11"));
    assert_eq!(maria["Config"]["User"].as_str().unwrap_or(""), "");
}

#[test]
fn mirror_serves_docker_hub_names() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&mirror_conf("docker.io", &env.registry));
    let out = sb.den_ok(&["pull", "busybox"]);
    assert_eq!(out.trim(), "docker.io/library/busybox:latest");
    let list = sb.den_ok(&["images"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("busybox ") && l.contains("latest")),
        "{list}"
    );
    let img = inspect_image(&sb, "busybox");
    assert_eq!(img["RepoTags"][0], "busybox:latest");
    // The same image by digest, through the mirror.
    let digest = img["RepoDigests"][0]
        .as_str()
        .unwrap()
        .rsplit_once('@')
        .unwrap()
        .1
        .to_string();
    sb.den_ok(&["pull", "-q", &format!("busybox@{digest}")]);
}

#[test]
fn basic_auth_needs_login_and_logout_forgets() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&env.insecure_all());
    let image = format!("{}/library/busybox:latest", env.registry_basic);
    let err = sb.den_fail(&["pull", &image], 125);
    assert!(
        err.contains("unauthorized") && err.contains("den login"),
        "{err}"
    );
    let err = sb.den_fail(
        &[
            "login",
            "-u",
            env.creds_user(),
            "-p",
            "wrong",
            &env.registry_basic,
        ],
        125,
    );
    assert!(err.contains("unauthorized"), "{err}");
    assert!(
        !sb.config_dir().join("auth.json").exists(),
        "a failed login stores nothing"
    );
    let script = format!(
        "echo {} | {} login -u {} --password-stdin {}",
        env.creds_password(),
        env.bin.display(),
        env.creds_user(),
        env.registry_basic
    );
    let out = sb.sh_ok(&script);
    assert!(out.contains("Login Succeeded"), "{out}");
    let auth = sb.config_dir().join("auth.json");
    assert_eq!(
        fs::metadata(&auth).unwrap().permissions().mode() & 0o777,
        0o600
    );
    sb.den_ok(&["pull", "-q", &image]);
    sb.den_ok(&["logout", &env.registry_basic]);
    sb.den_ok(&["rmi", &image]);
    let err = sb.den_fail(&["pull", &image], 125);
    assert!(err.contains("unauthorized"), "{err}");
    let err = sb.den_fail(&["logout", &env.registry_basic], 125);
    assert!(err.contains("not logged in"), "{err}");
}

#[test]
fn podman_auth_file_is_read() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&env.insecure_all());
    let auth = serde_json::json!({"auths": {&env.registry_basic: {"auth": base64(&env.creds)}}});
    sb.write_file(
        ".config/containers/auth.json",
        serde_json::to_vec(&auth).unwrap(),
    );
    sb.den_ok(&[
        "pull",
        "-q",
        &format!("{}/library/hello-world:latest", env.registry_basic),
    ]);
}

fn base64(s: &str) -> String {
    let out = Command::new("base64")
        .arg("-w0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    out.stdin.as_ref().unwrap().write_all(s.as_bytes()).unwrap();
    String::from_utf8(out.wait_with_output().unwrap().stdout).unwrap()
}

#[test]
fn token_auth_pulls_anonymously_and_pushes_with_credentials() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&env.insecure_all());
    let image = format!("{}/library/python:3.11-slim", env.registry_token);
    sb.den_ok(&["pull", "-q", &image]);
    let dest = format!(
        "{}/den-test/python:{}",
        env.registry_token,
        std::process::id()
    );
    let err = sb.den_fail(&["push", &image, &dest], 125);
    assert!(
        err.contains("unauthorized"),
        "anonymous tokens cannot push: {err}"
    );
    sb.den_ok(&[
        "login",
        "-u",
        env.creds_user(),
        "-p",
        env.creds_password(),
        &env.registry_token,
    ]);
    sb.den_ok(&["push", &image, &dest]);
    let fresh = env.sandbox_nosub();
    fresh.write_registries_conf(&env.insecure_all());
    fresh.den_ok(&["pull", "-q", &dest]);
    assert_eq!(
        inspect_image(&fresh, &dest)["Id"],
        inspect_image(&sb, &image)["Id"]
    );
}

#[test]
fn layers_are_shared_between_images() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&env.insecure_all());
    sb.den_ok(&["pull", &env.image("debian:bookworm-slim")]);
    let out = sb.den(&["pull", &env.image("python:3.11-slim")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("Already exists"),
        "the debian layer is reused: {err}"
    );
    assert_eq!(
        err.matches("Downloading").count(),
        2,
        "only python's config and layer are fetched: {err}"
    );
    assert_eq!(count_entries(&sb.root().join("layers")), 2);
    sb.den_ok(&["rmi", &env.image("python:3.11-slim")]);
    assert_eq!(
        count_entries(&sb.root().join("layers")),
        1,
        "rmi keeps the layer debian still uses"
    );
    sb.den_ok(&["rmi", &env.image("debian:bookworm-slim")]);
    assert_eq!(count_entries(&sb.root().join("layers")), 0);
    assert_eq!(count_entries(&sb.root().join("blobs/sha256")), 0);
    let leftovers = sb.sh_ok(&format!("ls {}", sb.root().join("tmp").display()));
    assert!(
        !leftovers.contains("trash-") && !leftovers.contains("unpack-"),
        "{leftovers}"
    );
}

#[test]
fn concurrent_pulls_of_one_image_agree() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&env.insecure_all());
    let image = env.image("python:3.11-slim");
    let children: Vec<_> = (0..3)
        .map(|_| {
            sb.den_cmd(&[], &["pull", "-q", &image])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(count_entries(&sb.root().join("layers")), 2);
    let json: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["images", "--format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
}

#[test]
fn pull_killed_midway_then_repeated() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&env.insecure_all());
    let image = env.image("mariadb:10.11");
    for delay_ms in [60, 400] {
        let mut child = sb
            .den_cmd(&[], &["pull", "-q", &image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        // Kill den and its unpack helpers: the whole process group, at once.
        Command::new("kill")
            .args(["-9", "--", &format!("-{}", child.id())])
            .status()
            .unwrap();
        child.wait().unwrap();
        let list = sb.den_ok(&["images", "--format", "json"]);
        let listed: serde_json::Value = serde_json::from_str(&list).unwrap();
        // Either the pull finished before the kill, or the image is absent: never half of it.
        for img in listed.as_array().unwrap() {
            let layers = inspect_image(&sb, img["Id"].as_str().unwrap())["RootFS"]["Layers"]
                .as_array()
                .unwrap()
                .clone();
            for l in layers {
                assert!(
                    sb.root()
                        .join("layers")
                        .join(&l.as_str().unwrap()[7..])
                        .join("meta.json")
                        .exists()
                );
            }
        }
    }
    sb.den_ok(&["pull", "-q", &image]);
    sb.den_ok(&["image", "inspect", &image]);
    sb.den_ok(&["rmi", &image]);
    assert_eq!(count_entries(&sb.root().join("layers")), 0);
    let tmp = sb.sh_ok(&format!("ls {}", sb.root().join("tmp").display()));
    assert!(!tmp.contains("unpack-") && !tmp.contains("trash-"), "{tmp}");
}

#[test]
fn tag_and_rmi_follow_docker() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&env.insecure_all());
    let image = env.image("busybox:latest");
    sb.den_ok(&["pull", "-q", &image]);
    sb.den_ok(&["tag", &image, "mybox:v1"]);
    let list = sb.den_ok(&["images", "mybox"]);
    assert!(list.contains("mybox") && list.contains("v1"), "{list}");
    let id = inspect_image(&sb, "mybox:v1")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let err = sb.den_fail(&["rmi", &id[7..19]], 125);
    assert!(err.contains("2 names"), "{err}");
    let out = sb.den_ok(&["rmi", "mybox:v1"]);
    assert_eq!(out.trim(), "Untagged: mybox:v1");
    assert_eq!(count_entries(&sb.root().join("layers")), 1);
    let out = sb.den_ok(&["rmi", &id[7..15]]);
    assert!(out.contains("Deleted: sha256:"), "{out}");
    let err = sb.den_fail(&["rmi", "nosuch:image"], 125);
    assert!(err.contains("no such image"), "{err}");
    sb.den_ok(&["rmi", "-f", "nosuch:image"]);
}

#[test]
fn image_prune_removes_untagged_images() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&env.insecure_all());
    let musl = env.image("busybox:1.38.0-musl");
    let glibc = env.image("busybox:1.38.0-glibc");
    sb.den_ok(&["pull", "-q", &musl]);
    sb.den_ok(&["pull", "-q", &glibc]);
    sb.den_ok(&["tag", &musl, "mybox:1"]);
    sb.den_ok(&["rmi", &musl]);
    // Taking its last name away leaves the musl image untagged ("dangling").
    sb.den_ok(&["tag", &glibc, "mybox:1"]);
    let list = sb.den_ok(&["images"]);
    assert!(list.lines().any(|l| l.starts_with("<none>")), "{list}");
    let out = sb.den_ok(&["image", "prune", "-f"]);
    assert!(
        out.contains("deleted: sha256:") && out.contains("Total reclaimed space"),
        "{out}"
    );
    assert_eq!(sb.den_ok(&["images", "-q"]).lines().count(), 1);
    assert_eq!(count_entries(&sb.root().join("layers")), 1);
    sb.den_ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(sb.den_ok(&["images", "-q"]).trim(), "");
    assert_eq!(count_entries(&sb.root().join("layers")), 0);
}

#[test]
fn save_rmi_load_round_trip_keeps_digests() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&env.insecure_all());
    let a = env.image("busybox:latest");
    let b = env.image("python:3.11-slim");
    sb.den_ok(&["pull", "-q", &a]);
    sb.den_ok(&["pull", "-q", &b]);
    let before = [inspect_image(&sb, &a), inspect_image(&sb, &b)];
    let archive = sb.dir().join("home/images.tar");
    sb.den_ok(&["save", "-o", archive.to_str().unwrap(), &a, &b]);
    let listing = sb.sh_ok(&format!("tar -tf {}", archive.display()));
    for f in ["oci-layout", "index.json", "manifest.json"] {
        assert!(listing.lines().any(|l| l == f), "{f} missing: {listing}");
    }
    sb.den_ok(&["rmi", &a, &b]);
    assert_eq!(sb.den_ok(&["images", "-q"]).trim(), "");
    let out = sb.den_ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains("Loaded image: "), "{out}");
    for (img, old) in [&a, &b].iter().zip(&before) {
        let new = inspect_image(&sb, img);
        for key in ["Id", "RootFS", "Layers", "Manifest", "Size"] {
            assert_eq!(new[key], old[key], "{key} of {img}");
        }
    }
    // The loaded image pushes with the digest it was pulled with.
    let dest = format!("{}/den-test/roundtrip:{}", env.registry, std::process::id());
    sb.den_ok(&["push", &a, &dest]);
    let fresh = env.sandbox_nosub();
    fresh.write_registries_conf(&env.insecure_all());
    fresh.den_ok(&["pull", "-q", &dest]);
    assert_eq!(
        inspect_image(&fresh, &dest)["Manifest"],
        before[0]["Manifest"]
    );
}

#[test]
fn loads_the_shared_oci_layout_directory() {
    let env = require_env!();
    let shared = require_shared!(env);
    let sb = env.sandbox_nosub();
    let out = sb.den_ok(&["load", "-i", shared.join("images/oci").to_str().unwrap()]);
    for name in [
        "busybox:latest",
        "debian:bookworm-slim",
        "python:3.11-slim",
        "mariadb:10.11",
    ] {
        assert!(out.contains(&format!("Loaded image: {name}")), "{out}");
    }
    let out = sb.den_ok(&[
        "load",
        "-i",
        shared
            .join("real-rootfs/busybox-oci/latest/musl/amd64")
            .to_str()
            .unwrap(),
    ]);
    assert!(out.contains("busybox:1.38.0-musl"), "{out}");
    // hello-world's layout carries an uncompressed layer.
    let out = sb.den_ok(&[
        "load",
        "-i",
        shared
            .join("real-rootfs/hello-world-oci/amd64/oci")
            .to_str()
            .unwrap(),
    ]);
    assert!(out.contains("Loaded image"), "{out}");
    let id = out.trim().rsplit(' ').next().unwrap().to_string();
    let hello = inspect_image(&sb, &id);
    assert_eq!(
        hello["Layers"][0]["MediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert!(hello["Size"].as_u64().unwrap() > 0);
}

/// Each hostile layer is refused with a message naming the entry, and
/// leaves nothing behind: no image, no layer, nothing outside the store.
#[test]
fn hostile_layers_are_refused_and_leave_nothing() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    let outside = sb.dir().join("home/outside");
    sb.sh_ok(&format!(
        "mkdir -p {o} && echo original > {o}/victim",
        o = outside.display()
    ));
    // Layers are unpacked in ROOT/tmp/unpack-ID/diff, six levels below home.
    let up = "../../../../../..";
    let dotdot = format!("{up}/outside/victim");
    let abs = format!("{}/victim", outside.display());
    let outdir = outside.display().to_string();
    let wh = format!("{up}/outside/.wh.victim");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot", tar(&[Entry::File(&dotdot, b"pwned")])),
        ("absolute", tar(&[Entry::File(&abs, b"pwned")])),
        (
            "symlink-parent",
            tar(&[
                Entry::Symlink("a", &outdir),
                Entry::File("a/victim", b"pwned"),
            ]),
        ),
        (
            "symlink-dotdot",
            tar(&[
                Entry::Dir("d"),
                Entry::Symlink("d/up", &format!("../{up}/outside")),
                Entry::File("d/up/victim", b"pwned"),
            ]),
        ),
        ("hardlink-outside", tar(&[Entry::Hardlink("h", &abs)])),
        ("hardlink-dotdot", tar(&[Entry::Hardlink("h", &dotdot)])),
        (
            "hardlink-via-symlink",
            tar(&[
                Entry::Symlink("s", &outdir),
                Entry::Hardlink("h", "s/victim"),
            ]),
        ),
        ("whiteout-outside", tar(&[Entry::File(&wh, b"")])),
    ];
    for (name, layer) in cases {
        let layout = sb.dir().join(format!("home/{name}"));
        write_layout(&layout, &format!("hostile/{name}:1"), &[layer]);
        Command::new("chown")
            .args(["-R", &format!("{}:{}", sb.uid(), sb.gid())])
            .arg(&layout)
            .status()
            .unwrap();
        let err = sb.den_fail(&["load", "-i", layout.to_str().unwrap()], 125);
        assert!(
            err.lines().count() == 1 && err.contains("layer"),
            "{name}: {err}"
        );
        assert_eq!(
            fs::read_to_string(outside.join("victim")).unwrap(),
            "original\n",
            "{name} changed the victim"
        );
        assert_eq!(
            count_entries(&outside),
            1,
            "{name} created something outside"
        );
        assert_eq!(
            sb.den_ok(&["images", "-q"]).trim(),
            "",
            "{name} left an image"
        );
        assert_eq!(
            count_entries(&sb.root().join("layers")),
            0,
            "{name} left a layer"
        );
        let tmp = sb.sh_ok(&format!("ls {}", sb.root().join("tmp").display()));
        assert!(!tmp.contains("unpack-"), "{name} left an unpack dir: {tmp}");
    }
    // A well-formed layer with the same shapes inside the layer loads fine.
    let layout = sb.dir().join("home/benign");
    let ok = tar(&[
        Entry::Dir("etc"),
        Entry::File("etc/f", b"x"),
        Entry::Symlink("l", "/etc/f"),
        Entry::Hardlink("etc/h", "etc/f"),
        Entry::File(".wh.gone", b""),
    ]);
    write_layout(&layout, "benign/img:1", &[ok]);
    Command::new("chown")
        .args(["-R", &format!("{}:{}", sb.uid(), sb.gid())])
        .arg(&layout)
        .status()
        .unwrap();
    let out = sb.den_ok(&["load", "-i", layout.to_str().unwrap()]);
    assert!(out.contains("benign/img:1"), "{out}");
}

#[test]
fn errors_are_one_line_with_exit_125() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&insecure_conf(&[&env.registry, "127.0.0.1:1"]));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["pull".into(), env.image("busybox:nosuchtag")],
            "not found",
        ),
        (
            vec![
                "pull".into(),
                format!("{}/library/nosuchrepo:1", env.registry),
            ],
            "not found",
        ),
        (
            vec!["pull".into(), "127.0.0.1:1/x:1".into()],
            "cannot reach registry 127.0.0.1:1",
        ),
        (
            vec![
                "pull".into(),
                "--tls-verify=true".into(),
                format!("{}/library/busybox:latest", env.registry_basic),
            ],
            "--tls-verify=false",
        ),
        (
            vec!["pull".into(), "Bad_Name".into()],
            "invalid image reference",
        ),
        (
            vec![
                "pull".into(),
                "--platform".into(),
                "linux".into(),
                env.image("busybox:latest"),
            ],
            "invalid platform",
        ),
        (
            vec!["image".into(), "inspect".into(), "nosuch".into()],
            "no such image",
        ),
        (
            vec!["load".into(), "-i".into(), "/nonexistent.tar".into()],
            "/nonexistent.tar",
        ),
        (vec!["frobnicate".into()], "unrecognized subcommand"),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sb.den(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want `{want}` in: {err}");
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
    assert_eq!(
        count_entries(&sb.root().join("blobs/sha256")),
        0,
        "failed pulls store nothing"
    );
}

#[test]
fn system_check_and_df() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    let out = sb.den_ok(&["system", "check"]);
    for item in [
        "user namespaces",
        "subordinate ids",
        "newuidmap",
        "overlay",
        "pasta",
        "landlock",
        "seccomp",
        "cgroup",
    ] {
        assert!(
            out.to_lowercase().contains(item),
            "{item} missing in\n{out}"
        );
    }
    let nosub = env.sandbox_nosub();
    let out = nosub.den(&["system", "check"]);
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.contains("subordinate ids") && !l.starts_with("ok")),
        "{text}"
    );
    let df = sb.den_ok(&["system", "df"]);
    assert!(df.starts_with("TYPE") && df.contains("Images"), "{df}");
}

/// A multi-arch index pushed to the registry: den picks linux/amd64 by
/// default and another platform with --platform; zstd layers unpack.
#[test]
fn multiarch_index_platform_choice_and_zstd_layers() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&env.insecure_all());
    let layout = sb.dir().join("home/multi");
    let tag = format!("{}", std::process::id());
    let configs = write_multiarch_layout(
        &layout,
        &tag,
        &[
            ("arm64", vec![tar(&[Entry::File("arch", b"arm64")])], true),
            ("amd64", vec![tar(&[Entry::File("arch", b"amd64")])], false),
        ],
    );
    let dest = format!("{}/den-test/multi:{tag}", env.registry);
    let copy = Command::new("skopeo")
        .args(["copy", "-q", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{dest}"))
        .env("TMPDIR", sb.dir())
        .output()
        .unwrap();
    assert!(copy.status.success(), "skopeo: {}", stderr(&copy));
    sb.den_ok(&["pull", "-q", &dest]);
    assert_eq!(inspect_image(&sb, &dest)["Id"], configs[1].as_str());
    sb.den_ok(&["pull", "-q", "--platform", "linux/arm64", &dest]);
    let arm = inspect_image(&sb, &dest);
    assert_eq!(arm["Id"], configs[0].as_str());
    assert_eq!(arm["Architecture"], "arm64");
    assert_eq!(
        arm["Layers"][0]["MediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let layer = arm["RootFS"]["Layers"][0].as_str().unwrap();
    assert_eq!(
        fs::read_to_string(sb.root().join("layers").join(&layer[7..]).join("diff/arch")).unwrap(),
        "arm64"
    );
    let err = sb.den_fail(&["pull", "--platform", "linux/s390x", &dest], 125);
    assert!(err.contains("linux/arm64, linux/amd64"), "{err}");
}

/// A docker-archive tar (manifest.json, no index.json) loads too.
#[test]
fn loads_docker_archive() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&env.insecure_all());
    let image = env.image("busybox:latest");
    sb.den_ok(&["pull", "-q", &image]);
    let before = inspect_image(&sb, &image);
    let archive = sb.dir().join("home/docker.tar");
    sb.den_ok(&["save", "-o", archive.to_str().unwrap(), &image]);
    // Repack without the OCI files (GNU tar --delete mangles unblocked archives).
    sb.sh_ok(&format!("cd {h} && mkdir x && tar -xf docker.tar -C x && tar -cf docker.tar -C x manifest.json blobs", h = sb.home().display()));
    sb.den_ok(&["rmi", &image]);
    let out = sb.den_ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains(&format!("Loaded image: {image}")), "{out}");
    let after = inspect_image(&sb, &image);
    assert_eq!(after["Id"], before["Id"]);
    assert_eq!(after["RootFS"], before["RootFS"]);
}

/// A registry that describes a 10-byte blob and streams 64 MB is cut off at
/// the descriptor's size with one line naming the registry and the digest.
/// (No registries.toml: a loopback registry is plain HTTP by default.)
#[test]
fn blob_longer_than_its_descriptor_is_cut_off() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    let fake = FakeRegistry::start("bigblob");
    let image = fake.image();
    let err = sb.den_fail(&["pull", "-q", &image], 125);
    let blob = oci_layout::sha(b"0123456789");
    assert_eq!(
        err,
        format!(
            "den: pulling {image}: blob {blob} from registry {} is longer than the 10 bytes \
             its descriptor gives: refused\n",
            fake.a
        )
    );
    let streamed = fake.wait_for(|r| r.get("streamed").is_some())["streamed"]
        .as_u64()
        .unwrap();
    assert!(
        streamed < 32 << 20,
        "den read on: {streamed} bytes were sent"
    );
    let hex = &blob["sha256:".len()..];
    assert!(!sb.root().join("blobs/sha256").join(hex).exists());
    let partial = sb.root().join(format!("tmp/blob-{hex}.partial"));
    assert!(!partial.exists(), "the over-long download is not kept");
}

/// A 64 MB manifest is refused at 4 MiB with one line naming the registry.
#[test]
fn oversized_manifest_is_refused() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    let fake = FakeRegistry::start("bigmanifest");
    let image = fake.image();
    let err = sb.den_fail(&["pull", "-q", &image], 125);
    assert_eq!(
        err,
        format!(
            "den: pulling {image}: manifest t/img:1 from registry {} is larger than 4 MiB: \
             refused (den reads manifests and image configs up to 4 MiB, as containerd does)\n",
            fake.a
        )
    );
}

/// Basic credentials never go to a plain-HTTP token realm on another host,
/// nor with a push to an upload location on another host.
#[test]
fn credentials_never_reach_another_host() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    let fake = FakeRegistry::start("realm");
    let image = fake.image();
    sb.den_fail(&["pull", "-q", "--creds", "u:secret", &image], 125);
    let token = fake.wait_for(|r| r["side"] == "B");
    assert_eq!(
        token["auth"],
        serde_json::Value::Null,
        "the realm on {} got credentials: {:?}",
        fake.b,
        fake.requests()
    );

    let fake = FakeRegistry::start("push");
    let layout = sb.dir().join("home/pushme");
    write_layout(&layout, "pushme/img:1", &[tar(&[Entry::File("f", b"x")])]);
    Command::new("chown")
        .args(["-R", &format!("{}:{}", sb.uid(), sb.gid())])
        .arg(&layout)
        .status()
        .unwrap();
    sb.den_ok(&["load", "-i", layout.to_str().unwrap()]);
    let dest = fake.image();
    sb.den(&["push", "--creds", "u:secret", "pushme/img:1", &dest]);
    let put = fake.wait_for(|r| r["side"] == "B" && r["method"] == "PUT");
    assert_eq!(
        put["auth"],
        serde_json::Value::Null,
        "{:?}",
        fake.requests()
    );
    let own = fake.requests();
    assert!(
        own.iter().any(
            |r| r["side"] == "A" && r["auth"].as_str().is_some_and(|a| a.starts_with("Basic "))
        ),
        "the registry itself got the credentials: {own:?}"
    );
}

/// A registry on loopback is plain HTTP without any registries.toml, as in
/// Docker; a name that does not resolve gets a DNS hint, not the TLS one.
#[test]
fn loopback_registry_needs_no_configuration_and_hints_fit_the_failure() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    assert!(!sb.config_dir().join("registries.toml").exists());
    sb.den_ok(&["pull", "-q", &env.image("busybox:latest")]);
    let err = sb.den_fail(&["pull", "-q", "nonexistent.invalid/x"], 125);
    assert!(!err.contains("tls-verify"), "{err}");
    assert!(err.contains("the name does not resolve"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// An image whose /etc/passwd is a symlink to /dev/zero: `-u NAME` fails at
/// once with one line saying why, instead of reading zeros forever.
#[test]
fn passwd_symlink_to_dev_zero_is_refused_at_once() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    let layout = sb.dir().join("home/zero");
    let layer = tar(&[Entry::Dir("etc"), Entry::Symlink("etc/passwd", "/dev/zero")]);
    write_layout(&layout, "evil/passwd:1", &[layer]);
    Command::new("chown")
        .args(["-R", &format!("{}:{}", sb.uid(), sb.gid())])
        .arg(&layout)
        .status()
        .unwrap();
    sb.den_ok(&["load", "-i", layout.to_str().unwrap()]);
    let start = std::time::Instant::now();
    let err = sb.den_fail(
        &["run", "--rm", "-u", "someone", "evil/passwd:1", "true"],
        125,
    );
    assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
    // The supervisor's prefix ("the container process failed before it could
    // report: ") is issue 8's last "also harden" point, not this check's.
    assert!(
        err.starts_with("den: ") && err.lines().count() == 1,
        "{err}"
    );
    assert!(
        err.ends_with(
            "/etc/passwd in the image is a symlink or lies under one: den reads it only as a \
             regular file of at most 4 MiB, not through a symlink; fix the image or use a \
             numeric -u UID[:GID]\n"
        ),
        "{err}"
    );
}

/// `den load -i DIR` whose index.json is a symlink to /dev/zero is refused
/// at once with one line naming the file, not read without end.
#[test]
fn load_dir_refuses_symlinked_index_at_once() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    let layout = sb.dir().join("home/zeroindex");
    write_layout(&layout, "evil/index:1", &[tar(&[Entry::File("f", b"x")])]);
    fs::remove_file(layout.join("index.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", layout.join("index.json")).unwrap();
    Command::new("chown")
        .args(["-hR", &format!("{}:{}", sb.uid(), sb.gid())])
        .arg(&layout)
        .status()
        .unwrap();
    let start = std::time::Instant::now();
    let err = sb.den_fail(&["load", "-i", layout.to_str().unwrap()], 125);
    assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
    assert_eq!(
        err,
        format!(
            "den: loading images: {}/index.json: is a symlink (or lies under one): den follows no symlinks \
             inside an OCI layout\n",
            layout.display()
        )
    );
    assert_eq!(sb.den_ok(&["images", "-q"]).trim(), "");
}

/// Temp files record their owner (pid and start time): the next store
/// command removes those whose owner is gone and keeps a live one's.
#[test]
fn stale_temp_files_are_swept_by_the_next_command() {
    let env = require_env!();
    let sb = env.sandbox_sub();
    sb.den_ok(&["images", "-q"]);
    let start = |pid: u32| -> String {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 1..];
        rest.split_whitespace().nth(19).unwrap().to_string()
    };
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    let dead_start = start(dead_pid);
    dead.wait().unwrap();
    let mut live = Command::new("sleep").arg("60").spawn().unwrap();
    let live_suffix = format!("{}-{}", live.id(), start(live.id()));
    let tmp = sb.root().join("tmp");
    let names = [
        format!("put-x-{dead_pid}-{dead_start}"),
        format!("write-Ab9xQz-{dead_pid}-{dead_start}"),
        format!("put-reused-{}-1", live.id()),
        format!("put-live-{live_suffix}"),
    ];
    for name in &names {
        sb.write_file(tmp.join(name), "x");
    }
    sb.den_ok(&["images", "-q"]);
    let left: Vec<bool> = names.iter().map(|n| tmp.join(n).exists()).collect();
    live.kill().ok();
    live.wait().ok();
    assert_eq!(left, [false, false, false, true], "{names:?}");
}

/// A pull onto a full disk names the layer once and says what the image
/// needs and where (the store on a 40 MB tmpfs: debian's blob fits, its
/// unpacked layer does not).
#[test]
fn pull_onto_a_full_disk_says_what_it_needs_and_where() {
    let env = require_env!();
    let mut sb = env.sandbox_sub();
    let root = sb.dir().join("small");
    fs::create_dir(&root).unwrap();
    let opts = format!("size=40m,mode=0700,uid={},gid={}", sb.uid(), sb.gid());
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &opts, "den-test-full"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(mounted.success());
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            Command::new("umount").arg("-l").arg(&self.0).status().ok();
        }
    }
    let _unmount = Unmount(root.clone());
    sb.set_env("DEN_ROOT", root.to_str().unwrap());
    let err = sb.den_fail(&["pull", "-q", &env.image("debian:bookworm-slim")], 125);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        err.matches("sha256:").count(),
        1,
        "the layer is named once: {err}"
    );
    assert!(err.contains("No space left on device"), "{err}");
    let want = format!(
        "; the disk holding {} is full: this image's layers are ",
        root.display()
    );
    assert!(err.contains(&want), "{err}");
    assert!(
        err.ends_with("free space there or use --root on a larger disk\n"),
        "{err}"
    );
}
