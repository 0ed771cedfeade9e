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
