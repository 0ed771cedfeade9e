//! Image archives: `save` writes an OCI image layout as a tar that also
//! carries docker-archive's `manifest.json` (so `docker load` reads it too);
//! `load` reads an OCI layout (tar or directory) or a docker-archive tar.
//!
//! Loading streams the tar once: every blob goes straight into the store's
//! `tmp/` while it is hashed and is kept only if it matches its name; small
//! metadata files are held in memory. Names inside the archive never become
//! paths: the store path of a blob is derived from its verified digest.

mod layout;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::digest::{Digest, HashingWriter};
use crate::manifest::{
    self, ConfigSummary, Descriptor, Document, Manifest, ManifestError, Platform,
};
use crate::reference::ImageRef;
use crate::registry::MAX_MANIFEST;
use crate::store::{ImageRecord, LayerRecord, Store, StoreError, display_name};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// Metadata files larger than this are not metadata.
const SMALL: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading the archive: {0}")]
    Tar(std::io::Error),
    #[error("archive blob {name} does not match its digest (got {actual}): the archive is corrupt")]
    BlobMismatch { name: String, actual: Digest },
    #[error(
        "not an image archive: no index.json (OCI layout) or manifest.json (docker-archive) in it"
    )]
    NotAnArchive,
    #[error("{path}: {why}")]
    LayoutFile { path: PathBuf, why: String },
    #[error("{what} is larger than 4 MiB: den reads manifests and image configs up to 4 MiB")]
    TooLarge { what: String },
    #[error("the archive lacks blob {0}")]
    MissingBlob(Digest),
    #[error("malformed {file} in the archive: {detail}")]
    Malformed { file: String, detail: String },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// One image to save, with the full names to store in the archive.
pub struct SaveItem {
    pub image: ImageRecord,
    pub names: Vec<String>,
}

/// Writes `items` as one tar to `out`.
pub fn save<W: Write>(store: &Store, items: &[SaveItem], out: W) -> Result<(), ArchiveError> {
    let mut tar = tar::Builder::new(out);
    let mut written = HashSet::new();
    let mut index = Vec::new();
    let mut docker = Vec::new();
    for item in items {
        let img = &item.image;
        let blobs = std::iter::once(&img.manifest)
            .chain(std::iter::once(&img.id))
            .chain(img.layers.iter().map(|l| &l.blob));
        for d in blobs {
            if written.insert(d.clone()) {
                let path = store.blob_path(d);
                let mut f = std::fs::File::open(&path).map_err(io(&path))?;
                tar.append_file(format!("blobs/sha256/{}", d.hex()), &mut f)
                    .map_err(ArchiveError::Tar)?;
            }
        }
        let size = std::fs::metadata(store.blob_path(&img.manifest))
            .map_err(io(&store.blob_path(&img.manifest)))?
            .len();
        let names: Vec<Option<&String>> = if item.names.is_empty() {
            vec![None]
        } else {
            item.names.iter().map(Some).collect()
        };
        for name in names {
            let mut desc = json!({"mediaType": img.manifest_media_type, "digest": img.manifest.to_string(), "size": size});
            if let Some(n) = name {
                let tag = n.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
                desc["annotations"] = json!({ CONTAINERD_NAME: n, REF_NAME: tag });
            }
            index.push(desc);
        }
        docker.push(DockerEntry {
            config: format!("blobs/sha256/{}", img.id.hex()),
            repo_tags: Some(
                item.names
                    .iter()
                    .map(|n| display_name(n).to_string())
                    .collect(),
            ),
            layers: img
                .layers
                .iter()
                .map(|l| format!("blobs/sha256/{}", l.blob.hex()))
                .collect(),
        });
    }
    let index = json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": index});
    append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    append_bytes(
        &mut tar,
        "index.json",
        &serde_json::to_vec(&index).expect("index serializes"),
    )?;
    append_bytes(
        &mut tar,
        "manifest.json",
        &serde_json::to_vec(&docker).expect("manifest serializes"),
    )?;
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(ArchiveError::Tar)
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> Result<(), ArchiveError> {
    let mut h = tar::Header::new_ustar();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, name, bytes)
        .map_err(ArchiveError::Tar)
}

/// What was in an archive: the images (their layers not yet unpacked and
/// their records not yet written: the caller unpacks, then records).
#[derive(Debug)]
pub struct Loaded {
    pub images: Vec<ImageRecord>,
}

/// Reads an archive from a tar stream. The caller holds the shared store lock.
pub fn load_tar<R: Read>(
    store: &Store,
    input: R,
    platform: &Platform,
) -> Result<Loaded, ArchiveError> {
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    let mut by_path: HashMap<String, Digest> = HashMap::new();
    let mut links: Vec<(String, String)> = Vec::new();
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(ArchiveError::Tar)? {
        let mut entry = entry.map_err(ArchiveError::Tar)?;
        let name = entry
            .path()
            .map_err(ArchiveError::Tar)?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        match entry.header().entry_type() {
            tar::EntryType::Symlink => {
                if let Some(target) = entry.link_name().map_err(ArchiveError::Tar)? {
                    let base = Path::new(&name).parent().unwrap_or(Path::new(""));
                    links.push((name.clone(), normalize(&base.join(target))));
                }
            }
            t if t.is_file() => {
                let named = name
                    .strip_prefix("blobs/sha256/")
                    .and_then(|h| Digest::from_hex(h).ok());
                if named.is_none() && entry.size() <= SMALL {
                    let mut buf = Vec::new();
                    entry.read_to_end(&mut buf).map_err(ArchiveError::Tar)?;
                    small.insert(name, buf);
                } else {
                    let d = import_stream(store, &mut entry, &name, named.as_ref())?;
                    by_path.insert(name, d);
                }
            }
            _ => {}
        }
    }
    for (link, target) in links {
        if let Some(d) = by_path.get(&target).cloned() {
            by_path.insert(link, d);
        }
    }
    let source = Source::Tar { small, by_path };
    build(store, &source, platform)
}

/// Reads an OCI layout directory.
pub fn load_dir(store: &Store, dir: &Path, platform: &Platform) -> Result<Loaded, ArchiveError> {
    build(store, &Source::Dir(dir.to_path_buf()), platform)
}

enum Source {
    Tar {
        small: HashMap<String, Vec<u8>>,
        by_path: HashMap<String, Digest>,
    },
    Dir(PathBuf),
}

impl Source {
    fn file(&self, name: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        match self {
            Self::Tar { small, .. } => Ok(small.get(name).cloned()),
            Self::Dir(dir) => layout::read_small(dir, name),
        }
    }

    /// Makes sure blob `desc` is in the store (a directory's blobs are
    /// copied, checked, read up to the descriptor's size).
    fn ensure(&self, store: &Store, desc: &Descriptor) -> Result<(), ArchiveError> {
        let d = &desc.digest;
        if store.has_blob(d) {
            return Ok(());
        }
        match self {
            Self::Tar { .. } => Err(ArchiveError::MissingBlob(d.clone())),
            Self::Dir(dir) => {
                let mut blob =
                    layout::blob(dir, desc)?.ok_or_else(|| ArchiveError::MissingBlob(d.clone()))?;
                let name = dir.join("blobs/sha256").join(d.hex());
                import_stream(store, &mut blob, &name.to_string_lossy(), Some(d)).map(drop)
            }
        }
    }

    /// [`Source::ensure`] for a manifest, index or config: at most 4 MiB.
    fn ensure_small(
        &self,
        store: &Store,
        desc: &Descriptor,
        what: &str,
    ) -> Result<(), ArchiveError> {
        if desc.size > MAX_MANIFEST {
            return Err(ArchiveError::TooLarge {
                what: format!("{what} {}", desc.digest),
            });
        }
        self.ensure(store, desc)
    }
}

/// Copies a stream into the store, hashing it; `expected` (from the name)
/// must match. Returns the digest.
fn import_stream(
    store: &Store,
    input: &mut dyn Read,
    name: &str,
    expected: Option<&Digest>,
) -> Result<Digest, ArchiveError> {
    let tmp = store.tmp_dir().join(format!(
        "put-load{}-{}",
        rand::random::<u32>(),
        crate::store::owner_suffix()
    ));
    let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    let mut w = HashingWriter {
        inner: std::io::BufWriter::with_capacity(1 << 20, file),
        hasher: Default::default(),
    };
    let copied = std::io::copy(input, &mut w).and_then(|_| w.flush());
    let actual = w.hasher.finish();
    if let Err(e) = copied {
        std::fs::remove_file(&tmp).ok();
        return Err(ArchiveError::Tar(e));
    }
    if expected.is_some_and(|e| e != &actual) {
        std::fs::remove_file(&tmp).ok();
        return Err(ArchiveError::BlobMismatch {
            name: name.to_string(),
            actual,
        });
    }
    if store.has_blob(&actual) {
        std::fs::remove_file(&tmp).ok();
    } else {
        store.commit_blob_file(&tmp, &actual)?;
    }
    Ok(actual)
}

fn build(store: &Store, source: &Source, platform: &Platform) -> Result<Loaded, ArchiveError> {
    if let Some(index) = source.file("index.json")? {
        return from_index(store, source, &index, platform);
    }
    if let Some(manifest) = source.file("manifest.json")? {
        return from_docker(store, source, &manifest);
    }
    Err(ArchiveError::NotAnArchive)
}

fn from_index(
    store: &Store,
    source: &Source,
    index: &[u8],
    platform: &Platform,
) -> Result<Loaded, ArchiveError> {
    let Document::Index(entries) = manifest::parse(index, manifest::OCI_INDEX)? else {
        return Err(ArchiveError::Malformed {
            file: "index.json".into(),
            detail: "not an image index".into(),
        });
    };
    let mut images: BTreeMap<Digest, ImageRecord> = BTreeMap::new();
    for entry in &entries {
        let name = entry_name(entry);
        source.ensure_small(store, entry, "manifest")?;
        let bytes = store.read_blob(&entry.digest)?;
        let (desc, bytes, m) = match manifest::parse(&bytes, &entry.media_type)? {
            Document::Manifest(m) => (entry.clone(), bytes, m),
            Document::Index(inner) => {
                let chosen = manifest::pick(&inner, platform)?.clone();
                source.ensure_small(store, &chosen, "manifest")?;
                let bytes = store.read_blob(&chosen.digest)?;
                let Document::Manifest(m) = manifest::parse(&bytes, &chosen.media_type)? else {
                    return Err(ArchiveError::Malformed {
                        file: "index.json".into(),
                        detail: "nested index".into(),
                    });
                };
                (chosen, bytes, m)
            }
        };
        let media_type = if desc.media_type.is_empty() {
            manifest::OCI_MANIFEST.to_string()
        } else {
            desc.media_type.clone()
        };
        let record = record_for(store, source, &m, Digest::of(&bytes), media_type)?;
        let rec = images.entry(record.id.clone()).or_insert(record);
        rec.names.extend(name.filter(|n| !rec.names.contains(n)));
    }
    Ok(Loaded {
        images: images.into_values().collect(),
    })
}

/// The full name an index entry carries, if it carries one that is a name
/// (OCI allows a bare tag like `latest` as ref name, which names nothing).
fn entry_name(entry: &Descriptor) -> Option<String> {
    let ann = entry.annotations.as_ref()?;
    let raw = ann.get(CONTAINERD_NAME).or_else(|| {
        ann.get(REF_NAME)
            .filter(|r| r.contains(':') || r.contains('/'))
    })?;
    ImageRef::parse(raw).ok()?.tagged_name()
}

fn from_docker(
    store: &Store,
    source: &Source,
    manifest_json: &[u8],
) -> Result<Loaded, ArchiveError> {
    let Source::Tar { small, by_path } = source else {
        return Err(ArchiveError::NotAnArchive);
    };
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(manifest_json).map_err(|e| ArchiveError::Malformed {
            file: "manifest.json".into(),
            detail: e.to_string(),
        })?;
    let mut images = Vec::new();
    for e in entries {
        let config = match (small.get(&e.config), by_path.get(&e.config)) {
            (Some(bytes), _) => store.put_blob(bytes)?,
            (None, Some(d)) => d.clone(),
            (None, None) => {
                return Err(ArchiveError::Malformed {
                    file: "manifest.json".into(),
                    detail: format!("config {} is not in the archive", e.config),
                });
            }
        };
        let config_size = std::fs::metadata(store.blob_path(&config))
            .map(|m| m.len())
            .unwrap_or(0);
        let mut layers = Vec::new();
        for path in &e.layers {
            let d = match (by_path.get(path), small.get(path)) {
                (Some(d), _) => d.clone(),
                (None, Some(bytes)) => store.put_blob(bytes)?,
                (None, None) => {
                    return Err(ArchiveError::Malformed {
                        file: "manifest.json".into(),
                        detail: format!("layer {path} is not in the archive"),
                    });
                }
            };
            let blob = store.blob_path(&d);
            let mut head = [0u8; 4];
            let mut f = std::fs::File::open(&blob).map_err(io(&blob))?;
            let n = f.read(&mut head).map_err(io(&blob))?;
            let media_type = match manifest::Compression::sniff(&head[..n]) {
                manifest::Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
                manifest::Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
                manifest::Compression::None => "application/vnd.oci.image.layer.v1.tar",
            };
            let size = f.metadata().map_err(io(&blob))?.len();
            layers.push(json!({"mediaType": media_type, "digest": d.to_string(), "size": size}));
        }
        let m = json!({"schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST, "config": {"mediaType": manifest::OCI_CONFIG, "digest": config.to_string(), "size": config_size}, "layers": layers});
        let bytes = serde_json::to_vec(&m).expect("manifest serializes");
        let manifest_digest = store.put_blob(&bytes)?;
        let Document::Manifest(parsed) = manifest::parse(&bytes, manifest::OCI_MANIFEST)? else {
            unreachable!("built as a manifest")
        };
        let mut record = record_for(
            store,
            source,
            &parsed,
            manifest_digest,
            manifest::OCI_MANIFEST.into(),
        )?;
        record.names = e
            .repo_tags
            .unwrap_or_default()
            .iter()
            .filter_map(|t| ImageRef::parse(t).ok()?.tagged_name())
            .collect();
        images.push(record);
    }
    Ok(Loaded { images })
}

/// An image record for manifest `m`, its blobs made sure to be in the store.
fn record_for(
    store: &Store,
    source: &Source,
    m: &Manifest,
    manifest: Digest,
    media_type: String,
) -> Result<ImageRecord, ArchiveError> {
    source.ensure_small(store, &m.config, "image config")?;
    let config = ConfigSummary::parse(&store.read_blob(&m.config.digest)?)?;
    if config.rootfs.diff_ids.len() != m.layers.len() {
        return Err(ArchiveError::Malformed {
            file: "image config".into(),
            detail: format!(
                "{} diff ids for {} layers",
                config.rootfs.diff_ids.len(),
                m.layers.len()
            ),
        });
    }
    let mut layers = Vec::new();
    for (l, diff_id) in m.layers.iter().zip(&config.rootfs.diff_ids) {
        source.ensure(store, l)?;
        layers.push(LayerRecord {
            blob: l.digest.clone(),
            media_type: l.media_type.clone(),
            size: l.size,
            diff_id: diff_id.clone(),
        });
    }
    Ok(ImageRecord {
        id: m.config.digest.clone(),
        names: Vec::new(),
        repo_digests: Vec::new(),
        manifest,
        manifest_media_type: media_type,
        layers,
        platform: Platform {
            architecture: config.architecture.clone(),
            os: config.os.clone(),
            variant: None,
        },
        created: config.created.clone(),
        size: 0,
    })
}

/// `a/b/../c` → `a/c`, for symlink targets inside a docker-archive.
fn normalize(p: &Path) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(s) => out.push(s.to_str().unwrap_or_default()),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out.join("/")
}
