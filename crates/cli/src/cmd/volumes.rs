//! `den volume create|ls|inspect|rm|prune|exists`: named volumes (see
//! `crate::volumes`).

use anyhow::bail;
use serde_json::json;

use crate::args::VolumeCommand;
use crate::containers::{Containers, Record, new_id};
use crate::context::Context;
use crate::filters::Filters;
use crate::output::{human_size, table};
use crate::template::Format;
use crate::volumes::{VolumeMeta, Volumes};

pub fn run(ctx: &Context, cmd: VolumeCommand) -> anyhow::Result<i32> {
    let volumes = Volumes::open(&ctx.root)?;
    match cmd {
        VolumeCommand::Create { name, labels } => {
            let labels = crate::run_flags::parse_labels(&labels.labels, &labels.label_file)?;
            let name = name.unwrap_or_else(new_id);
            volumes.create(&name, labels)?;
            println!("{name}");
        }
        VolumeCommand::Ls {
            quiet,
            filter,
            format,
        } => {
            let shown = filtered(ctx, &volumes, &filter)?;
            list(&volumes, shown, quiet, format.as_deref())?
        }
        VolumeCommand::Exists { name } => {
            return Ok(if volumes.get(&name).is_ok() { 0 } else { 1 });
        }
        VolumeCommand::Inspect { names, format } => {
            let found = names
                .iter()
                .map(|n| volumes.get(n))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let out: Vec<_> = found.iter().map(|v| volume_json(&volumes, v)).collect();
            crate::template::print_inspect(&out, format.as_deref())?;
        }
        VolumeCommand::Rm { force, all, names } => {
            let names = if all {
                volumes.list()?.into_iter().map(|v| v.name).collect()
            } else {
                names
            };
            remove(ctx, &volumes, &names, force)?
        }
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

const VOLUME_FILTERS: &[&str] = &["name", "dangling", "driver", "label"];

/// `den volume ls --filter` (how filters combine: `crate::filters`).
fn filtered(ctx: &Context, volumes: &Volumes, given: &[String]) -> anyhow::Result<Vec<VolumeMeta>> {
    let f = Filters::parse(given, VOLUME_FILTERS, "volume ls")?;
    let dangling = f.bool_values("dangling")?;
    let records = if dangling.is_empty() {
        Vec::new()
    } else {
        Containers::open(&ctx.root)?.list()?
    };
    Ok(volumes
        .list()?
        .into_iter()
        .filter(|v| {
            f.any("name", |n| v.name.contains(n))
                && f.any("driver", |d| d == "local")
                && f.labels_match(&v.labels)
                && (dangling.is_empty() || dangling.contains(&user_of(&records, &v.name).is_none()))
        })
        .collect())
}

fn list(
    volumes: &Volumes,
    all: Vec<VolumeMeta>,
    quiet: bool,
    format: Option<&str>,
) -> anyhow::Result<()> {
    if quiet {
        all.iter().for_each(|v| println!("{}", v.name));
        return Ok(());
    }
    match Format::parse(format)? {
        Format::Json => {
            let out: Vec<_> = all.iter().map(|v| volume_json(volumes, v)).collect();
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Template(t) => {
            let out: Vec<_> = all.iter().map(|v| volume_json(volumes, v)).collect();
            print!("{}", t.render(&out, &VOLUME_FIELDS)?);
        }
        Format::Default => {
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|v| vec!["local".into(), v.name.clone()])
                .collect();
            print!("{}", table(&["DRIVER", "VOLUME NAME"], &rows));
        }
    }
    Ok(())
}

/// `docker volume ls --format`'s table titles.
const VOLUME_FIELDS: [(&str, &str); 7] = [
    ("Name", "VOLUME NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
    ("Options", "OPTIONS"),
];

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
