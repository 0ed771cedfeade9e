//! `pull`: resolve a reference on a registry (mirrors first), fetch the
//! manifest, config and missing layer blobs in parallel, unpack each layer as
//! soon as it is there, and record the image last.

use std::future::Future;
use std::pin::Pin;

use futures_util::future::try_join_all;

use crate::digest::Digest;
use crate::manifest::{self, ConfigSummary, Document, Manifest, ManifestError, Platform};
use crate::reference::ImageRef;
use crate::registries::{Endpoint, RegistriesConf};
use crate::registry::{Client, Fetched, MAX_MANIFEST, RegistryError, Repo};
use crate::store::{ImageRecord, LayerInfo, LayerRecord, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the image config lists {diff_ids} layers but the manifest has {layers}: malformed image"
    )]
    LayerCount { diff_ids: usize, layers: usize },
    #[error("unpacking layer {layer}: {detail}")]
    Unpack { layer: Digest, detail: String },
    #[error("background task failed: {0}")]
    Task(String),
}

/// What a pull reports as it goes.
#[derive(Debug, Clone)]
pub enum Event {
    Resolved { endpoint: String, manifest: Digest },
    LayerExists { blob: Digest },
    Downloading { blob: Digest, size: u64 },
    Progress { blob: Digest, done: u64 },
    Extracting { blob: Digest },
    LayerDone { blob: Digest },
}

pub trait Progress: Sync {
    fn event(&self, e: Event);
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Unpacks a stored blob as a layer. The `cli` implements it by running den
/// inside the user namespace; tests may call [`Store::unpack_layer`] directly.
pub trait Unpacker: Sync {
    fn unpack<'a>(
        &'a self,
        blob: &'a Digest,
        diff_id: &'a Digest,
    ) -> BoxFuture<'a, Result<LayerInfo, String>>;
}

pub struct PullOptions {
    pub platform: Platform,
    /// `--tls-verify`: `None` follows registries.toml.
    pub tls_verify: Option<bool>,
}

pub struct Puller<'a> {
    pub store: &'a Store,
    pub client: &'a Client,
    pub conf: &'a RegistriesConf,
    pub unpacker: &'a dyn Unpacker,
    pub progress: &'a dyn Progress,
}

impl Puller<'_> {
    pub async fn pull(
        &self,
        image: &ImageRef,
        opts: &PullOptions,
    ) -> Result<ImageRecord, PullError> {
        let endpoints = self.conf.endpoints(&image.registry, opts.tls_verify);
        let (endpoint, top) = self.resolve(&endpoints, image).await?;
        let repo = Repo {
            endpoint: &endpoint,
            name: &image.repository,
        };
        self.progress.event(Event::Resolved {
            endpoint: endpoint.host.clone(),
            manifest: top.digest.clone(),
        });
        let (fetched, manifest) = match manifest::parse(&top.bytes, &top.media_type)? {
            Document::Manifest(m) => (top.clone(), m),
            Document::Index(entries) => {
                let entry = manifest::pick(&entries, &opts.platform)?;
                let fetched = self
                    .client
                    .get_manifest(repo, &entry.digest.to_string())
                    .await?;
                match manifest::parse(&fetched.bytes, &fetched.media_type)? {
                    Document::Manifest(m) => (fetched, m),
                    Document::Index(_) => {
                        return Err(ManifestError::Malformed(
                            "an index entry points to another index".into(),
                        )
                        .into());
                    }
                }
            }
        };
        let _shared = self.store.lock_shared()?;
        self.store.put_blob(&top.bytes)?;
        self.store.put_blob(&fetched.bytes)?;
        if manifest.config.size > MAX_MANIFEST {
            return Err(RegistryError::TooLarge {
                host: endpoint.host.clone(),
                what: format!("image config {}", manifest.config.digest),
            }
            .into());
        }
        self.fetch_blob(repo, &manifest.config.digest, manifest.config.size)
            .await?;
        let config = ConfigSummary::parse(&self.store.read_blob(&manifest.config.digest)?)?;
        let layers = self.fetch_layers(repo, &manifest, &config).await?;
        let platform = Platform {
            architecture: config.architecture.clone(),
            os: config.os.clone(),
            variant: None,
        };
        let record = ImageRecord {
            id: manifest.config.digest.clone(),
            names: image.tagged_name().into_iter().collect(),
            repo_digests: vec![format!("{}@{}", image.repo_name(), top.digest)],
            manifest: fetched.digest.clone(),
            manifest_media_type: if fetched.media_type.is_empty() {
                manifest::OCI_MANIFEST.into()
            } else {
                fetched.media_type.clone()
            },
            size: layers.iter().map(|(_, info)| info.size).sum(),
            layers: layers.into_iter().map(|(l, _)| l).collect(),
            platform,
            created: config.created.clone(),
        };
        self.store.record_image(record.clone())?;
        Ok(record)
    }

    /// The first endpoint (mirror or the registry) that has the manifest.
    /// A mirror's failure falls through to the next; the registry's is final.
    async fn resolve(
        &self,
        endpoints: &[Endpoint],
        image: &ImageRef,
    ) -> Result<(Endpoint, Fetched), PullError> {
        let mut last = None;
        for ep in endpoints {
            let repo = Repo {
                endpoint: ep,
                name: &image.repository,
            };
            match self
                .client
                .get_manifest(repo, image.manifest_reference())
                .await
            {
                Ok(f) => return Ok((ep.clone(), f)),
                Err(e) if ep.mirror => last = Some(e),
                // An unreachable registry behind a mirror that answered: the
                // mirror's answer (e.g. "not found") is the useful one.
                Err(RegistryError::Unreachable { .. }) if last.is_some() => break,
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.expect("endpoints always include the registry").into())
    }

    async fn fetch_layers(
        &self,
        repo: Repo<'_>,
        manifest: &Manifest,
        config: &ConfigSummary,
    ) -> Result<Vec<(LayerRecord, LayerInfo)>, PullError> {
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != manifest.layers.len() {
            return Err(PullError::LayerCount {
                diff_ids: diff_ids.len(),
                layers: manifest.layers.len(),
            });
        }
        let jobs = manifest
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(desc, diff_id)| async move {
                let record = LayerRecord {
                    blob: desc.digest.clone(),
                    media_type: desc.media_type.clone(),
                    size: desc.size,
                    diff_id: diff_id.clone(),
                };
                if self.store.has_blob(&desc.digest) && self.store.has_layer(diff_id) {
                    self.progress.event(Event::LayerExists {
                        blob: desc.digest.clone(),
                    });
                    return Ok((record, self.store.layer_info(diff_id)?));
                }
                self.fetch_blob(repo, &desc.digest, desc.size).await?;
                self.progress.event(Event::Extracting {
                    blob: desc.digest.clone(),
                });
                let info = self
                    .unpacker
                    .unpack(&desc.digest, diff_id)
                    .await
                    .map_err(|detail| unpack_error(self.store, manifest, &desc.digest, detail))?;
                self.progress.event(Event::LayerDone {
                    blob: desc.digest.clone(),
                });
                Ok::<_, PullError>((record, info))
            });
        try_join_all(jobs).await
    }

    /// Downloads one blob into the store unless it is there; one process at
    /// a time per blob (the others wait, then find it).
    async fn fetch_blob(
        &self,
        repo: Repo<'_>,
        digest: &Digest,
        size: u64,
    ) -> Result<(), PullError> {
        if self.store.has_blob(digest) {
            return Ok(());
        }
        let store = self.store.clone();
        let d = digest.clone();
        let _lock = tokio::task::spawn_blocking(move || store.lock_blob(&d))
            .await
            .map_err(|e| PullError::Task(e.to_string()))??;
        if self.store.has_blob(digest) {
            return Ok(());
        }
        self.progress.event(Event::Downloading {
            blob: digest.clone(),
            size,
        });
        let partial = self.store.partial_path(digest);
        let report = |done| {
            self.progress.event(Event::Progress {
                blob: digest.clone(),
                done,
            })
        };
        self.client
            .fetch_blob(repo, digest, size, &partial, &report)
            .await?;
        self.store.commit_blob_file(&partial, digest)?;
        Ok(())
    }
}

/// The error of a layer that failed to unpack: the layer named once (the
/// helper's message names it again), and on a full disk what the image needs
/// and where.
fn unpack_error(store: &Store, manifest: &Manifest, layer: &Digest, detail: String) -> PullError {
    let detail = match detail
        .strip_prefix("layer sha256:")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((_, rest)) => rest.to_string(),
        None => detail,
    };
    let hint = if detail.contains("No space left on device") {
        let compressed: u64 = manifest.layers.iter().map(|l| l.size).sum();
        format!(
            "; the disk holding {} is full: this image's layers are {} MB compressed and \
             usually take 2-3 times that unpacked; free space there or use --root on a larger disk",
            store.root().display(),
            compressed.div_ceil(1_000_000)
        )
    } else {
        String::new()
    };
    PullError::Unpack {
        layer: layer.clone(),
        detail: format!("{detail}{hint}"),
    }
}
