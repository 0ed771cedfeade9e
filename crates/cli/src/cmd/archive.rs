//! `den save` and `den load`.

use std::io::IsTerminal;

use anyhow::{Context as _, bail};
use den_image::archive::{self, SaveItem};
use den_image::manifest::Platform;
use den_image::pull::Unpacker;
use den_image::reference::ImageRef;
use den_image::store::{ImageRecord, Store, display_name};
use futures_util::future::try_join_all;

use crate::args::{LoadArgs, SaveArgs};
use crate::context::Context;

pub fn save(ctx: &Context, args: &SaveArgs) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let images = store.images()?;
    let mut items: Vec<SaveItem> = Vec::new();
    for input in &args.images {
        let image = crate::local_images::resolve(&store, &images, input)?;
        let by_name = ImageRef::parse(input)
            .ok()
            .and_then(|r| r.tagged_name())
            .filter(|n| image.names.contains(n));
        let names = match by_name {
            Some(n) => vec![n],
            None => image.names.clone(),
        };
        match items.iter_mut().find(|i| i.image.id == image.id) {
            Some(item) => {
                for n in names {
                    if !item.names.contains(&n) {
                        item.names.push(n);
                    }
                }
            }
            None => items.push(SaveItem { image, names }),
        }
    }
    match &args.output {
        Some(path) => {
            // Written next to the target and renamed: a failed save leaves no half file.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = tempfile_in(dir)?;
            archive::save(&store, &items, std::io::BufWriter::new(tmp.as_file()))
                .with_context(|| format!("writing {}", path.display()))?;
            tmp.persist(path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None if std::io::stdout().is_terminal() => {
            bail!("refusing to write an archive to a terminal: use -o FILE or redirect the output")
        }
        None => archive::save(&store, &items, std::io::stdout().lock())?,
    }
    Ok(0)
}

fn tempfile_in(dir: &std::path::Path) -> anyhow::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".den-save-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))
}

pub fn load(ctx: &Context, args: &LoadArgs) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let platform = Platform::host();
    let _shared = store.lock_shared()?;
    let loaded = match &args.input {
        Some(p) if p.is_dir() => archive::load_dir(&store, p, &platform),
        Some(p) => {
            let f = fs_err::File::open(p)?;
            archive::load_tar(
                &store,
                std::io::BufReader::with_capacity(1 << 20, f),
                &platform,
            )
        }
        None if std::io::stdin().is_terminal() => {
            bail!("no archive on standard input: use -i FILE or pipe one in")
        }
        None => archive::load_tar(&store, std::io::stdin().lock(), &platform),
    }
    .context("loading images")?;
    let unpacker = crate::registry::ChildUnpacker {
        root: ctx.root.clone(),
    };
    let rt = crate::registry::runtime()?;
    for mut image in loaded.images {
        rt.block_on(unpack_all(&store, &unpacker, &mut image))
            .context("loading images")?;
        store.record_image(image.clone())?;
        if !args.quiet {
            match image.names.is_empty() {
                true => println!("Loaded image ID: {}", image.id),
                false => image
                    .names
                    .iter()
                    .for_each(|n| println!("Loaded image: {}", display_name(n))),
            }
        }
    }
    Ok(0)
}

/// Unpacks the layers of `image` that are not unpacked yet, in parallel, and sets its size.
async fn unpack_all(
    store: &Store,
    unpacker: &crate::registry::ChildUnpacker,
    image: &mut ImageRecord,
) -> anyhow::Result<()> {
    let jobs = image.layers.iter().map(|l| async move {
        if store.has_layer(&l.diff_id) {
            return Ok(store.layer_info(&l.diff_id)?);
        }
        unpacker
            .unpack(&l.blob, &l.diff_id)
            .await
            .map_err(|e| anyhow::anyhow!("layer {}: {e}", l.blob))
    });
    let infos = try_join_all(jobs).await?;
    image.size = infos.iter().map(|i| i.size).sum();
    Ok(())
}
