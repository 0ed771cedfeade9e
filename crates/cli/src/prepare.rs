//! Making a container after its record exists, shared by `den run` and
//! `den build`'s RUN steps: user network membership (the network's infra
//! started on first use), the generated /etc files, mounts and volumes,
//! the root filesystem, and the spec the supervisor runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use den_image::store::{ImageRecord, Store};
use den_sandbox::container::bridge::Infra;
use den_sandbox::container::spec::{ContainerSpec, Mount, Network, Process, Rootfs, Security};

use crate::args::RunArgs;
use crate::containers::Record;
use crate::context::Context;
use crate::networks::{NetworkRecord, Networks};
use crate::run_flags::{self, ImageConfig};
use crate::volumes::Volumes;

/// What a container is made from, all decided before [`prepare_container`]:
/// the flags (as given and validated), the network plan, the image and its
/// config, the command, and the record and directory already made.
pub struct NewContainer<'a> {
    pub args: &'a RunArgs,
    pub flags: &'a run_flags::Validated,
    pub plan: run_flags::NetworkPlan,
    pub store: &'a Store,
    pub image: Option<&'a ImageRecord>,
    pub config: &'a ImageConfig,
    pub process_args: Vec<String>,
    pub record: &'a Record,
    pub dir: &'a Path,
}

/// The parts of a container made after its record: network membership,
/// /etc files, mounts, and the spec the supervisor runs.
pub fn prepare_container(ctx: &Context, new: NewContainer<'_>) -> anyhow::Result<ContainerSpec> {
    let NewContainer {
        args,
        flags,
        plan,
        store,
        image,
        config,
        process_args,
        record,
        dir,
    } = new;
    let id = record.id.as_str();
    let hostname = match (&args.hostname, &plan.network) {
        (Some(h), _) => h.clone(),
        // Docker's rule: the name of the container whose network it joins.
        (None, Network::Container(j)) => joined_spec(&j.dir)?.hostname,
        (None, _) => id[..12].to_string(),
    };
    let mut plan = plan;
    if let Network::User(nets) = &mut plan.network {
        join_user_networks(ctx, nets, id, &record.name, &args.network_alias)?;
    }
    let mut mounts = etc_files(ctx, dir, &hostname, &plan)?;
    mounts.extend(flags.mounts.iter().cloned());
    // Parents before children, as Docker sorts them: `-v vol:/etc` must not
    // hide /etc/hosts.
    mounts.sort_by_key(|m| m.target().split('/').filter(|c| !c.is_empty()).count());
    Volumes::open(&ctx.root)?.claim(&mut mounts)?;
    let spec = ContainerSpec {
        id: id.to_string(),
        rootfs: rootfs(
            store,
            image,
            args.rootfs.as_deref(),
            dir,
            den_sandbox::container::volatile_root(args.rm, den_sandbox::container::RootMount::Run),
            &ctx.root.join("cache"),
        )?,
        read_only: args.read_only,
        mounts,
        hostname,
        process: Process {
            args: process_args,
            env: config.env_with(&flags.env),
            cwd: args
                .process
                .workdir
                .clone()
                .or(config.working_dir.clone())
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into()),
            user: args
                .process
                .user
                .clone()
                .or(flags.userns.default_user.clone())
                .or(config.user.clone())
                .unwrap_or_default(),
            terminal: args.terminal.tty,
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
        userns: flags.userns.mode,
        init: args.init,
        cache_dir: ctx.root.join("cache"),
        state_dir: Some(dir.to_path_buf()),
        restart: flags.restart,
        stop_signal: args.stop_signal.clone().or(config.stop_signal.clone()),
        stop_timeout: args.stop_timeout,
        health: crate::health::check(&args.health, config.healthcheck.as_ref())?,
        remove_when_done: args.rm.then(|| dir.to_path_buf()),
        log: flags.log.clone(),
        ulimits: flags.resources.ulimits.clone(),
        cgroup: flags.resources.plan(id),
    };
    Ok(spec)
}

/// `volatile`: the container is removed when it exits (`--rm`), so its
/// overlay need not sync at unmount.
fn rootfs(
    store: &Store,
    image: Option<&ImageRecord>,
    dir_root: Option<&Path>,
    dir: &Path,
    volatile: bool,
    cache: &Path,
) -> anyhow::Result<Rootfs> {
    let merged = dir.join("merged");
    match (image, dir_root) {
        (_, Some(lower)) => {
            let lower = std::path::absolute(lower)?;
            if !lower.is_dir() {
                bail!("--rootfs {}: not a directory", lower.display());
            }
            Ok(Rootfs::Directory { lower, merged })
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
            let base = etc_base(cache)?;
            lowers.push(base.to_string_lossy().into_owned());
            Ok(Rootfs::Overlay {
                layers_dir: store.root().join("layers"),
                lowers,
                upper: dir.join("upper"),
                work: dir.join("work"),
                merged,
                volatile,
            })
        }
        (None, None) => bail!("no image and no --rootfs"),
    }
}

/// Takes an address on each user network (its infra started if needed),
/// with the container's name, `--network-alias` and that network's own
/// aliases as its names there; then checks the networks' infras share one
/// user namespace (an older den's may not).
fn join_user_networks(
    ctx: &Context,
    nets: &mut [den_sandbox::container::spec::UserNetwork],
    id: &str,
    name: &str,
    aliases: &[String],
) -> anyhow::Result<()> {
    let networks = Networks::open(&ctx.root)?;
    for u in nets.iter_mut() {
        let rec = networks.get(&u.name)?;
        let mut names = vec![name.to_string()];
        for a in aliases.iter().chain(&u.aliases) {
            if !names.contains(a) {
                names.push(a.clone());
            }
        }
        let me = join(ctx, &rec, id, names.clone())?;
        u.ip = me.ip;
        u.aliases = names;
    }
    den_sandbox::container::bridge::shared_infras(nets)?;
    Ok(())
}

/// The files den generates in every container's /etc.
const ETC_FILES: [&str; 3] = ["hosts", "hostname", "resolv.conf"];

/// The lowest layer of every image container's root, made once per store
/// in `cache/etc-base`: `etc/hosts`, `etc/hostname` and `etc/resolv.conf`,
/// empty. Images seldom ship them (Docker makes them at run time); without
/// this layer every start would create them as mount points in the
/// container's upper layer, copying `/etc` up: five inodes per run. Returns
/// the layer's directory (its `diff` is the lower).
fn etc_base(cache: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let base = cache.join("etc-base");
    if base.join("diff/etc").join(ETC_FILES[2]).exists() {
        return Ok(base);
    }
    // Beside the seccomp cache, which may have made `cache` already.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(crate::private::DIR_MODE)
        .create(cache)
        .with_context(|| format!("cannot create {}", cache.display()))?;
    // Made aside and renamed into place: whole or absent, also when two
    // dens make it at once.
    let tmp = tempfile::Builder::new()
        .prefix(".etc-base-")
        .tempdir_in(cache)
        .with_context(|| format!("cannot make a directory in {}", cache.display()))?;
    let etc = tmp.path().join("diff/etc");
    fs_err::create_dir_all(&etc)?;
    for d in [tmp.path().join("diff"), etc.clone()] {
        // Entered by the container's users when the image has no /etc.
        fs_err::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
    }
    for name in ETC_FILES {
        fs_err::write(etc.join(name), "")?;
    }
    match fs_err::rename(tmp.path(), &base) {
        Ok(()) => drop(tmp.keep()),
        // Another den made it first; `tmp` is deleted when dropped.
        Err(_) if base.join("diff/etc").join(ETC_FILES[2]).exists() => {}
        Err(e) => return Err(e.into()),
    }
    Ok(base)
}

/// The spec of the container whose network namespace a new one joins: its
/// hostname and its /etc files (files in its directory on a user network,
/// `Mount::File`s otherwise) are the joiner's too.
fn joined_spec(dir: &Path) -> anyhow::Result<ContainerSpec> {
    let path = dir.join("spec.json");
    ContainerSpec::read(&path).with_context(|| format!("cannot read {}", path.display()))
}

/// /etc/hosts, /etc/hostname and /etc/resolv.conf, generated per container:
/// on a user network, files in its directory (`hosts` written from
/// `hosts.base` and the networks' members, see
/// `den_sandbox::container::members`); otherwise only in the spec, written
/// on a tmpfs of the container's mount namespace at each start
/// (`Mount::File`).
fn etc_files(
    ctx: &Context,
    dir: &Path,
    hostname: &str,
    plan: &run_flags::NetworkPlan,
) -> anyhow::Result<Vec<Mount>> {
    // On another container's network: its files, shared (its /etc/hosts
    // grows as containers join its user network).
    if let Network::Container(j) = &plan.network {
        let etc: Vec<String> = ETC_FILES.iter().map(|n| format!("/etc/{n}")).collect();
        return Ok(joined_spec(&j.dir)?
            .mounts
            .into_iter()
            .filter(|m| etc.iter().any(|t| t == m.target()))
            .collect());
    }
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
        (Network::Host, true) => fs_err::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        (Network::Private(_) | Network::User(_), true) => {
            format!("nameserver {}\n", den_net::pasta::DEFAULT_DNS_FORWARD)
        }
        (Network::None | Network::Container(_), true) => String::new(),
    };
    let files: [(&str, String); 3] = [
        (ETC_FILES[0], hosts),
        (ETC_FILES[1], format!("{hostname}\n")),
        (ETC_FILES[2], resolv),
    ];
    let mut mounts = Vec::new();
    for (name, text) in files {
        if !matches!(plan.network, Network::User(_)) {
            mounts.push(Mount::File {
                target: format!("/etc/{name}"),
                content: text,
            });
            continue;
        }
        let path: PathBuf = dir.join(name);
        if name == ETC_FILES[0] {
            let base = dir.join(den_sandbox::container::members::HOSTS_BASE);
            crate::private::write_atomic(&ctx.root, &base, text.as_bytes())?;
        } else {
            fs_err::write(&path, text)?;
        }
        mounts.push(Mount::Bind {
            source: path,
            target: format!("/etc/{name}"),
            read_only: false,
        });
    }
    if let Network::User(nets) = &plan.network {
        let id = dir.file_name().unwrap_or_default().to_string_lossy();
        Networks::open(&ctx.root)?.refresh_hosts(&id, nets)?;
    }
    Ok(mounts)
}

/// Starts the network's infra process unless it runs, and gives container
/// `id` its address, both under `infra.lock` (the infra's last check before
/// it exits takes it too).
pub fn join(
    ctx: &Context,
    net: &NetworkRecord,
    id: &str,
    names: Vec<String>,
) -> anyhow::Result<crate::networks::Member> {
    let networks = Networks::open(&ctx.root)?;
    let dir = networks.dir_of(&net.name);
    let _lock = crate::containers::lock_file(&dir.join("infra.lock"))?;
    ensure_infra(ctx, net, &dir)?;
    networks.join(net, id, names)
}

/// Brings up the infra of each of `network`'s user networks for a
/// supervisor about to start (again: a stopped container's infras may have
/// exited since), and returns their `infra.lock`s, which the supervisor
/// holds until its state names it: an infra's last check before it exits
/// takes the lock too, and then sees the container live. Taken in name
/// order, so two starts never wait on each other's.
pub fn infras_up(ctx: &Context, network: &Network) -> anyhow::Result<Vec<std::fs::File>> {
    let Network::User(nets) = network else {
        return Ok(Vec::new());
    };
    let networks = Networks::open(&ctx.root)?;
    let mut names: Vec<&str> = nets.iter().map(|u| u.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut locks = Vec::new();
    for name in names {
        let rec = networks.get(name)?;
        let dir = networks.dir_of(&rec.name);
        locks.push(crate::containers::lock_file(&dir.join("infra.lock"))?);
        ensure_infra(ctx, &rec, &dir)?;
    }
    Ok(locks)
}

fn ensure_infra(ctx: &Context, net: &NetworkRecord, dir: &std::path::Path) -> anyhow::Result<()> {
    if Infra::read(dir).is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find den's own binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(&ctx.root)
        .args(["__internal", "network-infra", &net.name]);
    crate::launch::background(cmd, "ready", "the network's infra process")
        .with_context(|| format!("network {} could not start", net.name))
}
