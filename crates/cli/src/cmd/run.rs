//! `den run`: image → container spec → a supervisor child that sets the
//! container up in its namespaces → the container's exit status.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use den_image::manifest::Platform;
use den_image::pull::PullOptions;
use den_image::reference::ImageRef;
use den_image::store::{ImageRecord, Store};
use den_sandbox::container::spec::{
    ContainerSpec, Mount, Network, Process, Restart, Rootfs, Security,
};

use super::run_flags::{self, ImageConfig};
use crate::args::RunArgs;
use crate::containers::{Containers, Record, new_id, write_atomic};
use crate::context::Context;
use crate::progress::Reporter;
use crate::volumes::Volumes;

pub fn run(ctx: &Context, args: &RunArgs) -> anyhow::Result<i32> {
    // Docker's check, before anything is made: -it needs a terminal to read.
    if args.interactive && args.tty && !args.detach && !std::io::stdin().is_terminal() {
        eprintln!("den: {}", super::attach::NOT_A_TTY);
        return Ok(1);
    }
    let Made { id, dir, spec_path } = create(ctx, args)?;
    if args.detach {
        start_detached(ctx, args, &id, &dir, &spec_path)?;
        println!("{id}");
        return Ok(0);
    }
    let code = if args.tty {
        super::supervise::start_terminal(
            ctx,
            &spec_path,
            args.interactive,
            args.detach_keys.as_deref(),
            args.rm,
        )
    } else {
        super::supervise::start(ctx, &spec_path, args.interactive, false)
    };
    // The supervisor removes the directory itself; this catches the case
    // where it died before it could.
    if args.rm && dir.exists() {
        super::internal::remove_container(ctx, &id)?;
    }
    code
}

/// A container made and ready to start.
pub(crate) struct Made {
    pub id: String,
    pub dir: PathBuf,
    pub spec_path: PathBuf,
}

/// `den run -d` without the printed id: makes the container and starts
/// its supervisor; returns the id. `den compose` starts services with it.
pub(crate) fn run_detached(ctx: &Context, args: &RunArgs) -> anyhow::Result<String> {
    let Made { id, dir, spec_path } = create(ctx, args)?;
    start_detached(ctx, args, &id, &dir, &spec_path)?;
    Ok(id)
}

fn start_detached(
    ctx: &Context,
    args: &RunArgs,
    id: &str,
    dir: &Path,
    spec_path: &Path,
) -> anyhow::Result<()> {
    super::supervise::start_detached(ctx, spec_path).inspect_err(|_| {
        if args.rm && dir.exists() {
            super::internal::remove_container(ctx, id).ok();
        }
    })
}

/// Everything `den run` does before the container starts: flags checked,
/// image found (or pulled), record, network, mounts and spec written.
pub(crate) fn create(ctx: &Context, args: &RunArgs) -> anyhow::Result<Made> {
    let flags = run_flags::Validated::from_args(args, ctx)?;
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
    if let Some(n) = &args.name
        && !super::lifecycle::valid_name(n)
    {
        bail!("invalid container name `{n}`: use letters, digits, _ . - (first a letter or digit)");
    }
    let userns = run_flags::userns(args)?;
    let store = ctx.store()?;
    let (image, config, command_in) = match &args.rootfs {
        Some(_) => (
            None,
            ImageConfig::default(),
            [
                args.image.clone().into_iter().collect(),
                args.command.clone(),
            ]
            .concat(),
        ),
        None => {
            let name = args
                .image
                .as_deref()
                .context("no image given: den run [OPTIONS] IMAGE [COMMAND]")?;
            let image = find_or_pull(ctx, &store, name, args)?;
            let config = ImageConfig::read(&store, &image)?;
            (Some(image), config, args.command.clone())
        }
    };
    let process_args = config.command(args.entrypoint.as_deref(), &command_in);
    if process_args.is_empty() {
        bail!(
            "no command specified: the image has no Entrypoint or Cmd; give one after the image name"
        );
    }
    let plan = run_flags::network_plan(args, &flags.network, &config)?;
    let id = new_id();
    let name = args.name.clone().unwrap_or_else(|| generated_name(&id));
    let containers = Containers::open(&ctx.root)?;
    let record = Record {
        id: id.clone(),
        name,
        image_id: image.as_ref().map(|i| i.id.to_string()),
        image: args.image.clone().unwrap_or_default(),
        command: process_args.clone(),
        created: chrono::Utc::now().to_rfc3339(),
        layers: image
            .as_ref()
            .map(|i| i.layers.iter().map(|l| l.diff_id.to_string()).collect())
            .unwrap_or_default(),
        volumes: flags.volumes.clone(),
        ports: plan.ports.iter().map(|p| p.to_string()).collect(),
        labels: run_flags::labels(args)?,
    };
    let dir = containers.create(&record)?;
    // From here on a failure removes the half-made container again.
    let prepared = prepare_container(
        ctx,
        args,
        &id,
        &record,
        &dir,
        plan,
        &flags,
        &store,
        image.as_ref(),
        &config,
        process_args,
        userns,
        restart,
    );
    let spec = match prepared {
        Ok(spec) => spec,
        Err(e) => {
            let _held = containers.detach(&id).ok();
            super::internal::remove_container(ctx, &id).ok();
            crate::networks::Networks::open(&ctx.root)
                .and_then(|n| n.leave_all(&id))
                .ok();
            return Err(e);
        }
    };
    let spec_path = dir.join("spec.json");
    write_atomic(&spec_path, &serde_json::to_vec_pretty(&spec)?)?;
    Ok(Made { id, dir, spec_path })
}

/// The parts of a container made after its record: network membership,
/// /etc files, mounts, and the spec the supervisor runs.
#[allow(clippy::too_many_arguments)]
pub(super) fn prepare_container(
    ctx: &Context,
    args: &RunArgs,
    id: &str,
    record: &Record,
    dir: &Path,
    plan: run_flags::NetworkPlan,
    flags: &run_flags::Validated,
    store: &Store,
    image: Option<&ImageRecord>,
    config: &ImageConfig,
    process_args: Vec<String>,
    userns: run_flags::UsernsChoice,
    restart: Restart,
) -> anyhow::Result<ContainerSpec> {
    let hostname = args
        .hostname
        .clone()
        .unwrap_or_else(|| id[..12].to_string());
    let mut plan = plan;
    if let Network::User(u) = &mut plan.network {
        join_user_network(
            ctx,
            u,
            id,
            &record.name,
            &args.network_alias,
            &mut plan.hosts,
        )?;
    }
    let mut mounts = etc_files(dir, &hostname, &plan)?;
    mounts.extend(flags.mounts.iter().cloned());
    // Parents before children, as Docker sorts them: `-v vol:/etc` must not
    // hide /etc/hosts.
    mounts.sort_by_key(|m| m.target().split('/').filter(|c| !c.is_empty()).count());
    Volumes::open(&ctx.root)?.claim(&mut mounts)?;
    let spec = ContainerSpec {
        id: id.to_string(),
        rootfs: rootfs(store, image, args.rootfs.as_deref(), dir)?,
        read_only: args.read_only,
        mounts,
        hostname,
        process: Process {
            args: process_args,
            env: config.env_with(&flags.env),
            cwd: args
                .workdir
                .clone()
                .or(config.working_dir.clone())
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into()),
            user: args
                .user
                .clone()
                .or(userns.default_user)
                .or(config.user.clone())
                .unwrap_or_default(),
            terminal: args.tty,
            preserve_fds: args.preserve_fds,
        },
        network: plan.network.clone(),
        security: Security {
            capabilities: flags.capabilities.clone(),
            seccomp: flags.seccomp,
            landlock: flags.landlock,
            no_new_privs: flags.no_new_privs,
            privileged: args.privileged,
        },
        userns: userns.mode,
        init: args.init,
        cache_dir: ctx.root.join("cache"),
        state_dir: Some(dir.to_path_buf()),
        restart,
        stop_signal: config.stop_signal.clone(),
        remove_when_done: args.rm.then(|| dir.to_path_buf()),
    };
    Ok(spec)
}

/// The image by name or id; pulled first when missing (or always, with --pull=always).
pub(crate) fn find_or_pull(
    ctx: &Context,
    store: &Store,
    name: &str,
    args: &RunArgs,
) -> anyhow::Result<ImageRecord> {
    let images = store.images()?;
    let found = super::images::resolve(store, &images, name);
    let pull = match (args.pull.as_str(), &found) {
        ("always", _) => true,
        ("missing", Err(_)) => true,
        ("missing" | "never", Ok(_)) => false,
        ("never", Err(_)) => bail!(
            "image {name} is not in the store and --pull=never was given: pull it first with `den pull {name}`"
        ),
        (other, _) => bail!("invalid --pull value `{other}`: use missing, always or never"),
    };
    if !pull {
        return found;
    }
    let reference = ImageRef::parse(name)?;
    let platform = match &args.platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let opts = PullOptions {
        platform,
        tls_verify: args.registry.tls_verify,
    };
    super::pull::pull_image(
        ctx,
        &reference,
        &opts,
        &args.registry,
        &Reporter::new(false),
    )
}

fn rootfs(
    store: &Store,
    image: Option<&ImageRecord>,
    dir_root: Option<&Path>,
    dir: &Path,
) -> anyhow::Result<Rootfs> {
    let merged = dir.join("merged");
    match (image, dir_root) {
        (_, Some(lower)) => {
            let lower = std::path::absolute(lower)?;
            if !lower.is_dir() {
                bail!("--rootfs {}: not a directory", lower.display());
            }
            let scratch = dir.join("scratch");
            fs_err::create_dir_all(&scratch)?;
            Ok(Rootfs::Directory {
                lower,
                merged,
                scratch,
            })
        }
        (Some(img), None) => {
            let mut lowers = Vec::new();
            for l in img.layers.iter().rev() {
                if !store.has_layer(&l.diff_id) {
                    bail!(
                        "layer {} of image {} is missing from the store: pull the image again",
                        l.diff_id,
                        img.id.short()
                    );
                }
                lowers.push(l.diff_id.hex().to_string());
            }
            Ok(Rootfs::Overlay {
                layers_dir: store.root().join("layers"),
                lowers,
                upper: dir.join("upper"),
                work: dir.join("work"),
                merged,
            })
        }
        (None, None) => bail!("no image and no --rootfs"),
    }
}

/// Takes an address on the user network (its infra started if needed), puts
/// every member in this container's /etc/hosts and this container in theirs.
fn join_user_network(
    ctx: &Context,
    u: &mut den_sandbox::container::spec::UserNetwork,
    id: &str,
    name: &str,
    aliases: &[String],
    hosts: &mut Vec<(String, String)>,
) -> anyhow::Result<()> {
    let networks = crate::networks::Networks::open(&ctx.root)?;
    let rec = networks.get(&u.name)?;
    let names: Vec<String> = std::iter::once(name.to_string())
        .chain(aliases.iter().cloned())
        .collect();
    let me = super::network::join(ctx, &rec, id, names.clone())?;
    u.ip = me.ip.clone();
    let containers = Containers::open(&ctx.root)?;
    for (cid, m) in networks.members(&rec.name) {
        if cid == id {
            continue;
        }
        hosts.push((m.names.join(" "), m.ip.clone()));
        // Appending keeps the file's inode, which the running container has bind-mounted.
        let theirs = containers.dir_of(&cid).join("hosts");
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&theirs) {
            use std::io::Write;
            writeln!(f, "{}\t{}", me.ip, names.join(" ")).ok();
        }
    }
    hosts.push((names.join(" "), me.ip));
    Ok(())
}

/// /etc/hosts, /etc/hostname and /etc/resolv.conf, generated per container.
fn etc_files(
    dir: &Path,
    hostname: &str,
    plan: &run_flags::NetworkPlan,
) -> anyhow::Result<Vec<Mount>> {
    let mut hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    );
    for (name, ip) in &plan.hosts {
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    let resolv = match (&plan.network, plan.dns.is_empty()) {
        (_, false) => plan
            .dns
            .iter()
            .map(|d| format!("nameserver {d}\n"))
            .collect(),
        (Network::Host, true) => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        (Network::Private(_) | Network::User(_), true) => {
            format!("nameserver {}\n", den_net::pasta::DEFAULT_DNS_FORWARD)
        }
        (Network::None, true) => String::new(),
    };
    let files: [(&str, String); 3] = [
        ("hosts", hosts),
        ("hostname", format!("{hostname}\n")),
        ("resolv.conf", resolv),
    ];
    let mut mounts = Vec::new();
    for (name, text) in files {
        let path: PathBuf = dir.join(name);
        fs_err::write(&path, text)?;
        mounts.push(Mount::Bind {
            source: path,
            target: format!("/etc/{name}"),
            read_only: false,
        });
    }
    Ok(mounts)
}

/// Docker-style `adjective_name` from the id.
fn generated_name(id: &str) -> String {
    const LEFT: [&str; 16] = [
        "brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry",
        "nifty", "proud", "quiet", "sharp", "tender", "witty",
    ];
    const RIGHT: [&str; 16] = [
        "babbage", "curie", "darwin", "euler", "fermi", "gauss", "hopper", "joule", "kepler",
        "lovelace", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak",
    ];
    let b = u8::from_str_radix(&id[..2], 16).unwrap_or(0) as usize;
    format!("{}_{}_{}", LEFT[b % 16], RIGHT[(b / 16) % 16], &id[2..6])
}
