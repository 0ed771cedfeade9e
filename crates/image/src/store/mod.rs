//! The content-addressed store. Theory of operation:
//!
//! ```text
//! ROOT/                         ($DEN_ROOT, --root, or $XDG_DATA_HOME/den), mode 0700
//!   store.lock                  shared: every command that adds to the store
//!                               exclusive: garbage collection (rmi, prune)
//!   images.json                 every image record; replaced by rename under images.lock
//!   images.lock                 exclusive while images.json is read-modified-written
//!   blobs/sha256/<hex>          verified blobs: manifests, configs, compressed layers
//!   layers/<diff-id hex>/       one unpacked layer: diff/ (the tree), meta.json
//!   tmp/blob-<hex>.partial      a download in progress (kept: the next pull resumes it)
//!   tmp/blob-<hex>.lock         held while that blob is downloaded
//!   tmp/layer-<hex>.lock        held while that layer is unpacked
//!   tmp/unpack-<hex>/           a layer being unpacked
//!   tmp/trash-*/                removed layers waiting to be deleted
//!   tmp/put-*, tmp/write-*      files being written, renamed in when whole
//!                               (write-*: any record replaced through den_atomic)
//! ```
//!
//! Every temp file lives in `tmp/`. Those named `*-PID-START` (put, trash,
//! write) record the den process that made them; opening the
//! store removes the ones whose process is gone (see `tmp.rs`).
//!
//! Invariants:
//! - A blob under `blobs/` always hashes to its name: downloads land in
//!   `tmp/` and are renamed in only after their digest was checked.
//! - A directory under `layers/` is complete: unpacking happens in `tmp/` and
//!   the directory is renamed in only after the uncompressed stream matched its
//!   diff id.
//! - An image record is written last, after all its blobs and layers exist,
//!   so an image that is listed is whole. A `kill -9` at any moment leaves at
//!   worst files in `tmp/`, which the next pull resumes or the next gc removes.
//! - Garbage collection holds `store.lock` exclusively, so it never deletes a
//!   blob or layer that a running pull has fetched but not yet recorded.
//! - Unpacked layers hold files owned by subordinate ids: they are created
//!   and deleted only by a den process inside the user namespace.
//!
//! The rest of `ROOT` keeps the same promises, in the CLI's modules that
//! own it (each module doc has its layout): `containers/` (`cli::containers`:
//! a directory is built as `.new-<id>`, record first, and renamed in whole;
//! removal renames it to `.rm-<id>`), `volumes/` (`cli::volumes`: `.new-*`
//! and `.rm-*` the same way) and `networks/` (`cli::networks`: removal via
//! `.rm-<name>`). A `kill -9` at any moment leaves only such dot-entries,
//! never listed, and the next command that opens the directory (containers,
//! networks) or removes and prunes (volumes) deletes them under the lock.
//! Their records are replaced through the store's `tmp/` too (`den_atomic`).

mod gc;
mod images;
mod layers;
mod lock;
mod tmp;

use std::path::{Path, PathBuf};

pub use gc::Collected;
pub use images::{ImageRecord, LayerRecord, display_name};
pub use layers::LayerInfo;
pub use lock::FileLock;
pub(crate) use tmp::owner_suffix;

use crate::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is corrupt: {detail}; remove it, or run `den image prune`")]
    Corrupt { path: PathBuf, detail: String },
    #[error("no such image: {0}")]
    NoSuchImage(String),
    #[error("image id prefix {prefix} is ambiguous: it matches {count} images")]
    Ambiguous { prefix: String, count: usize },
    #[error("cannot remove {image}: {reason}")]
    Refused { image: String, reason: String },
    #[error("blob {0} is not in the store")]
    MissingBlob(Digest),
    #[error("layer {layer}: {source}")]
    Unpack {
        layer: Digest,
        source: crate::unpack::UnpackError,
    },
    #[error("layer {layer} does not match its diff id: got {actual}; the image is corrupt")]
    DiffIdMismatch { layer: Digest, actual: Digest },
}

/// A record den wrote in the store (`images.json`, a layer's
/// `meta.json`), read through `den_atomic::read_json`: at most `max`
/// bytes, else refused as corrupt with its path.
pub(crate) fn read_record<T: serde::de::DeserializeOwned>(
    path: &Path,
    max: u64,
) -> Result<T, StoreError> {
    use den_atomic::ReadError;
    den_atomic::read_json(path, max).map_err(|e| match e {
        ReadError::Io { path, source } => StoreError::Io {
            op: "read",
            path,
            source,
        },
        ReadError::Invalid { path, source } => StoreError::Corrupt {
            path,
            detail: source.to_string(),
        },
        ReadError::TooLarge { path, max } => StoreError::Corrupt {
            path,
            detail: format!("larger than {max} bytes, more than den ever writes there"),
        },
    })
}

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A handle on one store directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        use std::os::unix::fs::DirBuilderExt;
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true).mode(0o700);
        for sub in ["blobs/sha256", "layers", "tmp"] {
            let dir = root.join(sub);
            b.create(&dir).map_err(io_err("create", &dir))?;
        }
        let store = Self {
            root: root.to_path_buf(),
        };
        store.sweep_tmp();
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Held by every command that adds blobs, layers or images.
    pub fn lock_shared(&self) -> Result<FileLock, StoreError> {
        FileLock::shared(&self.root.join("store.lock"))
    }

    /// Held by garbage collection.
    pub fn lock_exclusive(&self) -> Result<FileLock, StoreError> {
        FileLock::exclusive(&self.root.join("store.lock"))
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).exists()
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(d);
        std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::MissingBlob(d.clone())
            } else {
                StoreError::Io {
                    op: "read",
                    path,
                    source: e,
                }
            }
        })
    }

    /// Stores small bytes (a manifest, a config) under their digest. Threads
    /// of one den (a build's parallel stages pulling one base) may put the
    /// same blob at once: each writes a temp file of its own (a counter
    /// before the owner suffix), and the last rename wins with equal bytes.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        static PUTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let d = Digest::of(bytes);
        if !self.has_blob(&d) {
            let n = PUTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = self
                .tmp_dir()
                .join(format!("put-{}.{n}-{}", d.hex(), tmp::owner_suffix()));
            std::fs::write(&tmp, bytes).map_err(io_err("write", &tmp))?;
            self.commit_blob_file(&tmp, &d)?;
        }
        Ok(d)
    }

    /// Where a download of `d` in progress is kept.
    pub fn partial_path(&self, d: &Digest) -> PathBuf {
        self.tmp_dir().join(format!("blob-{}.partial", d.hex()))
    }

    /// Serializes downloads of one blob across den processes.
    pub fn lock_blob(&self, d: &Digest) -> Result<FileLock, StoreError> {
        FileLock::exclusive(&self.tmp_dir().join(format!("blob-{}.lock", d.hex())))
    }

    /// Renames a verified file into `blobs/`. The caller checked the digest.
    pub fn commit_blob_file(&self, file: &Path, d: &Digest) -> Result<(), StoreError> {
        let dest = self.blob_path(d);
        std::fs::rename(file, &dest).map_err(io_err("rename into", &dest))
    }

    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    /// The tree overlayfs uses as a lower directory.
    pub fn layer_tree(&self, diff_id: &Digest) -> PathBuf {
        self.layer_dir(diff_id).join("diff")
    }

    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_dir(diff_id).join("meta.json").exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `path` made `len` bytes long (sparse: nothing is written).
    fn grow(path: &Path, len: u64) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::File::create(path).unwrap().set_len(len).unwrap();
    }

    fn refused(path: &Path, max: u64) -> String {
        format!(
            "{} is corrupt: larger than {max} bytes, more than den ever writes there; remove it, or run `den image prune`",
            path.display()
        )
    }

    /// Parallel build stages put the same manifest at once: every put
    /// succeeds (they shared one temp name, and all but the first rename
    /// failed with ENOENT).
    #[test]
    fn the_same_blob_put_from_many_threads_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let bytes = vec![7u8; 1 << 20];
        std::thread::scope(|s| {
            let puts: Vec<_> = (0..8).map(|_| s.spawn(|| store.put_blob(&bytes))).collect();
            for p in puts {
                assert_eq!(p.join().unwrap().unwrap(), Digest::of(&bytes));
            }
        });
        assert_eq!(store.read_blob(&Digest::of(&bytes)).unwrap(), bytes);
    }

    #[test]
    fn an_oversized_image_index_is_refused_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.images().unwrap().is_empty(), "no index: no images");
        let index = dir.path().join("images.json");
        grow(&index, (64 << 20) + 1);
        let e = store.images().unwrap_err();
        assert_eq!(e.to_string(), refused(&index, 64 << 20));
    }

    #[test]
    fn an_oversized_layer_meta_is_refused_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = Digest::of(b"layer");
        let meta = store.layer_dir(&layer).join("meta.json");
        grow(&meta, (1 << 20) + 1);
        let e = store.layer_info(&layer).unwrap_err();
        assert_eq!(e.to_string(), refused(&meta, 1 << 20));
    }
}
