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
mod health;
mod in_userns;
mod launch;
mod local_images;
mod names;
mod networks;
mod output;
mod prepare;
mod private;
mod progress;
mod registry;
mod run_flags;
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
        C::Rm(a) => cmd::lifecycle::rm(ctx, &a.containers, a.force),
        C::Inspect { names } => cmd::ps::inspect(ctx, &names),
    }
}

/// `den image …`: the same commands as `den images`, `pull`, `rmi` ….
fn image_command(ctx: &context::Context, sub: args::ImageCommand) -> anyhow::Result<i32> {
    use args::ImageCommand as I;
    match sub {
        I::Ls(a) => cmd::images::list(ctx, &a),
        I::Inspect { images } => cmd::images::inspect(ctx, &images),
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
    }
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
    confirm::prune("system", &warning, force)?;
    cmd::lifecycle::prune(ctx)?;
    cmd::network::prune(&networks::Networks::open(&ctx.root)?, true)?;
    if volumes {
        cmd::volumes::prune(ctx, &volumes::Volumes::open(&ctx.root)?, false)?;
    }
    cmd::images::prune(ctx, all)
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
    let ctx = context::Context::new(cli.root.clone())?;
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
    match cli.command {
        Command::Run(a) => cmd::run::run(&ctx, &a),
        Command::Ps(a) => cmd::ps::ps(&ctx, &ps_args(&a)),
        Command::Logs(a) => cmd::ps::logs(
            &ctx,
            &a.container,
            &cmd::ps::LogsArgs {
                follow: a.follow,
                tail: a.tail.as_deref(),
                since: a.since.as_deref(),
                timestamps: a.timestamps,
            },
        ),
        Command::Stop(a) => cmd::lifecycle::stop(&ctx, &a.containers, a.time),
        Command::Kill { signal, containers } => cmd::lifecycle::kill(&ctx, &containers, &signal),
        Command::Start {
            attach,
            interactive,
            detach_keys,
            containers,
        } => cmd::lifecycle::start(
            &ctx,
            &containers,
            attach,
            interactive,
            detach_keys.as_deref(),
        ),
        Command::Attach {
            detach_keys,
            container,
        } => cmd::attach::attach(&ctx, &container, detach_keys.as_deref()),
        Command::Restart(a) => cmd::lifecycle::restart(&ctx, &a.containers, a.time),
        Command::Rm(a) => cmd::lifecycle::rm(&ctx, &a.containers, a.force),
        Command::Wait { containers } => cmd::ps::wait(&ctx, &containers),
        Command::Inspect { names } => cmd::ps::inspect_any(&ctx, &names),
        Command::Rename {
            container,
            new_name,
        } => cmd::lifecycle::rename(&ctx, &container, &new_name),
        Command::Exec(a) => cmd::exec::run(&ctx, &a),
        Command::Port { container, port } => cmd::ps::port(&ctx, &container, port.as_deref()),
        Command::Top { container } => cmd::ps::top(&ctx, &container),
        Command::Network(sub) => cmd::network::run(&ctx, sub),
        Command::Cp {
            source,
            destination,
        } => cmd::cp::run(&ctx, &source, &destination),
        Command::Container(sub) => container_command(&ctx, sub),
        Command::Pull(a) => cmd::pull::run(&ctx, &a),
        Command::Images(a) => cmd::images::list(&ctx, &a),
        Command::Image(sub) => image_command(&ctx, sub),
        Command::Tag { source, target } => cmd::images::tag(&ctx, &source, &target),
        Command::Rmi(a) => cmd::images::rmi(&ctx, &a),
        Command::Volume(sub) => cmd::volumes::run(&ctx, sub),
        Command::Save(a) => cmd::archive::save(&ctx, &a),
        Command::Load(a) => cmd::archive::load(&ctx, &a),
        Command::Push(a) => cmd::push::run(&ctx, &a),
        Command::Login(a) => cmd::login::login(&ctx, &a),
        Command::Logout { registry } => cmd::login::logout(&ctx, &registry),
        Command::System(args::SystemCommand::Check { format }) => {
            cmd::check::run(format.as_deref() == Some("json"))
        }
        Command::System(args::SystemCommand::Df) => cmd::images::df(&ctx),
        Command::System(args::SystemCommand::Prune {
            all,
            volumes,
            force,
        }) => system_prune(&ctx, all, volumes, force),
        Command::Unshare { command } => cmd::unshare::run(&command),
        Command::Build(a) => cmd::build::run(&ctx, &a),
        Command::Builder(args::BuilderCommand::Prune { all, force }) => {
            cmd::builder::prune(&ctx, all, force)
        }
        Command::Healthcheck(args::HealthcheckCommand::Run { container }) => {
            cmd::health::run_now(&ctx, &container)
        }
        Command::History(a) => cmd::history::run(&ctx, &a),
        Command::Compose(a) => compose::run(&ctx, &a),
        // A build step's work, dispatched here so that cmd/internal.rs
        // does not import cmd/build (command modules never import each other).
        Command::Internal(args::InternalCommand::CopyFrom {
            container,
            request,
            out,
        }) => {
            let mapping = den_sandbox::idmap::IdMapping::detect();
            cmd::build::copy_from(&ctx, &mapping, &container, &request, &out).map(|()| 0)
        }
        Command::Internal(sub) => cmd::internal::run(&ctx, sub),
    }
}
