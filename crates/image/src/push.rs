//! Upload of a stored image: blobs the registry lacks, then the manifest,
//! byte for byte as stored so the digest stays the same.

use crate::digest::Digest;
use crate::reference::ImageRef;
use crate::registries::RegistriesConf;
use crate::registry::{Client, RegistryError, Repo};
use crate::store::{ImageRecord, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Pushes `image` to `dest`; `report` gets one line per blob. Returns the manifest digest.
pub async fn push(
    store: &Store,
    client: &Client,
    conf: &RegistriesConf,
    tls_verify: Option<bool>,
    image: &ImageRecord,
    dest: &ImageRef,
    report: &(dyn Fn(String) + Sync),
) -> Result<Digest, PushError> {
    let endpoint = conf
        .endpoints(&dest.registry, tls_verify)
        .pop()
        .expect("the registry itself is always an endpoint");
    let repo = Repo {
        endpoint: &endpoint,
        name: &dest.repository,
    };
    let blobs = image
        .layers
        .iter()
        .map(|l| &l.blob)
        .chain(std::iter::once(&image.id));
    for blob in blobs {
        if client.blob_exists(repo, blob).await? {
            report(format!("{}: Layer already exists", blob.short()));
            continue;
        }
        client.push_blob(repo, blob, &store.blob_path(blob)).await?;
        report(format!("{}: Pushed", blob.short()));
    }
    let manifest = store.read_blob(&image.manifest)?;
    client
        .put_manifest(
            repo,
            dest.manifest_reference(),
            &image.manifest_media_type,
            &manifest,
        )
        .await?;
    Ok(image.manifest.clone())
}
