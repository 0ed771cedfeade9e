//! The build cache: step key → what the step made (its layer, if any) and
//! when it first ran (so a cached rebuild writes the same history and
//! config, hence the same image id).
//!
//! Keys chain: a step's key hashes its parent's key and everything the
//! step's result depends on (see `Builder::instruction`). The index is one
//! file, `ROOT/build-cache.json`, read once per build and updated by
//! read-merge-write under `build-cache.lock`, written to a temporary file
//! and renamed in. A hit whose layer the store no longer has is a miss.

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
