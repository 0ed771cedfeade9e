//! Unpacked layers: creation (inside den's user namespace, so file owners
//! map to subordinate ids) and removal through `tmp/trash-*`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{FileLock, Store, StoreError, io_err, read_record};

/// The largest layer `meta.json` read back (den writes a few hundred bytes).
const MAX_META: u64 = 1 << 20;
use crate::digest::{Digest, HashingReader};
use crate::manifest::Compression;
use crate::unpack::{UnpackOptions, unpack_layer};

/// What unpacking a layer found; kept as `layers/<hex>/meta.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LayerInfo {
    pub diff_id: Option<Digest>,
    /// Bytes of the uncompressed tar stream.
    pub size: u64,
    pub entries: u64,
    /// Entries not reproduced (device nodes, xattrs the kernel refused).
    pub skipped: Vec<String>,
}

impl Store {
    /// Unpacks blob `blob` as layer `diff_id` unless it is already there.
    /// Safe to call from several processes at once: the layer lock serializes
    /// them and the second finds the layer done. Must run inside den's user
    /// namespace (as its root) so image file owners are kept.
    pub fn unpack_layer(
        &self,
        blob: &Digest,
        diff_id: &Digest,
        opts: &UnpackOptions,
    ) -> Result<LayerInfo, StoreError> {
        let _lock =
            FileLock::exclusive(&self.tmp_dir().join(format!("layer-{}.lock", diff_id.hex())))?;
        let meta = self.layer_dir(diff_id).join("meta.json");
        match read_record(&meta, MAX_META) {
            Err(StoreError::Io { .. }) => {} // not unpacked yet
            done => return done,
        }
        let work = self.tmp_dir().join(format!("unpack-{}", diff_id.hex()));
        remove_tree(&work)?;
        let result = self.unpack_into(&work, blob, diff_id, opts);
        if result.is_err() {
            remove_tree(&work).ok();
        }
        let info = result?;
        let dest = self.layer_dir(diff_id);
        // A layer directory without meta.json is the leftover of an older crash.
        remove_tree(&dest)?;
        std::fs::rename(&work, &dest).map_err(io_err("rename into", &dest))?;
        Ok(info)
    }

    fn unpack_into(
        &self,
        work: &Path,
        blob: &Digest,
        diff_id: &Digest,
        opts: &UnpackOptions,
    ) -> Result<LayerInfo, StoreError> {
        let tree = work.join("diff");
        std::fs::create_dir_all(&tree).map_err(io_err("create", &tree))?;
        let path = self.blob_path(blob);
        let file = File::open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::MissingBlob(blob.clone())
            } else {
                StoreError::Io {
                    op: "open",
                    path: path.clone(),
                    source: e,
                }
            }
        })?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let head = std::io::BufRead::fill_buf(&mut reader).map_err(io_err("read", &path))?;
        let stream: Box<dyn Read> = match Compression::sniff(head) {
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(reader).map_err(io_err("zstd", &path))?,
            ),
            Compression::None => Box::new(reader),
        };
        let mut hashing = HashingReader::new(stream);
        let report =
            unpack_layer(&mut hashing, &tree, opts).map_err(|source| StoreError::Unpack {
                layer: blob.clone(),
                source,
            })?;
        let (actual, size) = hashing.finish().map_err(io_err("decompress", &path))?;
        if &actual != diff_id {
            return Err(StoreError::DiffIdMismatch {
                layer: blob.clone(),
                actual,
            });
        }
        let info = LayerInfo {
            diff_id: Some(diff_id.clone()),
            size,
            entries: report.entries,
            skipped: report.skipped,
        };
        let meta = work.join("meta.json");
        std::fs::write(
            &meta,
            serde_json::to_vec(&info).expect("layer info serializes"),
        )
        .map_err(io_err("write", &meta))?;
        Ok(info)
    }

    /// Size and notes of an unpacked layer.
    pub fn layer_info(&self, diff_id: &Digest) -> Result<LayerInfo, StoreError> {
        let meta = self.layer_dir(diff_id).join("meta.json");
        read_record(&meta, MAX_META)
    }

    /// Moves a layer out of `layers/` (atomic; the layer is gone for readers)
    /// into `tmp/trash-*`, to be deleted by [`Store::purge_tmp`].
    pub fn trash_layer(&self, diff_id: &Digest) -> Result<(), StoreError> {
        let dir = self.layer_dir(diff_id);
        let trash =
            self.tmp_dir()
                .join(format!("trash-{}-{}", diff_id.hex(), super::owner_suffix()));
        match std::fs::rename(&dir, &trash) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io {
                op: "move to trash",
                path: dir,
                source: e,
            }),
        }
    }

    /// Deletes trashed layers and abandoned unpack directories. Needs the user
    /// namespace (their files belong to subordinate ids). Takes the exclusive
    /// store lock, so no unpack is in progress.
    pub fn purge_tmp(&self) -> Result<(), StoreError> {
        let _lock = self.lock_exclusive()?;
        let tmp = self.tmp_dir();
        for entry in std::fs::read_dir(&tmp).map_err(io_err("list", &tmp))? {
            let entry = entry.map_err(io_err("list", &tmp))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("trash-") || name.starts_with("unpack-") || name.starts_with("put-")
            {
                remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }
}

/// Removes a tree, making read-only directories writable first (a layer may
/// hold `dr-xr-xr-x` directories). Missing is fine.
pub fn remove_tree(path: &Path) -> Result<(), StoreError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(StoreError::Io {
                op: "stat",
                path: path.to_path_buf(),
                source: e,
            });
        }
        Ok(m) if !m.is_dir() => return std::fs::remove_file(path).map_err(io_err("remove", path)),
        Ok(_) => {}
    }
    if std::fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    make_writable(path);
    std::fs::remove_dir_all(path).map_err(io_err("remove", path))
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mode = meta.permissions().mode();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o700)).ok();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            make_writable(&e.path());
        }
    }
}
