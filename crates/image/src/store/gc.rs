//! Garbage collection: blobs and layers that no image record names.

use std::collections::HashSet;

use super::{Store, StoreError, io_err};
use crate::digest::Digest;

/// What a collection removed.
#[derive(Debug, Default)]
pub struct Collected {
    pub blobs: u64,
    pub layers: u64,
    pub bytes: u64,
}

impl Store {
    /// Deletes unreferenced blobs and moves unreferenced layers to the trash
    /// (delete them with [`Store::purge_tmp`] inside the user namespace).
    /// `in_use` are layers that something other than an image record needs.
    /// Takes the exclusive store lock: no pull is half-way while it runs.
    pub fn collect_garbage(&self, in_use: &HashSet<Digest>) -> Result<Collected, StoreError> {
        let _lock = self.lock_exclusive()?;
        let images = self.images()?;
        let mut blobs: HashSet<Digest> = HashSet::new();
        let mut layers: HashSet<Digest> = in_use.clone();
        for img in &images {
            blobs.insert(img.id.clone());
            blobs.insert(img.manifest.clone());
            for d in &img.repo_digests {
                if let Some(Ok(d)) = d.rsplit_once('@').map(|(_, d)| d.parse::<Digest>()) {
                    blobs.insert(d);
                }
            }
            for l in &img.layers {
                blobs.insert(l.blob.clone());
                layers.insert(l.diff_id.clone());
            }
        }
        let mut out = Collected::default();
        let dir = self.root.join("blobs/sha256");
        for entry in std::fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let keep = Digest::from_hex(&entry.file_name().to_string_lossy())
                .is_ok_and(|d| blobs.contains(&d));
            if !keep {
                out.bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(entry.path()).map_err(io_err("remove", &entry.path()))?;
                out.blobs += 1;
            }
        }
        let dir = self.root.join("layers");
        for entry in std::fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let Ok(d) = Digest::from_hex(&entry.file_name().to_string_lossy()) else {
                continue;
            };
            if !layers.contains(&d) {
                out.bytes += self.layer_info(&d).map(|i| i.size).unwrap_or(0);
                self.trash_layer(&d)?;
                out.layers += 1;
            }
        }
        Ok(out)
    }
}
