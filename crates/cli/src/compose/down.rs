//! `den compose down`: the project's containers stopped and removed in the
//! reverse of the start order, each level at once; then its networks and,
//! with `-v`, its volumes.

use std::time::Duration;

use den_compose::plan;

use super::project::Project;
use super::{containers_of, progress, service_of};
use crate::containers::Record;
use crate::context::Context;

pub fn down(
    ctx: &Context,
    p: &Project,
    volumes: bool,
    remove_orphans: bool,
    timeout: Option<u64>,
) -> anyhow::Result<i32> {
    let services = p.services();
    let existing = containers_of(ctx, &p.name)?;
    let (known, orphans): (Vec<&Record>, Vec<&Record>) = existing
        .iter()
        .partition(|r| services.iter().any(|(n, _)| n == service_of(r)));
    let mut levels: Vec<Vec<&Record>> = Vec::new();
    if remove_orphans {
        levels.push(orphans.clone());
    } else if !orphans.is_empty() {
        let names: Vec<&str> = orphans.iter().map(|r| r.name.as_str()).collect();
        eprintln!(
            "den: warning: found orphan containers ({}) for this project: remove them with --remove-orphans",
            names.join(", ")
        );
    }
    for level in plan::levels(&p.file, &services).into_iter().rev() {
        levels.push(
            known
                .iter()
                .copied()
                .filter(|r| level.iter().any(|s| s == service_of(r)))
                .collect(),
        );
    }
    let mut anonymous = Vec::new();
    for level in levels.iter().filter(|l| !l.is_empty()) {
        let wait = level
            .iter()
            .map(|r| stop_timeout(p, service_of(r)))
            .max()
            .unwrap_or(10);
        let wait = Duration::from_secs(timeout.unwrap_or(wait));
        let owned: Vec<Record> = level.iter().map(|r| (*r).clone()).collect();
        level
            .iter()
            .for_each(|r| progress("Container", &r.name, "Stopping"));
        crate::cmd::lifecycle::stop_all(ctx, &owned, wait)?;
        let errors: Vec<anyhow::Error> = std::thread::scope(|s| {
            let handles: Vec<_> = owned
                .iter()
                .map(|r| {
                    s.spawn(move || crate::cmd::lifecycle::remove_one(ctx, r, true).map(|()| r))
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| match h.join() {
                    Ok(Ok(r)) => {
                        progress("Container", &r.name, "Removed");
                        None
                    }
                    Ok(Err(e)) => Some(e),
                    Err(_) => Some(anyhow::anyhow!("a thread panicked")),
                })
                .collect()
        });
        if let Some(e) = errors.into_iter().next() {
            return Err(e);
        }
        anonymous.extend(owned.iter().flat_map(|r| r.volumes.clone()));
    }
    remove_networks(ctx, p)?;
    if volumes {
        remove_volumes(ctx, p, &anonymous)?;
    }
    Ok(0)
}

/// `stop_grace_period` of a service, in seconds (10 by default).
fn stop_timeout(p: &Project, service: &str) -> u64 {
    p.services()
        .iter()
        .find(|(n, _)| n == service)
        .and_then(|(_, s)| s.get("stop_grace_period"))
        .and_then(|n| n.scalar_text())
        .and_then(|t| den_compose::types::duration(&t).ok())
        .map_or(10, |d| d.as_secs())
}

/// The project's own networks (not external ones) that no container uses.
fn remove_networks(ctx: &Context, p: &Project) -> anyhow::Result<()> {
    let networks = crate::networks::Networks::open(&ctx.root)?;
    let mut keys = super::show::section_names(p, "networks");
    if !keys.iter().any(|k| k == "default") {
        keys.insert(0, "default".into());
    }
    for key in keys {
        let def = p.model.get("networks").and_then(|n| n.get(&key));
        if def
            .and_then(|d| d.get("external"))
            .is_some_and(|e| e.value == den_compose::yaml::Raw::Bool(true))
        {
            continue;
        }
        let name = plan::volume_name(&p.name, &key, def);
        if !networks.get(&name).is_ok_and(|n| n.name == name) {
            continue;
        }
        progress("Network", &name, "Removing");
        networks.remove(&name)?;
        progress("Network", &name, "Removed");
    }
    Ok(())
}

/// The project's own named volumes (not external ones) and the anonymous
/// volumes of the removed containers.
fn remove_volumes(ctx: &Context, p: &Project, used: &[String]) -> anyhow::Result<()> {
    let volumes = crate::volumes::Volumes::open(&ctx.root)?;
    let _lock = volumes.lock()?;
    let mut doomed = Vec::new();
    for key in super::show::section_names(p, "volumes") {
        let def = p.model.get("volumes").and_then(|n| n.get(&key));
        if def
            .and_then(|d| d.get("external"))
            .is_some_and(|e| e.value == den_compose::yaml::Raw::Bool(true))
        {
            continue;
        }
        doomed.push(plan::volume_name(&p.name, &key, def));
    }
    for v in used {
        if volumes.get(v).is_ok_and(|m| m.anonymous) && !doomed.contains(v) {
            doomed.push(v.clone());
        }
    }
    let records = crate::containers::Containers::open(&ctx.root)?.list()?;
    let mut removed = Vec::new();
    for name in doomed {
        if volumes.get(&name).is_err() {
            continue;
        }
        if let Some(r) = records.iter().find(|r| r.volumes.contains(&name)) {
            eprintln!(
                "den: warning: volume {name} is in use by container {} and is kept",
                r.name
            );
            continue;
        }
        volumes.detach(&name)?;
        removed.push(name);
    }
    if !removed.is_empty() {
        crate::in_userns::remove_volumes(ctx)?;
    }
    for name in removed {
        progress("Volume", &name, "Removed");
    }
    Ok(())
}
