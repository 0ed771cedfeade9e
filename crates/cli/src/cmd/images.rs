//! `den images`, `image inspect|prune`, `tag`, `rmi`, `system df`. Images and
//! layers that container records name are kept.

use std::collections::HashSet;

use anyhow::bail;
use den_image::digest::Digest;
use den_image::reference::ImageRef;
use den_image::store::{ImageRecord, Store, StoreError, display_name};
use serde_json::json;

use crate::args::{ImagesArgs, RmiArgs};
use crate::containers::{Containers, Record};
use crate::context::Context;
use crate::filters::Filters;
use crate::local_images::{inspect_json, resolve};
use crate::output::{ago, human_size, table};
use crate::template::Format;
use crate::volumes::{Volumes, tree_size};
use den_sandbox::container::state::Status;

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
    filter_images(&store, &mut images, &args.filter)?;
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
    match Format::parse(args.format.as_deref())? {
        Format::Json => {
            let v: Vec<_> = images.iter().map(image_json).collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Template(t) => {
            let now = chrono::Utc::now();
            let rows: Vec<_> = images
                .iter()
                .flat_map(|i| format_rows(i, args.no_trunc, now))
                .collect();
            print!("{}", t.render(&rows, &IMAGE_FIELDS)?);
        }
        Format::Default => {
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
    }
    Ok(0)
}

/// `docker images --format`'s fields and their table titles.
const IMAGE_FIELDS: [(&str, &str); 8] = [
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
];

/// An image as `docker images --format` sees it: one row per name.
fn format_rows(
    i: &ImageRecord,
    no_trunc: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<serde_json::Value> {
    let names = if i.names.is_empty() {
        vec![("<none>".to_string(), "<none>".to_string())]
    } else {
        i.names.iter().map(|n| repo_tag(n)).collect()
    };
    let created = i.created.as_deref().unwrap_or("");
    names
        .into_iter()
        .map(|(repo, tag)| {
            json!({
                "ID": if no_trunc { i.id.to_string() } else { i.id.short().to_string() },
                "Repository": repo, "Tag": tag, "Digest": i.manifest.to_string(),
                "CreatedSince": if created.is_empty() { "N/A".into() } else { ago(created, now) },
                "CreatedAt": crate::output::docker_time(created),
                "Size": human_size(i.size), "Containers": "N/A",
            })
        })
        .collect()
}

const IMAGE_FILTERS: &[&str] = &["dangling", "reference", "before", "since", "label"];

/// `den images --filter` (how filters combine: `crate::filters`).
fn filter_images(
    store: &Store,
    images: &mut Vec<ImageRecord>,
    given: &[String],
) -> anyhow::Result<()> {
    let f = Filters::parse(given, IMAGE_FILTERS, "images")?;
    let dangling = f.bool_values("dangling")?;
    let all = images.clone();
    let created = |key: &str| -> anyhow::Result<Vec<chrono::DateTime<chrono::FixedOffset>>> {
        f.values(key)
            .iter()
            .map(|v| {
                let img = resolve(store, &all, v)
                    .map_err(|e| e.context(format!("--filter {key}={v}")))?;
                created_time(&img).ok_or_else(|| {
                    anyhow::anyhow!("--filter {key}={v}: the image has no creation time")
                })
            })
            .collect()
    };
    let (before, since) = (created("before")?, created("since")?);
    let mut kept = Vec::new();
    for i in images.drain(..) {
        let t = created_time(&i);
        let ok = (dangling.is_empty() || dangling.contains(&i.names.is_empty()))
            && f.any("reference", |p| {
                i.names.iter().any(|n| reference_matches(p, n))
            })
            && (before.is_empty() || t.is_some_and(|t| before.iter().any(|b| t < *b)))
            && (since.is_empty() || t.is_some_and(|t| since.iter().any(|s| t > *s)))
            && (!f.has("label") || f.labels_match(&image_labels(store, &i)));
        if ok {
            kept.push(i);
        }
    }
    *images = kept;
    Ok(())
}

fn created_time(i: &ImageRecord) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(i.created.as_deref()?).ok()
}

/// `reference=PATTERN` against a stored name, as Docker matches it: the
/// short name with its tag (`busybox:latest`) or without (`busybox`), or
/// the full name.
fn reference_matches(pattern: &str, full: &str) -> bool {
    let short = display_name(full);
    let repo = repo_tag(full).0;
    [full, short, repo.as_str()]
        .iter()
        .any(|n| crate::filters::glob(pattern, n))
}

/// The image config's `config.Labels` (none when unreadable).
fn image_labels(store: &Store, i: &ImageRecord) -> std::collections::BTreeMap<String, String> {
    store
        .read_blob(&i.id)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| serde_json::from_value(v["config"]["Labels"].clone()).ok())
        .unwrap_or_default()
}

/// `den image exists`: 0 when the store has it, 1 when not, nothing printed.
pub fn exists(ctx: &Context, input: &str) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    match resolve(&store, &store.images()?, input) {
        Ok(_) => Ok(0),
        Err(e) if is_no_such_image(&e) => Ok(1),
        Err(e) => Err(e),
    }
}

fn is_no_such_image(e: &anyhow::Error) -> bool {
    e.downcast_ref::<StoreError>()
        .is_some_and(|e| matches!(e, StoreError::NoSuchImage(_)))
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

pub fn inspect(ctx: &Context, inputs: &[String], format: Option<&str>) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let images = store.images()?;
    let mut out = Vec::new();
    for input in inputs {
        let img = resolve(&store, &images, input)?;
        out.push(inspect_json(&store, &img)?);
    }
    crate::template::print_inspect(&out, format)?;
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
    let records = Containers::open(&ctx.root)?.list()?;
    let mut failed = None;
    let inputs = if args.all {
        every_image(&store)?
    } else {
        args.images.clone()
    };
    for input in &inputs {
        match remove_one(&store, input, args.force, args.all, &records) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) if args.force && is_no_such_image(&e) => {}
            // With --all, one refused image does not keep the others.
            Err(e) if args.all => {
                eprintln!("den: {e}");
                failed = Some(anyhow::anyhow!("some images were not removed"));
            }
            Err(e) => failed = Some(e),
        }
    }
    collect(ctx, &store)?;
    match failed {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

/// `den rmi -a`: every image, by id (each whole, with all its names).
fn every_image(store: &Store) -> anyhow::Result<Vec<String>> {
    let mut ids: Vec<String> = store.images()?.iter().map(|i| i.id.to_string()).collect();
    ids.dedup();
    Ok(ids)
}

/// Untags or deletes one image record; returns Docker's "Untagged:/Deleted:" lines.
/// An image a container uses is never deleted: -f takes only its name(s).
/// `whole` (`rmi -a`): an image with several names goes with all of them.
fn remove_one(
    store: &Store,
    input: &str,
    force: bool,
    whole: bool,
    records: &[Record],
) -> anyhow::Result<Vec<String>> {
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
            if by_name.is_none() && img.names.len() > 1 && !force && !whole {
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
            if let Some(r) = user_of(records, &img.id) {
                if !force {
                    return Err(StoreError::Refused {
                        image: input.into(),
                        reason: format!(
                            "image is in use by container {} ({}): remove the container first",
                            r.name,
                            &r.id[..12]
                        ),
                    });
                }
                let gone = by_name.map_or_else(|| img.names.clone(), |n| vec![n.clone()]);
                images
                    .iter_mut()
                    .filter(|i| i.id == img.id)
                    .for_each(|i| i.names.retain(|n| !gone.contains(n)));
                lines.extend(
                    gone.iter()
                        .map(|n| format!("Untagged: {}", display_name(n))),
                );
                return Ok(lines);
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

/// The first container record made from image `id`.
fn user_of<'a>(records: &'a [Record], id: &Digest) -> Option<&'a Record> {
    let id = id.to_string();
    records
        .iter()
        .find(|r| r.image_id.as_deref() == Some(id.as_str()))
}

/// Removes unreferenced blobs and layers, then empties the trash. Layers
/// that container records name are kept.
fn collect(ctx: &Context, store: &Store) -> anyhow::Result<u64> {
    let in_use: HashSet<Digest> = Containers::open(&ctx.root)?
        .list()?
        .iter()
        .flat_map(|r| &r.layers)
        .filter_map(|l| l.parse().ok())
        .collect();
    let got = store.collect_garbage(&in_use)?;
    if got.layers > 0
        || fs_err::read_dir(store.tmp_dir())?
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("trash-"))
    {
        crate::in_userns::purge(ctx)?;
    }
    Ok(got.bytes)
}

pub fn prune(ctx: &Context, all: bool) -> anyhow::Result<i32> {
    let bytes = prune_quietly(ctx, all)?;
    println!("Total reclaimed space: {}", human_size(bytes));
    Ok(0)
}

/// [`prune`] without the total line (`den system prune` prints one for
/// everything); returns the bytes freed.
pub fn prune_quietly(ctx: &Context, all: bool) -> anyhow::Result<u64> {
    let store = ctx.store()?;
    let records = Containers::open(&ctx.root)?.list()?;
    let removed = store.update_images(|images| {
        let (gone, kept): (Vec<_>, Vec<_>) = images
            .drain(..)
            .partition(|i| (all || i.names.is_empty()) && user_of(&records, &i.id).is_none());
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
    Ok(bytes)
}

/// `den system df`: images (active: used by a container), containers
/// (their writable layers; active: running), volumes (active:
/// mounted by a container) and the blobs behind the images.
pub fn df(ctx: &Context, format: Option<&str>) -> anyhow::Result<i32> {
    let format = Format::parse(format)?;
    let store = ctx.store()?;
    let images = store.images()?;
    let containers = Containers::open(&ctx.root)?;
    let records = containers.list()?;
    let held: HashSet<&str> = records
        .iter()
        .flat_map(|r| r.layers.iter().map(String::as_str))
        .collect();
    let mut layers = HashSet::new();
    let (mut size, mut held_size) = (0, 0);
    for l in images.iter().flat_map(|i| &i.layers) {
        if layers.insert(l.diff_id.clone()) {
            let s = store.layer_info(&l.diff_id).map(|i| i.size).unwrap_or(0);
            size += s;
            if held.contains(l.diff_id.to_string().as_str()) {
                held_size += s;
            }
        }
    }
    let active_images = images
        .iter()
        .filter(|i| user_of(&records, &i.id).is_some())
        .count();
    let (mut container_size, mut stopped_size, mut running) = (0, 0, 0);
    for r in &records {
        let s = tree_size(&containers.dir_of(&r.id).join("upper"));
        container_size += s;
        let state = containers.state(&r.id).status;
        if matches!(state, Status::Running | Status::Restarting) {
            running += 1;
        } else {
            stopped_size += s;
        }
    }
    let volumes = Volumes::open(&ctx.root)?;
    let all_volumes = volumes.list()?;
    let (mut volume_size, mut unused_size, mut active_volumes) = (0, 0, 0);
    for v in &all_volumes {
        let s = tree_size(&volumes.data_dir(&v.name));
        volume_size += s;
        if records.iter().any(|r| r.volumes.contains(&v.name)) {
            active_volumes += 1;
        } else {
            unused_size += s;
        }
    }
    let blobs: u64 = fs_err::read_dir(store.root().join("blobs/sha256"))?
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    let rows = vec![
        vec![
            "Images".into(),
            images.len().to_string(),
            active_images.to_string(),
            human_size(size),
            reclaimable(size - held_size, size),
        ],
        vec![
            "Containers".into(),
            records.len().to_string(),
            running.to_string(),
            human_size(container_size),
            reclaimable(stopped_size, container_size),
        ],
        vec![
            "Local Volumes".into(),
            all_volumes.len().to_string(),
            active_volumes.to_string(),
            human_size(volume_size),
            reclaimable(unused_size, volume_size),
        ],
        build_cache_row(&store)?,
        vec![
            "Image blobs".into(),
            "-".into(),
            "-".into(),
            human_size(blobs),
            "0B".into(),
        ],
    ];
    const FIELDS: [(&str, &str); 5] = [
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ];
    let objects = || -> Vec<serde_json::Value> {
        rows.iter()
            .map(|r| {
                let fields = FIELDS
                    .iter()
                    .zip(r)
                    .map(|((k, _), v)| (k.to_string(), json!(v)));
                serde_json::Value::Object(fields.collect())
            })
            .collect()
    };
    match format {
        Format::Default => print!(
            "{}",
            table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows)
        ),
        Format::Json => objects().iter().for_each(|o| println!("{o}")),
        Format::Template(t) => print!("{}", t.render(&objects(), &FIELDS)?),
    }
    Ok(0)
}

/// The build cache's row: records, those no image uses, and the bytes
/// only the cache keeps (all reclaimable, as in Docker).
fn build_cache_row(store: &Store) -> anyhow::Result<Vec<String>> {
    let u = crate::build_cache::usage(store)?;
    Ok(vec![
        "Build Cache".into(),
        u.entries.to_string(),
        (u.entries - u.dangling).to_string(),
        human_size(u.size),
        reclaimable(u.size, u.size),
    ])
}

/// Docker's RECLAIMABLE cell: `1.2MB (40%)`.
fn reclaimable(part: u64, total: u64) -> String {
    let pct = (part * 100).checked_div(total).unwrap_or(0);
    format!("{} ({pct}%)", human_size(part))
}

#[cfg(test)]
mod tests {
    use super::reclaimable;

    #[test]
    fn reclaimable_like_docker() {
        assert_eq!(reclaimable(0, 0), "0B (0%)");
        assert_eq!(reclaimable(500, 1000), "500B (50%)");
        assert_eq!(reclaimable(2_000_000, 2_000_000), "2MB (100%)");
    }
}
