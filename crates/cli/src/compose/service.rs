//! A compose service as `den run` flags: each key becomes the flag a user
//! would type, and `den run`'s own parser and checks take it from there,
//! so a service runs exactly as the same `den run` would. Pure: nothing is
//! made here, so a bad key stops `up` before anything exists.

use std::collections::BTreeMap;

use clap::Parser;
use den_compose::types::{self, VolumeSource};
use den_compose::yaml::{Node, Raw};
use den_compose::{Error, plan};

use super::project::Project;
use crate::args::{Cli, Command, RunArgs};

/// One container of a service, ready for `den run`'s code.
pub struct Container {
    pub name: String,
    pub args: RunArgs,
}

/// A service translated: its containers, its config hash and how long
/// its containers get to stop.
pub struct Service {
    pub name: String,
    pub image: String,
    /// `build:`: `den build` flags (after `den build`), when the service
    /// builds its image.
    pub build: Option<Vec<String>>,
    /// `build.dockerfile_inline`: the Dockerfile's text, written to a
    /// private file when the image is built.
    pub dockerfile_inline: Option<String>,
    pub hash: String,
    pub containers: Vec<Container>,
    pub stop_timeout: Option<u64>,
}

/// An error naming the file, the line and the service key.
pub fn invalid(p: &Project, n: &Node, key: &str, message: impl Into<String>) -> anyhow::Error {
    Error::Invalid {
        file: p.file.clone(),
        line: n.line,
        key: key.to_owned(),
        message: message.into(),
    }
    .into()
}

/// Translates service `name` (`svc`, from the model) for `up`.
pub fn translate(p: &Project, name: &str, svc: &Node) -> anyhow::Result<Service> {
    let at = |k: &str| format!("services.{name}.{k}");
    let image = match svc.get("image") {
        Some(n) => n
            .scalar_text()
            .filter(|i| !i.is_empty() && !i.starts_with('-'))
            .ok_or_else(|| invalid(p, n, &at("image"), "image must be an image name"))?,
        // docker compose's name for a built image without image:.
        None if svc.get("build").is_some() => format!("{}-{name}", p.name),
        None => {
            return Err(invalid(
                p,
                svc,
                &format!("services.{name}"),
                "the service has neither image: nor build:",
            ));
        }
    };
    let build = match svc.get("build") {
        Some(b) => Some(build(p, name, b, &image)?),
        None => None,
    };
    let dockerfile_inline = match svc.get("build").and_then(|b| b.get("dockerfile_inline")) {
        Some(n) => Some(n.scalar_text().ok_or_else(|| {
            invalid(
                p,
                n,
                &at("build.dockerfile_inline"),
                "dockerfile_inline is the Dockerfile's text, a string",
            )
        })?),
        None => None,
    };
    let hash = plan::config_hash(svc);
    let replicas = replicas(p, name, svc)?;
    let fixed_name = svc.get("container_name").and_then(Node::scalar_text);
    if fixed_name.is_some() && replicas > 1 {
        return Err(invalid(
            p,
            svc,
            &at("container_name"),
            "container_name names one container: remove it or scale the service to 1",
        ));
    }
    if replicas > 1 {
        fixed_port_check(p, name, svc)?;
    }
    let flags = flags(p, name, svc)?;
    let mut containers = Vec::new();
    for n in 1..=replicas {
        let cname = fixed_name
            .clone()
            .unwrap_or_else(|| plan::container_name(&p.name, name, n));
        let mut labels = plan::container_labels(
            &p.name,
            name,
            n,
            &hash,
            &p.dir.display().to_string(),
            &p.files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>(),
        );
        labels.extend(service_labels(p, name, svc)?);
        let mut argv: Vec<String> = vec!["den".into(), "run".into(), "-d".into()];
        argv.push(format!("--name={cname}"));
        argv.extend(labels.iter().map(|(k, v)| format!("--label={k}={v}")));
        argv.extend(flags.iter().cloned());
        argv.push("--".into());
        argv.push(image.clone());
        argv.extend(command(p, name, svc)?);
        let args = parse_run(&argv)
            .map_err(|e| invalid(p, svc, &format!("services.{name}"), e.to_string()))?;
        containers.push(Container { name: cname, args });
    }
    let stop_timeout = match svc.get("stop_grace_period") {
        Some(n) => Some(
            n.scalar_text()
                .ok_or("a duration like 10s")
                .and_then(|t| types::duration(&t).map_err(|_| "a duration like 10s"))
                .map_err(|e| invalid(p, n, &at("stop_grace_period"), format!("write {e}")))?
                .as_secs(),
        ),
        None => None,
    };
    Ok(Service {
        name: name.to_owned(),
        image,
        build,
        dockerfile_inline,
        hash,
        containers,
        stop_timeout,
    })
}

fn parse_run(argv: &[String]) -> anyhow::Result<RunArgs> {
    let cli = Cli::try_parse_from(argv).map_err(|e| {
        let text = e.to_string();
        anyhow::anyhow!(
            "{}",
            text.lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
        )
    })?;
    match cli.command {
        Command::Run(a) => Ok(*a),
        _ => anyhow::bail!("not a run command"),
    }
}

/// More than one container cannot share a fixed host port: refused, in
/// the words of docker-compose's own refusal.
fn fixed_port_check(p: &Project, name: &str, svc: &Node) -> anyhow::Result<()> {
    let Some(Node {
        value: Raw::Seq(items),
        ..
    }) = svc.get("ports")
    else {
        return Ok(());
    };
    for i in items {
        if let Ok(types::Port {
            published: Some((a, b)),
            ..
        }) = types::port(i)
            && a == b
        {
            return Err(invalid(
                p,
                i,
                &format!("services.{name}.ports"),
                format!(
                    "service {name:?} cannot be scaled because it specifies a port on the host. If multiple containers for this service were created, the port would clash. Remove the host port so each container gets a random one"
                ),
            ));
        }
    }
    Ok(())
}

/// `scale:` or `deploy.replicas:` (default 1).
fn replicas(p: &Project, name: &str, svc: &Node) -> anyhow::Result<u32> {
    let n = svc.get("scale").map(|n| ("scale", n)).or_else(|| {
        svc.get("deploy")
            .and_then(|d| d.get("replicas"))
            .map(|n| ("deploy.replicas", n))
    });
    match n {
        None => Ok(1),
        Some((k, n)) => match n.value {
            Raw::Int(i) if (0..=100).contains(&i) => Ok(i as u32),
            _ => Err(invalid(
                p,
                n,
                &format!("services.{name}.{k}"),
                "a number of containers from 0 to 100",
            )),
        },
    }
}

/// A string, or a list of scalars.
/// `ulimits: {nproc: 65535, nofile: {soft: 20000, hard: 40000}}` as
/// `--ulimit` flags.
fn ulimits(p: &Project, n: &Node, key: &str) -> anyhow::Result<Vec<String>> {
    let Raw::Map(items) = &n.value else {
        return Err(invalid(
            p,
            n,
            key,
            "ulimits must be a mapping of names to limits",
        ));
    };
    let value = |v: Option<&Node>, what: &str| {
        v.and_then(Node::scalar_text)
            .ok_or_else(|| invalid(p, n, key, format!("expected a number for {what}")))
    };
    items
        .iter()
        .map(|(name, v)| match &v.value {
            Raw::Map(_) => Ok(format!(
                "--ulimit={name}={}:{}",
                value(v.get("soft"), &format!("{name}.soft"))?,
                value(v.get("hard"), &format!("{name}.hard"))?
            )),
            _ => Ok(format!("--ulimit={name}={}", value(Some(v), name)?)),
        })
        .collect()
}

fn strings(p: &Project, n: &Node, key: &str) -> anyhow::Result<Vec<String>> {
    match &n.value {
        Raw::Seq(items) => items
            .iter()
            .map(|i| {
                i.scalar_text().ok_or_else(|| {
                    invalid(p, i, key, format!("expected a string, not {}", i.kind()))
                })
            })
            .collect(),
        Raw::Null => Ok(Vec::new()),
        _ => n.scalar_text().map(|s| vec![s]).ok_or_else(|| {
            invalid(
                p,
                n,
                key,
                format!("expected a string or a list, not {}", n.kind()),
            )
        }),
    }
}

/// A mapping (`K: V`) or a list of `K=V` as pairs; a null value is `None`.
fn pairs(
    p: &Project,
    n: &Node,
    key: &str,
    sep: char,
) -> anyhow::Result<Vec<(String, Option<String>)>> {
    match &n.value {
        Raw::Map(m) => Ok(m
            .iter()
            .map(|(k, v)| (k.clone(), v.scalar_text()))
            .collect()),
        Raw::Seq(_) => Ok(strings(p, n, key)?
            .into_iter()
            .map(|s| match s.split_once(sep) {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (s, None),
            })
            .collect()),
        Raw::Null => Ok(Vec::new()),
        _ => Err(invalid(
            p,
            n,
            key,
            format!("expected a mapping or a list, not {}", n.kind()),
        )),
    }
}

/// A command or entrypoint: a list as it is, a string split as a shell
/// would (no shell runs it).
fn words(p: &Project, n: &Node, key: &str) -> anyhow::Result<Vec<String>> {
    match &n.value {
        Raw::Seq(_) => strings(p, n, key),
        Raw::Null => Ok(Vec::new()),
        _ => {
            let s = n
                .scalar_text()
                .ok_or_else(|| invalid(p, n, key, "expected a string or a list"))?;
            shlex::split(&s)
                .ok_or_else(|| invalid(p, n, key, format!("unbalanced quotes in {s:?}")))
        }
    }
}

/// Entrypoint and command after the image: `--entrypoint` takes the
/// entrypoint's first word, the rest of it goes before the command (den
/// run joins them the same way).
fn command(p: &Project, name: &str, svc: &Node) -> anyhow::Result<Vec<String>> {
    let at = |k: &str| format!("services.{name}.{k}");
    let cmd = match svc.get("command") {
        Some(n) => words(p, n, &at("command"))?,
        None => Vec::new(),
    };
    let Some(ep) = svc.get("entrypoint") else {
        return Ok(cmd);
    };
    let ep = words(p, ep, &at("entrypoint"))?;
    Ok(ep.into_iter().skip(1).chain(cmd).collect())
}

/// `labels:` of the service.
fn service_labels(p: &Project, name: &str, svc: &Node) -> anyhow::Result<BTreeMap<String, String>> {
    let Some(n) = svc.get("labels") else {
        return Ok(BTreeMap::new());
    };
    Ok(pairs(p, n, &format!("services.{name}.labels"), '=')?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// Every other key as `den run` flags (`--flag=value`, so no value is
/// taken for a flag).
fn flags(p: &Project, name: &str, svc: &Node) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let Raw::Map(keys) = &svc.value else {
        return Ok(out);
    };
    if let Some(ep) = svc.get("entrypoint") {
        let ep = words(p, ep, &format!("services.{name}.entrypoint"))?;
        out.push(format!(
            "--entrypoint={}",
            ep.first().map_or("", String::as_str)
        ));
    }
    for (k, n) in keys {
        out.extend(key_flags(p, &format!("services.{name}.{k}"), k, n)?);
    }
    if svc.get("network_mode").is_none() {
        out.extend(networks(p, name, svc)?);
    }
    Ok(out)
}

/// The `den run` flags of one service key (`key` is its full name, for
/// messages); none for the keys handled elsewhere (image, command,
/// labels, …; the rest is checked by den_compose::check).
fn key_flags(p: &Project, key: &str, k: &str, n: &Node) -> anyhow::Result<Vec<String>> {
    let text = || {
        n.scalar_text()
            .ok_or_else(|| invalid(p, n, key, format!("expected a string, not {}", n.kind())))
    };
    let one =
        |flag: &str| -> anyhow::Result<Vec<String>> { Ok(vec![format!("--{flag}={}", text()?)]) };
    let each = |flag: &str| -> anyhow::Result<Vec<String>> {
        Ok(strings(p, n, key)?
            .into_iter()
            .map(|v| format!("--{flag}={v}"))
            .collect())
    };
    Ok(match k {
        "environment" => env_flags(p, n, key)?,
        "env_file" => env_file(p, n, key)?,
        "ports" => list_flags(p, n, key, "ports", |i| {
            let port = types::port(i).map_err(|e| invalid(p, i, key, e))?;
            Ok(format!("--publish={}", publish(&port)))
        })?,
        "volumes" => list_flags(p, n, key, "volumes", |i| volume(p, i, key))?,
        "hostname" => one("hostname")?,
        "working_dir" => one("workdir")?,
        "user" => one("user")?,
        "restart" => one("restart")?,
        "init" | "tty" | "stdin_open" | "read_only" => switch_flag(p, n, key, k)?,
        "mem_limit" => one("memory")?,
        "memswap_limit" => one("memory-swap")?,
        "cpus" => one("cpus")?,
        "cpu_shares" => one("cpu-shares")?,
        "cpuset" => one("cpuset-cpus")?,
        "pids_limit" => one("pids-limit")?,
        "ulimits" => ulimits(p, n, key)?,
        "tmpfs" => each("tmpfs")?,
        "cap_add" => each("cap-add")?,
        "cap_drop" => each("cap-drop")?,
        "security_opt" => each("security-opt")?,
        "dns" => each("dns")?,
        "extra_hosts" => add_host_flags(p, n, key)?,
        "pull_policy" => vec![pull_flag(p, n, key, &text()?)?],
        "network_mode" => vec![network_mode(p, n, key)?],
        "stop_signal" if run_has_flag("stop-signal") => one("stop-signal")?,
        "healthcheck" if run_has_flag("health-cmd") => health(p, n, key)?,
        "stop_signal" | "healthcheck" => {
            let flag = if k == "stop_signal" {
                "stop-signal"
            } else {
                "health-cmd"
            };
            eprintln!("den: warning: {key} is ignored: this den has no `den run --{flag}`");
            Vec::new()
        }
        _ => Vec::new(), // networks: `networks`; image, command, labels, …: elsewhere
    })
}

/// `environment` (a list or a mapping) as `--env` flags.
fn env_flags(p: &Project, n: &Node, key: &str) -> anyhow::Result<Vec<String>> {
    Ok(pairs(p, n, key, '=')?
        .into_iter()
        .map(|(k, v)| match v {
            Some(v) => format!("--env={k}={v}"),
            None => format!("--env={k}"),
        })
        .collect())
}

/// A key that must be a list (`what` names it), one flag per item.
fn list_flags(
    p: &Project,
    n: &Node,
    key: &str,
    what: &str,
    flag: impl Fn(&Node) -> anyhow::Result<String>,
) -> anyhow::Result<Vec<String>> {
    let Raw::Seq(items) = &n.value else {
        return Err(invalid(p, n, key, format!("{what} must be a list")));
    };
    items.iter().map(flag).collect()
}

/// `init`, `tty`, `stdin_open`, `read_only`: a switch when true.
fn switch_flag(p: &Project, n: &Node, key: &str, k: &str) -> anyhow::Result<Vec<String>> {
    match n.value {
        Raw::Bool(true) => Ok(vec![format!(
            "--{}",
            match k {
                "stdin_open" => "interactive",
                "read_only" => "read-only",
                other => other,
            }
        )]),
        Raw::Bool(false) => Ok(Vec::new()),
        _ => Err(invalid(
            p,
            n,
            key,
            format!("expected true or false, not {}", n.kind()),
        )),
    }
}

/// `extra_hosts` as `--add-host` flags: `host:ip` in a list is one string;
/// `host=ip` and the mapping are split by `pairs`.
fn add_host_flags(p: &Project, n: &Node, key: &str) -> anyhow::Result<Vec<String>> {
    Ok(pairs(p, n, key, '=')?
        .into_iter()
        .map(|(h, ip)| match ip {
            Some(ip) => format!("--add-host={h}:{ip}"),
            None => format!("--add-host={h}"),
        })
        .collect())
}

/// `pull_policy` as `--pull`.
fn pull_flag(p: &Project, n: &Node, key: &str, policy: &str) -> anyhow::Result<String> {
    let v = match policy {
        "always" => "always",
        "never" => "never",
        "missing" | "if_not_present" => "missing",
        other => {
            return Err(invalid(
                p,
                n,
                key,
                format!("pull_policy {other:?} is not supported: use always, never or missing"),
            ));
        }
    };
    Ok(format!("--pull={v}"))
}

/// `network_mode:` none, host, bridge, or another container's network:
/// `service:NAME` (that service's first container, which `depends_on`
/// starts first) or `container:NAME`.
fn network_mode(p: &Project, n: &Node, key: &str) -> anyhow::Result<String> {
    let mode = n.scalar_text().unwrap_or_default();
    match mode.as_str() {
        "none" | "host" => Ok(format!("--network={mode}")),
        "bridge" | "default" => Ok("--network=private".into()),
        m if m.starts_with("container:") => Ok(format!("--network={m}")),
        m if m.starts_with("service:") => {
            let target = &m["service:".len()..];
            let svc = p
                .services()
                .into_iter()
                .find(|(name, _)| name == target)
                .map(|(_, s)| s)
                .ok_or_else(|| {
                    invalid(
                        p,
                        n,
                        key,
                        format!("network_mode refers to undefined service {target:?}"),
                    )
                })?;
            let container = svc
                .get("container_name")
                .and_then(Node::scalar_text)
                .unwrap_or_else(|| plan::container_name(&p.name, target, 1));
            Ok(format!("--network=container:{container}"))
        }
        other => Err(invalid(
            p,
            n,
            key,
            format!(
                "network_mode {other:?} is not supported: use none, host, bridge, service:NAME or container:NAME"
            ),
        )),
    }
}

/// The service's networks (the project's `default` unless `networks:`
/// names some), in the order given, each with the service's aliases there:
/// the service name, then that network's `aliases:`.
fn networks(p: &Project, name: &str, svc: &Node) -> anyhow::Result<Vec<String>> {
    let key = format!("services.{name}.networks");
    let named: Vec<(String, Option<&Node>)> = match svc.get("networks") {
        None => vec![("default".to_owned(), None)],
        Some(n) => match &n.value {
            Raw::Map(m) => m.iter().map(|(k, v)| (k.clone(), Some(v))).collect(),
            Raw::Seq(_) => strings(p, n, &key)?
                .into_iter()
                .map(|k| (k, None))
                .collect(),
            _ => return Err(invalid(p, n, &key, "networks must be a list or a mapping")),
        },
    };
    if named.is_empty() {
        let n = svc.get("networks").unwrap_or(svc);
        return Err(invalid(
            p,
            n,
            &key,
            "networks is empty: list at least one network, or leave the key out for the project's default",
        ));
    }
    let named = by_priority(p, &key, named)?;
    let mut out = Vec::new();
    for (net, def) in &named {
        let mut flag = format!("--network=name={}", den_network(p, name, svc, net)?);
        let mut aliases = vec![name.to_owned()];
        if let Some(d) = def {
            for unsupported in ["ipv4_address", "ipv6_address"] {
                if let Some(v) = d.get(unsupported) {
                    return Err(invalid(
                        p,
                        v,
                        &format!("{key}.{net}.{unsupported}"),
                        "a fixed address is not supported by den: leave it out, and reach the service by its name or aliases",
                    ));
                }
            }
            if let Some(a) = d.get("aliases") {
                aliases.extend(strings(p, a, &format!("{key}.{net}.aliases"))?);
            }
        }
        for a in &aliases {
            if a.contains(',') {
                return Err(invalid(
                    p,
                    def.unwrap_or(svc),
                    &key,
                    format!("alias {a:?} contains a comma"),
                ));
            }
            flag.push_str(&format!(",alias={a}"));
        }
        out.push(flag);
    }
    Ok(out)
}

/// The service's networks in the order they are joined: `gw_priority`'s
/// first (eth0, the default route), then by `priority`
/// (`den_compose::types::network_order`).
fn by_priority<'a>(
    p: &Project,
    key: &str,
    named: Vec<(String, Option<&'a Node>)>,
) -> anyhow::Result<Vec<(String, Option<&'a Node>)>> {
    let mut prio = Vec::new();
    for (net, def) in &named {
        let mut pair = [0i64; 2];
        for (slot, k) in pair.iter_mut().zip(["priority", "gw_priority"]) {
            let n = def.and_then(|d| d.get(k));
            *slot = types::network_priority(n)
                .map_err(|e| invalid(p, n.unwrap_or(&p.model), &format!("{key}.{net}.{k}"), e))?;
        }
        prio.push((pair[0], pair[1]));
    }
    let mut named: Vec<_> = named.into_iter().map(Some).collect();
    Ok(types::network_order(&prio)
        .into_iter()
        .filter_map(|i| named[i].take())
        .collect())
}

/// The den network for `net`, which service `name` lists.
fn den_network(p: &Project, name: &str, svc: &Node, net: &str) -> anyhow::Result<String> {
    network_name(p, net).ok_or_else(|| {
        invalid(
            p,
            svc.get("networks").unwrap_or(svc),
            &format!("services.{name}.networks"),
            format!("service {name:?} refers to undefined network {net:?}: define it under the top-level networks:"),
        )
    })
}

/// The den network for the project's network `key`: `default` is always
/// defined; others must be in the top-level `networks:`.
pub fn network_name(p: &Project, key: &str) -> Option<String> {
    let def = p.model.get("networks").and_then(|n| n.get(key));
    if def.is_none() && key != "default" {
        return None;
    }
    Some(plan::volume_name(&p.name, key, def))
}

/// A `volumes:` entry as `-v`/`--tmpfs`.
fn volume(p: &Project, n: &Node, key: &str) -> anyhow::Result<String> {
    let v = types::volume(n, &p.dir).map_err(|e| invalid(p, n, key, e))?;
    let ro = if v.read_only { ":ro" } else { "" };
    Ok(match v.source {
        VolumeSource::Bind(path) => {
            let path = match path.strip_prefix('~') {
                Some(rest) => format!("{}{rest}", std::env::var("HOME").unwrap_or_default()),
                None => path,
            };
            if path.contains(':') || v.target.contains(':') {
                return Err(invalid(
                    p,
                    n,
                    key,
                    "a bind path with ':' cannot be mounted by den",
                ));
            }
            format!("--volume={path}:{}{ro}", v.target)
        }
        VolumeSource::Named(vol) => {
            let def = p.model.get("volumes").and_then(|d| d.get(&vol));
            if def.is_none() {
                return Err(invalid(
                    p,
                    n,
                    key,
                    format!(
                        "refers to undefined volume {vol:?}: define it under the top-level volumes:"
                    ),
                ));
            }
            format!(
                "--volume={}:{}{ro}",
                plan::volume_name(&p.name, &vol, def),
                v.target
            )
        }
        VolumeSource::Anonymous => format!("--volume={}", v.target),
        VolumeSource::Tmpfs => format!("--tmpfs={}", v.target),
    })
}

/// A port as `-p` writes it.
fn publish(port: &types::Port) -> String {
    let range = |(a, b): (u16, u16)| match a == b {
        true => a.to_string(),
        false => format!("{a}-{b}"),
    };
    let ip = match &port.host_ip {
        Some(ip) if ip.contains(':') => format!("[{ip}]:"),
        Some(ip) => format!("{ip}:"),
        None => String::new(),
    };
    let host = match port.published {
        Some(p) => format!("{ip}{}:", range(p)),
        None if !ip.is_empty() => ip.to_string() + ":",
        None => String::new(),
    };
    format!("{host}{}/{}", range(port.target), port.protocol)
}

/// `env_file:` entries, read with compose's dotenv rules, as `--env`.
fn env_file(p: &Project, n: &Node, key: &str) -> anyhow::Result<Vec<String>> {
    let entries: Vec<(String, bool, &Node)> = match &n.value {
        Raw::Seq(items) => items
            .iter()
            .map(|i| match i.get("path") {
                Some(path) => Ok((
                    path.scalar_text().unwrap_or_default(),
                    i.get("required")
                        .is_none_or(|r| r.value != Raw::Bool(false)),
                    i,
                )),
                None => i.scalar_text().map(|s| (s, true, i)).ok_or_else(|| {
                    invalid(p, i, key, "an env_file entry is a path or {path, required}")
                }),
            })
            .collect::<anyhow::Result<_>>()?,
        _ => vec![(n.scalar_text().unwrap_or_default(), true, n)],
    };
    let mut out = Vec::new();
    for (path, required, node) in entries {
        let full = p.dir.join(&path);
        if !full.exists() && !required {
            continue;
        }
        let text = den_compose::load::read_file(&full)
            .map_err(|e| invalid(p, node, key, e.to_string()))?;
        let lookup = |v: &str| p.lookup(v);
        for (k, v) in den_compose::dotenv::parse(&full.display().to_string(), &text, &lookup)? {
            out.push(format!("--env={k}={v}"));
        }
    }
    Ok(out)
}

/// Whether `den run` has the flag `--NAME` (health checks and stop
/// signals come with the container side that runs them).
fn run_has_flag(name: &str) -> bool {
    static RUN_FLAGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    RUN_FLAGS
        .get_or_init(|| {
            let cli = crate::args::full_command();
            let run = cli.find_subcommand("run");
            run.into_iter()
                .flat_map(|r| r.get_arguments().filter_map(|a| a.get_long()))
                .map(str::to_string)
                .collect()
        })
        .iter()
        .any(|f| f == name)
}

/// `healthcheck:` as `den run --health-*` flags.
fn health(p: &Project, n: &Node, key: &str) -> anyhow::Result<Vec<String>> {
    if n.get("disable").is_some_and(|d| d.value == Raw::Bool(true)) {
        return Ok(vec!["--no-healthcheck".into()]);
    }
    let mut out = Vec::new();
    if let Some(t) = n.get("test") {
        let k = format!("{key}.test");
        match types::health_test(t).map_err(|e| invalid(p, t, &k, e))? {
            types::HealthTest::None => return Ok(vec!["--no-healthcheck".into()]),
            types::HealthTest::Shell(cmd) => out.push(format!("--health-cmd={cmd}")),
            types::HealthTest::Exec(args) => {
                let cmd = shlex::try_join(args.iter().map(String::as_str))
                    .map_err(|e| invalid(p, t, &k, e.to_string()))?;
                out.push(format!("--health-cmd={cmd}"));
            }
        }
    }
    for (field, flag) in [
        ("interval", "health-interval"),
        ("timeout", "health-timeout"),
        ("start_period", "health-start-period"),
        ("start_interval", "health-start-interval"),
    ] {
        if let Some(v) = n.get(field) {
            let k = format!("{key}.{field}");
            let d = v
                .scalar_text()
                .ok_or_else(|| "a duration like 10s".to_owned())
                .and_then(|t| types::duration(&t))
                .map_err(|e| invalid(p, v, &k, e))?;
            match run_has_flag(flag) {
                true => out.push(format!("--{flag}={}", den_duration::format_std(d))),
                false => {
                    eprintln!("den: warning: {k} is ignored: this den has no `den run --{flag}`")
                }
            }
        }
    }
    if let Some(r) = n.get("retries") {
        match r.value {
            Raw::Int(i) if i >= 0 => out.push(format!("--health-retries={i}")),
            _ => {
                return Err(invalid(
                    p,
                    r,
                    &format!("{key}.retries"),
                    "a number of retries",
                ));
            }
        }
    }
    Ok(out)
}

/// `build:` (a context path, or context, dockerfile, args, target) as
/// `den build` flags naming the result `image`.
fn build(p: &Project, name: &str, n: &Node, image: &str) -> anyhow::Result<Vec<String>> {
    let key = format!("services.{name}.build");
    let text = |k: &str| n.get(k).and_then(Node::scalar_text);
    let context = match &n.value {
        Raw::Map(_) => text("context").unwrap_or_else(|| ".".into()),
        _ => n
            .scalar_text()
            .ok_or_else(|| invalid(p, n, &key, "build is a context path or a mapping"))?,
    };
    if n.get("dockerfile_inline").is_some() && n.get("dockerfile").is_some() {
        return Err(invalid(
            p,
            n,
            &key,
            "dockerfile and dockerfile_inline are mutually exclusive: keep one",
        ));
    }
    let context = p.dir.join(context);
    let mut out = vec![format!("--tag={image}")];
    if let Some(f) = text("dockerfile") {
        out.push(format!("--file={}", context.join(f).display()));
    }
    if let Some(t) = text("target") {
        out.push(format!("--target={t}"));
    }
    if let Some(a) = n.get("args") {
        for (k, v) in pairs(p, a, &format!("{key}.args"), '=')? {
            out.push(match v {
                Some(v) => format!("--build-arg={k}={v}"),
                None => format!("--build-arg={k}"),
            });
        }
    }
    out.push("--".into());
    out.push(context.display().to_string());
    Ok(out)
}
