//! `den ps`, `den inspect`, `den wait`, `den logs`: reading containers.

use std::io::Write;
use std::time::Duration;

use anyhow::bail;
use den_sandbox::container::logs;
use den_sandbox::container::spec::{ContainerSpec, Mount, Network};
use den_sandbox::container::state::{State, Status};
use serde_json::json;

use crate::containers::{Containers, Record};
use crate::context::Context;
use crate::filters::Filters;
use crate::output::{ago, escape_controls, table};
use crate::template::Format;

/// Docker's STATUS column: "Up 3 seconds", "Exited (0) 5 seconds ago".
pub fn status_text(state: &State, now: chrono::DateTime<chrono::Utc>) -> String {
    let since = |t: &Option<String>| t.as_deref().map(|t| ago(t, now)).unwrap_or_default();
    match state.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", since(&state.started_at).trim_end_matches(" ago")),
        Status::Restarting => format!(
            "Restarting ({}) {}",
            state.exit_code.unwrap_or(0),
            since(&state.finished_at)
        ),
        Status::Exited => format!(
            "Exited ({}) {}",
            state.exit_code.unwrap_or(255),
            since(&state.finished_at)
        ),
    }
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Created => "created",
        Status::Running => "running",
        Status::Restarting => "restarting",
        Status::Exited => "exited",
    }
}

const PS_FILTERS: &[&str] = &[
    "name", "status", "ancestor", "id", "label", "exited", "network", "volume", "health",
];

/// Whether a container passes `den ps --filter`s (module doc of
/// `crate::filters` for how they combine).
fn ps_match(
    f: &Filters,
    containers: &Containers,
    networks: &crate::networks::Networks,
    r: &Record,
    s: &State,
) -> anyhow::Result<bool> {
    for v in f.values("status") {
        if !["created", "running", "exited", "restarting"].contains(&v.as_str()) {
            bail!(
                "invalid --filter `status={v}`: status is created, running, exited or restarting"
            );
        }
    }
    for v in f.values("health") {
        if !["starting", "healthy", "unhealthy", "none"].contains(&v.as_str()) {
            bail!("invalid --filter `health={v}`: health is starting, healthy, unhealthy or none");
        }
    }
    let mut codes = Vec::new();
    for v in f.values("exited") {
        codes.push(v.parse::<i32>().map_err(|_| {
            anyhow::anyhow!("invalid --filter `exited={v}`: give an exit code (a number)")
        })?);
    }
    let spec = || read_spec(containers, r);
    let health = || {
        crate::health::of(&containers.dir_of(&r.id), s)
            .map_or("none", |h| h.status.as_str())
            .to_string()
    };
    Ok(f.any("name", |v| r.name.contains(v))
        && f.any("status", |v| status_word(s.status) == v)
        && f.any("ancestor", |v| is_ancestor(r, v))
        && f.any("id", |v| r.id.starts_with(v))
        && f.labels_match(&r.labels)
        && (codes.is_empty()
            || (s.status == Status::Exited && codes.contains(&s.exit_code.unwrap_or(255))))
        && (!f.has("network") || {
            let mine = spec().map_or(Vec::new(), |s| network_names(&s.network));
            f.any("network", |v| {
                let want = networks.get(v).map_or(v.to_string(), |n| n.name);
                mine.contains(&want)
            })
        })
        && (!f.has("volume") || {
            let targets: Vec<String> = spec()
                .map(|s| s.mounts.iter().map(|m| m.target().to_string()).collect())
                .unwrap_or_default();
            f.any("volume", |v| {
                r.volumes.iter().any(|n| n == v) || targets.iter().any(|t| t == v)
            })
        })
        && (!f.has("health") || {
            let h = health();
            f.any("health", |v| v == h)
        }))
}

fn is_ancestor(r: &Record, v: &str) -> bool {
    r.image == v
        || r.image.starts_with(&format!("{v}:"))
        || r.image_id.as_deref().is_some_and(|i| {
            i.trim_start_matches("sha256:")
                .starts_with(v.trim_start_matches("sha256:"))
        })
}

/// The container's `spec.json` (bounded, typed; an older den's reads too),
/// or None when it cannot be read.
fn read_spec(containers: &Containers, r: &Record) -> Option<ContainerSpec> {
    ContainerSpec::read(&containers.dir_of(&r.id).join("spec.json")).ok()
}

/// The networks a spec's `network` names: its user networks' names, or
/// private, host, none, container.
fn network_names(network: &Network) -> Vec<String> {
    match network {
        Network::None => vec!["none".into()],
        Network::Host => vec!["host".into()],
        Network::Private(_) => vec!["private".into()],
        Network::User(nets) => nets.iter().map(|u| u.name.clone()).collect(),
        Network::Container(_) => vec!["container".into()],
    }
}

fn command_text(cmd: &[String], no_trunc: bool) -> String {
    let full = escape_controls(&cmd.join(" "));
    if no_trunc {
        return format!("\"{full}\"");
    }
    if full.chars().count() > 20 {
        let short: String = full.chars().take(19).collect();
        format!("\"{short}…\"")
    } else {
        format!("\"{full}\"")
    }
}

pub struct PsArgs<'a> {
    pub all: bool,
    pub quiet: bool,
    pub filters: &'a [String],
    pub format: Option<&'a str>,
    pub no_trunc: bool,
}

pub fn ps(ctx: &Context, args: &PsArgs) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let mut rows: Vec<(Record, State)> = containers
        .list()?
        .into_iter()
        .map(|r| {
            let s = containers.state(&r.id);
            (r, s)
        })
        .collect();
    rows.sort_by(|a, b| b.0.created.cmp(&a.0.created));
    let filters = Filters::parse(args.filters, PS_FILTERS, "ps")?;
    let networks = crate::networks::Networks::open(&ctx.root)?;
    let mut kept = Vec::new();
    for (r, s) in rows {
        if ps_match(&filters, &containers, &networks, &r, &s)? {
            kept.push((r, s));
        }
    }
    let mut rows = kept;
    // A status or exit-code filter looks at stopped containers too.
    if !args.all && !filters.has("status") && !filters.has("exited") {
        rows.retain(|(_, s)| matches!(s.status, Status::Running | Status::Restarting));
    }
    let id = |r: &Record| {
        if args.no_trunc {
            r.id.clone()
        } else {
            r.id[..12].to_string()
        }
    };
    if args.quiet {
        rows.iter().for_each(|(r, _)| println!("{}", id(r)));
        return Ok(0);
    }
    let now = chrono::Utc::now();
    match Format::parse(args.format)? {
        Format::Template(t) => {
            let rows: Vec<_> = rows
                .iter()
                .map(|(r, s)| ps_row(&containers, r, s, args.no_trunc, now))
                .collect();
            print!("{}", t.render(&rows, &PS_FIELDS)?);
        }
        Format::Json => {
            let v: Vec<_> = rows.iter().map(|(r, s)| json!({
                "Id": r.id, "Names": [r.name], "Image": r.image, "ImageID": r.image_id, "Command": r.command,
                "Created": r.created, "State": status_word(s.status), "Status": status_text(s, now) + &health_suffix(&containers, r, s),
                "ExitCode": s.exit_code, "Pid": s.pid, "Ports": r.ports, "Labels": r.labels,
            })).collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Default => {
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|(r, s)| {
                    vec![
                        id(r),
                        r.image.clone(),
                        command_text(&r.command, args.no_trunc),
                        ago(&r.created, now),
                        status_text(s, now) + &health_suffix(&containers, r, s),
                        // Docker lists ports only while they are published.
                        if matches!(s.status, Status::Running | Status::Restarting) {
                            r.ports.join(", ")
                        } else {
                            String::new()
                        },
                        r.name.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "CONTAINER ID",
                        "IMAGE",
                        "COMMAND",
                        "CREATED",
                        "STATUS",
                        "PORTS",
                        "NAMES"
                    ],
                    &body
                )
            );
        }
    }
    Ok(0)
}

/// `docker ps --format`'s fields and their table titles.
const PS_FIELDS: [(&str, &str); 14] = [
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

/// One container as `docker ps --format` sees it (strings, as Docker's
/// container context returns them).
fn ps_row(
    containers: &Containers,
    r: &Record,
    s: &State,
    no_trunc: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> serde_json::Value {
    let running = matches!(s.status, Status::Running | Status::Restarting);
    let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json!({
        "ID": if no_trunc { r.id.clone() } else { r.id[..12].to_string() },
        "Image": r.image,
        "Command": command_text(&r.command, no_trunc),
        "CreatedAt": crate::output::docker_time(&r.created),
        "RunningFor": ago(&r.created, now),
        "Ports": if running { r.ports.join(", ") } else { String::new() },
        "State": status_word(s.status),
        "Status": status_text(s, now) + &health_suffix(containers, r, s),
        // den does not measure a container's writable layer.
        "Size": "N/A",
        "Names": r.name,
        "Labels": labels.join(","),
        "Mounts": r.volumes.join(","),
        "Networks": network_column(containers, r),
        "LocalVolumes": r.volumes.len().to_string(),
    })
}

/// The container's network: a user network's name, `host`, `none`, or
/// `pasta` (den's private network, Docker's `bridge`).
fn network_column(containers: &Containers, r: &Record) -> String {
    match read_spec(containers, r).map(|s| s.network) {
        Some(Network::Private(_)) => "pasta".into(),
        Some(Network::Container(_)) | None => String::new(),
        Some(n) => network_names(&n).join(","),
    }
}

/// ` (healthy)` and the like, for a running container with a health check.
fn health_suffix(containers: &Containers, r: &Record, s: &State) -> String {
    crate::health::ps_suffix(crate::health::of(&containers.dir_of(&r.id), s).as_ref())
}

/// Docker-like JSON for one container.
pub fn inspect_json(ctx: &Context, r: &Record, s: &State) -> anyhow::Result<serde_json::Value> {
    let containers = Containers::open(&ctx.root)?;
    let dir = containers.dir_of(&r.id);
    let spec = ContainerSpec::read(&dir.join("spec.json"))?;
    let health = den_sandbox::container::health::read(&dir).filter(|_| spec.health.is_some());
    let p = &spec.process;
    Ok(json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.command.first(),
        "Args": r.command.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": status_word(s.status), "Running": s.status == Status::Running, "Restarting": s.status == Status::Restarting,
            "Pid": s.pid, "ExitCode": s.exit_code.unwrap_or(0), "Error": s.error.clone().unwrap_or_default(),
            "StartedAt": s.started_at, "FinishedAt": s.finished_at, "Health": health,
        },
        "Image": r.image_id, "Name": format!("/{}", r.name), "RestartCount": s.restarts,
        "Config": { "Hostname": spec.hostname, "Image": r.image, "Cmd": r.command, "Env": p.env, "Labels": r.labels, "WorkingDir": p.cwd, "User": p.user, "Tty": p.terminal, "StopSignal": spec.stop_signal, "StopTimeout": spec.stop_timeout, "Healthcheck": crate::health::config_json(spec.health.as_ref()) },
        "Mounts": mounts_json(&spec.mounts),
        "NetworkSettings": network_settings(r, &spec.network),
        "HostConfig": { "NetworkMode": spec.network, "ReadonlyRootfs": spec.read_only, "Privileged": spec.security.privileged, "CapAdd": spec.security.capabilities, "RestartPolicy": spec.restart, "LogConfig": log_config_json(&spec.log) },
        "LogPath": logs::path(&dir),
    }))
}

/// `NetworkSettings`: the published ports and, on user networks, each
/// one's address, gateway and the container's names there; the top-level
/// address is the first network's (Docker fills it only on its default
/// bridge; den has no such bridge, so the first network's is the one
/// there is).
fn network_settings(r: &Record, network: &Network) -> serde_json::Value {
    let users: &[_] = match network {
        Network::User(u) => u,
        _ => &[],
    };
    let ip = users.first().map_or("", |u| &u.ip);
    let gateway = users.first().map_or("", |u| &u.gateway);
    let mut networks = serde_json::Map::new();
    for u in users {
        networks.insert(
            u.name.clone(),
            json!({"IPAddress": u.ip, "Gateway": u.gateway, "IPPrefixLen": 24, "Aliases": u.aliases}),
        );
    }
    json!({"Ports": r.ports_json(), "IPAddress": ip, "Gateway": gateway, "Networks": networks})
}

/// `Mounts` in Docker's form, without the /etc files den generates.
fn mounts_json(mounts: &[Mount]) -> Vec<serde_json::Value> {
    let generated = |t: &str| t.starts_with("/etc/host") || t == "/etc/resolv.conf";
    mounts
        .iter()
        .filter(|m| !generated(m.target()))
        .map(|m| {
            let (kind, source, read_only) = match m {
                Mount::Bind {
                    source, read_only, ..
                } => ("bind", Some(source), *read_only),
                Mount::Volume {
                    source, read_only, ..
                } => ("volume", Some(source), *read_only),
                Mount::Tmpfs { .. } => ("tmpfs", None, false),
                Mount::File { .. } => ("file", None, false),
            };
            json!({"Type": kind, "Source": source, "Destination": m.target(), "RW": !read_only})
        })
        .collect()
}

/// `HostConfig.LogConfig` in Docker's form.
fn log_config_json(c: &logs::LogConfig) -> serde_json::Value {
    let config = if c.driver.keeps_logs() {
        json!({"max-size": c.max_size.to_string(), "max-file": c.max_file.to_string()})
    } else {
        json!({})
    };
    json!({"Type": c.driver.name(), "Config": config})
}

pub fn inspect(ctx: &Context, names: &[String], format: Option<&str>) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let mut out = Vec::new();
    for n in names {
        let r = containers.find(n)?;
        let s = containers.state(&r.id);
        out.push(inspect_json(ctx, &r, &s)?);
    }
    crate::template::print_inspect(&out, format)?;
    Ok(0)
}

/// `den inspect NAME…`: each name as a container when one has it, else as
/// an image (Docker's order), all in one JSON array.
pub fn inspect_any(ctx: &Context, names: &[String], format: Option<&str>) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let store = ctx.store()?;
    let images = store.images()?;
    let mut out = Vec::new();
    for n in names {
        if let Ok(r) = containers.find(n) {
            let s = containers.state(&r.id);
            out.push(inspect_json(ctx, &r, &s)?);
            continue;
        }
        match crate::local_images::resolve(&store, &images, n) {
            Ok(img) => out.push(crate::local_images::inspect_json(&store, &img)?),
            Err(_) => bail!("no such container or image: {n}"),
        }
    }
    crate::template::print_inspect(&out, format)?;
    Ok(0)
}

/// `den wait`: blocks until each container has exited, prints its code.
pub fn wait(ctx: &Context, names: &[String]) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let mut last = 0;
    for n in names {
        let r = containers.find(n)?;
        loop {
            let s = containers.state(&r.id);
            if matches!(s.status, Status::Exited | Status::Created)
                && (s.status == Status::Exited || s.supervisor_pid == 0)
            {
                last = s.exit_code.unwrap_or(0);
                println!("{last}");
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = last;
    Ok(0)
}

pub struct LogsArgs<'a> {
    pub follow: bool,
    pub tail: Option<&'a str>,
    pub since: Option<&'a str>,
    pub timestamps: bool,
}

/// `den logs`: stdout entries to stdout, stderr entries to stderr.
pub fn logs(ctx: &Context, name: &str, args: &LogsArgs) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let r = containers.find(name)?;
    let dir = containers.dir_of(&r.id);
    let driver = log_driver(&dir);
    if !driver.keeps_logs() {
        bail!(
            "container {name} uses the {} log driver, which keeps no logs: run it with --log-driver json-file or k8s-file to read them with den logs",
            driver.name()
        );
    }
    let since = match args.since {
        None => None,
        Some(s) => Some(parse_since(s)?),
    };
    let mut entries = logs::read_all(&dir);
    if let Some(t) = &since {
        entries.retain(|e| e.time.as_str() >= t.as_str());
    }
    if let Some(n) = args.tail.filter(|t| *t != "all") {
        let n: usize = n
            .parse()
            .map_err(|_| anyhow::anyhow!("invalid --tail `{n}`: a number or all"))?;
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    let mut shown = logs::read_all(&dir).len();
    print_entries(&entries, args.timestamps)?;
    if !args.follow {
        return Ok(0);
    }
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let all = logs::read_all(&dir);
        // A rotation shrinks the list: then everything in it is new.
        let fresh = if all.len() >= shown {
            &all[shown..]
        } else {
            &all[..]
        };
        print_entries(fresh, args.timestamps)?;
        shown = all.len();
        let s = containers.state(&r.id);
        if !matches!(s.status, Status::Running | Status::Restarting) {
            let rest = logs::read_all(&dir);
            if rest.len() > shown {
                print_entries(&rest[shown..], args.timestamps)?;
            }
            break;
        }
    }
    Ok(0)
}

/// The container's `--log-driver` (json-file for containers made before it).
fn log_driver(dir: &std::path::Path) -> logs::Driver {
    ContainerSpec::read(&dir.join("spec.json"))
        .map(|s| s.log.driver)
        .unwrap_or_default()
}

fn print_entries(entries: &[logs::Entry], timestamps: bool) -> anyhow::Result<()> {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    for e in entries {
        let w: &mut dyn Write = if e.stream == "stderr" {
            &mut err
        } else {
            &mut out
        };
        if timestamps {
            write!(w, "{} ", e.time)?;
        }
        w.write_all(e.log.as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// `--since`: RFC 3339, a Unix timestamp, or a duration like `10m`, `2h`, `30s`.
fn parse_since(s: &str) -> anyhow::Result<String> {
    let now = chrono::Utc::now();
    let dur = |n: &str, unit: i64| -> Option<chrono::DateTime<chrono::Utc>> {
        n.parse::<i64>()
            .ok()
            .map(|v| now - chrono::Duration::seconds(v * unit))
    };
    let t = if let Some(n) = s.strip_suffix('s') {
        dur(n, 1)
    } else if let Some(n) = s.strip_suffix('m') {
        dur(n, 60)
    } else if let Some(n) = s.strip_suffix('h') {
        dur(n, 3600)
    } else {
        None
    };
    let t = t
        .or_else(|| {
            s.parse::<i64>()
                .ok()
                .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        })
        .or_else(|| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|d| d.with_timezone(&chrono::Utc))
        });
    match t {
        Some(t) => Ok(t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()),
        None => bail!("invalid --since `{s}`: use a duration (10m, 2h), a Unix time or RFC 3339"),
    }
}

/// `den port CONTAINER [PORT[/PROTO]]`: `5000/tcp -> 127.0.0.1:8080`.
pub fn port(ctx: &Context, name: &str, filter: Option<&str>) -> anyhow::Result<i32> {
    let r = Containers::open(&ctx.root)?.find(name)?;
    let mut shown = 0;
    for p in &r.ports {
        let Some((host, ctr)) = p.split_once("->") else {
            continue;
        };
        let want = filter.map(|f| {
            if f.contains('/') {
                f.to_string()
            } else {
                format!("{f}/tcp")
            }
        });
        match want {
            Some(w) if w != ctr => continue,
            Some(_) => println!("{host}"),
            None => println!("{ctr} -> {host}"),
        }
        shown += 1;
    }
    if shown == 0 && filter.is_some() {
        bail!(
            "no public port {} published for {name}",
            filter.unwrap_or_default()
        );
    }
    Ok(0)
}

/// `den top CONTAINER`: its processes (host PIDs, container uids).
pub fn top(ctx: &Context, name: &str) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let r = containers.find(name)?;
    if containers.state(&r.id).status != Status::Running {
        bail!("container {name} is not running: start it with `den start {name}`");
    }
    den_sandbox::container::nsfds::require_served(&containers.dir_of(&r.id), name)?;
    let exe = std::env::current_exe()?;
    let status = std::process::Command::new(exe)
        .arg("--root")
        .arg(&ctx.root)
        .args(["__internal", "top", &r.id])
        .status()?;
    Ok(status.code().unwrap_or(125))
}
