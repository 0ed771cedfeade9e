//! Values of instruction flags: `RUN --mount`, `RUN --network`,
//! `HEALTHCHECK` durations. Rules and messages follow BuildKit's
//! `instructions/parse.go` and `runmount.go`.

use std::time::Duration;

/// `RUN --mount` types den runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// A directory from the context or another stage (read-only unless `rw`).
    Bind,
    /// A cache directory kept in den's store between builds.
    Cache,
    /// An empty tmpfs.
    Tmpfs,
}

/// `sharing=` of a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Concurrent builds use the same directory (the default).
    Shared,
    /// Each concurrent user gets its own copy.
    Private,
    /// Users wait for each other.
    Locked,
}

/// One `RUN --mount=…`; strings unexpanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `type=`.
    pub kind: MountKind,
    /// `target=` (also `dst=`, `destination=`).
    pub target: String,
    /// `source=` (also `src=`).
    pub source: Option<String>,
    /// `from=` a stage or image.
    pub from: Option<String>,
    /// `ro`/`rw`, with the type's default applied.
    pub readonly: bool,
    /// `id=` of a cache.
    pub id: Option<String>,
    /// `sharing=` of a cache.
    pub sharing: Sharing,
    /// `mode=` (octal) of a cache directory.
    pub mode: Option<u32>,
    /// `uid=` of a cache directory.
    pub uid: Option<u32>,
    /// `gid=` of a cache directory.
    pub gid: Option<u32>,
    /// `size=` of a tmpfs, in bytes.
    pub size: Option<u64>,
}

/// `RUN --network=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// The build's network (den's private network unless `den build --network`).
    #[default]
    Default,
    /// No network.
    None,
    /// The host's network.
    Host,
}

/// Parses `--network=VALUE`.
pub fn network(value: &str) -> Result<Network, String> {
    match value {
        "default" => Ok(Network::Default),
        "none" => Ok(Network::None),
        "host" => Ok(Network::Host),
        other => Err(format!(
            "unsupported network mode {other:?}: use default, none or host"
        )),
    }
}

/// Splits a `--mount` value like Go's CSV reader: `,` separates fields,
/// a field in double quotes may hold `,` and `""`.
fn csv_fields(value: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = value.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if at_start => quoted = true,
            ',' if !quoted => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
                continue;
            }
            c => field.push(c),
        }
        at_start = false;
    }
    if quoted {
        return Err(format!("unterminated quote in --mount={value}"));
    }
    fields.push(field);
    Ok(fields)
}

fn parse_bool(key: &str, value: Option<&str>) -> Result<bool, String> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true" | "1" | "t") => Ok(true),
        Some("false" | "0" | "f") => Ok(false),
        Some(v) => Err(format!(
            "invalid value for {key}: {v:?} (use true or false)"
        )),
    }
}

fn parse_u32(key: &str, value: &str, radix: u32) -> Result<u32, String> {
    u32::from_str_radix(value, radix)
        .map_err(|_| format!("invalid value for {key}: {value:?} (expected a number)"))
}

/// Parses `--mount=VALUE` for the types den supports.
pub fn mount(value: &str) -> Result<Mount, String> {
    let mut m = Mount {
        kind: MountKind::Bind,
        target: String::new(),
        source: None,
        from: None,
        readonly: true,
        id: None,
        sharing: Sharing::Shared,
        mode: None,
        uid: None,
        gid: None,
        size: None,
    };
    let mut ro: Option<bool> = None;
    let mut sharing_set = false;
    for field in csv_fields(value)? {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_owned())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = |v: Option<String>| {
            v.ok_or_else(|| format!("--mount option {key} needs a value ({key}=…)"))
        };
        match key.as_str() {
            "type" => {
                m.kind = match need(val)?.as_str() {
                    "bind" => MountKind::Bind,
                    "cache" => MountKind::Cache,
                    "tmpfs" => MountKind::Tmpfs,
                    t @ ("secret" | "ssh") => {
                        return Err(format!("--mount=type={t} is not supported by den"));
                    }
                    t => {
                        return Err(format!(
                            "unsupported mount type {t:?}: use bind, cache or tmpfs"
                        ));
                    }
                }
            }
            "target" | "dst" | "destination" => m.target = need(val)?,
            "source" | "src" => m.source = Some(need(val)?),
            "from" => m.from = Some(need(val)?),
            "id" => m.id = Some(need(val)?),
            "readonly" | "ro" => ro = Some(parse_bool(&key, val.as_deref())?),
            "readwrite" | "rw" => ro = Some(!parse_bool(&key, val.as_deref())?),
            "sharing" => {
                sharing_set = true;
                m.sharing = match need(val)?.as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    s => {
                        return Err(format!(
                            "unsupported sharing value {s:?}: use shared, private or locked"
                        ));
                    }
                }
            }
            "mode" => m.mode = Some(parse_u32(&key, &need(val)?, 8)?),
            "uid" => m.uid = Some(parse_u32(&key, &need(val)?, 10)?),
            "gid" => m.gid = Some(parse_u32(&key, &need(val)?, 10)?),
            "size" => m.size = Some(size(&need(val)?)?),
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    m.readonly = ro.unwrap_or(m.kind == MountKind::Bind);
    validate(&m, sharing_set)?;
    Ok(m)
}

fn validate(m: &Mount, sharing_set: bool) -> Result<(), String> {
    let kind = match m.kind {
        MountKind::Bind => "bind",
        MountKind::Cache => "cache",
        MountKind::Tmpfs => "tmpfs",
    };
    if m.target.is_empty() {
        return Err(format!("--mount=type={kind} needs target=PATH"));
    }
    if sharing_set && m.kind != MountKind::Cache {
        return Err(format!("invalid cache sharing set for {kind} mount"));
    }
    if m.kind == MountKind::Tmpfs && (m.from.is_some() || m.source.is_some()) {
        return Err("a tmpfs mount takes no from= or source=".into());
    }
    if m.size.is_some() && m.kind != MountKind::Tmpfs {
        return Err(format!("size= is only for tmpfs mounts, not {kind}"));
    }
    if m.kind == MountKind::Bind && (m.mode.is_some() || m.uid.is_some() || m.gid.is_some()) {
        return Err("mode=, uid= and gid= are not for bind mounts".into());
    }
    if m.id.is_some() && m.kind != MountKind::Cache {
        return Err(format!("id= is only for cache mounts, not {kind}"));
    }
    Ok(())
}

/// A size like docker's `RAMInBytes`: `1024`, `64k`, `64m`, `1.5g` (binary
/// multiples, optional `b`/`ib`).
pub fn size(value: &str) -> Result<u64, String> {
    let bad = || format!("invalid size {value:?}: use a number of bytes or 64k, 64m, 1g");
    let lower = value.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let num: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim_end_matches("ib").trim_end_matches('b');
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return Err(bad()),
    };
    let bytes = num * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Checks an `EXPOSE` word: `PORT`, `PORT/PROTO` or `FIRST-LAST[/PROTO]`,
/// ports 1-65535, protocol tcp, udp or sctp.
pub fn port(value: &str) -> Result<(), String> {
    let bad = |why: &str| format!("invalid port {value:?} in EXPOSE: {why}");
    let (ports, proto) = value.split_once('/').unwrap_or((value, "tcp"));
    if !matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad("the protocol must be tcp, udp or sctp"));
    }
    let (first, last) = ports.split_once('-').unwrap_or((ports, ports));
    let num = |p: &str| p.parse::<u16>().ok().filter(|n| *n > 0);
    match (num(first), num(last)) {
        (Some(a), Some(b)) if a <= b => Ok(()),
        (Some(_), Some(_)) => Err(bad("the range's end is below its start")),
        _ => Err(bad("a port is a number from 1 to 65535")),
    }
}

/// Signal names Linux has, without `SIG`, numbered from 1.
const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// Checks a `STOPSIGNAL`: a number 1-64, or a name with or without `SIG`
/// (`SIGTERM`, `term`, `SIGRTMIN+3`); returns its number.
pub fn signal(value: &str) -> Result<u8, String> {
    let bad = || {
        format!("invalid signal {value:?} in STOPSIGNAL: use a name like SIGTERM or a number 1-64")
    };
    if let Ok(n) = value.parse::<u8>() {
        return (1..=64).contains(&n).then_some(n).ok_or_else(bad);
    }
    let upper = value.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(i) = SIGNALS.iter().position(|s| *s == name) {
        return Ok(i as u8 + 1);
    }
    let rt = |rest: &str, base: u8, sign: i16| -> Option<u8> {
        let off: i16 = if rest.is_empty() {
            0
        } else {
            rest.parse().ok()?
        };
        let n = i16::from(base) + sign * off;
        (34..=64).contains(&n).then_some(n as u8)
    };
    let n = if let Some(rest) = name.strip_prefix("RTMIN") {
        rt(rest.strip_prefix('+').unwrap_or(rest), 34, 1)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        rt(rest.strip_prefix('-').unwrap_or(rest), 64, -1)
    } else {
        None
    };
    n.ok_or_else(bad)
}

/// Checks that a `FROM --platform` value (expanded) is the native
/// platform `native` (`os/arch[/variant]`): den runs `RUN` steps natively
/// and does not emulate. Architecture aliases (`x86_64`, `aarch64`) count
/// as their OCI names.
pub fn native_platform(requested: &str, native: &str) -> Result<(), String> {
    fn norm(p: &str) -> (String, String) {
        let mut parts = p.split('/');
        let os = parts.next().unwrap_or_default().to_ascii_lowercase();
        let arch = match parts
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "x86_64" | "x86-64" => "amd64".to_owned(),
            "aarch64" => "arm64".to_owned(),
            "i386" | "i686" => "386".to_owned(),
            other => other.to_owned(),
        };
        (os, arch)
    }
    if norm(requested) == norm(native) {
        return Ok(());
    }
    Err(format!(
        "--platform={requested} is not this machine's platform ({native}): den builds for the native platform only"
    ))
}

/// A Go duration (`30s`, `1m30s`, `1.5h`, `500ms`, `0`): `den_duration`,
/// den's one Go-duration parser.
pub fn duration(value: &str) -> Result<Duration, String> {
    den_duration::parse_std(value)
        .map_err(|_| format!("invalid duration {value:?}: use e.g. 30s, 1m30s or 500ms"))
}

/// A `HEALTHCHECK` interval: 0 (unset) or at least 1ms, as BuildKit wants.
pub fn interval(flag: &str, value: &str) -> Result<Duration, String> {
    let d = duration(value)?;
    if d != Duration::ZERO && d < Duration::from_millis(1) {
        return Err(format!("--{flag} {value:?} cannot be less than 1ms"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts() {
        let m = mount("type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0700,uid=1000")
            .unwrap();
        assert_eq!(m.kind, MountKind::Cache);
        assert_eq!(m.target, "/root/.cache");
        assert_eq!(m.id.as_deref(), Some("pip"));
        assert_eq!(m.sharing, Sharing::Locked);
        assert_eq!(m.mode, Some(0o700));
        assert_eq!(m.uid, Some(1000));
        assert!(!m.readonly);

        let m = mount("target=/src,from=builder,source=/out").unwrap();
        assert_eq!(m.kind, MountKind::Bind);
        assert!(m.readonly, "bind mounts are read-only by default");
        assert_eq!(m.from.as_deref(), Some("builder"));
        assert_eq!(m.source.as_deref(), Some("/out"));
        assert!(!mount("type=bind,dst=/x,rw").unwrap().readonly);
        assert!(!mount("type=bind,dst=/x,readonly=false").unwrap().readonly);
        assert!(mount("type=cache,dst=/x,ro").unwrap().readonly);

        let m = mount("type=tmpfs,target=/tmp,size=64m").unwrap();
        assert_eq!(m.size, Some(64 << 20));
        assert_eq!(
            mount("type=bind,\"target=/a,b\"").unwrap().target,
            "/a,b",
            "quoted CSV field"
        );
    }

    #[test]
    fn mount_refusals() {
        let cases = [
            ("type=cache", "--mount=type=cache needs target=PATH"),
            (
                "type=secret,id=x",
                "--mount=type=secret is not supported by den",
            ),
            (
                "type=nfs,target=/x",
                "unsupported mount type \"nfs\": use bind, cache or tmpfs",
            ),
            (
                "type=bind,target=/x,sharing=locked",
                "invalid cache sharing set for bind mount",
            ),
            (
                "type=cache,target=/x,sharing=all",
                "unsupported sharing value \"all\": use shared, private or locked",
            ),
            (
                "type=cache,target=/x,bogus=1",
                "unexpected key 'bogus' in 'bogus=1'",
            ),
            (
                "type=cache,target=/x,mode=999",
                "invalid value for mode: \"999\" (expected a number)",
            ),
            (
                "type=tmpfs,target=/x,from=a",
                "a tmpfs mount takes no from= or source=",
            ),
            (
                "type=cache,target=/x,size=1m",
                "size= is only for tmpfs mounts, not cache",
            ),
            (
                "type=bind,target=/x,uid=1",
                "mode=, uid= and gid= are not for bind mounts",
            ),
            (
                "type=bind,target=/x,ro=maybe",
                "invalid value for ro: \"maybe\" (use true or false)",
            ),
            (
                "type=bind,\"target=/x",
                "unterminated quote in --mount=type=bind,\"target=/x",
            ),
            (
                "type,target=/x",
                "--mount option type needs a value (type=…)",
            ),
        ];
        for (value, want) in cases {
            assert_eq!(mount(value).unwrap_err(), want, "{value}");
        }
    }

    #[test]
    fn networks() {
        assert_eq!(network("none"), Ok(Network::None));
        assert_eq!(network("host"), Ok(Network::Host));
        assert_eq!(network("default"), Ok(Network::Default));
        assert_eq!(
            network("bridge").unwrap_err(),
            "unsupported network mode \"bridge\": use default, none or host"
        );
    }

    #[test]
    fn signals() {
        let cases = [
            ("SIGTERM", 15),
            ("term", 15),
            ("9", 9),
            ("SIGKILL", 9),
            ("SIGRTMIN", 34),
            ("SIGRTMIN+3", 37),
            ("RTMAX-1", 63),
            ("SIGSYS", 31),
        ];
        for (v, n) in cases {
            assert_eq!(signal(v), Ok(n), "{v}");
        }
        for v in ["0", "65", "SIGFOO", "RTMIN+40", "", "-1"] {
            assert_eq!(
                signal(v).unwrap_err(),
                format!(
                    "invalid signal {v:?} in STOPSIGNAL: use a name like SIGTERM or a number 1-64"
                ),
                "{v}"
            );
        }
    }

    #[test]
    fn platforms() {
        assert_eq!(native_platform("linux/amd64", "linux/amd64"), Ok(()));
        assert_eq!(native_platform("linux/x86_64", "linux/amd64"), Ok(()));
        assert_eq!(native_platform("Linux/AArch64", "linux/arm64"), Ok(()));
        assert_eq!(
            native_platform("linux/arm64", "linux/amd64").unwrap_err(),
            "--platform=linux/arm64 is not this machine's platform (linux/amd64): \
             den builds for the native platform only"
        );
    }

    #[test]
    fn ports() {
        for ok in [
            "80",
            "80/tcp",
            "53/UDP",
            "8000-8010",
            "9/sctp",
            "1-65535/tcp",
        ] {
            assert_eq!(port(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("http", "a port is a number from 1 to 65535"),
            ("0", "a port is a number from 1 to 65535"),
            ("70000", "a port is a number from 1 to 65535"),
            ("80/icmp", "the protocol must be tcp, udp or sctp"),
            ("90-80", "the range's end is below its start"),
        ];
        for (v, why) in cases {
            assert_eq!(
                port(v).unwrap_err(),
                format!("invalid port {v:?} in EXPOSE: {why}")
            );
        }
    }

    #[test]
    fn durations_and_sizes() {
        let cases = [
            ("30s", 30_000),
            ("1m30s", 90_000),
            ("1.5h", 5_400_000),
            ("500ms", 500),
            ("0", 0),
        ];
        for (v, ms) in cases {
            assert_eq!(duration(v).unwrap(), Duration::from_millis(ms), "{v}");
        }
        for v in ["", "5", "5x", "s", "1..2s", "-1s"] {
            assert!(duration(v).is_err(), "{v}");
        }
        assert_eq!(
            interval("interval", "10us").unwrap_err(),
            "--interval \"10us\" cannot be less than 1ms"
        );
        assert_eq!(size("1024").unwrap(), 1024);
        assert_eq!(size("1g").unwrap(), 1 << 30);
        assert_eq!(size("2KiB").unwrap(), 2048);
        assert!(size("lots").is_err());
    }
}
