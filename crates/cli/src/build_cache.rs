//! The build cache: step key → what the step made (its layer, if any) and
//! when it first ran (so a cached rebuild writes the same history and
//! config, hence the same image id).
//!
//! Keys chain: a step's key hashes its parent's key and everything the
//! step's result depends on (see `Builder::instruction`). The index is one
//! file, `ROOT/build-cache.json`, read once per build and updated by
//! read-merge-write under `build-cache.lock`, written to a temporary file
//! and renamed in. A hit whose layer the store no longer has is a miss.
//!
//! [`usage`] (`den system df`) and [`prune`] (`den builder prune`) see the
//! cache as its records, the layers only they keep (no image has them),
//! and the `RUN --mount=type=cache` directories.

use std::collections::BTreeMap;
use std::path::PathBuf;

use den_image::store::{FileLock, LayerRecord, Store};
use serde::{Deserialize, Serialize};

use crate::private::write_atomic;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hit {
    pub layer: Option<LayerRecord>,
    pub created: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    entries: BTreeMap<String, Hit>,
}

pub struct Cache {
    root: PathBuf,
    path: PathBuf,
    lock: PathBuf,
    index: Index,
}

/// The index is bounded: a larger file is treated as corrupt and ignored.
const MAX_INDEX: u64 = 64 << 20;

impl Cache {
    pub fn open(store: &Store) -> Self {
        let path = store.root().join("build-cache.json");
        let index = read(&path).unwrap_or_default();
        Cache {
            root: store.root().to_path_buf(),
            lock: store.root().join("build-cache.lock"),
            path,
            index,
        }
    }

    /// The step's recorded result, if its layer is still in the store.
    pub fn get(&self, store: &Store, key: &str) -> Option<Hit> {
        let hit = self.index.entries.get(key)?;
        match &hit.layer {
            Some(l) if !(store.has_blob(&l.blob) && store.has_layer(&l.diff_id)) => None,
            _ => Some(hit.clone()),
        }
    }

    /// Records a step's result (merged into the index on disk).
    pub fn put(&mut self, key: &str, hit: Hit) -> anyhow::Result<()> {
        let _lock = FileLock::exclusive(&self.lock)?;
        let mut index = read(&self.path).unwrap_or_default();
        index.entries.insert(key.to_owned(), hit);
        write_atomic(&self.root, &self.path, &serde_json::to_vec(&index)?)?;
        self.index = index;
        Ok(())
    }
}

fn read(path: &std::path::Path) -> Option<Index> {
    den_atomic::read_json(path, MAX_INDEX).ok()
}

/// `sha256:` of the parts, each length-prefixed so they cannot run together.
pub fn key(parts: &[&str]) -> String {
    let mut bytes = Vec::new();
    for p in parts {
        bytes.extend_from_slice(&(p.len() as u64).to_le_bytes());
        bytes.extend_from_slice(p.as_bytes());
    }
    den_image::digest::Digest::of(&bytes).to_string()
}

/// Content hashes of context files, remembered in `ROOT/build-hashes.json`
/// keyed by (device, inode, size, mtime, ctime), all in nanoseconds where
/// they have them: any write changes the ctime, so a changed file is always
/// read again, while an unchanged context is not read at all. Read once
/// per build; saved (read-merge-write under `build-cache.lock`, temp file
/// and rename) when it learnt something.
pub struct HashMemo {
    path: PathBuf,
    lock: PathBuf,
    known: std::collections::HashMap<String, String>,
    learnt: std::collections::HashMap<String, String>,
}

/// The memo is bounded like the index.
const MAX_MEMO: u64 = 64 << 20;

impl HashMemo {
    pub fn open(store: &Store) -> Self {
        let path = store.root().join("build-hashes.json");
        let known = read_json(&path, MAX_MEMO).unwrap_or_default();
        HashMemo {
            lock: store.root().join("build-cache.lock"),
            path,
            known,
            learnt: Default::default(),
        }
    }

    fn stat_key(meta: &std::fs::Metadata) -> String {
        use std::os::unix::fs::MetadataExt;
        format!(
            "{}:{}:{}:{}.{}:{}.{}",
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        )
    }

    /// The file's hash: remembered, or read now (and remembered).
    pub fn hash(
        &mut self,
        path: &std::path::Path,
        meta: &std::fs::Metadata,
    ) -> std::io::Result<String> {
        let key = Self::stat_key(meta);
        if let Some(h) = self.known.get(&key).or_else(|| self.learnt.get(&key)) {
            return Ok(h.clone());
        }
        let h = den_build::context::hash_file(path, meta)?;
        // Read between two stats that agree: a file written meanwhile is
        // not remembered under a key that could outlive the write.
        if fs_err::symlink_metadata(path).is_ok_and(|m| Self::stat_key(&m) == key) {
            self.learnt.insert(key, h.clone());
        }
        Ok(h)
    }

    /// Saves what this build learnt.
    pub fn save(&mut self) -> anyhow::Result<()> {
        if self.learnt.is_empty() {
            return Ok(());
        }
        let _lock = FileLock::exclusive(&self.lock)?;
        let mut all: std::collections::HashMap<String, String> =
            read_json(&self.path, MAX_MEMO).unwrap_or_default();
        all.extend(self.learnt.drain());
        let root =
            anyhow::Context::context(self.path.parent(), "build-hashes.json has no directory")?;
        write_atomic(root, &self.path, &serde_json::to_vec(&all)?)?;
        self.known = all;
        Ok(())
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path, max: u64) -> Option<T> {
    den_atomic::read_json(path, max).ok()
}

/// What the build cache holds, for `den system df`.
pub struct Usage {
    /// Step records.
    pub entries: usize,
    /// Records whose layer no image has, whether the store still keeps it
    /// or not (what `prune` without `-a` drops).
    pub dangling: usize,
    /// Bytes of the layers only the cache keeps, and of the cache mounts.
    pub size: u64,
}

/// The layers of every image in the store.
fn image_layers(store: &Store) -> anyhow::Result<std::collections::HashSet<String>> {
    Ok(store
        .images()?
        .iter()
        .flat_map(|i| &i.layers)
        .map(|l| l.diff_id.to_string())
        .collect())
}

fn mounts_dir(store: &Store) -> PathBuf {
    store.root().join("build-mounts").join("cache")
}

pub fn usage(store: &Store) -> anyhow::Result<Usage> {
    let index = read(&store.root().join("build-cache.json")).unwrap_or_default();
    let in_images = image_layers(store)?;
    let mut seen = std::collections::HashSet::new();
    let (mut dangling, mut size) = (0, 0);
    for l in index.entries.values().filter_map(|h| h.layer.as_ref()) {
        let id = l.diff_id.to_string();
        if in_images.contains(&id) {
            continue;
        }
        // No image has it: the cache's alone, or gone (a dead record).
        dangling += 1;
        if store.has_layer(&l.diff_id) && seen.insert(id) {
            size += store.layer_info(&l.diff_id).map(|i| i.size).unwrap_or(0);
        }
    }
    size += crate::volumes::tree_size(&mounts_dir(store));
    Ok(Usage {
        entries: index.entries.len(),
        dangling,
        size,
    })
}

/// Drops the records whose layer no image has (`all`: every record, the
/// cache mounts and the hash memo), under the store's exclusive lock (no
/// build runs meanwhile); the number of records dropped. The layers they
/// kept are then unreferenced: the caller collects them.
pub fn prune(store: &Store, all: bool) -> anyhow::Result<usize> {
    let _store = store.lock_exclusive()?;
    let _lock = FileLock::exclusive(&store.root().join("build-cache.lock"))?;
    let path = store.root().join("build-cache.json");
    let mut index = read(&path).unwrap_or_default();
    let before = index.entries.len();
    if all {
        index.entries.clear();
        let memo = store.root().join("build-hashes.json");
        if memo.exists() {
            fs_err::remove_file(&memo)?;
        }
        let mounts = mounts_dir(store);
        if mounts.exists() {
            for e in fs_err::read_dir(&mounts)? {
                let p = e?.path();
                if p.is_dir() {
                    fs_err::remove_dir_all(&p)?;
                } else {
                    fs_err::remove_file(&p)?;
                }
            }
        }
    } else {
        let in_images = image_layers(store)?;
        index.entries.retain(|_, h| {
            h.layer
                .as_ref()
                .is_none_or(|l| in_images.contains(&l.diff_id.to_string()))
        });
    }
    if path.exists() {
        write_atomic(store.root(), &path, &serde_json::to_vec(&index)?)?;
    }
    Ok(before - index.entries.len())
}

/// Removes unreferenced blobs and layers (those a container record names
/// are kept), then empties the trash inside the user namespace: what
/// `den image prune` does after removing images.
pub fn collect(ctx: &crate::context::Context, store: &Store) -> anyhow::Result<()> {
    let in_use: std::collections::HashSet<den_image::digest::Digest> =
        crate::containers::Containers::open(&ctx.root)?
            .list()?
            .iter()
            .flat_map(|r| &r.layers)
            .filter_map(|l| l.parse().ok())
            .collect();
    store.collect_garbage(&in_use)?;
    crate::in_userns::purge(ctx)
}
