//! `den compose`: a compose project run by den's own code, in-process.
//!
//! `project` loads and checks the files (through `den_compose`);
//! `service` turns each service into the `den run` flags a user would
//! type, all before anything is made; `up` creates the project's
//! network and volumes and starts the services level by level
//! (`den_compose::plan::levels`), each level's services at once, through
//! `den run`'s own code (`cmd::run::run_detached`); `down` stops and
//! removes them in the reverse order; `show` is `ps`, `logs` and
//! `config`. A project's containers are found by their
//! `com.docker.compose.project` label, as docker compose finds them.

pub mod args;
mod down;
mod ops;
mod project;
mod service;
mod show;
mod up;

use den_sandbox::container::state::Status;

use crate::containers::{Containers, Record};
use crate::context::Context;
use args::{ComposeArgs, ComposeCommand};

pub const PROJECT_LABEL: &str = "com.docker.compose.project";
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
pub const HASH_LABEL: &str = "com.docker.compose.config-hash";
pub const ONEOFF_LABEL: &str = "com.docker.compose.oneoff";

pub fn run(ctx: &Context, args: &ComposeArgs) -> anyhow::Result<i32> {
    // `ls` lists every project: it needs no compose file.
    if let ComposeCommand::Ls { all, quiet, format } = &args.command {
        return ops::ls(ctx, *all, *quiet, format.as_deref());
    }
    let p = project::load(args)?;
    match &args.command {
        ComposeCommand::Config {
            services,
            volumes,
            quiet,
        } => show::config(&p, *services, *volumes, *quiet),
        ComposeCommand::Up(a) => up::up(ctx, &p, a),
        ComposeCommand::Create(a) => up::create(ctx, &p, a),
        ComposeCommand::Down {
            volumes,
            remove_orphans,
            timeout,
        } => down::down(ctx, &p, *volumes, *remove_orphans, *timeout),
        ComposeCommand::Ps {
            all,
            quiet,
            format,
            services,
        } => show::ps(ctx, &p, *all, *quiet, format.as_deref(), services),
        ComposeCommand::Logs {
            follow,
            tail,
            timestamps,
            services,
        } => show::logs(ctx, &p, *follow, tail.as_deref(), *timestamps, services),
        ComposeCommand::Build { services } => ops::build(ctx, &p, services),
        ComposeCommand::Pull { services } => ops::pull(ctx, &p, services),
        ComposeCommand::Exec(a) => ops::exec(ctx, &p, a),
        ComposeCommand::Run(a) => ops::run(ctx, &p, a),
        ComposeCommand::Start { services } => ops::start(ctx, &p, services),
        ComposeCommand::Stop { timeout, services } => ops::stop(ctx, &p, services, *timeout),
        ComposeCommand::Restart { timeout, services } => ops::restart(ctx, &p, services, *timeout),
        ComposeCommand::Kill { signal, services } => ops::kill(ctx, &p, services, signal),
        ComposeCommand::Rm { stop, services, .. } => ops::rm(ctx, &p, services, *stop),
        ComposeCommand::Port {
            index,
            protocol,
            service,
            private_port,
        } => ops::port(ctx, &p, service, *private_port, protocol, *index),
        ComposeCommand::Images { quiet } => ops::images(ctx, &p, *quiet),
        ComposeCommand::Top { services } => ops::top(ctx, &p, services),
        ComposeCommand::Push {
            ignore_push_failures,
            quiet,
            registry,
            services,
        } => ops::push(ctx, &p, services, registry, *quiet, *ignore_push_failures),
        ComposeCommand::Ls { .. } => unreachable!("handled above"),
    }
}

/// The project's containers (by label), oldest first.
fn containers_of(ctx: &Context, project: &str) -> anyhow::Result<Vec<Record>> {
    let mut all: Vec<Record> = Containers::open(&ctx.root)?
        .list()?
        .into_iter()
        .filter(|r| r.labels.get(PROJECT_LABEL).is_some_and(|p| p == project))
        .collect();
    all.sort_by(|a, b| a.created.cmp(&b.created));
    Ok(all)
}

fn service_of(r: &Record) -> &str {
    r.labels.get(SERVICE_LABEL).map_or("", String::as_str)
}

fn running(s: Status) -> bool {
    matches!(s, Status::Running | Status::Restarting)
}

/// docker compose's progress line on standard error: ` Container NAME  Started`.
fn progress(kind: &str, name: &str, what: &str) {
    eprintln!(" {kind} {name}  {what}");
}
