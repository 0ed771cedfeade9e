//! The CLI surface scripts rely on (issue 14), as the unprivileged test
//! user: `--all` on start/stop/kill/restart/rm, `rm -t` and `rm -v`,
//! `rmi -a`, `volume rm -a`, `network rm -f`, the `exists` commands,
//! labels on volumes and networks, `--filter` on ps, images, volume ls and
//! network ls, `-p` with the host network, `--log-level` and `--help`.

use std::fs;
use std::time::{Duration, Instant};

use den_tests::{TestEnv, UserSandbox, inspect, require_env, run_sleeper, stderr, stdout};

fn sandbox(env: &TestEnv) -> UserSandbox {
    den_tests::mirrored_sandbox(env, true, true)
}

fn lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// Names of the containers `den ps -a --filter …` lists.
fn ps_names(sb: &UserSandbox, filters: &[&str]) -> Vec<String> {
    let mut args = vec!["ps", "-a", "--format", "json"];
    for f in filters {
        args.extend(["--filter", f]);
    }
    let v: serde_json::Value = serde_json::from_str(&sb.den_ok(&args)).unwrap();
    let mut names: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Names"][0].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let t = Instant::now();
    while !check() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `den X exists NAME`: the exit code, with nothing printed.
fn exists(sb: &UserSandbox, kind: &str, name: &str) -> i32 {
    let o = sb.den(&[kind, "exists", name]);
    assert!(
        o.stdout.is_empty() && o.stderr.is_empty(),
        "{kind} exists {name} printed: {} {}",
        stdout(&o),
        stderr(&o)
    );
    o.status.code().unwrap()
}

#[test]
fn all_flags_stop_start_kill_restart_and_remove_every_container() {
    let env = require_env!();
    let sb = sandbox(&env);
    for n in ["a1", "a2"] {
        run_sleeper(&sb, n, &[], "300");
    }
    sb.den_ok(&["run", "--name", "a3", "busybox", "true"]);
    assert_eq!(lines(&sb.den_ok(&["stop", "-a", "-t", "0"])), ["a1", "a2"]);
    assert!(sb.den_ok(&["ps", "-q"]).is_empty());
    // start --all: every container not running (-a is --attach there).
    assert_eq!(lines(&sb.den_ok(&["start", "--all"])), ["a1", "a2", "a3"]);
    wait_for("a3 to exit", Duration::from_secs(20), || {
        ps_names(&sb, &["status=running"]) == ["a1", "a2"]
    });
    let err = sb.den_fail(&["start", "-a"], 125);
    assert!(err.contains("<CONTAINERS>"), "{err}");
    assert_eq!(
        lines(&sb.den_ok(&["restart", "--all", "-t", "0"])),
        ["a1", "a2"]
    );
    assert_eq!(lines(&sb.den_ok(&["kill", "-a"])), ["a1", "a2"]);
    wait_for("kill -a", Duration::from_secs(20), || {
        sb.den_ok(&["ps", "-q"]).is_empty()
    });
    sb.den_ok(&["start", "a1"]);
    let err = sb.den_fail(&["rm", "-a"], 125);
    assert!(
        err.starts_with("den: cannot remove container a1 (")
            && err
                .trim_end()
                .ends_with("): it is running; stop it first or use -f"),
        "{err}"
    );
    assert_eq!(ps_names(&sb, &[]), ["a1"], "the stopped ones went");
    assert_eq!(sb.den_ok(&["rm", "-a", "-f"]).trim(), "a1");
    assert!(sb.den_ok(&["ps", "-aq"]).is_empty());
    let err = sb.den_fail(&["stop", "-a", "x"], 125);
    assert!(
        err.contains("the argument '--all' cannot be used with"),
        "{err}"
    );
}

#[test]
fn rm_time_stops_with_the_stop_signal_and_rm_volumes_takes_anonymous_ones() {
    let env = require_env!();
    let sb = sandbox(&env);
    let out = sb
        .write_file("out/.keep", "")
        .parent()
        .unwrap()
        .to_path_buf();
    let script = "trap 'echo term > /out/$0; exit 0' TERM; while true; do sleep 0.1; done";
    let mount = format!("{}:/out", out.display());
    for n in ["soft", "hard"] {
        sb.den_ok(&[
            "run", "-d", "--name", n, "-v", &mount, "busybox", "sh", "-c", script, n,
        ]);
    }
    std::thread::sleep(Duration::from_millis(500));
    let err = sb.den_fail(&["rm", "-t", "5", "soft"], 125);
    assert_eq!(
        err.trim(),
        "den: -t/--time applies to running containers, which den rm removes only with -f: add -f"
    );
    assert_eq!(sb.den_ok(&["rm", "-f", "-t", "5", "soft"]).trim(), "soft");
    assert_eq!(fs::read_to_string(out.join("soft")).unwrap(), "term\n");
    sb.den_ok(&["rm", "-f", "hard"]);
    assert!(!out.join("hard").exists(), "rm -f without -t kills at once");
    assert!(sb.den_ok(&["ps", "-aq"]).is_empty());

    // rm -v: the anonymous volumes go, named ones stay.
    sb.den_ok(&[
        "run",
        "--name",
        "v1",
        "-v",
        "/data",
        "-v",
        "keep:/named",
        "busybox",
        "true",
    ]);
    sb.den_ok(&["run", "--name", "v2", "-v", "/data2", "busybox", "true"]);
    assert_eq!(sb.den_ok(&["volume", "ls", "-q"]).lines().count(), 3);
    sb.den_ok(&["rm", "-v", "v1"]);
    let left = lines(&sb.den_ok(&["volume", "ls", "-q"]));
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&"keep".to_string()), "{left:?}");
    sb.den_ok(&["rm", "v2"]);
    assert_eq!(
        sb.den_ok(&["volume", "ls", "-q"]).lines().count(),
        2,
        "rm without -v keeps anonymous volumes"
    );
}

#[test]
fn rmi_all_volume_rm_all_network_rm_force_and_exists() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&["pull", "-q", "hello-world"]);
    sb.den_ok(&["tag", "busybox", "mybox:1"]);
    sb.den_ok(&["run", "--name", "user", "busybox", "true"]);
    assert_eq!(exists(&sb, "container", "user"), 0);
    assert_eq!(exists(&sb, "container", "nobody"), 1);
    assert_eq!(exists(&sb, "image", "busybox"), 0);
    assert_eq!(exists(&sb, "image", "mybox:1"), 0);
    assert_eq!(exists(&sb, "image", "mybox:2"), 1);

    let o = sb.den(&["rmi", "-a"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("den: cannot remove sha256:")
            && err.contains(": image is in use by container user (")
            && err
                .trim_end()
                .ends_with("den: some images were not removed"),
        "{err}"
    );
    assert!(
        stdout(&o).contains("Untagged: hello-world:latest"),
        "{}",
        stdout(&o)
    );
    assert_eq!(exists(&sb, "image", "hello-world"), 1);
    assert_eq!(
        exists(&sb, "image", "mybox:1"),
        0,
        "an image in use keeps its names"
    );
    assert_eq!(sb.den_ok(&["images", "-q"]).lines().count(), 1);
    sb.den_ok(&["rm", "user"]);
    sb.den_ok(&["rmi", "-a"]);
    assert!(sb.den_ok(&["images", "-q"]).is_empty());

    for v in ["v1", "v2"] {
        sb.den_ok(&["volume", "create", v]);
    }
    assert_eq!(exists(&sb, "volume", "v1"), 0);
    assert_eq!(exists(&sb, "volume", "v3"), 1);
    assert_eq!(lines(&sb.den_ok(&["volume", "rm", "-a"])), ["v1", "v2"]);
    assert_eq!(exists(&sb, "volume", "v1"), 1);

    let id = sb.den_ok(&["network", "create", "net1"]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "network create prints the id: {id}");
    let v: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["network", "inspect", "net1"])).unwrap();
    assert_eq!(v[0]["Id"], id);
    assert_eq!(exists(&sb, "network", "net1"), 0);
    assert_eq!(exists(&sb, "network", "net2"), 1);
    let err = sb.den_fail(&["network", "rm", "net2"], 125);
    assert_eq!(
        err.trim(),
        "den: no such network: net2 (create it with `den network create net2`)"
    );
    assert_eq!(
        sb.den_ok(&["network", "rm", "-f", "net2", "net1"]).trim(),
        "net1"
    );
    assert_eq!(exists(&sb, "network", "net1"), 1);
}

#[test]
fn labels_and_filters_on_volumes_and_networks() {
    let env = require_env!();
    let sb = sandbox(&env);
    let file = sb.write_file("labels", "# team labels\nteam=db\ntier\n");
    sb.den_ok(&[
        "volume",
        "create",
        "--label",
        "app=shop",
        "-l",
        "x",
        "--label-file",
        file.to_str().unwrap(),
        "data1",
    ]);
    sb.den_ok(&["volume", "create", "-l", "app=blog", "data2"]);
    sb.den_ok(&["volume", "create", "other"]);
    let v: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["volume", "inspect", "data1"])).unwrap();
    assert_eq!(
        v[0]["Labels"],
        serde_json::json!({"app": "shop", "x": "", "team": "db", "tier": ""})
    );
    let vls = |f: &[&str]| {
        let mut args = vec!["volume", "ls", "-q"];
        for x in f {
            args.extend(["--filter", x]);
        }
        lines(&sb.den_ok(&args))
    };
    assert_eq!(vls(&["label=app"]), ["data1", "data2"]);
    assert_eq!(vls(&["label=app=shop"]), ["data1"]);
    assert_eq!(
        vls(&["label=app", "label=team=db"]),
        ["data1"],
        "labels: all"
    );
    assert_eq!(vls(&["name=data"]), ["data1", "data2"]);
    assert_eq!(
        vls(&["name=data1", "name=oth"]),
        ["data1", "other"],
        "a key: any"
    );
    assert_eq!(
        vls(&["name=data", "label=app=blog"]),
        ["data2"],
        "keys: all"
    );
    assert_eq!(vls(&["driver=local"]).len(), 3);
    assert!(vls(&["driver=nfs"]).is_empty());
    sb.den_ok(&["run", "--name", "c", "-v", "data2:/d", "busybox", "true"]);
    assert_eq!(vls(&["dangling=true"]), ["data1", "other"]);
    assert_eq!(vls(&["dangling=false"]), ["data2"]);
    let err = sb.den_fail(&["volume", "ls", "--filter", "dangling=maybe"], 125);
    assert_eq!(
        err.trim(),
        "den: invalid --filter `dangling=maybe`: use true or false"
    );
    let err = sb.den_fail(&["volume", "ls", "--filter", "colour=red"], 125);
    assert_eq!(
        err.trim(),
        "den: unsupported filter `colour` for volume ls: use name, dangling, driver, label"
    );
    let err = sb.den_fail(&["volume", "ls", "--filter", "name"], 125);
    assert_eq!(
        err.trim(),
        "den: invalid --filter `name`: write KEY=VALUE (volume ls knows name, dangling, driver, label)"
    );

    let id = sb.den_ok(&["network", "create", "-l", "env=prod", "front"]);
    sb.den_ok(&["network", "create", "back"]);
    let v: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["network", "inspect", "front"])).unwrap();
    assert_eq!(v[0]["Labels"], serde_json::json!({"env": "prod"}));
    let nls = |f: &[&str]| {
        let mut args = vec!["network", "ls", "-q"];
        for x in f {
            args.extend(["--filter", x]);
        }
        lines(&sb.den_ok(&args))
    };
    assert_eq!(nls(&["label=env=prod"]), ["front"]);
    assert_eq!(nls(&["label=env=dev"]), Vec::<String>::new());
    assert_eq!(nls(&["name=ack"]), ["back"]);
    assert_eq!(nls(&[&format!("id={}", &id.trim()[..10])]), ["front"]);
    assert_eq!(nls(&["name=front", "name=back"]), ["back", "front"]);
    let err = sb.den_fail(&["network", "ls", "--filter", "scope=local"], 125);
    assert_eq!(
        err.trim(),
        "den: unsupported filter `scope` for network ls: use name, id, driver, label"
    );
}

#[test]
fn ps_filters_exited_label_network_volume_health() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&["run", "--name", "ok", "-l", "role=job", "busybox", "true"]);
    sb.den_fail(
        &["run", "--name", "bad", "busybox", "sh", "-c", "exit 3"],
        3,
    );
    run_sleeper(
        &sb,
        "svc",
        &[
            "-l",
            "role=web",
            "-l",
            "tier=1",
            "--network",
            "none",
            "-v",
            "vol1:/srv",
            "--health-cmd",
            "true",
            "--health-interval",
            "1s",
        ],
        "300",
    );
    run_sleeper(&sb, "plain", &[], "300");
    assert_eq!(ps_names(&sb, &["exited=3"]), ["bad"]);
    assert_eq!(ps_names(&sb, &["exited=0"]), ["ok"]);
    assert_eq!(ps_names(&sb, &["exited=0", "exited=3"]), ["bad", "ok"]);
    // exited= looks at stopped containers without -a, like status=.
    assert_eq!(
        sb.den_ok(&["ps", "--filter", "exited=3", "--format", "json"])
            .matches("\"bad\"")
            .count(),
        1
    );
    assert_eq!(ps_names(&sb, &["label=role"]), ["ok", "svc"]);
    assert_eq!(ps_names(&sb, &["label=role=web", "label=tier=1"]), ["svc"]);
    assert!(ps_names(&sb, &["label=role=web", "label=tier=2"]).is_empty());
    assert_eq!(
        ps_names(
            &sb,
            &["status=exited", "status=running", "name=ok", "name=svc"]
        ),
        ["ok", "svc"]
    );
    assert_eq!(ps_names(&sb, &["network=none"]), ["svc"]);
    assert_eq!(
        ps_names(&sb, &["network=private", "status=running"]),
        ["plain"]
    );
    assert_eq!(ps_names(&sb, &["volume=vol1"]), ["svc"]);
    assert_eq!(ps_names(&sb, &["volume=/srv"]), ["svc"]);
    assert!(ps_names(&sb, &["volume=vol2"]).is_empty());
    wait_for("svc healthy", Duration::from_secs(30), || {
        ps_names(&sb, &["health=healthy"]) == ["svc"]
    });
    assert_eq!(ps_names(&sb, &["health=none", "status=running"]), ["plain"]);
    let err = sb.den_fail(&["ps", "--filter", "exited=zero"], 125);
    assert_eq!(
        err.trim(),
        "den: invalid --filter `exited=zero`: give an exit code (a number)"
    );
    let err = sb.den_fail(&["ps", "--filter", "health=sick"], 125);
    assert_eq!(
        err.trim(),
        "den: invalid --filter `health=sick`: health is starting, healthy, unhealthy or none"
    );
    sb.den_ok(&["rm", "-af"]);
}

#[test]
fn images_filters_dangling_reference_before_since_label() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&["pull", "-q", "hello-world"]);
    let file = sb.write_file(
        "ctx/Dockerfile",
        "FROM busybox\nLABEL stage=test\nENV A=1\n",
    );
    let ctx = file.parent().unwrap();
    sb.den_ok(&["build", "-q", "-t", "labelled:1", ctx.to_str().unwrap()]);
    // An untagged image: the old one after its name moves.
    sb.write_file("ctx/Dockerfile", "FROM busybox\nLABEL stage=two\n");
    sb.den_ok(&["build", "-q", "-t", "labelled:1", ctx.to_str().unwrap()]);
    let repos = |f: &[&str]| {
        let mut args = vec!["images", "--format", "json"];
        for x in f {
            args.extend(["--filter", x]);
        }
        let v: serde_json::Value = serde_json::from_str(&sb.den_ok(&args)).unwrap();
        let mut out: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                i["RepoTags"]
                    .get(0)
                    .and_then(|t| t.as_str())
                    .unwrap_or("<none>")
                    .to_string()
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(repos(&["dangling=true"]), ["<none>"]);
    assert_eq!(
        repos(&["dangling=false"]),
        ["busybox:latest", "hello-world:latest", "labelled:1"]
    );
    assert_eq!(repos(&["reference=busy*"]), ["busybox:latest"]);
    assert_eq!(repos(&["reference=*:1"]), ["labelled:1"]);
    assert_eq!(
        repos(&["reference=hello-world", "reference=labelled"]),
        ["hello-world:latest", "labelled:1"]
    );
    assert_eq!(repos(&["label=stage=two"]), ["labelled:1"]);
    assert_eq!(repos(&["label=stage"]), ["<none>", "labelled:1"]);
    assert_eq!(repos(&["label=stage", "dangling=false"]), ["labelled:1"]);
    // before/since compare creation times.
    let all: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["images", "--format", "json"])).unwrap();
    let created = |name: &str| -> String {
        all.as_array()
            .unwrap()
            .iter()
            .find(|i| i["RepoTags"].get(0).and_then(|t| t.as_str()) == Some(name))
            .unwrap()["Created"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (bb, hw, lab) = (
        created("busybox:latest"),
        created("hello-world:latest"),
        created("labelled:1"),
    );
    assert!(
        lab > bb && lab > hw,
        "a fresh build is newest: {bb} {hw} {lab}"
    );
    let older = repos(&["before=labelled:1", "dangling=false"]);
    assert_eq!(older, ["busybox:latest", "hello-world:latest"]);
    assert!(repos(&["since=busybox", "dangling=false"]).contains(&"labelled:1".to_string()));
    assert!(!repos(&["since=busybox"]).contains(&"busybox:latest".to_string()));
    let err = sb.den_fail(&["images", "--filter", "before=nothing:9"], 125);
    assert!(
        err.starts_with("den: --filter before=nothing:9: no such image: nothing:9"),
        "{err}"
    );
    let err = sb.den_fail(&["images", "--filter", "size=1"], 125);
    assert_eq!(
        err.trim(),
        "den: unsupported filter `size` for images: use dangling, reference, before, since, label"
    );
}

#[test]
fn published_ports_with_the_host_network_are_discarded_with_a_warning() {
    let env = require_env!();
    let sb = sandbox(&env);
    let o = sb.den(&[
        "run",
        "--rm",
        "--network",
        "host",
        "-p",
        "8080",
        "busybox",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim(),
        "den: warning: Published ports are discarded when using host network mode"
    );
    let err = sb.den_fail(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-p",
            "8080",
            "busybox",
            "true",
        ],
        125,
    );
    assert_eq!(
        err.trim(),
        "den: ports cannot be published with --network none: use the private network"
    );
}

#[test]
fn log_level_debug_shows_steps_and_timings_error_hides_warnings() {
    let env = require_env!();
    let sb = sandbox(&env);
    let o = sb.den(&["--log-level", "debug", "run", "--rm", "busybox", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("den: debug: pid "), "{err}");
    // The image is in the store, so no thread has started: den forks.
    assert!(
        err.contains("den: debug: forking the supervisor for "),
        "{err}"
    );
    assert!(
        err.contains("den: debug: image busybox is sha256:"),
        "{err}"
    );
    // Step timings from the CLI and from the supervisor (another pid).
    let pids: std::collections::BTreeSet<&str> = err
        .lines()
        .filter(|l| l.starts_with("den: trace: "))
        .filter_map(|l| l.rsplit_once("pid ").map(|(_, p)| p))
        .collect();
    assert!(
        pids.len() >= 2,
        "trace lines of the CLI and the supervisor: {err}"
    );
    assert!(err.contains("den: trace: parse"), "{err}");

    let o = sb.den(&[
        "--log-level",
        "error",
        "run",
        "--rm",
        "--network",
        "host",
        "-p",
        "80",
        "busybox",
        "true",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "error level: no warning");
    let o = sb.den(&[
        "run",
        "--log-level=info",
        "--rm",
        "--pull=always",
        "busybox",
        "true",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("den: info: pulling docker.io/library/busybox:latest (--pull=always)"),
        "{}",
        stderr(&o)
    );
    let o = sb.den(&["run", "--rm", "--pull=always", "busybox", "true"]);
    assert!(
        !stderr(&o).contains("den: info:"),
        "warn (the default) shows no info: {}",
        stderr(&o)
    );
    let err = sb.den_fail(&["--log-level", "loud", "ps"], 125);
    assert!(
        err.contains("invalid value 'loud' for '--log-level <LEVEL>'"),
        "{err}"
    );
}

/// `den … --help` for every command and subcommand `den --help` lists.
#[test]
fn help_everywhere() {
    let env = den_tests::require_base_env!();
    let sb = env.sandbox_sub();
    fn commands(help: &str) -> Vec<String> {
        help.split("Commands:")
            .nth(1)
            .unwrap_or("")
            .split("\n\n")
            .next()
            .unwrap()
            .lines()
            // Commands are indented two spaces; wrapped text more.
            .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
            .map(str::to_string)
            .collect()
    }
    let top = sb.den_ok(&["--help"]);
    let cmds = commands(&top);
    assert!(
        cmds.len() > 30 && cmds.contains(&"volume".to_string()),
        "{cmds:?}"
    );
    let mut checked = 0;
    for c in &cmds {
        let help = sb.den_ok(&[c, "--help"]);
        assert!(help.contains("Usage: den "), "den {c} --help: {help}");
        assert!(help.contains("--log-level"), "den {c} --help: {help}");
        checked += 1;
        for sub in commands(&help) {
            let h = sb.den_ok(&[c, &sub, "--help"]);
            assert!(
                h.contains(&format!("Usage: den {c} {sub}")),
                "den {c} {sub} --help: {h}"
            );
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked}");
}

fn log_path(sb: &UserSandbox, name: &str) -> std::path::PathBuf {
    inspect(sb, name)["LogPath"].as_str().unwrap().into()
}

#[test]
fn log_drivers_json_k8s_none_and_rotation() {
    let env = require_env!();
    let sb = sandbox(&env);
    let both = "echo out; echo err >&2";
    sb.den_ok(&["run", "--name", "j", "busybox", "sh", "-c", both]);
    let text = fs::read_to_string(log_path(&sb, "j")).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "out\n", "json-file is the default: {text}");

    let o = sb.den(&[
        "run",
        "--name",
        "k",
        "--log-driver",
        "k8s-file",
        "busybox",
        "sh",
        "-c",
        both,
    ]);
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("out\n", "err\n")
    );
    let text = fs::read_to_string(log_path(&sb, "k")).unwrap();
    let got: Vec<&str> = text.lines().map(|l| l.split_once(' ').unwrap().1).collect();
    assert_eq!(got, ["stdout F out", "stderr F err"], "{text}");
    let o = sb.den(&["logs", "k"]);
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("out\n", "err\n")
    );
    assert_eq!(
        inspect(&sb, "k")["HostConfig"]["LogConfig"]["Type"],
        "k8s-file"
    );

    // none: an attached run still shows the output; nothing is kept.
    let o = sb.den(&[
        "run",
        "--name",
        "n",
        "--log-driver",
        "none",
        "busybox",
        "sh",
        "-c",
        both,
    ]);
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("out\n", "err\n")
    );
    assert!(!log_path(&sb, "n").exists());
    let err = sb.den_fail(&["logs", "n"], 125);
    assert_eq!(
        err.trim(),
        "den: container n uses the none log driver, which keeps no logs: run it with --log-driver json-file or k8s-file to read them with den logs"
    );

    // Rotation: at most max-file files of about max-size each, newest last.
    sb.den_ok(&[
        "run",
        "--name",
        "r",
        "--log-opt",
        "max-size=1k,max-file=3",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 200 ]; do echo \"line $i of the rotation test\"; i=$((i+1)); done",
    ]);
    let path = log_path(&sb, "r");
    let with = |n: u32| path.with_extension(format!("log.{n}"));
    assert!(with(2).exists() && !with(3).exists(), "max-file=3");
    for p in [path.clone(), with(1), with(2)] {
        assert!(fs::metadata(&p).unwrap().len() <= 1024, "{}", p.display());
    }
    let logs = sb.den_ok(&["logs", "r"]);
    assert_eq!(logs.lines().last(), Some("line 199 of the rotation test"));
    assert_eq!(
        inspect(&sb, "r")["HostConfig"]["LogConfig"],
        serde_json::json!({"Type": "json-file", "Config": {"max-size": "1024", "max-file": "3"}})
    );

    for (args, msg) in [
        (
            vec!["--log-driver", "syslog"],
            "den: unknown --log-driver `syslog`: use json-file, k8s-file, none or passthrough",
        ),
        (
            vec!["--log-opt", "max-size=0"],
            "den: invalid --log-opt max-size=0: a size above 0, like 10m, 512k or 1g",
        ),
        (
            vec!["--log-opt", "max-file=0"],
            "den: invalid --log-opt max-file=0: a number from 1 to 100",
        ),
        (
            vec!["--log-opt", "tag=x"],
            "den: unsupported --log-opt `tag=x`: den knows max-size=SIZE and max-file=N",
        ),
        (
            vec!["--log-driver", "none", "--log-opt", "max-size=1m"],
            "den: --log-opt applies to the json-file and k8s-file drivers, not to none",
        ),
        (
            vec!["-d", "--log-driver", "passthrough"],
            "den: --log-driver passthrough gives the container den's own output, so it cannot run detached: drop -d or use another driver",
        ),
        (
            vec!["-t", "--log-driver", "passthrough"],
            "den: --log-driver passthrough cannot be used with -t: a container sharing your terminal could type into it (TIOCSTI)",
        ),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args);
        a.extend(["busybox", "true"]);
        assert_eq!(sb.den_fail(&a, 125).trim(), msg);
    }
    assert!(
        sb.den_ok(&["ps", "-aq"]).lines().count() == 4,
        "refused runs made no container"
    );
}

/// passthrough: the container's stdout is den's own (here a file), not a
/// pipe to the supervisor.
#[test]
fn log_driver_passthrough_hands_over_dens_stdout() {
    let env = require_env!();
    let sb = sandbox(&env);
    let bin = env.bin.display();
    let script = |driver: &str| {
        format!(
            "{bin} run --name {driver} --log-driver {driver} busybox stat -L -c %i /proc/self/fd/1 > {driver}.out && stat -c %i {driver}.out && cat {driver}.out"
        )
    };
    let got = sb.sh_ok(&script("passthrough"));
    let (file, seen) = (got.lines().next().unwrap(), got.lines().nth(1).unwrap());
    assert_eq!(
        file, seen,
        "the container wrote to den's stdout file itself"
    );
    assert!(!log_path(&sb, "passthrough").exists());
    let err = sb.den_fail(&["logs", "passthrough"], 125);
    assert!(
        err.contains("uses the passthrough log driver, which keeps no logs"),
        "{err}"
    );
    let got = sb.sh_ok(&script("json-file"));
    assert_ne!(
        got.lines().next(),
        got.lines().nth(1),
        "json-file: a pipe: {got}"
    );
}

/// A request left in a stopped container's ctl FIFO was for the run that
/// stopped (`den stop -t 0` sends SIGKILL right after its stop, possibly
/// once that run's supervisor has stopped reading while it still holds the
/// FIFO open, as this test does): the next run's supervisor discards it,
/// and the restarted container runs on (it was killed at once, and
/// `restart --all` of all_flags_stop_start_… missed it, once).
#[test]
fn a_request_left_for_a_stopped_run_does_not_reach_the_next() {
    let env = require_env!();
    let sb = sandbox(&env);
    run_sleeper(&sb, "left", &[], "300");
    sb.den_ok(&["stop", "-t", "0", "left"]);
    let id = inspect(&sb, "left")["Id"].as_str().unwrap().to_string();
    let ctl = sb.root().join("containers").join(id).join("ctl");
    let mut held = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&ctl)
        .unwrap();
    std::io::Write::write_all(&mut held, b"signal 9\n").unwrap();
    sb.den_ok(&["start", "left"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(inspect(&sb, "left")["State"]["Status"], "running");
    drop(held);
    sb.den_ok(&["rm", "-f", "left"]);
}
