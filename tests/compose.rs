//! `den compose` and the container labels it rests on, as the unprivileged
//! test user with subordinate ids: labels on `den run`, project files,
//! interpolation and `.env`, services reaching each other by name and
//! alias on the project network, named volumes across `down`/`up`,
//! recreate on change, dependency conditions and bad input refused before
//! anything is made.

use std::time::{Duration, Instant};

use den_tests::{TestEnv, UserSandbox, inspect, require_env, retry, stderr, stdout, wait_for};

fn sandbox(env: &TestEnv) -> UserSandbox {
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&den_tests::mirror_conf("docker.io", &env.registry));
    sb
}

fn names(ps: &str) -> Vec<String> {
    let mut v: Vec<String> = ps.lines().map(str::to_owned).collect();
    v.sort();
    v
}

/// `den run -l/--label/--label-file`: kept in the record, shown by
/// `inspect` (Config.Labels), selected by `ps --filter label=K[=V]`
/// together with `name=` and `status=`; bad labels and filters refused.
#[test]
fn run_labels_inspect_and_ps_filters() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&["pull", "-q", "busybox"]);
    let file = sb.write_file("labels.txt", "# team labels\ntier=back\n\nowner=ops\n");
    den_tests::run_sleeper(
        &sb,
        "one",
        &[
            "-l",
            "app=shop",
            "--label",
            "tier=front",
            "--label-file",
            file.to_str().unwrap(),
        ],
        "600",
    );
    den_tests::run_sleeper(&sb, "two", &["-l", "app=blog"], "600");
    sb.den_ok(&[
        "run", "--name", "three", "-l", "app=shop", "busybox", "true",
    ]);
    let labels = &inspect(&sb, "one")["Config"]["Labels"];
    // The file first, then --label: a later key wins, as in Docker.
    assert_eq!(
        *labels,
        serde_json::json!({"app": "shop", "tier": "front", "owner": "ops"})
    );
    assert_eq!(
        inspect(&sb, "two")["Config"]["Labels"],
        serde_json::json!({"app": "blog"})
    );
    let ps = |f: &[&str]| {
        let mut args = vec!["ps", "-a", "-q", "--no-trunc"];
        for x in f {
            args.extend(["--filter", x]);
        }
        let ids = sb.den_ok(&args);
        let mut out: Vec<String> = ids
            .lines()
            .map(|id| {
                inspect(&sb, id)["Name"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches('/')
                    .to_owned()
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(ps(&["label=app=shop"]), ["one", "three"]);
    assert_eq!(ps(&["label=app"]), ["one", "three", "two"]);
    assert_eq!(ps(&["label=owner=ops"]), ["one"]);
    assert!(ps(&["label=app=sh"]).is_empty(), "a value matches whole");
    assert_eq!(ps(&["label=app=shop", "status=running"]), ["one"]);
    assert_eq!(ps(&["label=app=shop", "status=exited"]), ["three"]);
    assert_eq!(ps(&["label=app", "name=tw"]), ["two"]);
    // Without -a only running ones; the table has no label column to leak.
    let running = sb.den_ok(&["ps", "-q", "--filter", "label=app=shop"]);
    assert_eq!(running.lines().count(), 1, "{running}");
    let err = sb.den_fail(&["ps", "--filter", "status=sleeping"], 125);
    assert_eq!(
        err.trim(),
        "den: invalid --filter `status=sleeping`: status is created, running, exited or restarting"
    );
    let err = sb.den_fail(&["ps", "--filter", "colour=red"], 125);
    assert_eq!(
        err.trim(),
        "den: unsupported filter `colour` for ps: use name, status, ancestor, id, label, exited, network, volume, health"
    );
    let err = sb.den_fail(
        &["run", "--name", "bad", "-l", "=x", "busybox", "true"],
        125,
    );
    assert_eq!(
        err.trim(),
        "den: invalid --label: `=x` has no key: write KEY=VALUE"
    );
    let bad = sb.write_file("bad-labels.txt", "ok=1\n=nokey\n");
    let err = sb.den_fail(
        &[
            "run",
            "--name",
            "bad",
            "--label-file",
            bad.to_str().unwrap(),
            "busybox",
            "true",
        ],
        125,
    );
    assert_eq!(
        err.trim(),
        format!(
            "den: {}:2: invalid label: `=nokey` has no key: write KEY=VALUE",
            bad.display()
        )
    );
    // Nothing was made for the refused runs.
    assert_eq!(ps(&[]), ["one", "three", "two"]);
    sb.den_ok(&["rm", "-f", "one", "two", "three"]);
}

/// Writes `home/NAME/compose.yaml` (and `.env` when given); returns the
/// file's path.
fn project(sb: &UserSandbox, dir: &str, compose: &str, dotenv: Option<&str>) -> String {
    if let Some(e) = dotenv {
        sb.write_file(format!("{dir}/.env"), e);
    }
    let f = sb.write_file(format!("{dir}/compose.yaml"), compose);
    f.to_str().unwrap().to_owned()
}

fn container_id(sb: &UserSandbox, name: &str) -> String {
    inspect(sb, name)["Id"].as_str().unwrap().to_owned()
}

/// The names of the containers `den ps -a` lists for a label filter.
fn ps_names(sb: &UserSandbox, filter: &str) -> Vec<String> {
    names(
        &sb.den_ok(&["ps", "-a", "--filter", filter, "--format", "json"])
            .pipe(|j| {
                let v: serde_json::Value = serde_json::from_str(&j).unwrap();
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["Names"][0].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
    )
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl Pipe for String {}

const HTTP_PAIR: &str = "\
services:
  web:
    image: python:3.11-slim
    command: python3 -m http.server 80
    networks:
      default:
        aliases: [front]
  api:
    image: python:3.11-slim
    command: [\"python3\", \"-m\", \"http.server\", \"80\"]
    labels:
      tier: backend
";

/// Two services on port 80 each reach the other by service name and by
/// alias on `PROJECT_default`; containers are `PROJECT-SERVICE-1` with
/// docker's labels; `ps`, `logs` (prefixed), and `down` removes the
/// containers and the network.
#[test]
fn services_reach_each_other_by_name_and_alias() {
    let env = require_env!();
    let sb = sandbox(&env);
    let file = project(&sb, "pair", HTTP_PAIR, None);
    let out = sb.den(&["compose", "-f", &file, "-p", "demo", "up", "-d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    for line in [
        " Network demo_default  Created",
        " Container demo-web-1  Started",
        " Container demo-api-1  Started",
    ] {
        assert!(err.contains(line), "{line:?} in {err}");
    }
    assert!(
        sb.den_ok(&["network", "ls", "-q"])
            .lines()
            .any(|n| n == "demo_default")
    );
    let fetch = |url: &str| {
        format!("import urllib.request as u\nprint(u.urlopen('{url}', timeout=5).status)")
    };
    let got = retry("api by name from web", Duration::from_secs(30), || {
        let o = sb.den(&["exec", "demo-web-1", "python3", "-c", &fetch("http://api/")]);
        if !o.status.success() {
            eprintln!("not yet: {}", stderr(&o));
        }
        o.status.success().then(|| stdout(&o))
    });
    assert_eq!(got.trim(), "200");
    let got = retry("web by alias from api", Duration::from_secs(30), || {
        let o = sb.den(&[
            "exec",
            "demo-api-1",
            "python3",
            "-c",
            &fetch("http://front:80/"),
        ]);
        o.status.success().then(|| stdout(&o))
    });
    assert_eq!(got.trim(), "200");
    assert_eq!(
        sb.den_ok(&["exec", "demo-api-1", "python3", "-c", &fetch("http://web/")])
            .trim(),
        "200"
    );
    // Docker's labels, so `den ps --filter label=…` finds the project.
    let labels = &inspect(&sb, "demo-api-1")["Config"]["Labels"];
    assert_eq!(labels["com.docker.compose.project"], "demo");
    assert_eq!(labels["com.docker.compose.service"], "api");
    assert_eq!(labels["com.docker.compose.container-number"], "1");
    assert_eq!(labels["com.docker.compose.oneoff"], "False");
    assert_eq!(labels["tier"], "backend");
    assert_eq!(
        labels["com.docker.compose.config-hash"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert_eq!(
        ps_names(&sb, "label=com.docker.compose.project=demo"),
        ["demo-api-1", "demo-web-1"]
    );
    assert_eq!(
        ps_names(&sb, "label=com.docker.compose.service=web"),
        ["demo-web-1"]
    );
    // compose ps: a table, and docker's one JSON object per line.
    let table = sb.den_ok(&["compose", "-f", &file, "-p", "demo", "ps"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("demo-web-1") && l.contains(" web ") && l.contains("Up ")),
        "{table}"
    );
    let json = sb.den_ok(&[
        "compose", "-f", &file, "-p", "demo", "ps", "--format", "json",
    ]);
    let mut services: Vec<String> = json
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["Project"], "demo");
            assert_eq!(v["State"], "running");
            format!(
                "{}={}",
                v["Service"].as_str().unwrap(),
                v["Name"].as_str().unwrap()
            )
        })
        .collect();
    services.sort();
    assert_eq!(services, ["api=demo-api-1", "web=demo-web-1"]);
    // http.server logs each request on stderr: prefixed with the container.
    let logs = sb.den_ok(&["compose", "-f", &file, "-p", "demo", "logs", "api"]);
    assert!(
        logs.lines()
            .any(|l| l.starts_with("api-1 | ") && l.contains("\"GET / HTTP/1.1\" 200")),
        "{logs}"
    );
    assert!(!logs.contains("web-1 |"), "{logs}");
    let out = sb.den(&["compose", "-f", &file, "-p", "demo", "down", "-t", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(" Network demo_default  Removed"),
        "{}",
        stderr(&out)
    );
    assert!(ps_names(&sb, "label=com.docker.compose.project=demo").is_empty());
    assert!(
        !sb.den_ok(&["network", "ls", "-q"])
            .lines()
            .any(|n| n == "demo_default")
    );
}

/// `${V…}` from the process environment, then `.env` next to the file;
/// `$$` is a literal `$`; `config` shows the result; `--env-file`
/// replaces `.env`; the project name comes from `name:`.
#[test]
fn interpolation_dotenv_and_config() {
    let env = require_env!();
    let sb = sandbox(&env);
    let compose = "\
name: greet
services:
  hello:
    image: ${IMAGE:-busybox}
    command: sh -c 'echo \"$$GREETING from $$WHO\"; sleep 600'
    environment:
      GREETING: ${GREETING:-hello}
      WHO: ${WHO:?set WHO in .env}
    volumes:
      - data:/data
volumes:
  data: {}
";
    let file = project(
        &sb,
        "greet",
        compose,
        Some("WHO=dotenv\nGREETING=from-dotenv-but-env-wins\n"),
    );
    sb.write_file("greet/other.env", "WHO=other-file\n");
    let cfg = sb.den_env_ok(&[("GREETING", "hi")], &["compose", "-f", &file, "config"]);
    assert!(cfg.starts_with("name: greet\n"), "{cfg}");
    assert!(cfg.contains("GREETING: hi\n"), "{cfg}");
    assert!(cfg.contains("WHO: dotenv\n"), "{cfg}");
    assert!(cfg.contains("image: busybox\n"), "{cfg}");
    assert!(cfg.contains("echo \"$GREETING from $WHO\""), "{cfg}");
    assert_eq!(
        sb.den_ok(&["compose", "-f", &file, "config", "--services"]),
        "hello\n"
    );
    assert_eq!(
        sb.den_ok(&["compose", "-f", &file, "config", "--volumes"]),
        "data\n"
    );
    let other = sb.home().join("greet/other.env");
    let cfg = sb.den_ok(&[
        "compose",
        "-f",
        &file,
        "--env-file",
        other.to_str().unwrap(),
        "config",
    ]);
    assert!(
        cfg.contains("WHO: other-file\n") && cfg.contains("GREETING: hello\n"),
        "{cfg}"
    );
    // Found in a parent directory without -f; standard input with -f -.
    sb.write_file("greet/sub/keep", "");
    let found = sb.sh_ok(&format!(
        "cd greet/sub && {} compose config --services",
        env.bin.display()
    ));
    assert_eq!(found, "hello\n");
    let piped = sb.sh_ok(&format!(
        "cd greet && {} compose -f - config --volumes < compose.yaml",
        env.bin.display()
    ));
    assert_eq!(piped, "data\n");
    // A required variable left unset: refused with file, line and key.
    sb.write_file("greet/.env", "");
    let err = sb.den_fail(&["compose", "-f", &file, "up", "-d"], 125);
    assert_eq!(
        err.trim(),
        format!(
            "den: {file}:8 (services.hello.environment.WHO): required variable WHO is missing a value: set WHO in .env"
        )
    );
    assert!(sb.den_ok(&["ps", "-a", "-q"]).is_empty());
    sb.write_file("greet/.env", "WHO=dotenv\n");
    sb.den_env_ok(&[("GREETING", "hi")], &["compose", "-f", &file, "up", "-d"]);
    let logs = retry("the greeting", Duration::from_secs(20), || {
        let l = sb.den_ok(&["compose", "-f", &file, "logs"]);
        (!l.is_empty()).then_some(l)
    });
    assert_eq!(logs, "hello-1 | hi from dotenv\n");
    sb.den_ok(&["compose", "-f", &file, "down", "-v", "-t", "0"]);
}

/// A dependency cycle, an unknown key and an undefined volume are refused
/// with one line naming file, line and key, exit 125, before anything is
/// made.
#[test]
fn bad_files_are_refused_before_anything_starts() {
    let env = require_env!();
    let sb = sandbox(&env);
    let cycle = "\
services:
  a:
    image: busybox
    depends_on: [b]
  b:
    image: busybox
    depends_on:
      a:
        condition: service_started
  c:
    image: busybox
";
    let file = project(&sb, "bad", cycle, None);
    let err = sb.den_fail(&["compose", "-f", &file, "-p", "bad", "up", "-d"], 125);
    assert_eq!(
        err.trim(),
        format!("den: {file} (depends_on): dependency cycle: a -> b -> a")
    );
    let typo = "services:\n  a:\n    imagee: busybox\n";
    let file = project(&sb, "bad", typo, None);
    let err = sb.den_fail(&["compose", "-f", &file, "-p", "bad", "up", "-d"], 125);
    assert_eq!(
        err.trim(),
        format!(
            "den: {file}:3 (services.a.imagee): unknown key \"imagee\" (did you mean \"image\"?)"
        )
    );
    let undefined = "services:\n  a:\n    image: busybox\n    volumes:\n      - data:/data\n  b:\n    image: busybox\n";
    let file = project(&sb, "bad", undefined, None);
    let err = sb.den_fail(&["compose", "-f", &file, "-p", "bad", "up", "-d"], 125);
    assert_eq!(
        err.trim(),
        format!(
            "den: {file}:5 (services.a.volumes): refers to undefined volume \"data\": define it under the top-level volumes:"
        )
    );
    let port = "services:\n  a:\n    image: busybox\n    ports:\n      - \"80:80:80:80\"\n";
    let file = project(&sb, "bad", port, None);
    let err = sb.den_fail(&["compose", "-f", &file, "-p", "bad", "up", "-d"], 125);
    assert!(
        err.trim().starts_with(&format!(
            "den: {file}:5 (services.a.ports): port \"80:80:80:80\""
        )),
        "{err}"
    );
    // Nothing made: no container, network, volume or image pull.
    assert!(sb.den_ok(&["ps", "-a", "-q"]).is_empty());
    assert!(sb.den_ok(&["network", "ls", "-q"]).is_empty());
    assert!(sb.den_ok(&["volume", "ls", "-q"]).is_empty());
    assert!(sb.den_ok(&["images", "-q"]).is_empty());
}

const COUNTER: &str = "\
services:
  db:
    image: busybox
    command: sh -c 'date >> /data/boots; sleep 600'
    volumes:
      - data:/data
volumes:
  data:
";

/// A named volume is `PROJECT_NAME`, keeps its content across `down` and
/// `up`, and goes with `down -v`.
#[test]
fn named_volume_survives_down_up_and_goes_with_down_v() {
    let env = require_env!();
    let sb = sandbox(&env);
    let file = project(&sb, "vol", COUNTER, None);
    let compose = |args: &[&str]| {
        let mut all = vec!["compose", "-f", file.as_str(), "-p", "vol"];
        all.extend(args);
        sb.den_ok(&all)
    };
    let boots = || {
        retry("the boot line", Duration::from_secs(20), || {
            let o = sb.den(&["exec", "vol-db-1", "cat", "/data/boots"]);
            o.status.success().then(|| stdout(&o).lines().count())
        })
    };
    compose(&["up", "-d"]);
    assert_eq!(boots(), 1);
    assert!(
        sb.den_ok(&["volume", "ls", "-q"])
            .lines()
            .any(|v| v == "vol_data")
    );
    compose(&["down", "-t", "0"]);
    assert!(
        sb.den_ok(&["volume", "ls", "-q"])
            .lines()
            .any(|v| v == "vol_data")
    );
    assert!(sb.den_ok(&["ps", "-a", "-q"]).is_empty());
    compose(&["up", "-d"]);
    wait_for("the second boot recorded", Duration::from_secs(20), || {
        boots() >= 2
    });
    let out = sb.den(&["compose", "-f", &file, "-p", "vol", "down", "-v", "-t", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(" Volume vol_data  Removed"),
        "{}",
        stderr(&out)
    );
    assert!(
        !sb.den_ok(&["volume", "ls", "-q"])
            .lines()
            .any(|v| v == "vol_data")
    );
}

/// An unchanged `up` leaves every container running (`Running`, same
/// ids); a changed environment recreates only that service.
#[test]
fn unchanged_up_is_a_noop_and_a_change_recreates_only_that_service() {
    let env = require_env!();
    let sb = sandbox(&env);
    let two = |v: &str| {
        format!(
            "services:\n  a:\n    image: busybox\n    command: sleep 600\n  b:\n    image: busybox\n    command: sleep 600\n    environment:\n      MODE: {v}\n"
        )
    };
    let file = project(&sb, "re", &two("one"), None);
    let up = || {
        let o = sb.den(&["compose", "-f", &file, "-p", "re", "up", "-d"]);
        assert!(o.status.success(), "{}", stderr(&o));
        stderr(&o)
    };
    up();
    let (a, b) = (container_id(&sb, "re-a-1"), container_id(&sb, "re-b-1"));
    let err = up();
    assert!(err.contains(" Container re-a-1  Running"), "{err}");
    assert!(err.contains(" Container re-b-1  Running"), "{err}");
    assert!(!err.contains("Creat") && !err.contains("Recreate"), "{err}");
    assert_eq!(
        (container_id(&sb, "re-a-1"), container_id(&sb, "re-b-1")),
        (a.clone(), b.clone())
    );
    project(&sb, "re", &two("two"), None);
    let err = up();
    assert!(err.contains(" Container re-a-1  Running"), "{err}");
    assert!(err.contains(" Container re-b-1  Recreate"), "{err}");
    assert_eq!(container_id(&sb, "re-a-1"), a);
    let b2 = container_id(&sb, "re-b-1");
    assert_ne!(b2, b);
    let env_b = inspect(&sb, "re-b-1")["Config"]["Env"].to_string();
    assert!(env_b.contains("MODE=two"), "{env_b}");
    assert_eq!(
        ps_names(&sb, "label=com.docker.compose.project=re"),
        ["re-a-1", "re-b-1"]
    );
    sb.den_ok(&["compose", "-f", &file, "-p", "re", "down", "-t", "0"]);
}

/// `service_completed_successfully`: the app starts after its migration
/// job exited 0 (and sees its work); a job that fails stops `up` with a
/// clear message and its dependant is never made.
#[test]
fn completed_successfully_waits_for_the_migration_job() {
    let env = require_env!();
    let sb = sandbox(&env);
    let compose = |code: u8| {
        format!(
            "services:
  migrate:
    image: busybox
    command: sh -c 'sleep 1; echo migrated > /data/state; exit {code}'
    volumes: [data:/data]
  app:
    image: busybox
    command: sh -c 'cat /data/state; sleep 600'
    volumes: [data:/data]
    depends_on:
      migrate:
        condition: service_completed_successfully
volumes:
  data: {{}}
"
        )
    };
    let file = project(&sb, "mig", &compose(0), None);
    sb.den_ok(&["compose", "-f", &file, "-p", "mig", "up", "-d"]);
    let logs = retry("the app's output", Duration::from_secs(20), || {
        let l = sb.den_ok(&["compose", "-f", &file, "-p", "mig", "logs", "app"]);
        (!l.is_empty()).then_some(l)
    });
    assert_eq!(logs, "app-1 | migrated\n");
    assert_eq!(inspect(&sb, "mig-migrate-1")["State"]["Status"], "exited");
    sb.den_ok(&["compose", "-f", &file, "-p", "mig", "down", "-v", "-t", "0"]);
    project(&sb, "mig", &compose(3), None);
    let err = sb.den_fail(&["compose", "-f", &file, "-p", "mig", "up", "-d"], 125);
    // After the progress lines, the one error line.
    assert_eq!(
        err.trim().lines().last(),
        Some(
            "den: service app depends on migrate completing successfully, but container mig-migrate-1 exited with code 3: see `den compose logs migrate`"
        )
    );
    assert_eq!(
        ps_names(&sb, "label=com.docker.compose.project=mig"),
        ["mig-migrate-1"]
    );
    sb.den_ok(&["compose", "-f", &file, "-p", "mig", "down", "-v", "-t", "0"]);
}

/// `service_healthy` waits for `State.Health.Status` = healthy (read as
/// `den inspect` reads it), and a dependency that turns unhealthy fails
/// `up` clearly, its dependant never made. Needs den run's health checks
/// (`--health-cmd`).
#[test]
fn service_healthy_waits_and_fails_on_unhealthy() {
    let env = require_env!();
    let sb = sandbox(&env);
    let compose = |check: &str| {
        format!(
            "services:
  db:
    image: busybox
    command: sh -c 'sleep 2; touch /tmp/ok; exec sleep 600'
    healthcheck:
      test: {check}
      interval: 1s
      timeout: 2s
      retries: 2
  web:
    image: busybox
    command: sleep 600
    depends_on:
      db:
        condition: service_healthy
"
        )
    };
    let file = project(
        &sb,
        "hc",
        &compose("[\"CMD\", \"test\", \"-f\", \"/tmp/ok\"]"),
        None,
    );
    let out = sb.den(&["compose", "-f", &file, "-p", "hc", "up", "-d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        inspect(&sb, "hc-db-1")["State"]["Health"]["Status"],
        "healthy"
    );
    assert_eq!(inspect(&sb, "hc-web-1")["State"]["Status"], "running");
    // web was made only after db was healthy: at least 2 s after db.
    let created = |n: &str| inspect(&sb, n)["Created"].as_str().unwrap().to_owned();
    assert!(created("hc-web-1") > created("hc-db-1"));
    sb.den_ok(&["compose", "-f", &file, "-p", "hc", "down", "-t", "0"]);
    project(&sb, "hc", &compose("[\"CMD-SHELL\", \"exit 1\"]"), None);
    let err = sb.den_fail(&["compose", "-f", &file, "-p", "hc", "up", "-d"], 125);
    assert_eq!(
        err.trim().lines().last(),
        Some(
            "den: service web depends on db being healthy, but container hc-db-1 is unhealthy: see `den compose logs db`"
        )
    );
    assert_eq!(
        ps_names(&sb, "label=com.docker.compose.project=hc"),
        ["hc-db-1"]
    );
    sb.den_ok(&["compose", "-f", &file, "-p", "hc", "down", "-t", "0"]);
}

/// `build:` through den build (build args), then `exec`, `run --rm`,
/// `port`, `stop`/`start`/`restart`, `images`, `ls`, `kill`, `rm -s`.
#[test]
fn build_exec_run_and_lifecycle_commands() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.write_file(
        "bld/app/Dockerfile",
        "FROM busybox\nARG GREETING\nRUN echo \"$GREETING\" > /greeting\n",
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let compose = format!(
        "services:
  app:
    build:
      context: ./app
      args:
        GREETING: built-by-den
    command: sh -c 'cat /greeting; exec sleep 600'
    ports:
      - \"127.0.0.1:{port}:8000\"
"
    );
    let file = project(&sb, "bld", &compose, None);
    let dc = |args: &[&str]| {
        let mut all = vec!["compose", "-f", file.as_str(), "-p", "bld"];
        all.extend(args);
        sb.den(&all)
    };
    let ok = |args: &[&str]| {
        let o = dc(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        (stdout(&o), stderr(&o))
    };
    let (_, err) = ok(&["up", "-d"]);
    assert!(err.contains(" Image bld-app  Built"), "{err}");
    let logs = retry("the greeting", Duration::from_secs(20), || {
        let l = ok(&["logs", "app"]).0;
        (!l.is_empty()).then_some(l)
    });
    assert_eq!(logs, "app-1 | built-by-den\n");
    // An unchanged up neither builds nor recreates.
    let (_, err) = ok(&["up", "-d"]);
    assert!(
        !err.contains("Build") && err.contains(" Container bld-app-1  Running"),
        "{err}"
    );
    assert_eq!(
        ok(&["exec", "-T", "app", "cat", "/greeting"]).0,
        "built-by-den\n"
    );
    assert_eq!(
        ok(&["exec", "-T", "-e", "X=y", "app", "sh", "-c", "echo $X"]).0,
        "y\n"
    );
    assert_eq!(
        ok(&["run", "--rm", "app", "echo", "one-off"]).0,
        "one-off\n"
    );
    assert!(ps_names(&sb, "label=com.docker.compose.oneoff=True").is_empty());
    assert_eq!(
        ok(&["port", "app", "8000"]).0.trim(),
        format!("127.0.0.1:{port}")
    );
    let (out, _) = ok(&["images"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("bld-app-1") && l.contains("bld-app")),
        "{out}"
    );
    let (out, _) = ok(&["ls"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("bld") && l.contains("running(1)")),
        "{out}"
    );
    ok(&["stop", "-t", "0"]);
    assert_eq!(inspect(&sb, "bld-app-1")["State"]["Status"], "exited");
    assert!(ok(&["ps"]).0.lines().count() == 1, "only the header");
    let (out, _) = ok(&["ls", "-a"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("bld") && l.contains("exited(1)")),
        "{out}"
    );
    ok(&["start"]);
    assert_eq!(inspect(&sb, "bld-app-1")["State"]["Status"], "running");
    let before = inspect(&sb, "bld-app-1")["State"]["StartedAt"].clone();
    ok(&["restart", "-t", "0"]);
    assert_ne!(inspect(&sb, "bld-app-1")["State"]["StartedAt"], before);
    ok(&["kill", "-s", "KILL"]);
    retry("killed", Duration::from_secs(10), || {
        (inspect(&sb, "bld-app-1")["State"]["Status"] == "exited").then_some(())
    });
    ok(&["rm", "-f"]);
    assert!(ps_names(&sb, "label=com.docker.compose.project=bld").is_empty());
    // --no-build with the image gone: refused before anything is made.
    sb.den_ok(&["rmi", "bld-app"]);
    let o = dc(&["up", "-d", "--no-build"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim().lines().last(),
        Some(
            "den: service app: image bld-app is not built and --no-build was given: run `den compose build app`"
        )
    );
    assert!(ps_names(&sb, "label=com.docker.compose.project=bld").is_empty());
    ok(&["build"]);
    assert!(sb.den_ok(&["images"]).contains("bld-app"));
    ok(&["down"]);
}

/// `up --wait` returns once every service runs; an attached `up
/// --abort-on-container-exit` stops the rest when one exits and returns
/// its code.
#[test]
fn up_wait_and_abort_on_container_exit() {
    let env = require_env!();
    let sb = sandbox(&env);
    let compose = "\
services:
  job:
    image: busybox
    command: sh -c 'echo working; sleep 2; exit 7'
  svc:
    image: busybox
    command: sleep 600
";
    let file = project(&sb, "ab", compose, None);
    sb.den_ok(&["compose", "-f", &file, "-p", "ab", "up", "--wait", "svc"]);
    assert_eq!(inspect(&sb, "ab-svc-1")["State"]["Status"], "running");
    assert!(ps_names(&sb, "label=com.docker.compose.service=job").is_empty());
    let t = Instant::now();
    let o = sb.den(&[
        "compose",
        "-f",
        &file,
        "-p",
        "ab",
        "up",
        "--abort-on-container-exit",
    ]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(t.elapsed() < Duration::from_secs(30));
    assert!(stdout(&o).contains("job-1 | working\n"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("Aborting on container exit..."),
        "{}",
        stderr(&o)
    );
    assert_eq!(inspect(&sb, "ab-svc-1")["State"]["Status"], "exited");
    sb.den_ok(&["compose", "-f", &file, "-p", "ab", "down", "-t", "0"]);
}

/// One HTTP/1.0 request to 127.0.0.1:`port`; the status code and body,
/// or None when nothing answered.
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Some((code, body))
}

const NOTES_APP: &str = "\
import pymysql
from flask import Flask, request

app = Flask(__name__)


def db():
    return pymysql.connect(host='db', user='app', password='apppw', database='app', autocommit=True)


@app.route('/notes', methods=['GET', 'POST'])
def notes():
    with db() as c, c.cursor() as cur:
        cur.execute('CREATE TABLE IF NOT EXISTS notes (body TEXT)')
        if request.method == 'POST':
            cur.execute('INSERT INTO notes VALUES (%s)', (request.get_data(as_text=True),))
            return 'stored\\n'
        cur.execute('SELECT body FROM notes')
        return ''.join(r[0] + '\\n' for r in cur.fetchall())
";

/// The reference scenario: MariaDB with a health check and a Flask +
/// PyMySQL service built from a Dockerfile (wheels from the shared dir),
/// `depends_on: service_healthy`; a row written over HTTP survives
/// `down` + `up` in the named volume; `down -v` removes the volume.
/// Needs den run's health checks (`--health-cmd`).
#[test]
fn flask_and_mariadb_keep_their_data_across_down_and_up() {
    let env = require_env!();
    let Some(shared) = env.shared.clone() else {
        eprintln!("skipping: no shared dir for the wheels");
        return;
    };
    let sb = sandbox(&env);
    for w in std::fs::read_dir(shared.join("wheels")).unwrap() {
        let w = w.unwrap();
        let name = w.file_name().to_string_lossy().into_owned();
        if name.ends_with(".whl") {
            sb.write_file(
                format!("ref/web/wheels/{name}"),
                std::fs::read(w.path()).unwrap(),
            );
        }
    }
    sb.write_file("ref/web/app.py", NOTES_APP);
    sb.write_file(
        "ref/web/Dockerfile",
        "FROM python:3.11-slim
COPY wheels/ /wheels/
RUN pip install --no-cache-dir --no-index --find-links /wheels flask==3.0.3 PyMySQL==1.1.1
COPY app.py /app/app.py
WORKDIR /app
CMD [\"python\", \"-m\", \"flask\", \"--app\", \"app\", \"run\", \"--host\", \"0.0.0.0\", \"--port\", \"5000\"]
",
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let compose = format!(
        "services:
  db:
    image: mariadb:10.11
    environment:
      MARIADB_ROOT_PASSWORD: rootpw
      MARIADB_DATABASE: app
      MARIADB_USER: app
      MARIADB_PASSWORD: apppw
    volumes:
      - dbdata:/var/lib/mysql
    healthcheck:
      test: [\"CMD\", \"mariadb-admin\", \"ping\", \"-h\", \"127.0.0.1\", \"-uapp\", \"-papppw\"]
      interval: 1s
      timeout: 5s
      retries: 60
  web:
    build: ./web
    ports:
      - \"127.0.0.1:{port}:5000\"
    depends_on:
      db:
        condition: service_healthy
volumes:
  dbdata:
"
    );
    let file = project(&sb, "ref", &compose, None);
    let dc = |args: &[&str]| {
        let mut all = vec!["compose", "-f", file.as_str(), "-p", "ref"];
        all.extend(args);
        let o = sb.den(&all);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stderr(&o)
    };
    dc(&["up", "-d"]);
    // db was healthy before web was made; the web server may still be starting.
    assert_eq!(
        inspect(&sb, "ref-db-1")["State"]["Health"]["Status"],
        "healthy"
    );
    let stored = retry("the first write", Duration::from_secs(60), || {
        http(port, "POST", "/notes", "survives-down").filter(|(c, _)| *c == 200)
    });
    assert_eq!(stored.1, "stored\n");
    dc(&["down"]);
    assert!(
        sb.den_ok(&["volume", "ls", "-q"])
            .lines()
            .any(|v| v == "ref_dbdata")
    );
    dc(&["up", "-d"]);
    let read = retry("the read after up", Duration::from_secs(60), || {
        http(port, "GET", "/notes", "").filter(|(c, _)| *c == 200)
    });
    assert_eq!(read.1, "survives-down\n");
    let err = dc(&["down", "-v"]);
    assert!(err.contains(" Volume ref_dbdata  Removed"), "{err}");
    assert!(
        !sb.den_ok(&["volume", "ls", "-q"])
            .lines()
            .any(|v| v == "ref_dbdata")
    );
}

/// `compose create` makes every container `Created` (nothing runs until
/// `compose start`) and recreates nothing when unchanged; `compose top`
/// lists each running container's processes under its name; `compose
/// push` pushes the images of services with `build:` and `image:` (only
/// those) to the loopback registry, from where another user pulls the
/// same image.
#[test]
fn create_start_top_and_push() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&["pull", "-q", "busybox"]);
    sb.write_file(
        "cps/app/Dockerfile",
        "FROM busybox\nRUN echo pushed > /mark\n",
    );
    let image = format!("{}/den-test/cps-app:{}", env.registry, std::process::id());
    let compose = format!(
        "services:
  app:
    build: ./app
    image: {image}
    command: sh -c 'cat /mark; exec sleep 600'
  local:
    build: ./app
    command: sleep 601
  db:
    image: busybox
    command: sleep 602
"
    );
    let file = project(&sb, "cps", &compose, None);
    let dc = |args: &[&str]| {
        let mut all = vec!["compose", "-f", file.as_str(), "-p", "cps"];
        all.extend(args);
        sb.den(&all)
    };
    let ok = |args: &[&str]| {
        let o = dc(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        (stdout(&o), stderr(&o))
    };
    let (_, err) = ok(&["create"]);
    for c in ["cps-app-1", "cps-local-1", "cps-db-1"] {
        assert!(err.contains(&format!(" Container {c}  Created")), "{err}");
        let s = inspect(&sb, c);
        assert_eq!(s["State"]["Status"], "created", "{c}");
        assert_eq!(s["State"]["Pid"], 0, "{c}");
    }
    assert_eq!(ok(&["ps"]).0.lines().count(), 1, "only the header");
    assert_eq!(ok(&["ps", "-a"]).0.lines().count(), 4);
    assert_eq!(ok(&["top"]).0, "", "nothing runs");
    // Unchanged: created again is a no-op.
    let (_, err) = ok(&["create"]);
    assert!(!err.contains("Container"), "{err}");
    ok(&["start"]);
    let (top, _) = retry("all three running", Duration::from_secs(20), || {
        let t = ok(&["top"]);
        (t.0.matches("UID").count() == 3).then_some(t)
    });
    for (c, cmd) in [
        ("cps-app-1", "sleep 600"),
        ("cps-local-1", "sleep 601"),
        ("cps-db-1", "sleep 602"),
    ] {
        let block = top
            .split("\n\n")
            .find(|b| b.lines().next() == Some(c))
            .unwrap_or_else(|| panic!("no block for {c}: {top}"));
        assert!(block.lines().nth(1).unwrap().starts_with("UID"), "{block}");
        assert!(block.contains(cmd), "{block}");
    }
    assert_eq!(
        retry("the mark", Duration::from_secs(20), || {
            let l = ok(&["logs", "app"]).0;
            (!l.is_empty()).then_some(l)
        }),
        "app-1 | pushed\n"
    );
    let (_, err) = ok(&["push", "--tls-verify=false"]);
    assert!(err.contains(&format!(" Image {image}  Pushed")), "{err}");
    assert!(
        !err.contains("cps-local") && !err.contains("busybox"),
        "{err}"
    );
    let fresh = env.sandbox_nosub();
    fresh.write_registries_conf(&env.insecure_all());
    fresh.den_ok(&["pull", "-q", &image]);
    let id = |sb: &UserSandbox| {
        let v: serde_json::Value =
            serde_json::from_str(&sb.den_ok(&["image", "inspect", &image])).unwrap();
        v[0]["Id"].clone()
    };
    assert_eq!(id(&fresh), id(&sb));
    ok(&["down", "-t", "0"]);
}

/// Fetches `http://127.0.0.1:8080/x` from inside the container (python's
/// urllib), through `den exec` or a `den run` line given as `prefix`.
const FETCH: &str = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8080/x').read().decode().strip())";

const SERVE: &str =
    "echo shared-netns > /tmp/x && cd /tmp && exec python3 -m http.server 8080 --bind 127.0.0.1";

/// `den run --network container:NAME` joins that container's network
/// namespace (its loopback server answers; its hostname and /etc/hosts
/// are shared), Docker's conflicting options are refused in Docker's
/// words, a stopped target is refused clearly; compose's `network_mode:
/// service:NAME` does the same for a service, started after it.
#[test]
fn network_mode_service_and_run_network_container_share_the_namespace() {
    let env = require_env!();
    for sb in [sandbox(&env), {
        let sb = env.sandbox_nosub();
        sb.write_registries_conf(&den_tests::mirror_conf("docker.io", &env.registry));
        sb
    }] {
        sb.den_ok(&["pull", "-q", "python:3.11-slim"]);
        sb.den_ok(&[
            "run",
            "-d",
            "--name",
            "srv",
            "python:3.11-slim",
            "sh",
            "-c",
            SERVE,
        ]);
        let got = retry(
            "the joined loopback server",
            Duration::from_secs(30),
            || {
                let o = sb.den(&[
                    "run",
                    "--rm",
                    "--network",
                    "container:srv",
                    "python:3.11-slim",
                    "python3",
                    "-c",
                    FETCH,
                ]);
                if !o.status.success() {
                    eprintln!("not yet: {}", stderr(&o));
                }
                o.status.success().then(|| stdout(&o))
            },
        );
        assert_eq!(got, "shared-netns\n", "as {}", sb.user());
        let host = |args: &[&str]| sb.den_ok(args).trim().to_owned();
        assert_eq!(
            host(&[
                "run",
                "--rm",
                "--network",
                "container:srv",
                "python:3.11-slim",
                "hostname"
            ]),
            host(&["exec", "srv", "hostname"])
        );
        for (flags, what) in [
            (
                &["-p", "9000:80"][..],
                "port publishing and the container type network mode",
            ),
            (&["--hostname", "h"], "hostname and the network mode"),
            (&["--dns", "1.1.1.1"], "dns and the network mode"),
            (
                &["--add-host", "a:1.2.3.4"],
                "custom host-to-IP mapping and the network mode",
            ),
        ] {
            let mut args = vec!["run", "--rm", "--network", "container:srv"];
            args.extend(flags);
            args.extend(["python:3.11-slim", "true"]);
            let err = sb.den_fail(&args, 125);
            assert_eq!(err.trim(), format!("den: conflicting options: {what}"));
        }
        let err = sb.den_fail(
            &[
                "run",
                "--rm",
                "--network",
                "container:nosuch",
                "python:3.11-slim",
                "true",
            ],
            125,
        );
        assert!(err.contains("no such container: nosuch"), "{err}");
        sb.den_ok(&["stop", "-t", "0", "srv"]);
        let err = sb.den_fail(
            &[
                "run",
                "--rm",
                "--network",
                "container:srv",
                "python:3.11-slim",
                "true",
            ],
            125,
        );
        assert!(
            err.contains("container srv is not running: start it first"),
            "{err}"
        );
        sb.den_ok(&["rm", "srv"]);
    }
    let sb = sandbox(&env);
    let compose = format!(
        "services:
  side:
    image: python:3.11-slim
    network_mode: service:web
    command: sleep 600
  web:
    image: python:3.11-slim
    command: sh -c '{SERVE}'
"
    );
    let file = project(&sb, "nsm", &compose, None);
    let dc = |args: &[&str]| {
        let mut all = vec!["compose", "-f", file.as_str(), "-p", "nsm"];
        all.extend(args);
        sb.den(&all)
    };
    let o = dc(&["up", "-d"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let started = |c: &str| err.find(&format!(" Container {c}  Started")).unwrap();
    assert!(started("nsm-web-1") < started("nsm-side-1"), "{err}");
    let got = retry("web's server from side", Duration::from_secs(30), || {
        let o = dc(&["exec", "-T", "side", "python3", "-c", FETCH]);
        o.status.success().then(|| stdout(&o))
    });
    assert_eq!(got, "shared-netns\n");
    assert_eq!(
        inspect(&sb, "nsm-side-1")["HostConfig"]["NetworkMode"]["Container"]["name"],
        "nsm-web-1"
    );
    let o = dc(&["down", "-t", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `build.dockerfile_inline` builds from the file's own text;
/// `deploy.replicas` and `up --scale` run PROJECT-SERVICE-1..N (scaling
/// down removes the highest numbers, nothing else is recreated), every
/// replica answers to the service's name on the project network; a fixed
/// host port on a scaled service, a bad --scale and both dockerfile keys
/// are refused before anything is made.
#[test]
fn replicas_scale_and_dockerfile_inline() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&["pull", "-q", "busybox"]);
    let compose = "services:
  web:
    build:
      context: .
      dockerfile_inline: |
        FROM busybox
        RUN echo inline > /from-inline
    image: scl-web
    command: sh -c 'cat /from-inline; exec sleep 600'
    deploy:
      replicas: 2
  client:
    image: busybox
    command: sleep 600
";
    let file = project(&sb, "scl", compose, None);
    let dc = |args: &[&str]| {
        let mut all = vec!["compose", "-f", file.as_str(), "-p", "scl"];
        all.extend(args);
        sb.den(&all)
    };
    let ok = |args: &[&str]| {
        let o = dc(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        (stdout(&o), stderr(&o))
    };
    let web = || ps_names(&sb, "label=com.docker.compose.service=web");
    ok(&["up", "-d"]);
    assert_eq!(web(), ["scl-web-1", "scl-web-2"]);
    let logs = retry("both replicas' output", Duration::from_secs(20), || {
        let l = ok(&["logs", "web"]).0;
        (l.lines().count() == 2).then_some(l)
    });
    assert_eq!(names(&logs), ["web-1 | inline", "web-2 | inline"]);
    // Every replica answers to the service's name.
    let ip = |c: &str| {
        ok(&[
            "exec",
            "-T",
            "client",
            "sh",
            "-c",
            &format!("grep -w {c} /etc/hosts"),
        ])
        .0
    };
    for c in ["scl-web-1", "scl-web-2"] {
        let line = ip(c);
        assert!(line.split_whitespace().any(|w| w == "web"), "{c}: {line}");
    }
    let first = container_id(&sb, "scl-web-1");
    let (_, err) = ok(&["up", "-d", "--scale", "web=3"]);
    assert!(err.contains(" Container scl-web-1  Running"), "{err}");
    assert_eq!(web(), ["scl-web-1", "scl-web-2", "scl-web-3"]);
    let (_, err) = ok(&["up", "-d", "--scale", "web=1"]);
    assert!(
        err.contains(" Container scl-web-2  Removed")
            && err.contains(" Container scl-web-3  Removed"),
        "{err}"
    );
    assert_eq!(web(), ["scl-web-1"]);
    assert_eq!(container_id(&sb, "scl-web-1"), first, "never recreated");
    for (flag, want) in [
        (
            "web=x",
            "den: invalid --scale `web=x`: use SERVICE=N with N from 0 to 100",
        ),
        (
            "web=101",
            "den: invalid --scale `web=101`: use SERVICE=N with N from 0 to 100",
        ),
        (
            "nosuch=2",
            "den: no such service: nosuch (the project's services: web, client)",
        ),
    ] {
        let o = dc(&["up", "-d", "--scale", flag]);
        assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
        assert_eq!(stderr(&o).trim(), want);
    }
    ok(&["down", "-t", "0"]);
    // A fixed host port cannot be shared by replicas.
    let port = den_tests::free_port();
    let bad = format!(
        "services:
  web:
    image: busybox
    command: sleep 600
    ports:
      - \"127.0.0.1:{port}:80\"
"
    );
    let bad_file = project(&sb, "scp", &bad, None);
    let o = sb.den(&["compose", "-f", &bad_file, "up", "-d", "--scale", "web=2"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).trim().ends_with(
            "(services.web.ports): service \"web\" cannot be scaled because it specifies a port on the host. If multiple containers for this service were created, the port would clash. Remove the host port so each container gets a random one"
        ),
        "{}",
        stderr(&o)
    );
    assert!(ps_names(&sb, "label=com.docker.compose.project=scp").is_empty());
    let both = "services:
  web:
    build:
      context: .
      dockerfile: Dockerfile
      dockerfile_inline: FROM busybox
";
    let both_file = project(&sb, "both", both, None);
    let o = sb.den(&["compose", "-f", &both_file, "up", "-d"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).trim().ends_with(
            "(services.web.build): dockerfile and dockerfile_inline are mutually exclusive: keep one"
        ),
        "{}",
        stderr(&o)
    );
}

const FRONT_BACK: &str = "\
services:
  proxy:
    image: python:3.11-slim
    hostname: proxy
    command: python3 -m http.server 80 -d /etc
    networks: [front]
  web:
    image: python:3.11-slim
    hostname: web
    command: python3 -m http.server 80 -d /etc
    networks:
      front:
      back:
        aliases: [app]
  db:
    image: python:3.11-slim
    hostname: db
    command: python3 -m http.server 80 -d /etc
    networks:
      back:
        aliases: [database]
networks:
  front:
  back:
";

/// A service on two networks (web on front and back, proxy only on front,
/// db only on back): web reaches both by name and per-network alias, proxy
/// cannot resolve db; each network lists web with its names there; after
/// `compose stop` and the infras' exit, `compose start` brings all back
/// ([`start_after_the_infras_exited`]); `down` removes both networks.
fn service_on_two_networks(sb: &UserSandbox) {
    let file = project(sb, "fb", FRONT_BACK, None);
    let out = sb.den(&["compose", "-f", &file, "-p", "fb", "up", "-d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = retry("db from web", Duration::from_secs(30), || {
        let o = den_tests::fetch_in(sb, "fb-web-1", "http://db/hostname");
        (o.trim() == "db").then_some(o)
    });
    assert_eq!(got.trim(), "db");
    assert_eq!(
        den_tests::fetch_in(sb, "fb-web-1", "http://database/hostname").trim(),
        "db"
    );
    // Each server answers once it listens: `up -d` returns when the
    // containers started, as Docker's does, not when their servers are up.
    let answer = |from: &str, url: &str, name: &str| {
        retry(
            &format!("{url} from {from}"),
            Duration::from_secs(30),
            || {
                let o = den_tests::fetch_in(sb, from, url);
                (o.trim() == name).then_some(o)
            },
        )
    };
    assert_eq!(
        answer("fb-web-1", "http://proxy/hostname", "proxy").trim(),
        "proxy"
    );
    assert_eq!(
        answer("fb-proxy-1", "http://web/hostname", "web").trim(),
        "web"
    );
    assert_eq!(
        den_tests::fetch_in(sb, "fb-db-1", "http://app/hostname").trim(),
        "web"
    );
    assert_eq!(
        den_tests::fetch_in(sb, "fb-proxy-1", "http://db/hostname").trim(),
        "[Errno -2] Name or service not known"
    );
    assert_eq!(
        den_tests::fetch_in(sb, "fb-proxy-1", "http://app/hostname").trim(),
        "[Errno -2] Name or service not known",
        "web's alias on back is not its name on front"
    );
    let nets = inspect(sb, "fb-web-1")["NetworkSettings"]["Networks"].clone();
    assert_eq!(
        nets["fb_front"]["Aliases"],
        serde_json::json!(["fb-web-1", "web"])
    );
    assert_eq!(
        nets["fb_back"]["Aliases"],
        serde_json::json!(["fb-web-1", "web", "app"])
    );
    start_after_the_infras_exited(sb, &file);
    let out = sb.den(&["compose", "-f", &file, "-p", "fb", "down", "-t", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for line in [" Network fb_front  Removed", " Network fb_back  Removed"] {
        assert!(stderr(&out).contains(line), "{line:?} in {}", stderr(&out));
    }
    assert_eq!(sb.den_ok(&["network", "ls", "-q"]).trim(), "");
}

/// `compose stop`, both networks' infras exit (polled: `infra.json` gone
/// or its process dead), then `compose start` brings every service back:
/// web reaches db and proxy by name again, `ps` shows all three Up.
fn start_after_the_infras_exited(sb: &UserSandbox, file: &str) {
    let out = sb.den(&["compose", "-f", file, "-p", "fb", "stop", "-t", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for net in ["fb_front", "fb_back"] {
        wait_for(
            &format!("network {net}'s infra to exit"),
            Duration::from_secs(40),
            || den_tests::infra_gone(sb, net),
        );
    }
    let out = sb.den(&["compose", "-f", file, "-p", "fb", "start"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for to in ["db", "proxy"] {
        let got = retry(
            &format!("{to} from web again"),
            Duration::from_secs(30),
            || {
                let o = den_tests::fetch_in(sb, "fb-web-1", &format!("http://{to}/hostname"));
                (o.trim() == to).then_some(o)
            },
        );
        assert_eq!(got.trim(), to);
    }
    assert_eq!(
        den_tests::names_up(sb),
        ["fb-db-1", "fb-proxy-1", "fb-web-1"]
    );
}

#[test]
fn a_service_on_two_networks_sub() {
    let env = require_env!();
    service_on_two_networks(&sandbox(&env));
}

#[test]
fn a_service_on_two_networks_nosub() {
    let env = require_env!();
    let sb = env.sandbox_nosub();
    sb.write_registries_conf(&den_tests::mirror_conf("docker.io", &env.registry));
    service_on_two_networks(&sb);
}

/// A fixed address on a service's network is refused before anything is
/// made, naming the file, line and key.
#[test]
fn a_fixed_network_address_is_refused() {
    let env = require_env!();
    let sb = sandbox(&env);
    let file = project(
        &sb,
        "fixed",
        "services:\n  web:\n    image: busybox\n    networks:\n      back:\n        ipv4_address: 10.89.7.7\nnetworks:\n  back:\n",
        None,
    );
    let err = sb.den_fail(&["compose", "-f", &file, "-p", "fixed", "up", "-d"], 125);
    assert!(
        err.contains("services.web.networks.back.ipv4_address")
            && err.contains("a fixed address is not supported by den"),
        "{err}"
    );
    assert_eq!(sb.den_ok(&["network", "ls", "-q"]).trim(), "");
}

/// `priority` (higher joins first) and `gw_priority` (the default route,
/// so eth0) order a service's networks instead of the file's order: web
/// lists a, b, c; b has priority 10, c priority 5 and gw_priority 1, so c
/// is eth0 with the default route, b eth1, a eth2. A priority that is not
/// an integer is refused naming its key, before anything is made.
fn network_priorities(sb: &UserSandbox) {
    let file = project(
        sb,
        "pr",
        "services:\n  web:\n    image: busybox\n    command: sleep 300\n    networks:\n      a:\n      b:\n        priority: 10\n      c:\n        priority: 5\n        gw_priority: 1\nnetworks:\n  a:\n  b:\n  c:\n",
        None,
    );
    let out = sb.den(&["compose", "-f", &file, "-p", "pr", "up", "-d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let nets = inspect(sb, "pr-web-1")["NetworkSettings"]["Networks"].clone();
    for (dev, net) in [("eth0", "pr_c"), ("eth1", "pr_b"), ("eth2", "pr_a")] {
        let ip = nets[net]["IPAddress"].as_str().unwrap();
        den_tests::assert_address(sb, "pr-web-1", dev, ip);
    }
    let gw = nets["pr_c"]["Gateway"].as_str().unwrap();
    den_tests::assert_default_route(sb, "pr-web-1", gw, "eth0");
    let out = sb.den(&["compose", "-f", &file, "-p", "pr", "down", "-t", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bad = project(
        sb,
        "prbad",
        "services:\n  web:\n    image: busybox\n    networks:\n      a:\n        gw_priority: high\nnetworks:\n  a:\n",
        None,
    );
    let err = sb.den_fail(&["compose", "-f", &bad, "-p", "prbad", "up", "-d"], 125);
    assert!(
        err.contains("services.web.networks.a.gw_priority")
            && err.contains("must be an integer, not \"high\""),
        "{err}"
    );
    assert_eq!(sb.den_ok(&["network", "ls", "-q"]).trim(), "");
}

#[test]
fn network_priorities_order_the_interfaces_sub() {
    let env = require_env!();
    network_priorities(&sandbox(&env));
}

#[test]
fn network_priorities_order_the_interfaces_nosub() {
    let env = require_env!();
    let sb = env.sandbox_nosub();
    sb.write_registries_conf(&den_tests::mirror_conf("docker.io", &env.registry));
    network_priorities(&sb);
}
