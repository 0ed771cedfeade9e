//! `den commit`, as the unprivileged test users: a container's changes
//! (new files, deleted files as whiteouts, a directory replaced as an
//! opaque one) become an image that runs, commits again, pushes, pulls
//! and saves; `-c` changes the config; bad changes are refused.

use den_tests::{TestEnv, UserSandbox, inspect_image, require_env, stdout};

fn sandbox(env: &TestEnv, sub: bool) -> UserSandbox {
    let sb = if sub {
        env.sandbox_sub()
    } else {
        env.sandbox_nosub()
    };
    let conf = den_tests::mirror_conf("docker.io", &env.registry)
        + &den_tests::insecure_conf(&[&env.registry]);
    sb.write_registries_conf(&conf);
    sb.den_ok(&["pull", "-q", "busybox"]);
    sb
}

/// `den run --name NAME IMAGE sh -c SCRIPT`, which must succeed.
fn run_sh(sb: &UserSandbox, name: &str, image: &str, script: &str) -> String {
    sb.den_ok(&["run", "--name", name, image, "sh", "-c", script])
}

/// `den run --rm IMAGE sh -c SCRIPT`'s output; it must succeed.
fn rm_sh(sb: &UserSandbox, image: &str, script: &str) -> String {
    sb.den_ok(&["run", "--rm", image, "sh", "-c", script])
}

fn changes_whiteouts_and_opaque_directories(sb: &UserSandbox) {
    run_sh(
        sb,
        "one",
        "busybox",
        "mkdir /opq && echo a > /opq/a && echo b > /opq/b && echo gone > /gone && echo hello > /new.txt && chown 1000:1000 /new.txt",
    );
    let id = sb.den_ok(&[
        "commit",
        "-m",
        "first commit",
        "--author",
        "Ann <ann@example.com>",
        "-c",
        "CMD [\"cat\", \"/new.txt\"]",
        "-c",
        "ENV GREETING=hi",
        "-c",
        "ENV NAME=$GREETING-there",
        "-c",
        "LABEL stage=one",
        "-c",
        "EXPOSE 8080",
        "-c",
        "VOLUME /data",
        "-c",
        "STOPSIGNAL SIGINT",
        "-c",
        "WORKDIR /opq",
        "one",
        "committed:1",
    ]);
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let img = inspect_image(sb, "committed:1");
    assert_eq!(img["Id"], id);
    let base = inspect_image(sb, "busybox");
    assert_eq!(
        img["RootFS"]["Layers"].as_array().unwrap().len(),
        base["RootFS"]["Layers"].as_array().unwrap().len() + 1
    );
    let cfg = &img["Config"];
    assert_eq!(cfg["Cmd"], serde_json::json!(["cat", "/new.txt"]));
    let env: Vec<&str> = cfg["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"GREETING=hi") && env.contains(&"NAME=hi-there"),
        "{env:?}"
    );
    assert_eq!(cfg["Labels"]["stage"], "one");
    assert_eq!(cfg["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    assert_eq!(cfg["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(cfg["StopSignal"], "SIGINT");
    assert_eq!(cfg["WorkingDir"], "/opq");
    let last = img["History"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["comment"], "first commit");
    assert_eq!(last["author"], "Ann <ann@example.com>");
    assert_eq!(sb.den_ok(&["run", "--rm", "committed:1"]), "hello\n");
    assert_eq!(
        rm_sh(sb, "committed:1", "pwd; ls; stat -c %u:%g /new.txt"),
        "/opq\na\nb\n1000:1000\n"
    );

    // Deleted files and a replaced directory, committed from a committed image.
    run_sh(
        sb,
        "two",
        "committed:1",
        "rm /gone && rm -rf /opq && mkdir /opq && echo c > /opq/c && rm /new.txt",
    );
    sb.den_ok(&["commit", "-c", "CMD ls -a /opq", "two", "committed:2"]);
    assert_eq!(
        inspect_image(sb, "committed:2")["Config"]["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "ls -a /opq"])
    );
    let out = rm_sh(
        sb,
        "committed:2",
        "ls -a /opq; test -e /gone || echo gone-is-gone; test -e /new.txt || echo new-is-gone",
    );
    assert_eq!(out, ".\n..\nc\ngone-is-gone\nnew-is-gone\n");
}

#[test]
fn commit_keeps_changes_whiteouts_and_opaque_dirs_with_subordinate_ids() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    changes_whiteouts_and_opaque_directories(&sb);
}

#[test]
fn commit_keeps_changes_whiteouts_and_opaque_dirs_in_single_id_mode() {
    let env = require_env!();
    let sb = sandbox(&env, false);
    run_sh(
        &sb,
        "one",
        "busybox",
        "mkdir /opq && echo a > /opq/a && echo gone > /gone",
    );
    sb.den_ok(&["commit", "one", "single:1"]);
    run_sh(
        &sb,
        "two",
        "single:1",
        "rm /gone; rm -rf /opq; mkdir /opq; echo c > /opq/c",
    );
    sb.den_ok(&["commit", "two", "single:2"]);
    assert_eq!(
        rm_sh(&sb, "single:2", "ls /opq; test -e /gone || echo none"),
        "c\nnone\n"
    );
}

#[test]
fn a_committed_image_pushes_pulls_and_saves() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    run_sh(&sb, "src", "busybox", "echo pushed > /msg");
    let id = sb.den_ok(&["commit", "-c", "CMD [\"cat\", \"/msg\"]", "src"]);
    let id = id.trim();
    assert!(id.starts_with("sha256:"), "{id}");
    let listed = sb.den_ok(&["images", "--filter", "dangling=true", "-q", "--no-trunc"]);
    assert_eq!(listed.trim(), id, "without IMAGE the image is untagged");
    let dest = format!("{}/den-test/commit:{}", env.registry, std::process::id());
    sb.den_ok(&["tag", id, &dest]);
    sb.den_ok(&["push", "-q", &dest]);
    let fresh = env.sandbox_nosub();
    fresh.write_registries_conf(&env.insecure_all());
    fresh.den_ok(&["pull", "-q", &dest]);
    assert_eq!(fresh.den_ok(&["run", "--rm", &dest]), "pushed\n");
    let tar = sb.home().join("c.tar");
    sb.den_ok(&["save", "-o", tar.to_str().unwrap(), &dest]);
    let listing = sb.sh_ok(&format!("tar -tf {}", tar.display()));
    assert!(listing.lines().any(|l| l == "index.json"), "{listing}");
}

#[test]
fn commit_refuses_what_it_cannot_apply() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    sb.den_ok(&["run", "--name", "src", "busybox", "true"]);
    for (args, msg) in [
        (
            vec!["-c", "RUN ls"],
            "den: den commit -c applies CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME or STOPSIGNAL, not `RUN ls`",
        ),
        (
            vec!["-c", "STOPSIGNAL SIGNOPE"],
            "den: invalid -c `STOPSIGNAL SIGNOPE`: invalid signal \"SIGNOPE\" in STOPSIGNAL: use a name like SIGTERM or a number 1-64",
        ),
        (
            vec!["-c", "CMD a\nRUN b"],
            "den: invalid -c `CMD a`: one instruction on one line per -c",
        ),
    ] {
        let mut a = vec!["commit"];
        a.extend(args);
        a.push("src");
        let err = sb.den_fail(&a, 125);
        assert!(err.starts_with(msg), "{err}");
    }
    let err = sb.den_fail(&["commit", "nosuch"], 125);
    assert_eq!(err.trim(), "den: no such container: nosuch");
    assert_eq!(
        sb.den_ok(&["images", "-q"]).lines().count(),
        1,
        "nothing was made"
    );
    let o = sb.den(&["commit", "src", "ok:1"]);
    assert!(o.status.success());
    assert!(stdout(&o).starts_with("sha256:"));
}

/// den cannot pause (no freezer): `--pause` on a running container is
/// refused in one line; `--pause=false` (the default) commits it as it runs.
#[test]
fn commit_pause_is_refused_for_a_running_container() {
    let env = require_env!();
    let sb = sandbox(&env, true);
    den_tests::run_sleeper(&sb, "busy", &[], "300");
    sb.den_ok(&["exec", "busy", "touch", "/made"]);
    let want = "den: den commit --pause: den cannot pause container busy: pausing needs the cgroup freezer, which den does not use; commit it as it runs with --pause=false (den's default), or stop it first\n";
    for flag in ["--pause", "--pause=true", "-p"] {
        assert_eq!(
            sb.den_fail(&["commit", flag, "busy", "p:1"], 125),
            want,
            "{flag}"
        );
    }
    assert_eq!(
        sb.den_ok(&["images", "-q"]).lines().count(),
        1,
        "nothing was made"
    );
    sb.den_ok(&["commit", "--pause=false", "busy", "p:1"]);
    assert_eq!(sb.den_ok(&["run", "--rm", "p:1", "ls", "/made"]), "/made\n");
    sb.den_ok(&["rm", "-f", "busy"]);
}
