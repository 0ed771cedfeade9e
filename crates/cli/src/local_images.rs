//! The store's images as commands name them: [`resolve`] finds one by
//! name, id, id prefix or digest; [`inspect_json`] is `den inspect`'s view.

use den_image::reference::ImageRef;
use den_image::store::{ImageRecord, Store, display_name};
use serde_json::json;

/// Finds an image by name, id, id prefix or `name@digest`.
pub fn resolve(store: &Store, images: &[ImageRecord], input: &str) -> anyhow::Result<ImageRecord> {
    let full = ImageRef::parse(input)
        .ok()
        .map(|r| r.tagged_name().unwrap_or_else(|| r.to_string()));
    Ok(store.find_image(images, full.as_deref(), input)?)
}

/// Docker-like JSON for one image.
pub fn inspect_json(store: &Store, img: &ImageRecord) -> anyhow::Result<serde_json::Value> {
    let config: serde_json::Value = serde_json::from_slice(&store.read_blob(&img.id)?)?;
    Ok(json!({
            "Id": img.id.to_string(),
            "RepoTags": img.names.iter().map(|n| display_name(n)).collect::<Vec<_>>(),
            "RepoDigests": img.repo_digests,
            "Created": img.created,
            "Architecture": img.platform.architecture,
            "Os": img.platform.os,
            "Size": img.size,
            "Config": config.get("config").cloned().unwrap_or(json!({})),
            "RootFS": { "Type": "layers", "Layers": img.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>() },
            "Manifest": { "Digest": img.manifest.to_string(), "MediaType": img.manifest_media_type },
            "Layers": img.layers.iter().map(|l| json!({"Digest": l.blob.to_string(), "MediaType": l.media_type, "Size": l.size, "DiffID": l.diff_id.to_string()})).collect::<Vec<_>>(),
            "History": config.get("history").cloned().unwrap_or(json!([])),
    }))
}
