//! `den build` end to end, as the unprivileged test users, base images from
//! the loopback registry (through a docker.io mirror, so Dockerfiles say
//! `FROM python:3.11-slim` as users write them).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use den_tests::{
    UserSandbox, free_port, require_base_env, require_env, require_shared, sandbox, stderr, stdout,
};

/// `den images -q` and `den ps -aq`: what the store and state hold.
fn images_and_containers(sb: &UserSandbox) -> (String, String) {
    (sb.den_ok(&["images", "-q"]), sb.den_ok(&["ps", "-aq"]))
}

#[test]
fn check_lists_each_problem_with_file_and_line() {
    let env = require_base_env!();
    let sb = env.sandbox_sub();
    let df = sb.write_file(
        "ctx/Dockerfile",
        "FROM busybox\nRUNN echo hi\nFROM busybox AS x\nFROM busybox AS x\n",
    );
    let ctx = df.parent().unwrap().to_str().unwrap().to_owned();
    let out = sb.den(&["build", "--check", &ctx]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let f = df.display();
    assert_eq!(
        stdout(&out),
        format!(
            "{f}:2: unknown instruction 'RUNN': expected one of ADD, ARG, CMD, COPY, ENTRYPOINT, ENV, EXPOSE, FROM, HEALTHCHECK, LABEL, MAINTAINER, ONBUILD, RUN, SHELL, STOPSIGNAL, USER, VOLUME, WORKDIR\n\
             {f}:4: duplicate stage name 'x'\n"
        )
    );
    // Nothing was run or stored.
    assert!(
        !sb.root()
            .join("containers")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some())
    );
    // -f names another file; a valid one passes silently.
    let good = sb.write_file(
        "ctx/good.Dockerfile",
        "FROM busybox\nRUN echo hi\nCMD [\"sh\"]\n",
    );
    let out = sb.den(&["build", "--check", "-f", good.to_str().unwrap(), &ctx]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}

fn flask_context(sb: &UserSandbox, shared: &Path) -> String {
    for w in std::fs::read_dir(shared.join("wheels")).unwrap() {
        let w = w.unwrap();
        if w.file_name().to_string_lossy().ends_with(".whl") {
            sb.write_file(
                Path::new("app/wheels").join(w.file_name()),
                std::fs::read(w.path()).unwrap(),
            );
        }
    }
    sb.write_file("app/requirements.txt", "flask\n");
    sb.write_file(
        "app/app.py",
        "from flask import Flask\napp = Flask(__name__)\n\n@app.route('/')\ndef hello():\n    return 'hello from den build\\n'\n",
    );
    sb.write_file("app/.dockerignore", "secret.txt\n");
    sb.write_file("app/secret.txt", "not for the image\n");
    sb.write_file(
        "app/Dockerfile",
        "FROM python:3.11-slim\n\
         WORKDIR /app\n\
         COPY wheels /wheels\n\
         COPY requirements.txt .\n\
         RUN pip install --no-index --find-links /wheels -r requirements.txt\n\
         COPY . .\n\
         EXPOSE 5000\n\
         CMD [\"flask\", \"run\", \"--host=0.0.0.0\"]\n",
    );
    sb.home().join("app").to_str().unwrap().to_owned()
}

#[test]
fn flask_app_builds_and_answers_http() {
    let env = require_env!();
    let shared = require_shared!(env);
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(600));
    let ctx = flask_context(&sb, shared);
    let out = sb.den_ok(&["build", "-t", "myapp", &ctx]);
    assert!(out.contains("STEP 5/8: RUN pip install"), "{out}");
    let id = out.lines().last().unwrap().to_owned();
    assert!(id.starts_with("sha256:"), "{out}");
    assert!(
        sb.den_ok(&["images"])
            .lines()
            .any(|l| l.starts_with("myapp ") && l.contains("latest"))
    );
    // One history entry per instruction on top of the base's.
    let config: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["image", "inspect", "myapp"])).unwrap();
    let c = &config[0];
    assert_eq!(
        c["Config"]["Cmd"],
        serde_json::json!(["flask", "run", "--host=0.0.0.0"])
    );
    assert_eq!(c["Config"]["WorkingDir"], "/app");
    assert!(c["Config"]["ExposedPorts"]["5000/tcp"].is_object(), "{c}");
    // .dockerignore kept secret.txt out; the app and flask are in.
    let ls = sb.den_ok(&[
        "run",
        "--rm",
        "myapp",
        "sh",
        "-c",
        "ls /app; python3 -c 'import flask; print(flask.__name__)'",
    ]);
    assert!(
        ls.contains("app.py") && ls.contains("requirements.txt") && ls.contains("flask"),
        "{ls}"
    );
    assert!(!ls.contains("secret.txt"), "{ls}");
    // The built image runs like any other.
    let port = free_port();
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{port}:5000"),
        "myapp",
    ]);
    let t = Instant::now();
    let body = loop {
        let got = (|| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
            let mut out = String::new();
            s.read_to_string(&mut out).ok()?;
            out.contains("200 OK").then_some(out)
        })();
        if let Some(b) = got {
            break b;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "flask never answered"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(body.ends_with("hello from den build\n"), "{body}");
    sb.den_ok(&["rm", "-f", "web"]);
    // Only the build's image and its base remain; no build container.
    assert_eq!(sb.den_ok(&["ps", "-aq"]), "");
}

#[test]
fn failing_run_names_the_line_and_leaves_nothing() {
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    sb.den_ok(&["pull", "-q", "busybox"]);
    let before = images_and_containers(&sb);
    sb.write_file(
        "bad/Dockerfile",
        "FROM busybox\nRUN echo made > /x\nRUN echo failing; exit 3\nCMD [\"sh\"]\n",
    );
    let ctx = sb.home().join("bad");
    let out = sb.den(&["build", "-t", "bad", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("failing"),
        "the RUN's output is shown: {}",
        stdout(&out)
    );
    assert_eq!(
        stderr(&out).trim_end().lines().last().unwrap(),
        format!(
            "den: {}:3: RUN /bin/sh -c echo failing; exit 3 exited with status 3",
            ctx.join("Dockerfile").display()
        )
    );
    assert_eq!(images_and_containers(&sb), before);
    let tmp: Vec<_> = std::fs::read_dir(sb.root().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("build-"))
        .collect();
    assert!(tmp.is_empty(), "temporary layers left: {tmp:?}");
    // A COPY source outside the context is refused by name.
    sb.write_file(
        "out/Dockerfile",
        "FROM busybox\nCOPY ../bad/Dockerfile /x\n",
    );
    let ctx = sb.home().join("out");
    let err = sb.den_fail(&["build", ctx.to_str().unwrap()], 125);
    assert_eq!(
        err.trim(),
        format!(
            "den: {}:2: COPY source ../bad/Dockerfile is outside the build context; copy the file into the context first",
            ctx.join("Dockerfile").display()
        )
    );
}

#[test]
fn instructions_end_up_in_the_config_and_history() {
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    sb.write_file("c/a.txt", "A\n");
    sb.write_file("c/sub/b.txt", "B\n");
    sb.write_file(
        "c/Dockerfile",
        "ARG BASE=busybox\n\
         FROM $BASE AS base\n\
         RUN mkdir -p /data && echo base > /data/base && echo gone > /data/gone\n\
         FROM base\n\
         ARG WHO=nobody\n\
         ENV GREETING=\"hi there\" DIR=/srv\n\
         WORKDIR $DIR\n\
         COPY --chown=1000:1000 --chmod=600 a.txt sub/ ./\n\
         RUN [\"sh\", \"-c\", \"rm /data/gone; echo $GREETING $WHO > said\"]\n\
         USER 1000\n\
         LABEL org.example=yes\n\
         VOLUME /vol\n\
         STOPSIGNAL SIGINT\n\
         SHELL [\"/bin/sh\", \"-ec\"]\n\
         HEALTHCHECK --interval=5s CMD true\n\
         ENTRYPOINT [\"cat\"]\n",
    );
    let ctx = sb.home().join("c");
    let id = sb.den_ok(&[
        "build",
        "-q",
        "--build-arg",
        "WHO=den",
        "-t",
        "cfg:1",
        ctx.to_str().unwrap(),
    ]);
    let id = id.trim();
    assert!(id.starts_with("sha256:"), "{id}");
    let v: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["image", "inspect", "cfg:1"])).unwrap();
    let c = &v[0]["Config"];
    assert_eq!(c["User"], "1000");
    assert_eq!(c["WorkingDir"], "/srv");
    assert_eq!(c["Labels"]["org.example"], "yes");
    assert!(c["Volumes"]["/vol"].is_object(), "{c}");
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(c["Entrypoint"], serde_json::json!(["cat"]));
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "true"])
    );
    assert!(
        c["Env"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("GREETING=hi there"))
    );
    // Files, owners, modes, a deletion (whiteout) and the RUN's ARG.
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        "cfg:1",
        "-c",
        "cat said; stat -c '%u:%g %a %n' a.txt b.txt; ls /data",
    ]);
    assert_eq!(
        out,
        "hi there den\n1000:1000 600 a.txt\n1000:1000 600 b.txt\nbase\n"
    );
    // den history: newest first, one row per instruction.
    let h = sb.den_ok(&["history", "--no-trunc", "cfg:1"]);
    let lines: Vec<&str> = h.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE") && lines[0].contains("CREATED BY"),
        "{h}"
    );
    assert!(lines[1].contains("ENTRYPOINT [\"cat\"]"), "{h}");
    assert!(
        h.contains("RUN sh -c rm /data/gone; echo $GREETING $WHO > said # buildkit"),
        "{h}"
    );
    assert!(
        h.contains("COPY --chown=1000:1000 --chmod=600 a.txt sub/ ./ # buildkit"),
        "{h}"
    );
    // 13 instructions across both stages, each with its row.
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("buildkit.dockerfile.v0"))
            .count(),
        13,
        "{h}"
    );
}

/// `den build`'s output and the image id it ends with.
fn build(sb: &UserSandbox, args: &[&str]) -> (String, String) {
    let out = sb.den_ok(&[&["build"], args].concat());
    let id = out.lines().last().unwrap_or_default().to_owned();
    assert!(id.starts_with("sha256:"), "{out}");
    (out, id)
}

fn cached(out: &str) -> usize {
    out.lines().filter(|l| *l == "--> CACHED").count()
}

fn dir_names(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn cache_hits_on_rebuild_and_after_touch_and_misses_from_a_changed_copy() {
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    let req = sb.write_file("k/req.txt", "one\n");
    sb.write_file("k/other.txt", "x\n");
    sb.write_file(
        "k/Dockerfile",
        "FROM busybox\nWORKDIR /app\nCOPY req.txt .\nRUN cat req.txt > out\nCOPY other.txt .\nCMD [\"cat\", \"out\"]\n",
    );
    let ctx = sb.home().join("k").to_str().unwrap().to_owned();
    let (first, id) = build(&sb, &["-t", "k", &ctx]);
    assert_eq!(cached(&first), 0, "{first}");
    let layers = dir_names(&sb.root().join("layers"));
    let blobs = dir_names(&sb.root().join("blobs/sha256"));
    // Unchanged: every step after FROM is CACHED, same id, nothing written.
    let (again, id2) = build(&sb, &["-t", "k", &ctx]);
    assert_eq!(cached(&again), 5, "{again}");
    assert_eq!(id2, id);
    assert_eq!(dir_names(&sb.root().join("layers")), layers);
    assert_eq!(dir_names(&sb.root().join("blobs/sha256")), blobs);
    // Only the mtime changed: still a hit.
    std::fs::File::options()
        .write(true)
        .open(&req)
        .unwrap()
        .set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .unwrap();
    let (touched, id3) = build(&sb, &["-t", "k", &ctx]);
    assert_eq!(cached(&touched), 5, "{touched}");
    assert_eq!(id3, id);
    // New bytes in req.txt: WORKDIR still hits, the COPY and all after it run.
    sb.write_file("k/req.txt", "two\n");
    let (changed, id4) = build(&sb, &["-t", "k", &ctx]);
    assert_eq!(cached(&changed), 1, "{changed}");
    assert_ne!(id4, id);
    assert_eq!(sb.den_ok(&["run", "--rm", "k"]), "two\n");
    // --no-cache runs everything.
    let (fresh, _) = build(&sb, &["--no-cache", "-t", "k", &ctx]);
    assert_eq!(cached(&fresh), 0, "{fresh}");
}

#[test]
fn single_id_user_builds_the_flask_app() {
    let env = require_env!();
    let shared = require_shared!(env);
    let mut sb = env.sandbox_nosub();
    sb.write_registries_conf(&den_tests::mirror_conf("docker.io", &env.registry));
    sb.set_timeout(Duration::from_secs(600));
    let ctx = flask_context(&sb, shared);
    // -q: standard output is the image id alone (pip's output went to stderr).
    let out = sb.den_ok(&["build", "-q", "-t", "myapp", &ctx]);
    assert!(
        out.starts_with("sha256:") && out.lines().count() == 1,
        "{out}"
    );
    let v = sb.den_ok(&[
        "run",
        "--rm",
        "myapp",
        "python3",
        "-c",
        "import flask; print(flask.__name__)",
    ]);
    assert_eq!(v, "flask\n");
}

#[test]
fn heredocs_run_and_copy_as_buildkit_does() {
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    sb.write_file(
        "h/Dockerfile",
        "FROM busybox\n\
         ARG WHO=den\n\
         RUN <<EOF\necho one > /one\necho two >> /one\nEOF\n\
         RUN <<-EOT\n\techo tabs > /tabs\n\tEOT\n\
         RUN <<EOF\n#!/bin/sh\necho \"script $0\" > /script\nEOF\n\
         RUN cat <<A >/a && cat <<'B' >/b\nx $WHO\nA\ny $WHO\nB\n\
         COPY <<one.txt <<\"two.txt\" /files/\nhello $WHO \"quoted\"\none.txt\nraw $WHO\ntwo.txt\n\
         COPY <<EOF /single\nsingle\nEOF\n",
    );
    let ctx = sb.home().join("h");
    let (out, _) = build(&sb, &["-t", "here", ctx.to_str().unwrap()]);
    assert!(out.contains("STEP 8/8: COPY <<EOF /single"), "{out}");
    let got = sb.den_ok(&[
        "run",
        "--rm",
        "here",
        "sh",
        "-c",
        "cat /one /tabs /script /a /b /files/one.txt /files/two.txt /single; stat -c '%a %u:%g' /single",
    ]);
    assert_eq!(
        got,
        "one\ntwo\ntabs\nscript /dev/pipes/EOF\nx den\ny $WHO\nhello den \"quoted\"\nraw $WHO\nsingle\n664 0:0\n"
    );
    // The same Dockerfile again: every step is CACHED (bodies are in the keys).
    let (again, _) = build(&sb, &["-t", "here", ctx.to_str().unwrap()]);
    assert_eq!(cached(&again), 7, "{again}");
    // A changed body re-runs its step.
    let text = std::fs::read_to_string(ctx.join("Dockerfile")).unwrap();
    sb.write_file("h/Dockerfile", text.replace("echo tabs", "echo TABS"));
    let (changed, _) = build(&sb, &["-t", "here", ctx.to_str().unwrap()]);
    assert_eq!(cached(&changed), 2, "{changed}");
    assert_eq!(
        sb.den_ok(&["run", "--rm", "here", "cat", "/tabs"]),
        "TABS\n"
    );
}

#[test]
fn multi_stage_copy_from_target_and_parallel_stages() {
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    sb.write_file(
        "m/Dockerfile",
        "FROM busybox AS a\n\
         RUN echo start-a; sleep 4; mkdir -p /out && echo A > /out/a.txt && chown 7:8 /out/a.txt; echo end-a\n\
         FROM busybox AS b\n\
         RUN echo start-b; sleep 4; echo B > /b.txt; echo end-b\n\
         FROM busybox AS unused\n\
         RUN echo never-built; exit 9\n\
         FROM a AS on-a\n\
         RUN echo on-a > /on-a\n\
         FROM busybox\n\
         COPY --from=a /out/ /from-a/\n\
         COPY --from=b /b.txt /\n\
         COPY --from=on-a /on-a /out/a.txt /both/\n\
         COPY --from=busybox /bin/busybox /bb\n\
         COPY --chown=5:6 --from=1 /b.txt /b-owned\n",
    );
    let ctx = sb.home().join("m");
    let ctx = ctx.to_str().unwrap();
    let (out, _) = build(&sb, &["-t", "multi", ctx]);
    assert!(!out.contains("never-built"), "{out}");
    // Stages a and b do not depend on each other: they ran at the same time.
    let at = |s: &str| {
        out.lines()
            .position(|l| l == s)
            .unwrap_or_else(|| panic!("no line {s} in {out}"))
    };
    assert!(
        at("start-b") < at("end-a") && at("start-a") < at("end-b"),
        "{out}"
    );
    let got = sb.den_ok(&[
        "run",
        "--rm",
        "multi",
        "sh",
        "-c",
        "cat /from-a/a.txt /b.txt /both/on-a /both/a.txt; \
         stat -c '%u:%g %n' /from-a/a.txt /b.txt /both/a.txt /b-owned; cmp /bb /bin/busybox && echo same",
    ]);
    assert_eq!(
        got,
        "A\nB\non-a\nA\n7:8 /from-a/a.txt\n0:0 /b.txt\n7:8 /both/a.txt\n5:6 /b-owned\nsame\n"
    );
    // --target builds only what that stage needs: a, then on-a.
    let (t, _) = build(&sb, &["--no-cache", "--target", "on-a", "-t", "ona", ctx]);
    assert!(t.contains("STEP 4/4: RUN echo on-a > /on-a"), "{t}");
    assert!(
        !t.contains("AS b") && !t.contains("start-b") && !t.contains("never-built"),
        "{t}"
    );
    assert_eq!(
        sb.den_ok(&["run", "--rm", "ona", "cat", "/on-a", "/out/a.txt"]),
        "on-a\nA\n"
    );
    // A missing source in the other stage is named.
    sb.write_file(
        "m2/Dockerfile",
        "FROM busybox AS a\nFROM busybox\nCOPY --from=a /nope /x\n",
    );
    let ctx2 = sb.home().join("m2");
    let err = sb.den_fail(&["build", ctx2.to_str().unwrap()], 125);
    assert_eq!(
        err.trim(),
        format!(
            "den: {}:3: COPY source /nope: no such file or directory in the --from stage or image",
            ctx2.join("Dockerfile").display()
        )
    );
    assert_eq!(sb.den_ok(&["ps", "-aq"]), "");
}

#[test]
fn source_date_epoch_gives_the_same_digest_in_other_dirs_at_other_times() {
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    let df = "FROM busybox\nWORKDIR /app\nCOPY f.txt .\nRUN echo made > /made\nCOPY <<EOF /here\nx\nEOF\nENV A=b\n";
    for dir in ["r1", "r2"] {
        sb.write_file(format!("{dir}/Dockerfile"), df);
        sb.write_file(format!("{dir}/f.txt"), "same\n");
        // Files of the second context are written later: other mtimes.
        std::thread::sleep(Duration::from_millis(1100));
    }
    let ctx = |d: &str| sb.home().join(d).to_str().unwrap().to_owned();
    let epoch = "1700000000";
    let one = sb.den_env_ok(
        &[("SOURCE_DATE_EPOCH", epoch)],
        &["build", "-q", "-t", "r1", &ctx("r1")],
    );
    std::thread::sleep(Duration::from_millis(1100));
    let arg = format!("SOURCE_DATE_EPOCH={epoch}");
    let two = sb.den_ok(&[
        "build",
        "-q",
        "--no-cache",
        "--build-arg",
        &arg,
        "-t",
        "r2",
        &ctx("r2"),
    ]);
    assert_eq!(one, two);
    // Without it the times differ, and so does the digest.
    let three = sb.den_ok(&["build", "-q", "--no-cache", "-t", "r3", &ctx("r2")]);
    assert_ne!(three, two);
    // Times in the config, the history and every new file are the epoch.
    let v: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["image", "inspect", "r2"])).unwrap();
    let history = v[0]["History"].as_array().unwrap();
    let ours = &history[history.len() - 5..];
    assert!(
        ours.iter().all(|h| h["created"] == "2023-11-14T22:13:20Z"),
        "{history:?}"
    );
    let times = sb.den_ok(&[
        "run",
        "--rm",
        "r2",
        "stat",
        "-c",
        "%Y %n",
        "/app/f.txt",
        "/made",
        "/here",
    ]);
    assert_eq!(
        times,
        "1700000000 /app/f.txt\n1700000000 /made\n1700000000 /here\n"
    );
    // A value that is not a time is refused by name.
    let err = sb.den_fail(
        &[
            "build",
            "--build-arg",
            "SOURCE_DATE_EPOCH=yesterday",
            &ctx("r1"),
        ],
        125,
    );
    assert_eq!(
        err.trim(),
        "den: SOURCE_DATE_EPOCH=yesterday is not a time: give whole seconds since 1970, such as $(git log -1 --format=%ct)"
    );
}

#[test]
fn changed_build_arg_reruns_only_steps_using_it_and_hashes_are_remembered() {
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    let f = sb.write_file("a/f.txt", "one\n");
    sb.write_file(
        "a/Dockerfile",
        "FROM busybox\nRUN echo first > /first\nARG V=1\nCOPY f.txt /\nENV E=fixed\nRUN echo $V > /v\nCMD [\"cat\", \"/v\", \"/f.txt\"]\n",
    );
    let ctx = sb.home().join("a").to_str().unwrap().to_owned();
    let (first, _) = build(&sb, &["-t", "arg", &ctx]);
    assert_eq!(cached(&first), 0, "{first}");
    assert_eq!(sb.den_ok(&["run", "--rm", "arg"]), "1\none\n");
    // V changes: RUN, ARG, COPY and ENV still hit; the RUN that has V re-runs.
    let (second, _) = build(&sb, &["--build-arg", "V=2", "-t", "arg", &ctx]);
    assert_eq!(cached(&second), 4, "{second}");
    assert!(
        second.contains("STEP 6/7: RUN echo $V > /v\nSTEP 7/7"),
        "{second}"
    );
    assert_eq!(sb.den_ok(&["run", "--rm", "arg"]), "2\none\n");
    // Context hashes are remembered in the store, private to the user.
    let memo = sb.root().join("build-hashes.json");
    let meta = std::fs::metadata(&memo).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    // New bytes of the same size under the old mtime: the ctime differs,
    // so the file is read again and the COPY re-runs.
    let old = std::fs::metadata(&f).unwrap().modified().unwrap();
    std::fs::write(&f, "two\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let (third, _) = build(&sb, &["--build-arg", "V=2", "-t", "arg", &ctx]);
    assert_eq!(cached(&third), 2, "{third}");
    assert_eq!(sb.den_ok(&["run", "--rm", "arg"]), "2\ntwo\n");
}

#[test]
fn run_mount_cache_persists_between_builds_and_stays_out_of_the_image() {
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    sb.write_file(
        "c/Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=cache,target=/cache echo run >> /cache/log && cat /cache/log > /seen\n\
         RUN --mount=type=cache,id=/cache,target=/other,sharing=locked cat /other/log > /seen-by-id\n",
    );
    let ctx = sb.home().join("c");
    let ctx = ctx.to_str().unwrap();
    build(&sb, &["-t", "c", ctx]);
    let show = [
        "run",
        "--rm",
        "c",
        "sh",
        "-c",
        "cat /seen /seen-by-id; ls -d /cache /other 2>&1; true",
    ];
    // Not even the mount points are in the image (as with BuildKit).
    let absent = "ls: /cache: No such file or directory\nls: /other: No such file or directory\n";
    assert_eq!(sb.den_ok(&show), format!("run\nrun\n{absent}"));
    // The cache is den's private directory, kept for the next build.
    let base = sb.root().join("build-mounts/cache");
    let dirs: Vec<String> = dir_names(&base)
        .into_iter()
        .filter(|d| !d.ends_with(".lock"))
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    use std::os::unix::fs::PermissionsExt;
    for p in [
        sb.root().join("build-mounts"),
        base.clone(),
        base.join(&dirs[0]),
    ] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700, "{}", p.display());
    }
    let (again, _) = build(&sb, &["--no-cache", "-t", "c", ctx]);
    assert_eq!(cached(&again), 0, "{again}");
    assert_eq!(sb.den_ok(&show), format!("run\nrun\nrun\nrun\n{absent}"));
}

/// Names in the store's tmp/ that a build made.
fn build_tmp(sb: &UserSandbox) -> Vec<String> {
    dir_names(&sb.root().join("tmp"))
        .into_iter()
        .filter(|n| n.starts_with("build-"))
        .collect()
}

#[test]
fn run_mount_bind_and_tmpfs_show_their_source_and_leave_nothing_in_the_image() {
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    sb.write_file("bm/data/a", "ctx-a\n");
    sb.write_file("bm/data/ignored", "excluded\n");
    sb.write_file("bm/one.txt", "one\n");
    sb.write_file("bm/.dockerignore", "data/ignored\n");
    std::os::unix::fs::symlink("/etc/hostname", sb.home().join("bm/data/link")).unwrap();
    sb.write_file(
        "bm/Dockerfile",
        "FROM busybox AS src\n\
         RUN mkdir /out && echo from-stage > /out/f && ln -s /etc/passwd /out/link\n\
         FROM busybox\n\
         RUN --mount=type=bind,source=data,target=/m cat /m/a > /seen-a && ls -A /m > /seen-ls && readlink /m/link > /seen-ctx-link\n\
         RUN --mount=type=bind,source=data,target=/m,rw echo changed > /m/a && echo new > /m/new && cat /m/a > /seen-rw\n\
         RUN --mount=type=bind,from=src,source=/out,target=/s cat /s/f > /seen-from && readlink /s/link > /seen-link\n\
         RUN --mount=type=bind,source=one.txt,target=/etc/one.txt cat /etc/one.txt > /seen-one\n\
         RUN --mount=type=tmpfs,target=/t,size=1m grep ' /t ' /proc/mounts | cut -d' ' -f3 > /seen-tmpfs && echo x > /t/x\n",
    );
    let ctx = sb.home().join("bm");
    let ctx = ctx.to_str().unwrap();
    build(&sb, &["-t", "bm", ctx]);
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "bm",
        "sh",
        "-c",
        "cat /seen-a /seen-ls /seen-ctx-link /seen-rw /seen-from /seen-link /seen-one /seen-tmpfs; \
         for p in /m /s /t /etc/one.txt; do test -e $p && echo $p is in the image; done; true",
    ]);
    assert_eq!(
        out,
        "ctx-a\na\nlink\n/etc/hostname\nchanged\nfrom-stage\n/etc/passwd\none\ntmpfs\n"
    );
    // rw writes were discarded: the context is as it was.
    assert_eq!(
        std::fs::read_to_string(sb.home().join("bm/data/a")).unwrap(),
        "ctx-a\n"
    );
    assert!(!sb.home().join("bm/data/new").exists());
    assert_eq!(sb.den_ok(&["ps", "-aq"]), "");
    assert_eq!(build_tmp(&sb), Vec::<String>::new());
    // The bound files' content is in the key: unchanged hits, a changed
    // byte re-runs from the first step that binds it (the other stage's
    // step stays cached).
    let (again, _) = build(&sb, &["-t", "bm", ctx]);
    assert_eq!(cached(&again), 6, "{again}");
    sb.write_file("bm/data/a", "ctx-b\n");
    let (changed, _) = build(&sb, &["-t", "bm", ctx]);
    assert_eq!(cached(&changed), 1, "{changed}");
    assert_eq!(
        sb.den_ok(&["run", "--rm", "bm", "cat", "/seen-a"]),
        "ctx-b\n"
    );
}

#[test]
fn run_mount_bind_is_read_only_by_default_and_stays_in_the_context() {
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    sb.write_file("ro/data/a", "a\n");
    sb.write_file(
        "ro/Dockerfile",
        "FROM busybox\nRUN --mount=type=bind,source=data,target=/m touch /m/x\n",
    );
    let ctx = sb.home().join("ro");
    let out = sb.den(&["build", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("touch: /m/x: Read-only file system\n"),
        "{}",
        stderr(&out)
    );
    assert!(!sb.home().join("ro/data/x").exists());
    assert_eq!(sb.den_ok(&["ps", "-aq"]), "");
    assert_eq!(build_tmp(&sb), Vec::<String>::new());
    // `..` and a symlink leading out of the context are refused by name.
    std::os::unix::fs::symlink("/etc", sb.home().join("ro/escape")).unwrap();
    let df = ctx.join("Dockerfile");
    for (src, line) in [("../ro", 2), ("escape", 3)] {
        let text = format!(
            "FROM busybox\n{}RUN --mount=type=bind,source={src},target=/m cat /m/passwd\n",
            "\n".repeat(line - 2)
        );
        sb.write_file("ro/Dockerfile", text);
        let err = sb.den_fail(&["build", ctx.to_str().unwrap()], 125);
        assert_eq!(
            err.trim(),
            format!(
                "den: {}:{line}: RUN --mount=type=bind,source={src}: the source is outside the build context; copy it into the context first",
                df.display()
            )
        );
    }
}

/// The interface names in a build step's /proc/net/dev.
const IFACES: &str = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '";

#[test]
fn run_network_none_host_and_build_network_flag() {
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    // A loopback-only service on the host: only --network=host reaches it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let mut s = s.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 13\r\n\r\nfrom the host");
        }
    });
    sb.write_file(
        "net/Dockerfile",
        format!(
            "FROM busybox\n\
             RUN --network=none {IFACES} > /if-none\n\
             RUN --network=host wget -q -O /from-host http://127.0.0.1:{port}/\n\
             RUN {IFACES} > /if-default\n"
        ),
    );
    let ctx = sb.home().join("net");
    let ctx = ctx.to_str().unwrap();
    build(&sb, &["-t", "net", ctx]);
    let show = [
        "run",
        "--rm",
        "net",
        "sh",
        "-c",
        "cat /if-none; echo; cat /from-host; echo; cat /if-default",
    ];
    let out = sb.den_ok(&show);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "lo ", "{out}");
    assert_eq!(lines[1], "from the host", "{out}");
    // The build's default is den's private network: more than lo.
    assert!(
        lines[2].starts_with("lo ") || lines[2].contains(" lo "),
        "{out}"
    );
    assert_ne!(lines[2], "lo ", "{out}");
    // `den build --network none` applies to steps without their own.
    build(&sb, &["--network", "none", "-t", "net", ctx]);
    let out = sb.den_ok(&show);
    assert_eq!(out.lines().nth(2), Some("lo "), "{out}");
}

/// Serves `files` (path, body) over HTTP/1.0 on 127.0.0.1 with a fixed
/// Last-Modified, until the test ends; its port.
fn serve(files: Vec<(&'static str, Vec<u8>)>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let mut s = s.unwrap();
            let mut buf = [0u8; 2048];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]);
            let path = req.split(' ').nth(1).unwrap_or("");
            match files.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => {
                    let _ = write!(
                        s,
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(body);
                }
                None => {
                    let _ = s.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                }
            }
        }
    });
    port
}

#[test]
fn add_extracts_local_tars_and_downloads_urls_without_extracting() {
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    sb.write_file("add/src/d/f", "in the tar\n");
    sb.sh_ok(
        "cd add/src && ln -s d/f link && ln d/f hard && tar -cf ../files.tar . && tar -czf ../files.tgz d link",
    );
    let plain = std::fs::read(sb.home().join("add/files.tar")).unwrap();
    sb.write_file("add/files.tzst", zstd::encode_all(&plain[..], 3).unwrap());
    let note = b"downloaded\n".to_vec();
    let sum = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&note));
    let port = serve(vec![("/dl/app.tar", plain.clone()), ("/dl/note.txt", note)]);
    let url = format!("http://127.0.0.1:{port}/dl");
    sb.write_file(
        "add/Dockerfile",
        format!(
            "FROM busybox\n\
             ADD files.tar /x/\n\
             ADD files.tgz /y\n\
             ADD files.tzst /z/\n\
             ADD {url}/app.tar /dl/\n\
             ADD --checksum=sha256:{sum} {url}/note.txt /note.txt\n"
        ),
    );
    let ctx = sb.home().join("add");
    let ctx = ctx.to_str().unwrap();
    build(&sb, &["-t", "add", ctx]);
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "add",
        "sh",
        "-c",
        "cat /x/d/f /x/hard /y/d/f /z/d/f; readlink /x/link; readlink /y/link; \
         stat -c '%a %Y %s' /dl/app.tar; cat /note.txt; stat -c '%a' /note.txt; ls /dl",
    ]);
    assert_eq!(
        out,
        format!(
            "in the tar\nin the tar\nin the tar\nin the tar\nd/f\nd/f\n600 1445412480 {}\ndownloaded\n600\napp.tar\n",
            plain.len()
        )
    );
    assert_eq!(build_tmp(&sb), Vec::<String>::new());
    // A wrong --checksum is refused, naming both digests.
    let df = sb.home().join("add/Dockerfile");
    let zero = "0".repeat(64);
    sb.write_file(
        "add/Dockerfile",
        format!("FROM busybox\nADD --checksum=sha256:{zero} {url}/note.txt /n\n"),
    );
    let err = sb.den_fail(&["build", ctx], 125);
    assert_eq!(
        err.trim(),
        format!(
            "den: {}:2: ADD {url}/note.txt: the download's checksum is sha256:{sum}, not the sha256:{zero} --checksum gives",
            df.display()
        )
    );
    // An entry climbing out of the destination is refused; nothing is left.
    sb.sh_ok(
        "cd add && python3 -c \"import tarfile,io; t=tarfile.open('evil.tar','w'); i=tarfile.TarInfo('a/../../escape'); i.size=1; t.addfile(i, io.BytesIO(b'x')); t.close()\"",
    );
    sb.write_file("add/Dockerfile", "FROM busybox\nADD evil.tar /e/\n");
    let err = sb.den_fail(&["build", ctx], 125);
    let real = std::fs::canonicalize(sb.home().join("add/evil.tar")).unwrap();
    assert_eq!(
        err.trim(),
        format!(
            "den: {}:2: ADD {}: entry \"a/../../escape\" leads out of the destination",
            df.display(),
            real.display()
        )
    );
    assert_eq!(build_tmp(&sb), Vec::<String>::new());
    assert_eq!(sb.den_ok(&["ps", "-aq"]), "");
}

/// `den build ARGS` with `stdin` as its standard input.
fn den_with_stdin(sb: &UserSandbox, stdin: &Path, args: &[&str]) -> std::process::Output {
    let mut c = sb.den_cmd(&[], args);
    c.stdin(std::fs::File::open(stdin).unwrap());
    c.output().unwrap()
}

#[test]
fn dockerfile_on_stdin_labels_volumes_and_progress() {
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    // `den build -`: the Dockerfile on stdin, and no context at all.
    let df = sb.write_file(
        "stdin.Dockerfile",
        "FROM busybox\nRUN echo from stdin > /f\n",
    );
    let out = den_with_stdin(
        &sb,
        &df,
        &[
            "build", "-q", "--label", "a=1", "--label", "b=x=y", "-t", "sin", "-",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).trim().starts_with("sha256:"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        sb.den_ok(&["run", "--rm", "sin", "cat", "/f"]),
        "from stdin\n"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["image", "inspect", "sin"])).unwrap();
    let labels = &inspect[0]["Config"]["Labels"];
    assert_eq!(
        (&labels["a"], &labels["b"]),
        (&serde_json::json!("1"), &serde_json::json!("x=y")),
        "{labels}"
    );
    let copy = sb.write_file("copy.Dockerfile", "FROM busybox\nCOPY x /x\n");
    let out = den_with_stdin(&sb, &copy, &["build", "-"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim(),
        "den: -:2: COPY source x: no such file or directory in the build context (or excluded by .dockerignore)"
    );
    assert_eq!(build_tmp(&sb), Vec::<String>::new());
    // `-f -` with a context; `-v HOST:CTR:ro` for RUN steps, its mount
    // point left out of the image; --progress=quiet prints only the id.
    sb.write_file("vctx/x", "context file\n");
    sb.write_file("host/data", "from the host\n");
    let copy = sb.write_file(
        "copy.Dockerfile",
        "FROM busybox\nCOPY x /x\nRUN cat /h/data > /seen\n",
    );
    let vol = format!("{}:/h:ro", sb.home().join("host").display());
    let ctx = sb.home().join("vctx");
    let out = den_with_stdin(
        &sb,
        &copy,
        &[
            "build",
            "--progress=quiet",
            "-v",
            &vol,
            "-t",
            "vol",
            "-f",
            "-",
            ctx.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    assert_eq!(
        sb.den_ok(&[
            "run",
            "--rm",
            "vol",
            "sh",
            "-c",
            "cat /x /seen; ls -d /h 2>&1; true"
        ]),
        "context file\nfrom the host\nls: /h: No such file or directory\n"
    );
    let f = copy.to_str().unwrap();
    let err = sb.den_fail(
        &["build", "--progress=fancy", "-f", f, ctx.to_str().unwrap()],
        125,
    );
    assert_eq!(
        err.trim(),
        "den: invalid --progress value `fancy`: use auto, plain or quiet"
    );
}

#[test]
fn onbuild_triggers_run_in_order_after_from_and_are_not_inherited() {
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    sb.write_file(
        "ob/base/Dockerfile",
        "FROM busybox\n\
         ONBUILD RUN echo first > /first\n\
         ONBUILD COPY x /x\n\
         ONBUILD RUN cat /first /x > /both\n",
    );
    let base = sb.home().join("ob/base");
    build(&sb, &["-t", "onbase", base.to_str().unwrap()]);
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["image", "inspect", "onbase"])).unwrap();
    assert_eq!(
        inspect[0]["Config"]["OnBuild"],
        serde_json::json!([
            "RUN echo first > /first",
            "COPY x /x",
            "RUN cat /first /x > /both"
        ])
    );
    // The child's context gives the file the trigger copies.
    sb.write_file("ob/child/x", "child's x\n");
    sb.write_file(
        "ob/child/Dockerfile",
        "FROM onbase\nRUN cat /both > /seen\n",
    );
    let child = sb.home().join("ob/child");
    let (out, _) = build(&sb, &["-t", "onchild", child.to_str().unwrap()]);
    let triggers: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("--> ONBUILD"))
        .collect();
    assert_eq!(
        triggers,
        [
            "--> ONBUILD RUN echo first > /first",
            "--> ONBUILD COPY x /x",
            "--> ONBUILD RUN cat /first /x > /both"
        ]
    );
    assert_eq!(
        sb.den_ok(&["run", "--rm", "onchild", "cat", "/seen"]),
        "first\nchild's x\n"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["image", "inspect", "onchild"])).unwrap();
    assert!(inspect[0]["Config"]["OnBuild"].is_null(), "{inspect}");
    // A grandchild runs none (and needs no x in its context).
    sb.write_file("ob/grand/Dockerfile", "FROM onchild\nRUN cat /seen\n");
    let grand = sb.home().join("ob/grand");
    let (out, _) = build(&sb, &["-t", "ongrand", grand.to_str().unwrap()]);
    assert!(!out.contains("ONBUILD"), "{out}");
    // A failing trigger names the FROM line.
    sb.write_file("ob/child/Dockerfile", "FROM busybox\nFROM onbase\n");
    std::fs::remove_file(sb.home().join("ob/child/x")).unwrap();
    let err = sb.den_fail(&["build", child.to_str().unwrap()], 125);
    assert_eq!(
        err.trim(),
        format!(
            "den: {}:2: COPY source x: no such file or directory in the build context (or excluded by .dockerignore)",
            child.join("Dockerfile").display()
        )
    );
}

/// `den system df`'s Build Cache row, split on runs of spaces.
fn build_cache_row(sb: &UserSandbox) -> Vec<String> {
    let df = sb.den_ok(&["system", "df"]);
    let line = df
        .lines()
        .find(|l| l.starts_with("Build Cache"))
        .unwrap_or_else(|| panic!("no Build Cache row: {df}"));
    line["Build Cache".len()..]
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn builder_prune_frees_the_cache_and_system_df_shows_it() {
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    // Stage b's layer is the cache's alone: the image has only one of its
    // files (with /f alone, the COPY's layer could be the same tar, the
    // same layer, when both are made within one second).
    sb.write_file(
        "bp/Dockerfile",
        "FROM busybox AS b\n\
         RUN head -c 200000 /dev/zero > /f && echo only-in-b > /g\n\
         FROM busybox\n\
         RUN --mount=type=cache,target=/c head -c 300000 /dev/zero > /c/big\n\
         COPY --from=b /f /f\n",
    );
    let ctx = sb.home().join("bp");
    let ctx = ctx.to_str().unwrap();
    build(&sb, &["-t", "bp", ctx]);
    let row = build_cache_row(&sb);
    assert_eq!(&row[..2], ["3", "2"], "{row:?}");
    assert!(
        row[2].ends_with("kB") && row[3].ends_with("(100%)"),
        "{row:?}"
    );
    // Without -f and a terminal nothing is removed.
    let err = sb.den_fail(&["builder", "prune"], 125);
    assert_eq!(
        err.trim(),
        "den: builder prune has been cancelled: standard input is not a terminal to ask on; use -f to prune without asking"
    );
    let out = sb.den_ok(&["builder", "prune", "-f"]);
    assert!(
        out.starts_with("Deleted build cache records: 1\nTotal reclaimed space: "),
        "{out}"
    );
    assert_ne!(
        out.lines().nth(1),
        Some("Total reclaimed space: 0B"),
        "{out}"
    );
    assert_eq!(&build_cache_row(&sb)[..2], ["2", "2"]);
    // The image's steps still hit; stage b runs again.
    let (again, _) = build(&sb, &["-t", "bp", ctx]);
    assert_eq!(cached(&again), 2, "{again}");
    // -a takes everything, the cache mount's content too.
    let out = sb.den_ok(&["builder", "prune", "-a", "-f"]);
    assert!(out.starts_with("Deleted build cache records: 3\n"), "{out}");
    assert_eq!(
        dir_names(&sb.root().join("build-mounts/cache")),
        Vec::<String>::new()
    );
    assert_eq!(build_cache_row(&sb), ["0", "0", "0B", "0B (0%)"]);
    let (again, _) = build(&sb, &["-t", "bp", ctx]);
    assert_eq!(cached(&again), 0, "{again}");
}

/// Pids whose command line is exactly `argv` (NUL-separated).
fn pids_running(argv: &[&str]) -> Vec<String> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn interrupted_build_leaves_nothing_and_the_next_build_works() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    sb.den_ok(&["pull", "-q", "busybox"]);
    let before = images_and_containers(&sb);
    // A sleep no other test runs, to find the step's process.
    let secs = format!("{}", 7000 + std::process::id() % 1000);
    sb.write_file(
        "int/Dockerfile",
        format!("FROM busybox\nRUN echo step-running; exec sleep {secs}\n"),
    );
    let ctx = sb.home().join("int");
    let ctx = ctx.to_str().unwrap();
    let mut cmd = sb.den_cmd(&[], &["build", "-t", "int", ctx]);
    // Its own process group, as a shell gives a foreground job: Ctrl-C
    // signals the whole group.
    cmd.process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let pgid = child.id();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines
            .next()
            .expect("den build ended before its RUN step")
            .unwrap();
        if line == "step-running" {
            break;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while pids_running(&["sleep", &secs]).is_empty() {
        assert!(Instant::now() < deadline, "the step's sleep never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{pgid}")])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "den build did not end after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(125), "{status}");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(
        err.trim_end().lines().last(),
        Some("den: the build was interrupted: its RUN step was stopped and removed"),
        "{err}"
    );
    // No step process, container, image or temporary layer is left.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pids_running(&["sleep", &secs]).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the step's process outlived the build"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(images_and_containers(&sb), before);
    assert_eq!(
        dir_names(&sb.root().join("containers"))
            .iter()
            .filter(|n| !n.ends_with(".lock"))
            .count(),
        0,
        "{:?}",
        dir_names(&sb.root().join("containers"))
    );
    assert_eq!(build_tmp(&sb), Vec::<String>::new());
    // The store is consistent: the next build works.
    sb.write_file("int/Dockerfile", "FROM busybox\nRUN echo ok > /ok\n");
    build(&sb, &["-t", "int", ctx]);
    assert_eq!(sb.den_ok(&["run", "--rm", "int", "cat", "/ok"]), "ok\n");
}

#[test]
fn built_image_pushed_removed_pulled_back_and_run() {
    let env = require_env!();
    let mut sb = sandbox(&env);
    sb.set_timeout(Duration::from_secs(300));
    sb.write_file(
        "rt/Dockerfile",
        "FROM busybox\nRUN echo built here > /b\nCMD [\"cat\", \"/b\"]\n",
    );
    let ctx = sb.home().join("rt");
    let (_, id) = build(&sb, &["-t", "rt", ctx.to_str().unwrap()]);
    let dest = format!("{}/den-build/rt:{}", env.registry, std::process::id());
    sb.den_ok(&["push", "rt", &dest]);
    // Nothing of it is left in the store: base and built layers both come
    // back from the registry.
    sb.den_ok(&["rmi", "rt", "busybox"]);
    assert_eq!(sb.den_ok(&["images", "-q"]), "");
    sb.den_ok(&["pull", "-q", &dest]);
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["image", "inspect", &dest])).unwrap();
    assert_eq!(inspect[0]["Id"], serde_json::json!(id), "{inspect}");
    assert_eq!(sb.den_ok(&["run", "--rm", &dest]), "built here\n");
}
