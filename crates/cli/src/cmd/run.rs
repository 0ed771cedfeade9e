//! `den run`: image → container spec → a supervisor child that sets the
//! container up in its namespaces → the container's exit status.

use std::io::IsTerminal;

use anyhow::{Context as _, bail};
use den_image::manifest::Platform;
use den_image::pull::PullOptions;
use den_image::reference::ImageRef;
use den_image::store::{ImageRecord, Store};

use crate::args::RunArgs;
use crate::containers::{Containers, Record, new_id};
use crate::context::Context;
use crate::prepare::{NewContainer, prepare_container};
use crate::private::write_atomic;
use crate::progress::Reporter;
use crate::run_flags::{self, ImageConfig};

pub fn run(ctx: &Context, args: &RunArgs) -> anyhow::Result<i32> {
    // Docker's check, before anything is made: -it needs a terminal to read.
    if args.terminal.interactive
        && args.terminal.tty
        && !args.detach
        && !std::io::stdin().is_terminal()
    {
        eprintln!("den: {}", crate::terminal::NOT_A_TTY);
        return Ok(1);
    }
    let Made { id, dir, spec_path } = create(ctx, args)?;
    if args.detach {
        start_detached(ctx, args, &id, &dir, &spec_path)?;
        println!("{id}");
        return Ok(0);
    }
    let code = if args.terminal.tty {
        crate::launch::start_terminal(
            ctx,
            &spec_path,
            args.terminal.interactive,
            args.detach_keys.as_deref(),
            args.rm,
        )
    } else {
        crate::launch::start(ctx, &spec_path, args.terminal.interactive, false)
    };
    // The supervisor removes the directory itself; this catches the case
    // where it died before it could.
    if args.rm && dir.exists() {
        crate::in_userns::remove_container(ctx, &id)?;
    }
    den_sandbox::trace::phase("exit");
    code
}

/// `den create`: the container made as `den run` makes it (the same
/// code), left `Created` until `den start`; prints its id.
pub fn create_only(ctx: &Context, args: &RunArgs) -> anyhow::Result<i32> {
    if args.detach {
        bail!("den create takes no -d/--detach: start the container later with `den start`");
    }
    let Made { id, .. } = create(ctx, args)?;
    println!("{id}");
    Ok(0)
}

/// A container made and ready to start.
pub(crate) struct Made {
    pub id: String,
    pub dir: std::path::PathBuf,
    pub spec_path: std::path::PathBuf,
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
    dir: &std::path::Path,
    spec_path: &std::path::Path,
) -> anyhow::Result<()> {
    crate::launch::start_detached(ctx, spec_path).inspect_err(|_| {
        if args.rm && dir.exists() {
            crate::in_userns::remove_container(ctx, id).ok();
        }
    })
}

/// Everything `den run` does before the container starts: flags checked,
/// image found (or pulled), record, network, mounts and spec written.
pub(crate) fn create(ctx: &Context, args: &RunArgs) -> anyhow::Result<Made> {
    let flags = run_flags::Validated::from_args(args, ctx)?;
    if let Some(s) = &args.stop_signal
        && den_sandbox::container::control::parse_signal(s).is_none()
    {
        bail!("invalid --stop-signal `{s}`: use a name like TERM or INT, or a number from 1 to 64");
    }
    // The health flags are checked before anything is made.
    crate::health::check(&args.health, None)?;
    let store = ctx.store()?;
    let (image, config, command_in) = match &args.rootfs {
        Some(_) => (None, ImageConfig::default(), args.image_and_command.clone()),
        None => {
            let name = args
                .image()
                .context("no image given: den run [OPTIONS] IMAGE [COMMAND]")?;
            let image = find_or_pull(ctx, &store, name, args)?;
            let config = ImageConfig::read(&store, &image)?;
            (Some(image), config, args.command().to_vec())
        }
    };
    den_sandbox::trace::phase("store");
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
        image: args.image().unwrap_or_default().to_string(),
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
        NewContainer {
            args,
            flags: &flags,
            plan,
            store: &store,
            image: image.as_ref(),
            config: &config,
            process_args,
            record: &record,
            dir: &dir,
        },
    );
    let spec = match prepared {
        Ok(spec) => spec,
        Err(e) => {
            let _held = containers.detach(&id).ok();
            crate::in_userns::remove_container(ctx, &id).ok();
            crate::networks::Networks::open(&ctx.root)
                .and_then(|n| n.leave_all(&id))
                .ok();
            return Err(e);
        }
    };
    let spec_path = dir.join("spec.json");
    write_atomic(&ctx.root, &spec_path, &serde_json::to_vec_pretty(&spec)?)?;
    den_sandbox::trace::phase("spec");
    Ok(Made { id, dir, spec_path })
}

/// The image by name or id; pulled first when missing (or always, with --pull=always).
pub(crate) fn find_or_pull(
    ctx: &Context,
    store: &Store,
    name: &str,
    args: &RunArgs,
) -> anyhow::Result<ImageRecord> {
    let images = store.images()?;
    let found = crate::local_images::resolve(store, &images, name);
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
        if let Ok(i) = &found {
            crate::log::debug(format_args!("image {name} is {} in the store", i.id));
        }
        return found;
    }
    let reference = ImageRef::parse(name)?;
    crate::log::info(format_args!(
        "pulling {reference} ({})",
        if found.is_ok() {
            "--pull=always"
        } else {
            "not in the store"
        }
    ));
    let platform = match &args.platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let opts = PullOptions {
        platform,
        tls_verify: args.registry.tls_verify,
    };
    crate::registry::pull_image(
        ctx,
        &reference,
        &opts,
        &args.registry,
        &Reporter::new(false),
    )
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
