//! The smaller `den compose` commands: each finds the project's
//! containers by label and calls the den command's own code for them.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::bail;
use clap::Parser;
use serde_json::json;

use super::args::{ExecArgs, RunArgs};
use super::project::Project;
use super::{PROJECT_LABEL, containers_of, progress, running, service, service_of};
use crate::args::{Cli, Command};
use crate::containers::{Containers, Record};
use crate::context::Context;
use crate::output::table;

/// The project's containers of `services` (all when empty).
fn of_services(ctx: &Context, p: &Project, services: &[String]) -> anyhow::Result<Vec<Record>> {
    p.check_services(services)?;
    Ok(containers_of(ctx, &p.name)?
        .into_iter()
        .filter(|r| services.is_empty() || services.iter().any(|s| s == service_of(r)))
        .collect())
}

/// The services named (all when none), translated.
fn translated(p: &Project, names: &[String]) -> anyhow::Result<Vec<service::Service>> {
    p.check_services(names)?;
    p.services()
        .iter()
        .filter(|(n, _)| names.is_empty() || names.contains(n))
        .map(|(n, s)| service::translate(p, n, s))
        .collect()
}

pub fn build(ctx: &Context, p: &Project, names: &[String]) -> anyhow::Result<i32> {
    for s in translated(p, names)? {
        if let Some(flags) = &s.build {
            super::up::build_image(ctx, &s, flags)?;
        }
    }
    Ok(0)
}

pub fn pull(ctx: &Context, p: &Project, names: &[String]) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    for s in translated(p, names)? {
        if s.build.is_some() {
            continue;
        }
        let Some(c) = s.containers.into_iter().next() else {
            continue;
        };
        let mut args = c.args;
        args.pull = "always".into();
        progress("Image", &s.image, "Pulling");
        crate::cmd::run::find_or_pull(ctx, &store, &s.image, &args)?;
        progress("Image", &s.image, "Pulled");
    }
    Ok(0)
}

/// A service's container `index` (from 1), which must exist.
fn container(ctx: &Context, p: &Project, service: &str, index: u32) -> anyhow::Result<Record> {
    let all = of_services(ctx, p, &[service.to_owned()])?;
    let n = index.to_string();
    all.into_iter()
        .find(|r| {
            r.labels.get(super::ONEOFF_LABEL).is_none_or(|o| o == "False")
                && r.labels.get("com.docker.compose.container-number") == Some(&n)
        })
        .ok_or_else(|| anyhow::anyhow!("service {service} has no container {index}: start it with `den compose up -d {service}`"))
}

pub fn exec(ctx: &Context, p: &Project, a: &ExecArgs) -> anyhow::Result<i32> {
    let r = container(ctx, p, &a.service, a.index)?;
    let tty = !a.no_tty && std::io::stdin().is_terminal();
    let mut argv: Vec<String> = vec!["den".into(), "exec".into()];
    if tty {
        argv.extend(["-i".into(), "-t".into()]);
    }
    argv.extend(a.process.env.iter().map(|e| format!("--env={e}")));
    argv.extend(a.process.workdir.iter().map(|w| format!("--workdir={w}")));
    argv.extend(a.process.user.iter().map(|u| format!("--user={u}")));
    argv.push("--".into());
    argv.push(r.id.clone());
    argv.extend(a.command.iter().cloned());
    let cli = Cli::try_parse_from(&argv)
        .map_err(|e| anyhow::anyhow!("{}", e.to_string().lines().next().unwrap_or("")))?;
    let Command::Exec(e) = cli.command else {
        bail!("not an exec");
    };
    crate::cmd::exec::run(ctx, &e)
}

pub fn run(ctx: &Context, p: &Project, a: &RunArgs) -> anyhow::Result<i32> {
    let svc = translated(p, std::slice::from_ref(&a.service))?.remove(0);
    if !a.no_deps {
        let deps: Vec<String> = p
            .services()
            .iter()
            .find(|(n, _)| *n == a.service)
            .map(|(n, s)| den_compose::check::depends_on(&p.file, n, s).unwrap_or_default())
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.service)
            .collect();
        if !deps.is_empty() {
            let up = super::args::UpArgs {
                detach: true,
                force_recreate: false,
                no_recreate: true,
                remove_orphans: false,
                timeout: None,
                build: false,
                no_build: false,
                wait: false,
                wait_timeout: 120,
                abort_on_container_exit: false,
                scale: Vec::new(),
                services: deps,
            };
            super::up::up(ctx, p, &up)?;
        }
    }
    super::up::images(ctx, std::slice::from_ref(&svc), false, false)?;
    let Some(c) = svc.containers.into_iter().next() else {
        bail!("service {} is scaled to 0", a.service);
    };
    let mut args = c.args;
    let suffix = &crate::containers::new_id()[..12];
    args.name = Some(
        a.name
            .clone()
            .unwrap_or_else(|| format!("{}-{}-run-{suffix}", p.name, a.service)),
    );
    args.labels
        .retain(|l| !l.starts_with("com.docker.compose.oneoff="));
    args.labels.push(format!("{}=True", super::ONEOFF_LABEL));
    // One-off containers get no service alias: the service's own
    // containers hold it on the network.
    args.network_alias.clear();
    for n in &mut args.network {
        if let Some(rest) = n.strip_prefix("name=") {
            *n = rest.split(',').next().unwrap_or_default().to_string();
        }
    }
    args.detach = a.detach;
    args.rm = a.rm;
    args.restart = "no".into();
    let tty = !a.no_tty && std::io::stdin().is_terminal() && !a.detach;
    args.terminal.tty = tty;
    args.terminal.interactive = tty;
    if !a.service_ports {
        args.publish.clear();
    }
    args.process.env.extend(a.process.env.iter().cloned());
    if a.process.workdir.is_some() {
        args.process.workdir = a.process.workdir.clone();
    }
    if a.process.user.is_some() {
        args.process.user = a.process.user.clone();
    }
    if !a.command.is_empty() {
        args.set_command(&a.command);
    }
    crate::cmd::run::run(ctx, &args)
}

pub fn start(ctx: &Context, p: &Project, names: &[String]) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    for level in den_compose::plan::levels(&p.file, &p.services()) {
        for r in of_services(ctx, p, names)?
            .iter()
            .filter(|r| level.iter().any(|l| l == service_of(r)))
        {
            if running(containers.state(&r.id).status) {
                continue;
            }
            progress("Container", &r.name, "Starting");
            crate::launch::start_detached(ctx, &containers.dir_of(&r.id).join("spec.json"))?;
            progress("Container", &r.name, "Started");
        }
    }
    Ok(0)
}

pub fn stop(
    ctx: &Context,
    p: &Project,
    names: &[String],
    timeout: Option<u64>,
) -> anyhow::Result<i32> {
    let records = of_services(ctx, p, names)?;
    for level in den_compose::plan::levels(&p.file, &p.services())
        .into_iter()
        .rev()
    {
        let these: Vec<Record> = records
            .iter()
            .filter(|r| level.iter().any(|l| l == service_of(r)))
            .cloned()
            .collect();
        these
            .iter()
            .for_each(|r| progress("Container", &r.name, "Stopping"));
        crate::cmd::lifecycle::stop_all(ctx, &these, Duration::from_secs(timeout.unwrap_or(10)))?;
        these
            .iter()
            .for_each(|r| progress("Container", &r.name, "Stopped"));
    }
    Ok(0)
}

pub fn restart(
    ctx: &Context,
    p: &Project,
    names: &[String],
    timeout: Option<u64>,
) -> anyhow::Result<i32> {
    stop(ctx, p, names, timeout)?;
    start(ctx, p, names)
}

pub fn kill(ctx: &Context, p: &Project, names: &[String], signal: &str) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let live: Vec<String> = of_services(ctx, p, names)?
        .into_iter()
        .filter(|r| running(containers.state(&r.id).status))
        .map(|r| r.name)
        .collect();
    if live.is_empty() {
        return Ok(0);
    }
    crate::cmd::lifecycle::kill(ctx, &live, signal)
}

pub fn rm(ctx: &Context, p: &Project, names: &[String], stop_first: bool) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let records = of_services(ctx, p, names)?;
    if stop_first {
        crate::cmd::lifecycle::stop_all(ctx, &records, Duration::from_secs(10))?;
    }
    for r in records
        .iter()
        .filter(|r| !running(containers.state(&r.id).status))
    {
        crate::cmd::lifecycle::remove_one(ctx, r, false)?;
        progress("Container", &r.name, "Removed");
    }
    Ok(0)
}

pub fn port(
    ctx: &Context,
    p: &Project,
    service: &str,
    private: u16,
    proto: &str,
    index: u32,
) -> anyhow::Result<i32> {
    let r = container(ctx, p, service, index)?;
    crate::cmd::ps::port(ctx, &r.id, Some(&format!("{private}/{proto}")))
}

pub fn images(ctx: &Context, p: &Project, quiet: bool) -> anyhow::Result<i32> {
    let rows: Vec<Vec<String>> = containers_of(ctx, &p.name)?
        .iter()
        .map(|r| {
            let id = r
                .image_id
                .as_deref()
                .unwrap_or("")
                .trim_start_matches("sha256:");
            vec![
                r.name.clone(),
                r.image.clone(),
                id[..12.min(id.len())].to_owned(),
            ]
        })
        .collect();
    if quiet {
        rows.iter().for_each(|r| println!("{}", r[2]));
        return Ok(0);
    }
    print!("{}", table(&["CONTAINER", "REPOSITORY", "IMAGE ID"], &rows));
    Ok(0)
}

/// `den compose ls`: projects from the labels of every container.
pub fn ls(ctx: &Context, all: bool, quiet: bool, format: Option<&str>) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let mut projects: BTreeMap<String, (usize, usize, String)> = BTreeMap::new();
    for r in containers.list()? {
        let Some(name) = r.labels.get(PROJECT_LABEL) else {
            continue;
        };
        let e = projects.entry(name.clone()).or_default();
        e.0 += 1;
        e.1 += usize::from(running(containers.state(&r.id).status));
        e.2 = r
            .labels
            .get("com.docker.compose.project.config_files")
            .cloned()
            .unwrap_or_default();
    }
    projects.retain(|_, (_, up, _)| all || *up > 0);
    let status = |total: usize, up: usize| match (up, total - up) {
        (0, n) => format!("exited({n})"),
        (u, 0) => format!("running({u})"),
        (u, n) => format!("running({u}), exited({n})"),
    };
    match (quiet, format) {
        (true, _) => projects.keys().for_each(|n| println!("{n}")),
        (false, Some("json")) => {
            let v: Vec<_> = projects
                .iter()
                .map(
                    |(n, (t, u, f))| json!({"Name": n, "Status": status(*t, *u), "ConfigFiles": f}),
                )
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        (false, None | Some("table")) => {
            let rows: Vec<Vec<String>> = projects
                .iter()
                .map(|(n, (t, u, f))| vec![n.clone(), status(*t, *u), f.clone()])
                .collect();
            print!("{}", table(&["NAME", "STATUS", "CONFIG FILES"], &rows));
        }
        (false, Some(other)) => bail!("unknown --format `{other}`: use table or json"),
    }
    Ok(0)
}

/// `den compose top`: `den top` of each running container, under its name.
pub fn top(ctx: &Context, p: &Project, names: &[String]) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let live: Vec<Record> = of_services(ctx, p, names)?
        .into_iter()
        .filter(|r| running(containers.state(&r.id).status))
        .collect();
    for (i, r) in live.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("{}", r.name);
        match crate::cmd::ps::top(ctx, &r.id)? {
            0 => {}
            code => bail!(
                "cannot list the processes of container {}: den top exited with {code}",
                r.name
            ),
        }
    }
    Ok(0)
}

/// `den compose push`: each service that builds its image and names it
/// (`build:` and `image:`), through `den push`'s code; docker compose
/// skips the others the same way.
pub fn push(
    ctx: &Context,
    p: &Project,
    names: &[String],
    registry: &crate::args::RegistryFlags,
    quiet: bool,
    ignore_failures: bool,
) -> anyhow::Result<i32> {
    let named: Vec<String> = p
        .services()
        .into_iter()
        .filter(|(_, s)| s.get("build").is_some() && s.get("image").is_some())
        .map(|(n, _)| n)
        .collect();
    for s in translated(p, names)? {
        if !named.contains(&s.name) {
            continue;
        }
        let args = crate::args::PushArgs {
            image: s.image.clone(),
            destination: None,
            quiet,
            registry: crate::args::RegistryFlags {
                tls_verify: registry.tls_verify,
                creds: registry.creds.clone(),
            },
        };
        if !quiet {
            progress("Image", &s.image, "Pushing");
        }
        match crate::cmd::push::run(ctx, &args) {
            Ok(_) if !quiet => progress("Image", &s.image, "Pushed"),
            Ok(_) => {}
            Err(e) if ignore_failures => {
                eprintln!(
                    "den: warning: service {}: pushing {}: {e:#}",
                    s.name, s.image
                )
            }
            Err(e) => return Err(e.context(format!("service {}", s.name))),
        }
    }
    Ok(0)
}
