//! `den volume create|ls|inspect|rm|prune`: named volumes (see `crate::volumes`).

use anyhow::bail;
use serde_json::json;

use crate::args::VolumeCommand;
use crate::containers::{Containers, Record, new_id};
use crate::context::Context;
use crate::output::{human_size, table};
use crate::volumes::{VolumeMeta, Volumes};

pub fn run(ctx: &Context, cmd: VolumeCommand) -> anyhow::Result<i32> {
    let volumes = Volumes::open(&ctx.root)?;
    match cmd {
        VolumeCommand::Create { name } => {
            let name = name.unwrap_or_else(new_id);
            volumes.create(&name)?;
            println!("{name}");
        }
        VolumeCommand::Ls { quiet, format } => list(&volumes, quiet, format.as_deref())?,
        VolumeCommand::Inspect { names } => {
            let found = names
                .iter()
                .map(|n| volumes.get(n))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let out: Vec<_> = found.iter().map(|v| volume_json(&volumes, v)).collect();
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        VolumeCommand::Rm { force, names } => remove(ctx, &volumes, &names, force)?,
        VolumeCommand::Prune { all, force } => {
            let warning = if all {
                "WARNING! This will remove all local volumes not used by at least one container."
            } else {
                "WARNING! This will remove anonymous local volumes not used by at least one container."
            };
            crate::confirm::prune("volume", warning, force)?;
            prune(ctx, &volumes, all)?
        }
    }
    Ok(0)
}

fn volume_json(volumes: &Volumes, v: &VolumeMeta) -> serde_json::Value {
    json!({
        "CreatedAt": v.created,
        "Driver": "local",
        "Labels": v.labels,
        "Mountpoint": volumes.data_dir(&v.name),
        "Name": v.name,
        "Options": {},
        "Scope": "local",
    })
}

fn list(volumes: &Volumes, quiet: bool, format: Option<&str>) -> anyhow::Result<()> {
    let all = volumes.list()?;
    if quiet {
        all.iter().for_each(|v| println!("{}", v.name));
        return Ok(());
    }
    match format {
        Some("json") => {
            let out: Vec<_> = all.iter().map(|v| volume_json(volumes, v)).collect();
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        None | Some("table") => {
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|v| vec!["local".into(), v.name.clone()])
                .collect();
            print!("{}", table(&["DRIVER", "VOLUME NAME"], &rows));
        }
        Some(other) => bail!("unknown --format `{other}`: use table or json"),
    }
    Ok(())
}

/// The first container record that mounts `name`.
fn user_of<'a>(records: &'a [Record], name: &str) -> Option<&'a Record> {
    records.iter().find(|r| r.volumes.iter().any(|v| v == name))
}

/// All named volumes are checked before any is removed: an error leaves
/// every volume as it was.
fn remove(ctx: &Context, volumes: &Volumes, names: &[String], force: bool) -> anyhow::Result<()> {
    let _lock = volumes.lock()?;
    let records = Containers::open(&ctx.root)?.list()?;
    let mut doomed = Vec::new();
    for name in names {
        if let Err(e) = volumes.get(name) {
            if force {
                continue;
            }
            return Err(e);
        }
        if let Some(r) = user_of(&records, name) {
            bail!(
                "cannot remove volume {name}: it is in use by container {} ({}): remove the container first",
                r.name,
                &r.id[..12]
            );
        }
        if !doomed.contains(name) {
            doomed.push(name.clone());
        }
    }
    for name in &doomed {
        volumes.detach(name)?;
    }
    crate::containers::stop_point("volume-rm:detached");
    crate::in_userns::remove_volumes(ctx)?;
    doomed.iter().for_each(|n| println!("{n}"));
    Ok(())
}

/// Removes unused anonymous volumes, or with `all` every unused volume.
pub fn prune(ctx: &Context, volumes: &Volumes, all: bool) -> anyhow::Result<()> {
    let bytes = prune_quietly(ctx, volumes, all)?;
    println!("Total reclaimed space: {}", human_size(bytes));
    Ok(())
}

/// [`prune`] without the total line (`den system prune` prints one for
/// everything); returns the bytes freed.
pub fn prune_quietly(ctx: &Context, volumes: &Volumes, all: bool) -> anyhow::Result<u64> {
    let _lock = volumes.lock()?;
    let records = Containers::open(&ctx.root)?.list()?;
    let doomed: Vec<String> = volumes
        .list()?
        .into_iter()
        .filter(|v| all || v.anonymous)
        .map(|v| v.name)
        .filter(|n| user_of(&records, n).is_none())
        .collect();
    for name in &doomed {
        volumes.detach(name)?;
    }
    let bytes = crate::in_userns::remove_volumes(ctx)?;
    if !doomed.is_empty() {
        println!("Deleted Volumes:");
        doomed.iter().for_each(|n| println!("{n}"));
        println!();
    }
    Ok(bytes)
}
