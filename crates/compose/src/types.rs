//! Typed forms of the service fields whose syntax is richest: `ports`
//! and `volumes`, in short (string) and long (mapping) syntax. The rest of
//! the typed model builds on these.

use std::path::Path;

use crate::yaml::{Node, Raw};

/// One `ports` entry; ranges are inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Host address to bind, `None` for all.
    pub host_ip: Option<String>,
    /// Host port range, `None` for an ephemeral port.
    pub published: Option<(u16, u16)>,
    /// Container port range.
    pub target: (u16, u16),
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// Parses a `ports` entry (string, number or mapping).
pub fn port(n: &Node) -> Result<Port, String> {
    match &n.value {
        Raw::Map(_) => long_port(n),
        _ => short_port(
            &n.scalar_text()
                .ok_or("a port must be a string, a number or a mapping")?,
        ),
    }
}

fn short_port(s: &str) -> Result<Port, String> {
    let (spec, protocol) = s.split_once('/').unwrap_or((s, "tcp"));
    let protocol = check_protocol(protocol)?;
    // An IPv6 host address is written in brackets: [::1]:8080:80.
    let (host_ip, rest) = match spec.strip_prefix('[') {
        Some(r) => {
            let (ip, rest) = r
                .split_once("]:")
                .ok_or(format!("port {s:?}: missing ']:' after the IPv6 address"))?;
            (Some(ip.to_owned()), rest)
        }
        None => (None, spec),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, published, target) = match (host_ip, parts.as_slice()) {
        (None, [t]) => (None, None, *t),
        (None, [p, t]) => (None, Some(*p), *t),
        (None, [ip, p, t]) => (Some((*ip).to_owned()), Some(*p), *t),
        (Some(ip), [p, t]) => (Some(ip), Some(*p), *t),
        _ => {
            return Err(format!(
                "port {s:?}: write [[IP:]HOST:]CONTAINER[/PROTOCOL]"
            ));
        }
    };
    let published = match published {
        None | Some("") => None,
        Some(p) => Some(range(p, s)?),
    };
    finish(
        Port {
            host_ip: ip.filter(|i| !i.is_empty()),
            published,
            target: range(target, s)?,
            protocol,
        },
        s,
    )
}

fn long_port(n: &Node) -> Result<Port, String> {
    let text = |k: &str| n.get(k).and_then(Node::scalar_text);
    let target = text("target").ok_or("a long-syntax port needs target: CONTAINER_PORT")?;
    let published = text("published")
        .filter(|p| !p.is_empty())
        .map(|p| range(&p, &p))
        .transpose()?;
    let protocol = check_protocol(&text("protocol").unwrap_or_else(|| "tcp".into()))?;
    finish(
        Port {
            host_ip: text("host_ip"),
            published,
            target: range(&target, &target)?,
            protocol,
        },
        &target,
    )
}

fn check_protocol(p: &str) -> Result<String, String> {
    match p {
        "tcp" | "udp" => Ok(p.to_owned()),
        _ => Err(format!("protocol {p:?} is not supported: use tcp or udp")),
    }
}

fn finish(p: Port, s: &str) -> Result<Port, String> {
    let len = |r: (u16, u16)| r.1 - r.0;
    match p.published {
        Some(h) if len(h) != len(p.target) && len(p.target) != 0 => Err(format!(
            "port {s:?}: the host range and the container range differ in length"
        )),
        _ => Ok(p),
    }
}

/// `N` or `N-M` (1..=65535, N <= M).
fn range(r: &str, whole: &str) -> Result<(u16, u16), String> {
    let num = |x: &str| {
        x.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or(format!(
                "port {whole:?}: {x:?} is not a port number (1-65535)"
            ))
    };
    let (a, b) = match r.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(r)?, num(r)?),
    };
    match a <= b {
        true => Ok((a, b)),
        false => Err(format!("port {whole:?}: range {r:?} runs backwards")),
    }
}

/// What a `volumes` entry mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// A host path, absolute (made so against the compose file's directory).
    Bind(String),
    /// A top-level (or external) named volume.
    Named(String),
    /// An anonymous volume, made for the container.
    Anonymous,
    /// A tmpfs.
    Tmpfs,
}

/// One `volumes` entry of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// What is mounted.
    pub source: VolumeSource,
    /// Where, inside the container.
    pub target: String,
    /// `:ro` / `read_only: true`.
    pub read_only: bool,
}

/// Parses a `volumes` entry; relative bind sources are taken against
/// `dir`, the compose file's directory.
pub fn volume(n: &Node, dir: &Path) -> Result<Volume, String> {
    match &n.value {
        Raw::Str(s) => short_volume(s, dir),
        Raw::Map(_) => long_volume(n, dir),
        _ => Err("a volume must be a string (SOURCE:TARGET[:ro]) or a mapping".into()),
    }
}

fn is_path(s: &str) -> bool {
    s.starts_with(['.', '/', '~'])
}

/// Absolute paths stay; `~` paths stay for the caller to expand with the
/// user's home; the rest join `dir`.
fn bind_path(s: &str, dir: &Path) -> String {
    match s.starts_with(['/', '~']) {
        true => s.to_owned(),
        false => dir.join(s).display().to_string(),
    }
}

fn short_volume(s: &str, dir: &Path) -> Result<Volume, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (src, target, mode) = match parts.as_slice() {
        [t] => (None, *t, ""),
        [a, t] => (Some(*a), *t, ""),
        [a, t, m] => (Some(*a), *t, *m),
        _ => {
            return Err(format!(
                "volume {s:?}: write SOURCE:TARGET[:MODE] or TARGET"
            ));
        }
    };
    let mut read_only = false;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => read_only = true,
            "rw" | "z" | "Z" | "cached" | "delegated" | "consistent" | "nocopy" => {}
            other => {
                return Err(format!(
                    "volume {s:?}: unknown mode {other:?} (use ro or rw)"
                ));
            }
        }
    }
    if !target.starts_with('/') {
        return Err(format!(
            "volume {s:?}: the target {target:?} must be an absolute path"
        ));
    }
    let source = match src {
        None => VolumeSource::Anonymous,
        Some(p) if is_path(p) => VolumeSource::Bind(bind_path(p, dir)),
        Some(name) => VolumeSource::Named(name.to_owned()),
    };
    Ok(Volume {
        source,
        target: target.to_owned(),
        read_only,
    })
}

fn long_volume(n: &Node, dir: &Path) -> Result<Volume, String> {
    let text = |k: &str| n.get(k).and_then(Node::scalar_text);
    let target = text("target").ok_or("a long-syntax volume needs target: PATH")?;
    let source = text("source").filter(|s| !s.is_empty());
    let source = match (text("type").as_deref().unwrap_or("volume"), source) {
        ("bind", Some(s)) => VolumeSource::Bind(bind_path(&s, dir)),
        ("bind", None) => return Err(format!("bind volume at {target:?} needs source: HOST_PATH")),
        ("volume", Some(s)) => VolumeSource::Named(s),
        ("volume", None) => VolumeSource::Anonymous,
        ("tmpfs", _) => VolumeSource::Tmpfs,
        (t, _) => {
            return Err(format!(
                "volume type {t:?} is not supported: use bind, volume or tmpfs"
            ));
        }
    };
    let read_only = n
        .get("read_only")
        .is_some_and(|r| r.value == Raw::Bool(true));
    Ok(Volume {
        source,
        target,
        read_only,
    })
}

#[cfg(test)]
#[path = "types_tests.rs"]
mod tests;

/// A compose duration: Go's `time.ParseDuration` (`1m30s`, `1.5s`,
/// `500ms`, `2h`; units ns, us, µs, ms, s, m, h; a bare number other than
/// 0 is refused), through `den_duration`, den's one Go-duration parser.
pub fn duration(s: &str) -> Result<std::time::Duration, String> {
    den_duration::parse_std(s).map_err(|_| {
        format!("duration {s:?}: write a number with a unit, e.g. 30s, 1m30s or 500ms")
    })
}

/// A healthcheck's `test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthTest {
    /// `["CMD", arg…]`: run directly.
    Exec(Vec<String>),
    /// `"cmd"` or `["CMD-SHELL", "cmd"]`: run with `/bin/sh -c`.
    Shell(String),
    /// `["NONE"]`: no healthcheck (the image's too).
    None,
}

/// Parses a healthcheck `test` in its string, CMD, CMD-SHELL or NONE form.
pub fn health_test(n: &Node) -> Result<HealthTest, String> {
    let items: Vec<String> = match &n.value {
        Raw::Str(s) => return Ok(HealthTest::Shell(s.clone())),
        Raw::Seq(items) => items.iter().filter_map(Node::scalar_text).collect(),
        _ => return Err("healthcheck test must be a string or a list".into()),
    };
    match items.split_first() {
        Some((k, args)) if k == "CMD" && !args.is_empty() => Ok(HealthTest::Exec(args.to_vec())),
        Some((k, [cmd])) if k == "CMD-SHELL" => Ok(HealthTest::Shell(cmd.clone())),
        Some((k, [])) if k == "NONE" => Ok(HealthTest::None),
        _ => Err("healthcheck test must start with CMD (then the command), CMD-SHELL (then one string) or be [NONE]".into()),
    }
}

/// A service network entry's `priority` or `gw_priority` (`n`, absent: 0):
/// an integer.
pub fn network_priority(n: Option<&Node>) -> Result<i64, String> {
    match n.map(|n| &n.value) {
        None | Some(Raw::Null) => Ok(0),
        Some(Raw::Int(i)) => Ok(*i),
        Some(Raw::Str(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("must be an integer, not {s:?}")),
        Some(_) => Err("must be an integer".into()),
    }
}

/// The order a service's networks are joined in, as indexes into
/// `prio`: each network's `(priority, gw_priority)` in the file's order.
/// den's first network is eth0 and has the default route, so the one
/// with the highest `gw_priority` comes first; the others follow by
/// `priority`, highest first (compose: "higher connects first"). Ties keep
/// the file's order, for the gateway too: among equal `gw_priority`s, the
/// one `priority` puts first.
pub fn network_order(prio: &[(i64, i64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..prio.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(prio[i].0));
    let best = order.iter().map(|&i| prio[i].1).max();
    if let Some(at) = order.iter().position(|&i| Some(prio[i].1) == best) {
        let gw = order.remove(at);
        order.insert(0, gw);
    }
    order
}
