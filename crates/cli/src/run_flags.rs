//! `den run` flags checked and turned into the pieces of a container spec,
//! and the image config's defaults (Entrypoint, Cmd, Env, WorkingDir, User).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use den_image::store::{ImageRecord, Store};
use den_sandbox::container::spec::{
    JoinedNetwork, Mount, Network, PrivateNetwork, Restart, UserNetwork, Userns,
};
use den_sandbox::idmap::IdMapping;

use crate::args::RunArgs;
use crate::context::Context;
use crate::names;
use crate::volumes::Volumes;

// `-e`, `-w`, `-u`: the command's environment, directory and user. One
// definition for `den run`, `den exec`, `den compose run` and `den
// compose exec`, so their help says the same.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ProcessFlags {
    /// Set an environment variable (KEY=VALUE, or KEY to copy it from den's environment).
    #[arg(short, long = "env", value_name = "KEY[=VALUE]", value_parser = env_flag)]
    pub env: Vec<String>,
    /// Working directory inside the container (an absolute path).
    #[arg(short, long, value_name = "DIR", value_parser = workdir_flag)]
    pub workdir: Option<String>,
    /// User to run as: uid[:gid] or name[:group].
    #[arg(short, long)]
    pub user: Option<String>,
}

/// `-e`: Docker refuses an empty name (`-e =x`) rather than passing it on.
fn env_flag(e: &str) -> Result<String, String> {
    if e.is_empty() || e.starts_with('=') {
        return Err(format!("the variable's name before `=` is empty in `{e}`"));
    }
    Ok(e.to_string())
}

/// `-w`: a relative directory would depend on where the image left off;
/// Docker refuses it too.
fn workdir_flag(w: &str) -> Result<String, String> {
    if !w.starts_with('/') {
        return Err(format!(
            "the working directory `{w}` must be an absolute path inside the container"
        ));
    }
    Ok(w.to_string())
}

// `-i`, `-t`, for `den run` and `den exec` (compose's commands take `-T`).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct TerminalFlags {
    /// Keep standard input open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the container a terminal.
    #[arg(short, long)]
    pub tty: bool,
}

/// What the flags say, validated.
pub struct Validated {
    pub env: Vec<String>,
    pub mounts: Vec<Mount>,
    /// Named volumes the mounts use (for the container record).
    pub volumes: Vec<String>,
    pub network: Network,
    pub capabilities: Vec<den_sandbox::caps::Capability>,
    pub seccomp: bool,
    pub landlock: bool,
    /// `--security-opt no-new-privileges[=true]`.
    pub no_new_privs: bool,
    /// `--restart`, checked against `--rm`.
    pub restart: Restart,
    /// `--userns`.
    pub userns: UsernsChoice,
    /// `--log-driver`, `--log-opt`.
    pub log: den_sandbox::container::logs::LogConfig,
    /// `--ulimit`, `--memory`, `--cpus`, …
    pub resources: crate::resources::Resources,
}

impl Validated {
    pub fn from_args(args: &RunArgs, ctx: &Context) -> anyhow::Result<Self> {
        let restart = restart(args)?;
        if let Some(n) = &args.name {
            crate::names::check("container", n)?;
        }
        let userns = userns(args)?;
        let log = crate::log_driver::config(args)?;
        let resources = crate::resources::Resources::from_flags(&args.resources)?;
        let network = network(ctx, &args.network)?;
        let (mut seccomp, mut landlock, mut no_new_privs) = (!args.privileged, true, false);
        for opt in &args.security_opt {
            match opt.replace(':', "=").as_str() {
                "seccomp=unconfined" => seccomp = false,
                "landlock=off" | "landlock=disabled" => landlock = false,
                "no-new-privileges" | "no-new-privileges=true" => no_new_privs = true,
                "no-new-privileges=false" | "label=disable" => {}
                other => bail!(
                    "unsupported --security-opt `{other}`: use seccomp=unconfined, landlock=off, no-new-privileges[=true|false] or label=disable (a no-op)"
                ),
            }
        }
        let caps = den_sandbox::caps::CapPolicy::from_flags(
            &args.cap_add,
            &args.cap_drop,
            args.privileged,
        )?;
        let mut env = Vec::new();
        for file in &args.env_file {
            let text = fs_err::read_to_string(file)?;
            env.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .filter_map(env_entry),
            );
        }
        env.extend(
            args.process
                .env
                .iter()
                .map(String::as_str)
                .filter_map(env_entry),
        );
        let mut mounts = Vec::new();
        for v in &args.volumes {
            mounts.push(parse_volume(v, ctx)?);
        }
        for m in &args.mounts {
            mounts.push(parse_mount(m, ctx)?);
        }
        for t in &args.tmpfs {
            let (target, opts) = t.split_once(':').unwrap_or((t, ""));
            check_target(target)?;
            mounts.push(Mount::Tmpfs {
                target: target.into(),
                options: if opts.is_empty() {
                    "mode=1777".into()
                } else {
                    opts.into()
                },
            });
        }
        let mut volumes = Vec::new();
        for m in &mounts {
            if let Mount::Volume { source, .. } = m
                && let Some(name) = source.parent().and_then(Path::file_name)
            {
                let name = name.to_string_lossy().into_owned();
                if !volumes.contains(&name) {
                    volumes.push(name);
                }
            }
        }
        Ok(Self {
            env,
            mounts,
            volumes,
            network,
            capabilities: caps.sorted(),
            seccomp,
            landlock,
            no_new_privs,
            restart,
            userns,
            log,
            resources,
        })
    }
}

/// Largest `--label-file` read (labels are short by nature).
const MAX_LABEL_FILE: u64 = 1 << 20;

/// `--label-file` lines, then `--label`s (a later key wins, as in Docker);
/// `KEY` alone is an empty value.
pub fn labels(args: &RunArgs) -> anyhow::Result<BTreeMap<String, String>> {
    parse_labels(&args.labels, &args.label_file)
}

/// [`labels`] of any command's `--label`s and `--label-file`s.
pub fn parse_labels(
    labels: &[String],
    files: &[std::path::PathBuf],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for file in files {
        let text = read_bounded(file, MAX_LABEL_FILE)?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = label(line)
                .with_context(|| format!("{}:{}: invalid label", file.display(), i + 1))?;
            out.insert(k, v);
        }
    }
    for l in labels {
        let (k, v) = label(l).context("invalid --label")?;
        out.insert(k, v);
    }
    Ok(out)
}

fn label(s: &str) -> anyhow::Result<(String, String)> {
    let (k, v) = s.split_once('=').unwrap_or((s, ""));
    if k.trim().is_empty() {
        bail!("`{s}` has no key: write KEY=VALUE");
    }
    Ok((k.trim().to_string(), v.to_string()))
}

/// A text file, refused when larger than `max` bytes.
fn read_bounded(path: &Path, max: u64) -> anyhow::Result<String> {
    use std::io::Read;
    let f = fs_err::File::open(path)?;
    let mut text = String::new();
    f.take(max + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("read {}", path.display()))?;
    if text.len() as u64 > max {
        bail!(
            "{} is larger than {max} bytes: den reads no more",
            path.display()
        );
    }
    Ok(text)
}

/// `--restart`; a `--rm` container cannot have one.
fn restart(args: &RunArgs) -> anyhow::Result<Restart> {
    let restart = Restart::parse(&args.restart).with_context(|| {
        format!(
            "invalid --restart `{}`: use no, on-failure[:N], always or unless-stopped",
            args.restart
        )
    })?;
    if args.rm && restart != Restart::No {
        bail!(
            "--rm and --restart {} conflict: a removed container cannot restart",
            args.restart
        );
    }
    Ok(restart)
}

/// `K=V` as is; a bare `K` takes den's own value, or is dropped when unset.
fn env_entry(e: &str) -> Option<String> {
    match e.split_once('=') {
        Some(_) => Some(e.to_string()),
        None => std::env::var(e).ok().map(|v| format!("{e}={v}")),
    }
}

fn check_target(target: &str) -> anyhow::Result<()> {
    if !target.starts_with('/') {
        bail!(
            "invalid mount destination `{target}`: it must be an absolute path inside the container"
        );
    }
    if target.split('/').any(|c| c == "..") {
        bail!("invalid mount destination `{target}`: `..` is not allowed");
    }
    Ok(())
}

/// A host path (absolute or relative, which must exist) to bind, or a named
/// volume (created, and filled from the image, when the container is made:
/// see `Volumes::claim`).
fn source_mount(src: &str, target: &str, read_only: bool, ctx: &Context) -> anyhow::Result<Mount> {
    if names::is_valid(src) {
        return Ok(Mount::Volume {
            source: Volumes::open(&ctx.root)?.data_dir(src),
            target: target.into(),
            read_only,
            prefill: false,
        });
    }
    Ok(Mount::Bind {
        source: bind_source(src)?,
        target: target.into(),
        read_only,
    })
}

/// A host path to bind: absolute, or relative to the current directory; it must exist.
fn bind_source(src: &str) -> anyhow::Result<PathBuf> {
    let path = std::path::absolute(Path::new(src))
        .with_context(|| format!("invalid volume source `{src}`"))?;
    if !path.exists() {
        bail!(
            "bind source path does not exist: {}: create it first, or use a named volume",
            path.display()
        );
    }
    Ok(path)
}

/// `-v SRC:DST[:ro|rw]`.
fn parse_volume(v: &str, ctx: &Context) -> anyhow::Result<Mount> {
    let parts: Vec<&str> = v.split(':').collect();
    if let [dst] = parts[..] {
        // `-v /path`: an anonymous volume, as in Docker.
        check_target(dst).with_context(|| format!("volume `{v}`"))?;
        let name = Volumes::open(&ctx.root)?.create_anonymous()?;
        return source_mount(&name, dst, false, ctx);
    }
    let (src, dst, opts) = match parts[..] {
        [src, dst] => (src, dst, ""),
        [src, dst, opts] => (src, dst, opts),
        _ => bail!("invalid volume `{v}`: use SOURCE:DESTINATION[:ro|rw]"),
    };
    check_target(dst).with_context(|| format!("volume `{v}`"))?;
    let mut read_only = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => read_only = true,
            "rw" | "z" | "Z" => {}
            other => bail!("invalid volume option `{other}` in `{v}`: use ro or rw"),
        }
    }
    source_mount(src, dst, read_only, ctx)
}

/// `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly]`.
fn parse_mount(m: &str, ctx: &Context) -> anyhow::Result<Mount> {
    let (mut kind, mut src, mut dst, mut ro, mut size, mut mode) =
        ("volume", None, None, false, None, None);
    for kv in m.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "type" => kind = v,
            "source" | "src" => src = Some(v),
            "target" | "destination" | "dst" => dst = Some(v),
            "readonly" | "ro" => ro = v.is_empty() || v == "true" || v == "1",
            "tmpfs-size" => size = Some(v),
            "tmpfs-mode" => mode = Some(v),
            other => bail!("invalid --mount `{m}`: unknown key `{other}`"),
        }
    }
    let dst = dst.with_context(|| format!("invalid --mount `{m}`: target= is required"))?;
    check_target(dst)?;
    match kind {
        "bind" | "volume" => {
            let src = src.with_context(|| format!("invalid --mount `{m}`: source= is required"))?;
            if kind == "volume" {
                names::check("volume", src)?;
            }
            if kind == "bind" {
                return Ok(Mount::Bind {
                    source: bind_source(src)?,
                    target: dst.into(),
                    read_only: ro,
                });
            }
            source_mount(src, dst, ro, ctx)
        }
        "tmpfs" => {
            let mut opts = vec![format!("mode={}", mode.unwrap_or("1777"))];
            opts.extend(size.map(|s| format!("size={s}")));
            Ok(Mount::Tmpfs {
                target: dst.into(),
                options: opts.join(","),
            })
        }
        other => bail!("invalid --mount type `{other}`: use bind, volume or tmpfs"),
    }
}

/// `--userns`: the mapping mode, and the user a keep-id container runs as
/// when `-u` is not given.
pub struct UsernsChoice {
    pub mode: Userns,
    pub default_user: Option<String>,
}

/// Checks `--userns`. `host` (podman's name for it) or nothing: container
/// root is the user. `keep-id`: the user's own uid:gid inside, which also
/// becomes the container's user unless `-u` is given (podman does the same,
/// overriding the image's User); it needs subordinate ids, so without them
/// this fails before anything is created.
fn userns(args: &RunArgs) -> anyhow::Result<UsernsChoice> {
    let mode = match args.userns.as_deref().map(str::trim) {
        None | Some("" | "host") => Userns::Default,
        Some("keep-id") => Userns::KeepId,
        Some(other) => bail!(
            "unsupported --userns `{other}`: use keep-id, or host (the default: container root is you)"
        ),
    };
    let mut default_user = None;
    if mode == Userns::KeepId
        && let IdMapping::KeepId { uid, gid, .. } = IdMapping::detect().keep_id()?
    {
        default_user = args.process.user.is_none().then(|| format!("{uid}:{gid}"));
    }
    Ok(UsernsChoice { mode, default_user })
}

/// The run-time defaults an image config carries.
#[derive(Debug, Default, Clone)]
pub struct ImageConfig {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub stop_signal: Option<String>,
    /// HEALTHCHECK (Docker's `Healthcheck`, which OCI does not define).
    pub healthcheck: Option<crate::health::ImageHealth>,
    /// `3306/tcp`, as EXPOSE wrote it.
    pub exposed_ports: Vec<String>,
}

impl ImageConfig {
    /// Reads the image's config blob (OCI image configuration, via `oci-spec`).
    pub fn read(store: &Store, image: &ImageRecord) -> anyhow::Result<Self> {
        let blob = store.read_blob(&image.id)?;
        let parsed: oci_spec::image::ImageConfiguration =
            serde_json::from_slice(&blob).context("malformed image config")?;
        let Some(c) = parsed.config() else {
            return Ok(Self::default());
        };
        let raw: serde_json::Value =
            serde_json::from_slice(&blob).context("malformed image config")?;
        let healthcheck = crate::health::ImageHealth::from_config(&raw).unwrap_or_else(|why| {
            crate::log::warn(format_args!("the image's HEALTHCHECK is ignored: {why}"));
            None
        });
        Ok(Self {
            entrypoint: c.entrypoint().clone(),
            cmd: c.cmd().clone(),
            env: c.env().clone(),
            working_dir: c.working_dir().clone(),
            user: c.user().clone(),
            stop_signal: c.stop_signal().clone(),
            healthcheck,
            exposed_ports: c.exposed_ports().clone().unwrap_or_default(),
        })
    }

    /// Docker's rule: `--entrypoint` replaces the Entrypoint and drops Cmd;
    /// arguments given replace Cmd.
    pub fn command(&self, entrypoint: Option<&str>, args: &[String]) -> Vec<String> {
        let (ep, cmd) = match entrypoint {
            Some("") => (vec![], vec![]),
            Some(e) => (vec![e.to_string()], vec![]),
            None => (
                self.entrypoint.clone().unwrap_or_default(),
                self.cmd.clone().unwrap_or_default(),
            ),
        };
        let tail = if args.is_empty() { cmd } else { args.to_vec() };
        [ep, tail].concat()
    }

    /// The image's Env, overridden key by key by the user's.
    pub fn env_with(&self, user: &[String]) -> Vec<String> {
        let mut out: Vec<String> = self.env.clone().unwrap_or_default();
        for e in user {
            let key = e.split_once('=').map(|(k, _)| k).unwrap_or(e);
            out.retain(|o| o.split_once('=').map(|(k, _)| k) != Some(key));
            out.push(e.clone());
        }
        out
    }
}

/// `--network container:NAME`: that container's network namespace.
/// The network modes that are not user networks (`container:NAME` too).
const MODES: [&str; 7] = [
    "none",
    "host",
    "private",
    "default",
    "bridge",
    "pasta",
    "slirp4netns",
];

/// `--network`, once or repeated: a mode (none, host, private and its
/// Docker names, container:NAME) alone, or one or more user networks,
/// each `NAME` or Docker's `name=NAME,alias=A,…`, in the order given.
fn network(ctx: &Context, given: &[String]) -> anyhow::Result<Network> {
    if let [one] = given {
        match one.as_str() {
            "none" => return Ok(Network::None),
            "host" => return Ok(Network::Host),
            m if MODES.contains(&m) => {
                return Ok(Network::Private(PrivateNetwork {
                    ports: Vec::new(),
                    allow_host_loopback: false,
                }));
            }
            m if m.starts_with("container:") => return joined(ctx, &m["container:".len()..]),
            _ => {}
        }
    }
    let networks = crate::networks::Networks::open(&ctx.root)?;
    let mut nets: Vec<UserNetwork> = Vec::new();
    for g in given {
        let (name, aliases) = network_arg(g)?;
        if MODES.contains(&name) || name.starts_with("container:") {
            bail!(
                "--network {name} cannot be combined with another --network: only user networks can be joined together"
            );
        }
        let rec = networks.get(name)?;
        if nets.iter().any(|n| n.name == rec.name) {
            bail!("--network {}: the same network is given twice", rec.name);
        }
        nets.push(UserNetwork {
            dir: networks.dir_of(&rec.name),
            gateway: rec.gateway(),
            name: rec.name,
            ip: String::new(),
            ports: Vec::new(),
            aliases,
        });
    }
    Ok(Network::User(nets))
}

/// One `--network` value: `NAME`, or Docker's `name=NAME,alias=A,alias=B`
/// (the aliases on that network only).
fn network_arg(v: &str) -> anyhow::Result<(&str, Vec<String>)> {
    if !v.starts_with("name=") {
        return Ok((v, Vec::new()));
    }
    let (mut name, mut aliases) = (None, Vec::new());
    for part in v.split(',') {
        match part.split_once('=') {
            Some(("name", n)) if !n.is_empty() && name.is_none() => name = Some(n),
            Some(("alias", a)) if !a.is_empty() => aliases.push(a.to_string()),
            _ => bail!(
                "invalid --network `{v}`: `{part}` is not supported; use NAME or name=NAME,alias=ALIAS"
            ),
        }
    }
    Ok((name.unwrap_or_default(), aliases))
}

fn joined(ctx: &Context, target: &str) -> anyhow::Result<Network> {
    let containers = crate::containers::Containers::open(&ctx.root)?;
    let rec = containers.find(target)?;
    Ok(Network::Container(JoinedNetwork {
        dir: containers.dir_of(&rec.id),
        name: rec.name,
    }))
}

/// What Docker refuses beside `--network container:NAME` (the network,
/// its names and its ports are the other container's), in its words.
fn joined_conflicts(args: &RunArgs, ports: &[den_net::ports::PortMapping]) -> anyhow::Result<()> {
    let conflict = [
        (
            !ports.is_empty(),
            "port publishing and the container type network mode",
        ),
        (args.hostname.is_some(), "hostname and the network mode"),
        (!args.dns.is_empty(), "dns and the network mode"),
        (
            !args.add_host.is_empty(),
            "custom host-to-IP mapping and the network mode",
        ),
    ]
    .into_iter()
    .find(|(set, _)| *set);
    match conflict {
        Some((_, what)) => bail!("conflicting options: {what}"),
        None => Ok(()),
    }
}

/// The container's network, its published ports resolved (random host ports
/// picked, busy or privileged ones refused), and /etc/hosts extras.
pub struct NetworkPlan {
    pub network: Network,
    pub ports: Vec<den_net::ports::PortMapping>,
    pub hosts: Vec<(String, String)>,
    pub dns: Vec<String>,
}

pub fn network_plan(
    args: &RunArgs,
    base: &Network,
    config: &ImageConfig,
) -> anyhow::Result<NetworkPlan> {
    let mut ports = Vec::new();
    for p in &args.publish {
        ports.extend(den_net::ports::PortMapping::parse(p)?);
    }
    if args.publish_all {
        for e in &config.exposed_ports {
            match den_net::ports::PortMapping::from_exposed(e) {
                Ok(m) => ports.push(m),
                Err(why) => crate::log::warn(format_args!(
                    "-P ignores the image's exposed port {e:?}: {why}"
                )),
            }
        }
    }
    let mut hosts = Vec::new();
    let mut loopback = false;
    for h in &args.add_host {
        let (name, ip) = h
            .split_once(':')
            .filter(|(n, i)| !n.is_empty() && !i.is_empty())
            .with_context(|| format!("invalid --add-host `{h}`: use NAME:IP"))?;
        let ip = if ip == "host-gateway" {
            loopback = true;
            den_net::host::default_gateway_v4().map(|g| g.to_string()).context("--add-host host-gateway: this host has no default route, so the container has no address for it")?
        } else {
            ip.parse::<std::net::IpAddr>().with_context(|| {
                format!("invalid --add-host `{h}`: `{ip}` is not an IP address")
            })?;
            ip.to_string()
        };
        hosts.push((name.to_string(), ip));
    }
    for d in &args.dns {
        d.parse::<std::net::IpAddr>()
            .with_context(|| format!("invalid --dns `{d}`: give an IP address"))?;
    }
    if matches!(base, Network::Container(_)) {
        joined_conflicts(args, &ports)?;
    }
    if !args.network_alias.is_empty() && !matches!(base, Network::User(_)) {
        bail!("--network-alias needs a user network: den network create NAME, then --network NAME");
    }
    let network = match base {
        Network::User(nets) => {
            if let Some(p) = ports.iter().find(|p| p.proto != den_net::ports::Proto::Tcp) {
                bail!("publishing {p} on a user network: only TCP ports can be published there");
            }
            den_net::ports::prepare(&mut ports)?;
            // Through the first network's proxy, as Docker publishes through
            // the first network connected.
            let mut nets = nets.clone();
            if let Some(first) = nets.first_mut() {
                first.ports = ports.clone();
            }
            Network::User(nets)
        }
        Network::Private(_) => {
            den_net::ports::prepare(&mut ports)?;
            Network::Private(PrivateNetwork {
                ports: ports.clone(),
                allow_host_loopback: loopback,
            })
        }
        // Docker's leniency: the container has the host's ports already.
        Network::Host if !ports.is_empty() => {
            crate::log::warn(format_args!(
                "Published ports are discarded when using host network mode"
            ));
            ports.clear();
            Network::Host
        }
        Network::None if !ports.is_empty() => {
            bail!("ports cannot be published with --network none: use the private network")
        }
        other => other.clone(),
    };
    Ok(NetworkPlan {
        network,
        ports,
        hosts,
        dns: args.dns.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_values_name_a_network_and_its_aliases() {
        let ok = |v| network_arg(v).unwrap();
        assert_eq!(ok("front"), ("front", vec![]));
        assert_eq!(
            ok("name=back,alias=db,alias=sql"),
            ("back", vec!["db".to_string(), "sql".to_string()])
        );
        for (bad, part) in [
            ("name=back,ip=10.89.1.9", "ip=10.89.1.9"),
            ("name=,alias=x", "name="),
            ("name=a,name=b", "name=b"),
        ] {
            assert_eq!(
                network_arg(bad).unwrap_err().to_string(),
                format!(
                    "invalid --network `{bad}`: `{part}` is not supported; use NAME or name=NAME,alias=ALIAS"
                )
            );
        }
    }

    /// One shared flag as `--help` shows it.
    fn shown(cmd: &clap::Command, id: &str) -> String {
        let a = cmd
            .get_arguments()
            .find(|a| a.get_id() == id)
            .unwrap_or_else(|| panic!("{} has no {id}", cmd.get_name()));
        format!(
            "-{:?} --{:?} {:?}: {:?}",
            a.get_short(),
            a.get_long(),
            a.get_value_names(),
            a.get_help().map(ToString::to_string)
        )
    }

    fn parse_run(argv: &[&str]) -> Result<Box<crate::args::RunArgs>, clap::Error> {
        use clap::Parser;
        match crate::args::Cli::try_parse_from(argv)?.command {
            crate::args::Command::Run(a) => Ok(a),
            _ => panic!("parsed as another command"),
        }
    }

    /// Everything after the image is the command's, even words that are
    /// den run flags (`-c` is `--cpu-shares`), as in Docker.
    #[test]
    fn words_after_the_image_belong_to_the_command() {
        let a = parse_run(&[
            "den",
            "run",
            "--entrypoint",
            "sh",
            "img",
            "-c",
            "echo hi",
            "-e",
            "X",
        ])
        .unwrap();
        assert_eq!(a.image(), Some("img"));
        assert_eq!(a.command(), ["-c", "echo hi", "-e", "X"]);
        assert_eq!(a.entrypoint.as_deref(), Some("sh"));
        assert!(a.process.env.is_empty(), "{:?}", a.process.env);
        let a = parse_run(&["den", "run", "-e", "A=1", "img"]).unwrap();
        assert_eq!((a.image(), a.command()), (Some("img"), &[][..]));
        assert_eq!(a.process.env, ["A=1"]);
        let e = parse_run(&["den", "run", "--no-such-flag", "img"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument, "{e}");
    }

    /// Docker's refusals: `-e =x` and a relative `-w`, for run and exec alike.
    #[test]
    fn empty_env_names_and_relative_workdirs_are_refused() {
        use clap::Parser;
        for argv in [
            &["den", "run", "-e", "=x", "img"][..],
            &["den", "exec", "-e", "=x", "c", "true"],
        ] {
            let e = crate::args::Cli::try_parse_from(argv)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("the variable's name before `=` is empty in `=x`"),
                "{e}"
            );
        }
        for argv in [
            &["den", "run", "-w", "rel", "img"][..],
            &["den", "exec", "-w", "rel", "c", "true"],
        ] {
            let e = crate::args::Cli::try_parse_from(argv)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(
                    "the working directory `rel` must be an absolute path inside the container"
                ),
                "{e}"
            );
        }
        let a = parse_run(&["den", "run", "-w", "/srv", "-e", "A", "img"]).unwrap();
        assert_eq!(
            (a.process.workdir.as_deref(), &a.process.env[..]),
            (Some("/srv"), &["A".to_string()][..])
        );
    }

    #[test]
    fn shared_flags_have_one_help() {
        let cli = crate::args::full_command();
        let sub = |path: &[&str]| {
            path.iter().fold(cli.clone(), |c, name| {
                c.find_subcommand(name).expect(name).clone()
            })
        };
        let run = sub(&["run"]);
        assert_eq!(
            shown(&run, "env"),
            "-Some('e') --Some(\"env\") Some([\"KEY[=VALUE]\"]): Some(\"Set an environment variable (KEY=VALUE, or KEY to copy it from den's environment)\")"
        );
        for path in [&["exec"][..], &["compose", "exec"], &["compose", "run"]] {
            let cmd = sub(path);
            for id in ["env", "workdir", "user"] {
                assert_eq!(shown(&cmd, id), shown(&run, id), "{path:?} {id}");
            }
        }
        let exec = sub(&["exec"]);
        for id in ["interactive", "tty"] {
            assert_eq!(shown(&exec, id), shown(&run, id), "{id}");
        }
    }

    #[test]
    fn entrypoint_and_cmd_like_docker() {
        let c = ImageConfig {
            entrypoint: Some(vec!["ep".into()]),
            cmd: Some(vec!["cmd".into()]),
            ..Default::default()
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(c.command(None, &[]), s(&["ep", "cmd"]));
        assert_eq!(c.command(None, &s(&["x"])), s(&["ep", "x"]));
        assert_eq!(c.command(Some("sh"), &[]), s(&["sh"]));
        assert_eq!(
            c.command(Some("sh"), &s(&["-c", "x"])),
            s(&["sh", "-c", "x"])
        );
        assert_eq!(c.command(Some(""), &s(&["ls"])), s(&["ls"]));
    }

    #[test]
    fn env_overrides_by_key() {
        let c = ImageConfig {
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            ..Default::default()
        };
        assert_eq!(
            c.env_with(&["A=2".into(), "B=3".into()]),
            vec!["PATH=/bin", "A=2", "B=3"]
        );
    }

    #[test]
    fn volume_names_and_targets() {
        assert!(names::is_valid("data") && names::is_valid("my-vol_1.x"));
        assert!(!names::is_valid("./data") && !names::is_valid("-x") && !names::is_valid(""));
        assert!(check_target("/data").is_ok());
        assert!(check_target("data").is_err() && check_target("/a/../b").is_err());
    }
}
