//! `den compose up`: resources first (network, volumes, images), then the
//! services level by level, each level's services at once, each through
//! `den run`'s own code; an unchanged service is left running.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use den_compose::check::depends_on;
use den_compose::plan::{self, Action, Running};
use den_compose::yaml::Node;
use den_sandbox::container::state::Status;

use super::args::{CreateArgs, UpArgs};
use super::project::Project;
use super::service::{self, Service};
use super::{HASH_LABEL, containers_of, progress, running, service_of};
use crate::containers::{Containers, Record};
use crate::context::Context;

/// How often a wait for a dependency (health, completion) or for `--wait`
/// looks again: a state read costs microseconds, and every look saved
/// shortens `up`'s critical path (a healthy database starts its dependants
/// within this).
const POLL: Duration = Duration::from_millis(20);

pub fn up(ctx: &Context, p: &Project, a: &UpArgs) -> anyhow::Result<i32> {
    let services = converge(ctx, p, a, Mode::Start)?;
    if a.wait {
        return wait_running(ctx, p, &services, Duration::from_secs(a.wait_timeout)).map(|()| 0);
    }
    if a.detach {
        return Ok(0);
    }
    super::show::attached(ctx, p, &services, a.abort_on_container_exit)
}

/// `den compose create`: what `up` does, but every new container is left
/// `Created` (made by `den create`'s code) and nothing is started or
/// waited for; `den compose start` starts them.
pub fn create(ctx: &Context, p: &Project, c: &CreateArgs) -> anyhow::Result<i32> {
    let a = UpArgs {
        detach: true,
        force_recreate: c.force_recreate,
        no_recreate: c.no_recreate,
        remove_orphans: c.remove_orphans,
        timeout: None,
        build: c.build,
        no_build: c.no_build,
        wait: false,
        wait_timeout: 0,
        abort_on_container_exit: false,
        scale: c.scale.clone(),
        services: c.services.clone(),
    };
    converge(ctx, p, &a, Mode::Create).map(|_| 0)
}

/// Whether new containers are started (`up`) or only made (`create`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Start,
    Create,
}

/// Brings the project's containers to the file: resources, images, then
/// each level of services at once; returns the services it translated.
fn converge(ctx: &Context, p: &Project, a: &UpArgs, mode: Mode) -> anyhow::Result<Vec<Service>> {
    p.check_services(&a.services)?;
    let all = p.services();
    let wanted = with_dependencies(p, &all, &a.services);
    let scale = scale_flags(p, &a.scale)?;
    let chosen: Vec<(String, Node)> = all
        .iter()
        .filter(|(n, _)| wanted.contains(n))
        .map(|(n, s)| (n.clone(), scaled(s, scale.get(n).copied())))
        .collect();
    // Every service translated and checked before anything is made.
    let services: Vec<Service> = chosen
        .iter()
        .map(|(n, s)| service::translate(p, n, s))
        .collect::<anyhow::Result<_>>()?;
    let existing = containers_of(ctx, &p.name)?;
    orphans(ctx, &all, &existing, a.remove_orphans)?;
    // Images first: a build or pull that fails leaves nothing made.
    let images = images(ctx, &services, a.build, a.no_build)?;
    resources(ctx, p)?;
    let actions = decide(&chosen, &services, &existing, &images, a);
    let levels = plan::levels(&p.file, &chosen);
    for level in levels {
        let failed: Vec<anyhow::Error> = std::thread::scope(|s| {
            let handles: Vec<_> = level
                .iter()
                .map(|name| {
                    let svc = services
                        .iter()
                        .find(|x| &x.name == name)
                        .expect("translated");
                    let (_, node) = chosen.iter().find(|(n, _)| n == name).expect("chosen");
                    let action = actions[name];
                    let existing = &existing;
                    s.spawn(move || {
                        if mode == Mode::Start {
                            wait_for_dependencies(ctx, p, name, node)?;
                        }
                        apply(ctx, svc, action, existing, a.timeout, mode)
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a thread panicked")))
                        .err()
                })
                .collect()
        });
        if let Some(e) = failed.into_iter().next() {
            return Err(e);
        }
    }
    Ok(services)
}

/// `--scale SERVICE=N` flags, checked.
fn scale_flags(p: &Project, flags: &[String]) -> anyhow::Result<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    for f in flags {
        let (name, n) = f
            .split_once('=')
            .and_then(|(s, n)| Some((s, n.parse::<i64>().ok().filter(|n| (0..=100).contains(n))?)))
            .with_context(|| {
                format!("invalid --scale `{f}`: use SERVICE=N with N from 0 to 100")
            })?;
        p.check_services(&[name.to_owned()])?;
        out.insert(name.to_owned(), n);
    }
    Ok(out)
}

/// The service with `scale: n` when `--scale` gives one (the config hash
/// leaves scale out: scaling recreates nothing).
fn scaled(svc: &Node, n: Option<i64>) -> Node {
    let mut svc = svc.clone();
    if let (Some(n), den_compose::yaml::Raw::Map(m)) = (n, &mut svc.value) {
        let value = Node::new(den_compose::yaml::Raw::Int(n));
        match m.iter_mut().find(|(k, _)| k == "scale") {
            Some((_, v)) => *v = value,
            None => m.push(("scale".into(), value)),
        }
    }
    svc
}

/// The named services and, transitively, what they depend on (all
/// services when none is named).
fn with_dependencies(p: &Project, all: &[(String, Node)], named: &[String]) -> Vec<String> {
    if named.is_empty() {
        return all.iter().map(|(n, _)| n.clone()).collect();
    }
    let mut out: Vec<String> = named.to_vec();
    let mut i = 0;
    while i < out.len() {
        if let Some((_, svc)) = all.iter().find(|(n, _)| *n == out[i]) {
            for d in depends_on(&p.file, &out[i], svc).unwrap_or_default() {
                if !out.contains(&d.service) && all.iter().any(|(n, _)| *n == d.service) {
                    out.push(d.service);
                }
            }
        }
        i += 1;
    }
    out
}

/// Containers of services no longer in the file: removed with
/// `--remove-orphans`, else a warning, as docker compose does.
fn orphans(
    ctx: &Context,
    all: &[(String, Node)],
    existing: &[Record],
    remove: bool,
) -> anyhow::Result<()> {
    let orphans: Vec<&Record> = existing
        .iter()
        .filter(|r| !all.iter().any(|(n, _)| n == service_of(r)))
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    if !remove {
        let names: Vec<&str> = orphans.iter().map(|r| r.name.as_str()).collect();
        eprintln!(
            "den: warning: found orphan containers ({}) for this project: remove them with --remove-orphans",
            names.join(", ")
        );
        return Ok(());
    }
    for r in orphans {
        crate::cmd::lifecycle::stop_one(ctx, r, Duration::from_secs(10))?;
        crate::cmd::lifecycle::remove_one(ctx, r, true)?;
        progress("Container", &r.name, "Removed");
    }
    Ok(())
}

/// The project's networks and volumes: made when missing; an `external`
/// one must exist.
fn resources(ctx: &Context, p: &Project) -> anyhow::Result<()> {
    let networks = crate::networks::Networks::open(&ctx.root)?;
    let mut keys: Vec<String> = super::show::section_names(p, "networks");
    if !keys.iter().any(|k| k == "default") {
        keys.insert(0, "default".into());
    }
    for key in keys {
        let def = p.model.get("networks").and_then(|n| n.get(&key));
        let name = plan::volume_name(&p.name, &key, def);
        if networks.get(&name).is_ok_and(|n| n.name == name) {
            continue;
        }
        if is_external(def) {
            bail!(
                "network {name} is declared as external, but could not be found: create it with `den network create {name}`"
            );
        }
        if key == "default" && !uses_default_network(p) {
            continue;
        }
        progress("Network", &name, "Creating");
        networks.create(&name, Default::default())?;
        progress("Network", &name, "Created");
    }
    let volumes = crate::volumes::Volumes::open(&ctx.root)?;
    for key in super::show::section_names(p, "volumes") {
        let def = p.model.get("volumes").and_then(|n| n.get(&key));
        let name = plan::volume_name(&p.name, &key, def);
        if volumes.get(&name).is_ok() {
            continue;
        }
        if is_external(def) {
            bail!(
                "volume {name} is declared as external, but could not be found: create it with `den volume create {name}`"
            );
        }
        progress("Volume", &name, "Creating");
        volumes.create(&name, Default::default())?;
        progress("Volume", &name, "Created");
    }
    Ok(())
}

fn is_external(def: Option<&Node>) -> bool {
    def.and_then(|d| d.get("external"))
        .is_some_and(|e| e.value == den_compose::yaml::Raw::Bool(true))
}

/// Whether some service runs on the project's default network.
fn uses_default_network(p: &Project) -> bool {
    p.services().iter().any(|(_, s)| {
        s.get("network_mode").is_none()
            && s.get("networks")
                .is_none_or(|n| service_network_keys(n).iter().any(|k| k == "default"))
    })
}

fn service_network_keys(n: &Node) -> Vec<String> {
    match &n.value {
        den_compose::yaml::Raw::Map(m) => m.iter().map(|(k, _)| k.clone()).collect(),
        den_compose::yaml::Raw::Seq(items) => items.iter().filter_map(Node::scalar_text).collect(),
        _ => Vec::new(),
    }
}

/// Each service's image: built (`build:`, when missing or with
/// `--build`) or pulled when missing, one image once, before any
/// container; returns the image ids by service.
pub fn images(
    ctx: &Context,
    services: &[Service],
    force_build: bool,
    no_build: bool,
) -> anyhow::Result<BTreeMap<String, String>> {
    let store = ctx.store()?;
    let mut by_image: BTreeMap<String, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for s in services {
        let Some(c) = s.containers.first() else {
            continue;
        };
        if let Some(id) = by_image.get(&s.image) {
            out.insert(s.name.clone(), id.clone());
            continue;
        }
        let present = crate::local_images::resolve(&store, &store.images()?, &s.image).is_ok();
        if let Some(flags) = &s.build {
            match (present, force_build, no_build) {
                (false, _, true) => bail!(
                    "service {}: image {} is not built and --no-build was given: run `den compose build {}`",
                    s.name,
                    s.image,
                    s.name
                ),
                (false, _, false) | (true, true, _) => build_image(ctx, s, flags)?,
                _ => {}
            }
        }
        let img = crate::cmd::run::find_or_pull(ctx, &store, &s.image, &c.args)
            .with_context(|| format!("service {}", s.name))?;
        let id = img.id.to_string();
        by_image.insert(s.image.clone(), id.clone());
        out.insert(s.name.clone(), id);
    }
    Ok(out)
}

/// `den build FLAGS` through den build's own code; a `dockerfile_inline`
/// is written to a private temporary file in the store for it (removed
/// after the build).
pub fn build_image(ctx: &Context, s: &Service, flags: &[String]) -> anyhow::Result<()> {
    use clap::Parser;
    let service = &s.name;
    let inline = match &s.dockerfile_inline {
        Some(text) => {
            let mut f = tempfile::Builder::new()
                .prefix(".dockerfile-inline-")
                .tempfile_in(&ctx.root)
                .with_context(|| format!("service {service}: writing its dockerfile_inline"))?;
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            Some(f)
        }
        None => None,
    };
    let file = inline
        .as_ref()
        .map(|f| format!("--file={}", f.path().display()));
    let argv = ["den", "build"]
        .iter()
        .map(|s| s.to_string())
        .chain(file)
        .chain(flags.iter().cloned());
    let cli = crate::args::Cli::try_parse_from(argv).map_err(|e| {
        anyhow::anyhow!(
            "service {service}: {}",
            e.to_string().lines().next().unwrap_or("")
        )
    })?;
    let crate::args::Command::Build(b) = cli.command else {
        bail!("service {service}: not a build");
    };
    progress("Image", &b.tags.join(" "), "Building");
    match crate::cmd::build::run(ctx, &b)? {
        0 => {
            progress("Image", &b.tags.join(" "), "Built");
            Ok(())
        }
        code => bail!("service {service}: den build failed with code {code}"),
    }
}

/// `up --wait`: until every container runs, and is healthy when it has a
/// health check; an exit or `unhealthy` fails at once.
fn wait_running(
    ctx: &Context,
    p: &Project,
    services: &[Service],
    limit: Duration,
) -> anyhow::Result<()> {
    let containers = Containers::open(&ctx.root)?;
    let names: Vec<&str> = services
        .iter()
        .flat_map(|s| s.containers.iter().map(|c| c.name.as_str()))
        .collect();
    let records: Vec<Record> = containers_of(ctx, &p.name)?
        .into_iter()
        .filter(|r| names.contains(&r.name.as_str()))
        .collect();
    let start = std::time::Instant::now();
    loop {
        let mut ready = true;
        for r in &records {
            let s = containers.state(&r.id);
            let info = crate::cmd::ps::inspect_json(ctx, r, &s)?;
            match (
                running(s.status),
                info["State"]["Health"]["Status"].as_str(),
            ) {
                (false, _) => bail!(
                    "container {} exited with code {}: see `den compose logs {}`",
                    r.name,
                    s.exit_code.unwrap_or(255),
                    service_of(r)
                ),
                (true, Some("unhealthy")) => bail!(
                    "container {} is unhealthy: see `den compose logs {}`",
                    r.name,
                    service_of(r)
                ),
                (true, Some("healthy") | None) => {}
                (true, Some(_)) => ready = false,
            }
        }
        if ready {
            records
                .iter()
                .for_each(|r| progress("Container", &r.name, "Healthy"));
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!(
                "the project is not ready after {} s (--wait-timeout)",
                limit.as_secs()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Create, keep or recreate, for each service.
fn decide(
    chosen: &[(String, Node)],
    services: &[Service],
    existing: &[Record],
    images: &BTreeMap<String, String>,
    a: &UpArgs,
) -> BTreeMap<String, Action> {
    let wanted: BTreeMap<String, Running> = services
        .iter()
        .map(|s| {
            let r = Running {
                config_hash: s.hash.clone(),
                image_digest: images.get(&s.name).cloned().unwrap_or_default(),
            };
            (s.name.clone(), r)
        })
        .collect();
    let have: BTreeMap<String, Running> = existing
        .iter()
        .map(|r| {
            let run = Running {
                config_hash: r.labels.get(HASH_LABEL).cloned().unwrap_or_default(),
                image_digest: r.image_id.clone().unwrap_or_default(),
            };
            (service_of(r).to_owned(), run)
        })
        .collect();
    plan::decide(chosen, &wanted, &have)
        .into_iter()
        .map(|(n, act)| {
            let act = match act {
                Action::Keep if a.force_recreate => Action::Recreate,
                Action::Recreate if a.no_recreate => Action::Keep,
                other => other,
            };
            (n, act)
        })
        .collect()
}

/// Brings one service's containers to what `action` says.
fn apply(
    ctx: &Context,
    svc: &Service,
    action: Action,
    existing: &[Record],
    timeout: Option<u64>,
    mode: Mode,
) -> anyhow::Result<()> {
    let mine: Vec<&Record> = existing
        .iter()
        .filter(|r| service_of(r) == svc.name)
        .collect();
    let containers = Containers::open(&ctx.root)?;
    let wait = Duration::from_secs(timeout.or(svc.stop_timeout).unwrap_or(10));
    for c in &svc.containers {
        let old = mine.iter().find(|r| r.name == c.name);
        match (action, old) {
            (Action::Keep, Some(r)) => {
                if mode == Mode::Create {
                    continue;
                }
                if running(containers.state(&r.id).status) {
                    progress("Container", &c.name, "Running");
                } else {
                    progress("Container", &c.name, "Starting");
                    crate::launch::start_detached(ctx, &containers.dir_of(&r.id).join("spec.json"))
                        .with_context(|| format!("service {}: container {}", svc.name, c.name))?;
                    progress("Container", &c.name, "Started");
                }
                continue;
            }
            (_, Some(r)) => {
                progress("Container", &c.name, "Recreate");
                crate::cmd::lifecycle::stop_one(ctx, r, wait)?;
                crate::cmd::lifecycle::remove_one(ctx, r, true)?;
                progress("Container", &c.name, "Recreated");
            }
            (_, None) => progress("Container", &c.name, "Creating"),
        }
        if mode == Mode::Create {
            crate::cmd::run::create(ctx, &c.args)
                .with_context(|| format!("service {}: cannot create {}", svc.name, c.name))?;
            progress("Container", &c.name, "Created");
            continue;
        }
        crate::cmd::run::run_detached(ctx, &c.args)
            .with_context(|| format!("service {} failed to start", svc.name))?;
        progress("Container", &c.name, "Started");
    }
    // Scaled down: the containers past the count go.
    for r in mine
        .iter()
        .filter(|r| !svc.containers.iter().any(|c| c.name == r.name))
    {
        crate::cmd::lifecycle::stop_one(ctx, r, wait)?;
        crate::cmd::lifecycle::remove_one(ctx, r, true)?;
        progress("Container", &r.name, "Removed");
    }
    Ok(())
}

/// Waits until each dependency of `name` meets its condition:
/// started (its level came first), completed successfully, or healthy.
fn wait_for_dependencies(ctx: &Context, p: &Project, name: &str, svc: &Node) -> anyhow::Result<()> {
    for d in depends_on(&p.file, name, svc)? {
        match d.condition.as_str() {
            "service_completed_successfully" => wait_completed(ctx, p, name, &d.service)?,
            "service_healthy" => wait_healthy(ctx, p, name, &d.service)?,
            _ => {}
        }
    }
    Ok(())
}

fn dependency_containers(ctx: &Context, p: &Project, dep: &str) -> anyhow::Result<Vec<Record>> {
    Ok(containers_of(ctx, &p.name)?
        .into_iter()
        .filter(|r| service_of(r) == dep)
        .collect())
}

/// `service_completed_successfully`: every container of `dep` exited 0.
fn wait_completed(ctx: &Context, p: &Project, name: &str, dep: &str) -> anyhow::Result<()> {
    let containers = Containers::open(&ctx.root)?;
    for r in dependency_containers(ctx, p, dep)? {
        loop {
            let s = containers.state(&r.id);
            if s.status == Status::Exited {
                match s.exit_code.unwrap_or(255) {
                    0 => break,
                    code => bail!(
                        "service {name} depends on {dep} completing successfully, but container {} exited with code {code}: see `den compose logs {dep}`",
                        r.name
                    ),
                }
            }
            std::thread::sleep(POLL);
        }
    }
    Ok(())
}

/// `service_healthy`: every container of `dep` reports `healthy` in
/// `State.Health.Status`, read as `den inspect` reads it; unhealthy, an
/// exit, or no health check at all fail at once.
fn wait_healthy(ctx: &Context, p: &Project, name: &str, dep: &str) -> anyhow::Result<()> {
    let containers = Containers::open(&ctx.root)?;
    for r in dependency_containers(ctx, p, dep)? {
        loop {
            let s = containers.state(&r.id);
            let info = crate::cmd::ps::inspect_json(ctx, &r, &s)?;
            let health = info["State"]["Health"]["Status"]
                .as_str()
                .map(str::to_owned);
            match (health.as_deref(), running(s.status)) {
                (Some("healthy"), _) => break,
                (None, _) => bail!(
                    "service {name} depends on {dep} being healthy, but container {} has no health check: add a healthcheck: to {dep}",
                    r.name
                ),
                (Some("unhealthy"), _) => bail!(
                    "service {name} depends on {dep} being healthy, but container {} is unhealthy: see `den compose logs {dep}`",
                    r.name
                ),
                (_, false) => bail!(
                    "service {name} depends on {dep} being healthy, but container {} exited with code {} before it was: see `den compose logs {dep}`",
                    r.name,
                    s.exit_code.unwrap_or(255)
                ),
                _ => {}
            }
            std::thread::sleep(POLL);
        }
    }
    Ok(())
}
