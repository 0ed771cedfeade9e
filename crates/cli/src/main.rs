//! The `den` binary: flags are parsed with clap into the structs of [`args`],
//! each command module turns them into library calls.
//!
//! Exit codes follow Docker: 125 for den's own errors, otherwise the code a
//! command defines (the container's, for `run`).

mod args;
mod build_cache;
mod cmd;
mod compose;
mod confirm;
mod containers;
mod context;
mod cp_tar;
mod filters;
mod health;
mod in_userns;
mod keeper;
mod launch;
mod local_images;
mod log;
mod log_driver;
mod names;
mod networks;
mod output;
mod prepare;
mod private;
mod progress;
mod registry;
mod resources;
mod run_flags;
mod template;
mod terminal;
mod volumes;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

fn main() -> ExitCode {
    den_sandbox::trace::init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            e.print().ok();
            return ExitCode::from(code);
        }
    };
    log::init(cli.log_level.as_deref());
    // The supervisor's first mark ends the CLI's spawn of it (exec included).
    den_sandbox::trace::phase(match &cli.command {
        Command::Internal(args::InternalCommand::Container { .. }) => "spawn",
        _ => "parse",
    });
    match run(cli) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(125)),
        Err(e) => {
            eprintln!("den: {}", chain(&e));
            let code = e
                .chain()
                .find_map(|c| c.downcast_ref::<launch::ExitWith>())
                .map_or(125, |x| x.0);
            ExitCode::from(u8::try_from(code).unwrap_or(125))
        }
    }
}

fn ps_args(a: &args::PsArgs) -> cmd::ps::PsArgs<'_> {
    cmd::ps::PsArgs {
        all: a.all,
        quiet: a.quiet,
        filters: &a.filter,
        format: a.format.as_deref(),
        no_trunc: a.no_trunc,
    }
}

/// `den container …`.
fn container_command(ctx: &context::Context, sub: args::ContainerCommand) -> anyhow::Result<i32> {
    use args::ContainerCommand as C;
    match sub {
        C::Ls(a) => cmd::ps::ps(ctx, &ps_args(&a)),
        C::Prune { force } => {
            confirm::prune(
                "container",
                "WARNING! This will remove all stopped containers.",
                force,
            )?;
            cmd::lifecycle::prune(ctx)
        }
        C::Rm(a) => rm(ctx, a),
        C::Inspect { names, format } => cmd::ps::inspect(ctx, &names, format.as_deref()),
        C::Exists { container } => cmd::lifecycle::exists(ctx, &container),
        C::Commit(a) => cmd::commit::run(ctx, &a),
    }
}

/// `den image …`: the same commands as `den images`, `pull`, `rmi` ….
fn image_command(ctx: &context::Context, sub: args::ImageCommand) -> anyhow::Result<i32> {
    use args::ImageCommand as I;
    match sub {
        I::Ls(a) => cmd::images::list(ctx, &a),
        I::Inspect { images, format } => cmd::images::inspect(ctx, &images, format.as_deref()),
        I::Prune { all, force } => {
            let warning = if all {
                "WARNING! This will remove all images without at least one container associated to them."
            } else {
                "WARNING! This will remove all dangling images."
            };
            confirm::prune("image", warning, force)?;
            cmd::images::prune(ctx, all)
        }
        I::Rm(a) => cmd::images::rmi(ctx, &a),
        I::Pull(a) => cmd::pull::run(ctx, &a),
        I::Push(a) => cmd::push::run(ctx, &a),
        I::Tag { source, target } => cmd::images::tag(ctx, &source, &target),
        I::Save(a) => cmd::archive::save(ctx, &a),
        I::Load(a) => cmd::archive::load(ctx, &a),
        I::Exists { image } => cmd::images::exists(ctx, &image),
    }
}

/// The containers a command names, or with `--all` the ones
/// [`cmd::lifecycle::select_all`] picks.
fn targets(
    ctx: &context::Context,
    all: bool,
    which: cmd::lifecycle::Selection,
    names: Vec<String>,
) -> anyhow::Result<Vec<String>> {
    if all {
        cmd::lifecycle::select_all(ctx, which)
    } else {
        Ok(names)
    }
}

/// `den rm` and `den container rm`.
fn rm(ctx: &context::Context, a: args::RmArgs) -> anyhow::Result<i32> {
    use cmd::lifecycle::Selection;
    let names = targets(ctx, a.all, Selection::Every, a.containers)?;
    let opts = cmd::lifecycle::RmOptions {
        force: a.force,
        time: a.time,
        volumes: a.volumes,
    };
    cmd::lifecycle::rm(ctx, &names, &opts)
}

/// `den system prune`: stopped containers, unused networks, dangling (with
/// `all`: unused) images and, with `volumes`, unused anonymous volumes.
/// Named volumes are never touched here (`den volume prune -a` does that).
fn system_prune(
    ctx: &context::Context,
    all: bool,
    volumes: bool,
    force: bool,
) -> anyhow::Result<i32> {
    let mut warning = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
    );
    if volumes {
        warning.push_str("  - anonymous volumes not used by at least one container\n");
    }
    warning.push_str(if all {
        "  - all images without at least one container associated to them\n"
    } else {
        "  - all dangling images\n"
    });
    warning.push_str("  - unused build cache\n");
    confirm::prune("system", &warning, force)?;
    cmd::lifecycle::prune(ctx)?;
    cmd::network::prune(&networks::Networks::open(&ctx.root)?, true)?;
    let mut bytes = 0;
    if volumes {
        bytes += cmd::volumes::prune_quietly(ctx, &volumes::Volumes::open(&ctx.root)?, false)?;
    }
    bytes += cmd::images::prune_quietly(ctx, all)?;
    bytes += prune_build_cache(ctx, all)?;
    println!("Total reclaimed space: {}", output::human_size(bytes));
    Ok(0)
}

/// `system prune`'s share of `den builder prune`: dangling cache records
/// (`-a`: all of them), then the layers only they kept; the bytes freed.
fn prune_build_cache(ctx: &context::Context, all: bool) -> anyhow::Result<u64> {
    let store = ctx.store()?;
    let before = build_cache::usage(&store)?.size;
    build_cache::prune(&store, all)?;
    build_cache::collect(ctx, &store)?;
    Ok(before.saturating_sub(build_cache::usage(&store)?.size))
}

/// One line: the error and its causes, each said once.
fn chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain().filter(|c| !c.is::<launch::ExitWith>()) {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    if let Some(done) = without_store(&cli.command) {
        return done;
    }
    let ctx = open_store(&cli)?;
    dispatch(&ctx, cli.command)
}

/// The commands generated from the flag definitions alone: no store, no
/// home needed.
fn without_store(command: &Command) -> Option<anyhow::Result<i32>> {
    match command {
        Command::Completion { shell } => Some(cmd::docs::completion(*shell)),
        Command::Version { format } => Some(cmd::info::version(format.as_deref())),
        Command::Internal(args::InternalCommand::Man { dir }) => Some(cmd::docs::man(dir)),
        _ => None,
    }
}

/// The store's context, its directories made private first unless the
/// command uses no store or is den's own child (its parent checked them).
fn open_store(cli: &Cli) -> anyhow::Result<context::Context> {
    let ctx = context::Context::new(cli.root.clone())?;
    log::debug(format_args!(
        "pid {}, store {}",
        std::process::id(),
        ctx.root.display()
    ));
    let store_free = matches!(
        cli.command,
        Command::System(args::SystemCommand::Check { .. })
            | Command::Unshare { .. }
            | Command::Login(_)
            | Command::Logout { .. }
    );
    if matches!(cli.command, Command::Internal(_)) {
        private::checked_by_parent();
    } else if !store_free {
        ctx.prepare_root()?;
    }
    Ok(ctx)
}

/// Every command to the function that runs it, one line each.
fn dispatch(ctx: &context::Context, command: Command) -> anyhow::Result<i32> {
    use cmd::lifecycle::Selection::{NotRunning, Running};
    match command {
        // Containers: making, entering and changing them.
        Command::Run(a) => cmd::run::run(ctx, &a),
        Command::Create(a) => cmd::run::create_only(ctx, &a),
        Command::Start {
            attach,
            interactive,
            detach_keys,
            all,
            containers,
        } => {
            let names = targets(ctx, all, NotRunning, containers)?;
            cmd::lifecycle::start(ctx, &names, attach, interactive, detach_keys.as_deref())
        }
        Command::Stop(a) => {
            cmd::lifecycle::stop(ctx, &targets(ctx, a.all, Running, a.containers)?, a.time)
        }
        Command::Kill {
            signal,
            all,
            containers,
        } => cmd::lifecycle::kill(ctx, &targets(ctx, all, Running, containers)?, &signal),
        Command::Restart(a) => {
            cmd::lifecycle::restart(ctx, &targets(ctx, a.all, Running, a.containers)?, a.time)
        }
        Command::Attach {
            detach_keys,
            container,
        } => cmd::attach::attach(ctx, &container, detach_keys.as_deref()),
        Command::Exec(a) => cmd::exec::run(ctx, &a),
        Command::Cp {
            source,
            destination,
        } => cmd::cp::run(ctx, &source, &destination),
        Command::Rm(a) => rm(ctx, a),
        Command::Rename {
            container,
            new_name,
        } => cmd::lifecycle::rename(ctx, &container, &new_name),
        Command::Commit(a) => cmd::commit::run(ctx, &a),
        Command::Container(sub) => container_command(ctx, sub),
        // Containers: reading them.
        Command::Ps(a) => cmd::ps::ps(ctx, &ps_args(&a)),
        Command::Logs(a) => logs(ctx, &a),
        Command::Wait { containers } => cmd::ps::wait(ctx, &containers),
        Command::Inspect { names, format } => cmd::ps::inspect_any(ctx, &names, format.as_deref()),
        Command::Port { container, port } => cmd::ps::port(ctx, &container, port.as_deref()),
        Command::Top { container } => cmd::ps::top(ctx, &container),
        Command::Stats {
            containers,
            all,
            no_stream,
            format,
        } => cmd::stats::run(ctx, &containers, all, no_stream, format.as_deref()),
        Command::Healthcheck(args::HealthcheckCommand::Run { container }) => {
            cmd::health::run_now(ctx, &container)
        }
        // Images.
        Command::Pull(a) => cmd::pull::run(ctx, &a),
        Command::Images(a) => cmd::images::list(ctx, &a),
        Command::Image(sub) => image_command(ctx, sub),
        Command::Tag { source, target } => cmd::images::tag(ctx, &source, &target),
        Command::Rmi(a) => cmd::images::rmi(ctx, &a),
        Command::Save(a) => cmd::archive::save(ctx, &a),
        Command::Load(a) => cmd::archive::load(ctx, &a),
        Command::Push(a) => cmd::push::run(ctx, &a),
        Command::Login(a) => cmd::login::login(ctx, &a),
        Command::Logout { registry } => cmd::login::logout(ctx, &registry),
        Command::Build(a) => cmd::build::run(ctx, &a),
        Command::Builder(args::BuilderCommand::Prune { all, force }) => {
            cmd::builder::prune(ctx, all, force)
        }
        Command::History(a) => cmd::history::run(ctx, &a),
        // Networks, volumes, projects, the system.
        Command::Network(sub) => cmd::network::run(ctx, sub),
        Command::Volume(sub) => cmd::volumes::run(ctx, sub),
        Command::Compose(a) => compose::run(ctx, &a),
        Command::System(sub) => system_command(ctx, sub),
        Command::Info { format } => cmd::info::info(ctx, format.as_deref()),
        Command::Unshare { command } => cmd::unshare::run(&command),
        Command::Internal(sub) => internal_command(ctx, sub),
        Command::Completion { .. } | Command::Version { .. } => {
            unreachable!("handled before the store is opened")
        }
    }
}

/// `den logs`.
fn logs(ctx: &context::Context, a: &args::LogsArgs) -> anyhow::Result<i32> {
    let args = cmd::ps::LogsArgs {
        follow: a.follow,
        tail: a.tail.as_deref(),
        since: a.since.as_deref(),
        timestamps: a.timestamps,
    };
    cmd::ps::logs(ctx, &a.container, &args)
}

/// `den system check|df|prune`.
fn system_command(ctx: &context::Context, sub: args::SystemCommand) -> anyhow::Result<i32> {
    match sub {
        args::SystemCommand::Check { format } => cmd::check::run(format.as_deref() == Some("json")),
        args::SystemCommand::Df { format } => cmd::images::df(ctx, format.as_deref()),
        args::SystemCommand::Prune {
            all,
            volumes,
            force,
        } => system_prune(ctx, all, volumes, force),
    }
}

/// `den __internal …`. A build step's work (`copy-from`) is dispatched
/// here so that cmd/internal.rs does not import cmd/build (command modules
/// never import each other).
fn internal_command(ctx: &context::Context, sub: args::InternalCommand) -> anyhow::Result<i32> {
    match sub {
        args::InternalCommand::CopyFrom {
            container,
            request,
            out,
        } => {
            let mapping = den_sandbox::idmap::IdMapping::detect();
            cmd::build::copy_from(ctx, &mapping, &container, &request, &out).map(|()| 0)
        }
        sub => cmd::internal::run(ctx, sub),
    }
}
