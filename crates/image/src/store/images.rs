//! Image records: `images.json`, read freely, rewritten by rename under
//! `images.lock`.

use std::path::PathBuf;

use den_atomic::Durability;
use serde::{Deserialize, Serialize};

use super::{FileLock, Store, StoreError, io_err, read_record};
use crate::digest::Digest;
use crate::manifest::Platform;

/// The largest `images.json` read back: about 1 KiB per image record, so
/// tens of thousands of images.
const MAX_INDEX: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The compressed blob as the registry serves it.
    pub blob: Digest,
    pub media_type: String,
    pub size: u64,
    /// The digest of the uncompressed tar; names the unpacked layer.
    pub diff_id: Digest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config digest, as Docker's image id.
    pub id: Digest,
    /// Full references with tags: `docker.io/library/python:3.11-slim`.
    pub names: Vec<String>,
    /// `repository@digest` of the manifest (or index) each pull resolved.
    pub repo_digests: Vec<String>,
    pub manifest: Digest,
    pub manifest_media_type: String,
    pub layers: Vec<LayerRecord>,
    pub platform: Platform,
    /// The config's `created`, RFC 3339.
    pub created: Option<String>,
    /// Sum of the unpacked layers' sizes.
    pub size: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    images: Vec<ImageRecord>,
}

/// How `docker images` writes a name: Docker Hub's prefixes dropped.
pub fn display_name(full: &str) -> &str {
    full.strip_prefix("docker.io/library/")
        .or_else(|| full.strip_prefix("docker.io/"))
        .unwrap_or(full)
}

impl Store {
    fn index_path(&self) -> PathBuf {
        self.root.join("images.json")
    }

    /// All image records, as last written (bounded: [`MAX_INDEX`]).
    pub fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        match read_record::<Index>(&self.index_path(), MAX_INDEX) {
            Ok(index) => Ok(index.images),
            Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    /// Read-modify-write of the records under `images.lock`; the new file
    /// replaces the old one by rename, so readers never see half of it.
    pub fn update_images<T>(
        &self,
        f: impl FnOnce(&mut Vec<ImageRecord>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _lock = FileLock::exclusive(&self.root.join("images.lock"))?;
        let mut images = self.images()?;
        let out = f(&mut images)?;
        let path = self.index_path();
        let bytes = serde_json::to_vec_pretty(&Index { images }).expect("records serialize");
        den_atomic::replace_bytes(&path, &self.tmp_dir(), Durability::Synced, &bytes)
            .map_err(io_err("write", &path))?;
        Ok(out)
    }

    /// Adds or merges `record`; each of its names is taken away from any
    /// other image (which keeps its layers and may end up untagged).
    pub fn record_image(&self, record: ImageRecord) -> Result<(), StoreError> {
        self.update_images(|images| {
            for other in images.iter_mut().filter(|i| i.id != record.id) {
                other.names.retain(|n| !record.names.contains(n));
            }
            match images.iter_mut().find(|i| i.id == record.id) {
                Some(existing) => {
                    for n in &record.names {
                        if !existing.names.contains(n) {
                            existing.names.push(n.clone());
                        }
                    }
                    for d in &record.repo_digests {
                        if !existing.repo_digests.contains(d) {
                            existing.repo_digests.push(d.clone());
                        }
                    }
                }
                None => images.push(record),
            }
            Ok(())
        })
    }

    /// Finds an image by full name (`docker.io/library/busybox:latest`), by id
    /// or a unique id prefix (with or without `sha256:`), or by `repo@digest`.
    pub fn find_image(
        &self,
        images: &[ImageRecord],
        full_name: Option<&str>,
        raw: &str,
    ) -> Result<ImageRecord, StoreError> {
        if let Some(name) = full_name
            && let Some(i) = images.iter().find(|i| {
                i.names.iter().any(|n| n == name) || i.repo_digests.iter().any(|d| d == name)
            })
        {
            return Ok(i.clone());
        }
        let prefix = raw.strip_prefix("sha256:").unwrap_or(raw);
        if !prefix.is_empty() && prefix.len() <= 64 && prefix.bytes().all(|b| b.is_ascii_hexdigit())
        {
            let hits: Vec<&ImageRecord> = images
                .iter()
                .filter(|i| i.id.hex().starts_with(prefix))
                .collect();
            match hits.len() {
                0 => {}
                1 => return Ok(hits[0].clone()),
                count => {
                    return Err(StoreError::Ambiguous {
                        prefix: raw.to_string(),
                        count,
                    });
                }
            }
        }
        Err(StoreError::NoSuchImage(raw.to_string()))
    }
}
