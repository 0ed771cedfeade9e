//! Builds small OCI image layouts on disk from hand-made tar layers, so tests
//! can feed den crafted (including hostile) images through `den load`.

use std::fs;
use std::path::Path;

use sha2::{Digest as _, Sha256};

/// One tar entry, written byte for byte: names are not cleaned, so `../x`
/// and `/etc/x` reach den as they are.
pub enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

fn octal(field: &mut [u8], value: u64) {
    let s = format!("{value:0width$o}", width = field.len() - 1);
    field[..s.len()].copy_from_slice(s.as_bytes());
}

fn header(name: &str, kind: u8, size: u64, link: &str, mode: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    assert!(name.len() < 100 && link.len() < 100, "short names only");
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], mode);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 1_700_000_000);
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// An uncompressed tar stream of `entries`.
pub fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        match e {
            Entry::File(name, data) => {
                out.extend(header(name, b'0', data.len() as u64, "", 0o644));
                out.extend(*data);
                out.resize(out.len().div_ceil(512) * 512, 0);
            }
            Entry::Dir(name) => out.extend(header(name, b'5', 0, "", 0o755)),
            Entry::Symlink(name, target) => out.extend(header(name, b'2', 0, target, 0o777)),
            Entry::Hardlink(name, target) => out.extend(header(name, b'1', 0, target, 0o644)),
        }
    }
    out.extend([0u8; 1024]);
    out
}

pub fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn put(dir: &Path, bytes: &[u8]) -> String {
    let d = sha(bytes);
    fs::write(dir.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
    d
}

/// Writes an OCI layout at `dir` with one image named `name` whose layers
/// are the given uncompressed tars. Returns the config digest (the image id).
pub fn write_layout(dir: &Path, name: &str, layers: &[Vec<u8>]) -> String {
    let (desc, config) = write_image(dir, "amd64", layers, false);
    write_index(dir, name, &[desc]);
    config
}

/// Writes an OCI layout whose one entry is an image index with an image per
/// architecture; `zstd` compresses that image's layers with zstd.
/// Returns the config digests in the order given.
pub fn write_multiarch_layout(
    dir: &Path,
    name: &str,
    images: &[(&str, Vec<Vec<u8>>, bool)],
) -> Vec<String> {
    let mut descs = Vec::new();
    let mut configs = Vec::new();
    for (arch, layers, zstd) in images {
        let (mut desc, config) = write_image(dir, arch, layers, *zstd);
        desc["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
        descs.push(desc);
        configs.push(config);
    }
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descs})).unwrap();
    let desc = serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": put(dir, &index), "size": index.len()});
    write_index(dir, name, &[desc]);
    configs
}

fn write_index(dir: &Path, name: &str, descs: &[serde_json::Value]) {
    let mut descs = descs.to_vec();
    for d in &mut descs {
        d["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": name});
    }
    let index = serde_json::json!({"schemaVersion": 2, "manifests": descs});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Writes one image's blobs; returns its manifest descriptor and config digest.
fn write_image(
    dir: &Path,
    arch: &str,
    layers: &[Vec<u8>],
    zstd: bool,
) -> (serde_json::Value, String) {
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let descs: Vec<_> = layers
        .iter()
        .map(|l| {
            let (blob, media_type) = if zstd {
                (zstd::encode_all(&l[..], 3).unwrap(), "application/vnd.oci.image.layer.v1.tar+zstd")
            } else {
                (l.clone(), "application/vnd.oci.image.layer.v1.tar")
            };
            serde_json::json!({"mediaType": media_type, "digest": put(dir, &blob), "size": blob.len()})
        })
        .collect();
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    let config = serde_json::json!({
        "architecture": arch, "os": "linux", "created": "2025-05-20T00:00:00Z",
        "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids}
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = put(dir, &config);
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": descs
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let desc = serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(dir, &manifest), "size": manifest.len()});
    (desc, config_digest)
}
