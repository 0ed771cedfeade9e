//! `den images`, `image inspect|prune`, `tag`, `rmi`, `system df`.

use std::collections::HashSet;

use anyhow::bail;
use den_image::reference::ImageRef;
use den_image::store::{ImageRecord, Store, StoreError, display_name};
use serde_json::json;

use crate::args::{ImageCommand, ImagesArgs, RmiArgs};
use crate::context::Context;
use crate::output::{ago, human_size, table};

pub fn image_command(ctx: &Context, cmd: ImageCommand) -> anyhow::Result<i32> {
    match cmd {
        ImageCommand::Ls(a) => list(ctx, &a),
        ImageCommand::Inspect { images } => inspect(ctx, &images),
        ImageCommand::Prune { all, force: _ } => prune(ctx, all),
        ImageCommand::Rm(a) => rmi(ctx, &a),
        ImageCommand::Pull(a) => super::pull::run(ctx, &a),
        ImageCommand::Push(a) => super::push::run(ctx, &a),
        ImageCommand::Tag { source, target } => tag(ctx, &source, &target),
        ImageCommand::Save(a) => super::archive::save(ctx, &a),
        ImageCommand::Load(a) => super::archive::load(ctx, &a),
    }
}

/// Finds an image by name, id, id prefix or `name@digest`.
pub fn resolve(store: &Store, images: &[ImageRecord], input: &str) -> anyhow::Result<ImageRecord> {
    let full = ImageRef::parse(input)
        .ok()
        .map(|r| r.tagged_name().unwrap_or_else(|| r.to_string()));
    Ok(store.find_image(images, full.as_deref(), input)?)
}

/// `(repository, tag)` for display; `<none>` for an untagged image.
fn repo_tag(name: &str) -> (String, String) {
    let shown = display_name(name);
    match shown.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
        Some((r, t)) => (r.to_string(), t.to_string()),
        None => (shown.to_string(), "<none>".to_string()),
    }
}

pub fn list(ctx: &Context, args: &ImagesArgs) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let mut images = store.images()?;
    if let Some(r) = &args.reference {
        let want = ImageRef::parse(r)?;
        let explicit_tag = r.rsplit_once(':').is_some_and(|(_, t)| !t.contains('/'));
        images.retain(|i| {
            i.names.iter().any(|n| {
                if explicit_tag {
                    Some(n.clone()) == want.tagged_name()
                } else {
                    n.starts_with(&format!("{}:", want.repo_name()))
                }
            })
        });
    }
    images.sort_by(|a, b| b.created.cmp(&a.created));
    if args.quiet {
        let mut seen = HashSet::new();
        for i in images.iter().filter(|i| seen.insert(i.id.clone())) {
            println!(
                "{}",
                if args.no_trunc {
                    i.id.to_string()
                } else {
                    i.id.short().to_string()
                }
            );
        }
        return Ok(0);
    }
    match args.format.as_deref() {
        Some("json") => {
            let v: Vec<_> = images.iter().map(image_json).collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        None | Some("table") => {
            let now = chrono::Utc::now();
            let mut rows = Vec::new();
            for i in &images {
                let id = if args.no_trunc {
                    i.id.to_string()
                } else {
                    i.id.short().to_string()
                };
                let created = i
                    .created
                    .as_deref()
                    .map(|c| ago(c, now))
                    .unwrap_or_else(|| "N/A".into());
                let names = if i.names.is_empty() {
                    vec![("<none>".to_string(), "<none>".to_string())]
                } else {
                    i.names.iter().map(|n| repo_tag(n)).collect()
                };
                for (repo, tag) in names {
                    rows.push(vec![
                        repo,
                        tag,
                        id.clone(),
                        created.clone(),
                        human_size(i.size),
                    ]);
                }
            }
            print!(
                "{}",
                table(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], &rows)
            );
        }
        Some(other) => bail!("unknown --format `{other}`: use table or json"),
    }
    Ok(0)
}

fn image_json(i: &ImageRecord) -> serde_json::Value {
    json!({
        "Id": i.id.hex(),
        "Names": i.names,
        "RepoTags": i.names.iter().map(|n| display_name(n)).collect::<Vec<_>>(),
        "Digest": i.manifest.to_string(),
        "RepoDigests": i.repo_digests,
        "Created": i.created,
        "Size": i.size,
        "Dangling": i.names.is_empty(),
    })
}

pub fn inspect(ctx: &Context, inputs: &[String]) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let images = store.images()?;
    let mut out = Vec::new();
    for input in inputs {
        let img = resolve(&store, &images, input)?;
        let config: serde_json::Value = serde_json::from_slice(&store.read_blob(&img.id)?)?;
        out.push(json!({
            "Id": img.id.to_string(),
            "RepoTags": img.names.iter().map(|n| display_name(n)).collect::<Vec<_>>(),
            "RepoDigests": img.repo_digests,
            "Created": img.created,
            "Architecture": img.platform.architecture,
            "Os": img.platform.os,
            "Size": img.size,
            "Config": config.get("config").cloned().unwrap_or(json!({})),
            "RootFS": { "Type": "layers", "Layers": img.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>() },
            "Manifest": { "Digest": img.manifest.to_string(), "MediaType": img.manifest_media_type },
            "Layers": img.layers.iter().map(|l| json!({"Digest": l.blob.to_string(), "MediaType": l.media_type, "Size": l.size, "DiffID": l.diff_id.to_string()})).collect::<Vec<_>>(),
            "History": config.get("history").cloned().unwrap_or(json!([])),
        }));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}

pub fn tag(ctx: &Context, source: &str, target: &str) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let img = resolve(&store, &store.images()?, source)?;
    let target = ImageRef::parse(target)?;
    let Some(name) = target.tagged_name().filter(|_| target.digest.is_none()) else {
        bail!("cannot tag with a digest `{target}`: give NAME[:TAG]");
    };
    store.update_images(|images| {
        for i in images.iter_mut() {
            i.names.retain(|n| n != &name);
        }
        let rec = images
            .iter_mut()
            .find(|i| i.id == img.id)
            .ok_or_else(|| StoreError::NoSuchImage(source.to_string()))?;
        rec.names.push(name.clone());
        Ok(())
    })?;
    Ok(0)
}

pub fn rmi(ctx: &Context, args: &RmiArgs) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let mut failed = None;
    for input in &args.images {
        match remove_one(&store, input, args.force) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e)
                if args.force
                    && e.downcast_ref::<StoreError>()
                        .is_some_and(|e| matches!(e, StoreError::NoSuchImage(_))) => {}
            Err(e) => failed = Some(e),
        }
    }
    collect(ctx, &store)?;
    match failed {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

/// Untags or deletes one image record; returns Docker's "Untagged:/Deleted:" lines.
fn remove_one(store: &Store, input: &str, force: bool) -> anyhow::Result<Vec<String>> {
    let full = ImageRef::parse(input).ok().and_then(|r| r.tagged_name());
    store
        .update_images(|images| {
            let img = store.find_image(images, full.as_deref(), input)?;
            let by_name = full.as_ref().filter(|n| img.names.contains(n));
            let mut lines = Vec::new();
            if let Some(name) = by_name
                && img.names.len() > 1
            {
                images
                    .iter_mut()
                    .filter(|i| i.id == img.id)
                    .for_each(|i| i.names.retain(|n| n != name));
                lines.push(format!("Untagged: {}", display_name(name)));
                return Ok(lines);
            }
            if by_name.is_none() && img.names.len() > 1 && !force {
                return Err(StoreError::Refused {
                    image: input.into(),
                    reason: format!(
                        "image is referenced by {} names ({}); remove them by name or use -f",
                        img.names.len(),
                        img.names
                            .iter()
                            .map(|n| display_name(n))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            lines.extend(
                img.names
                    .iter()
                    .map(|n| format!("Untagged: {}", display_name(n))),
            );
            lines.push(format!("Deleted: {}", img.id));
            images.retain(|i| i.id != img.id);
            Ok(lines)
        })
        .map_err(Into::into)
}

/// Removes unreferenced blobs and layers, then empties the trash.
fn collect(ctx: &Context, store: &Store) -> anyhow::Result<u64> {
    let got = store.collect_garbage(&HashSet::new())?;
    if got.layers > 0
        || std::fs::read_dir(store.tmp_dir())?
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("trash-"))
    {
        super::internal::purge(ctx)?;
    }
    Ok(got.bytes)
}

pub fn prune(ctx: &Context, all: bool) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let removed = store.update_images(|images| {
        let (gone, kept): (Vec<_>, Vec<_>) =
            images.drain(..).partition(|i| all || i.names.is_empty());
        *images = kept;
        Ok(gone)
    })?;
    let bytes = collect(ctx, &store)?;
    if !removed.is_empty() {
        println!("Deleted Images:");
        for i in &removed {
            i.names
                .iter()
                .for_each(|n| println!("untagged: {}", display_name(n)));
            println!("deleted: {}", i.id);
        }
    }
    println!("Total reclaimed space: {}", human_size(bytes));
    Ok(0)
}

pub fn df(ctx: &Context) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let images = store.images()?;
    let mut layers = HashSet::new();
    let mut size = 0;
    for l in images.iter().flat_map(|i| &i.layers) {
        if layers.insert(l.diff_id.clone()) {
            size += store.layer_info(&l.diff_id).map(|i| i.size).unwrap_or(0);
        }
    }
    let blobs: u64 = std::fs::read_dir(store.root().join("blobs/sha256"))?
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    let rows = vec![
        vec![
            "Images".into(),
            images.len().to_string(),
            "0".into(),
            human_size(size),
            format!("{} (100%)", human_size(size)),
        ],
        vec![
            "Image blobs".into(),
            "-".into(),
            "-".into(),
            human_size(blobs),
            "0B".into(),
        ],
    ];
    print!(
        "{}",
        table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows)
    );
    Ok(0)
}
