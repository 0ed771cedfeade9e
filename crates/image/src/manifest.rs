//! Manifests, indexes and image configs, Docker schema2 and OCI alike (they
//! share one JSON shape), and picking a platform out of a multi-arch index.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// The platform den runs on: linux and this build's CPU architecture.
    pub fn host() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            other => (other, None),
        };
        Self {
            architecture: architecture.into(),
            os: "linux".into(),
            variant: variant.map(Into::into),
        }
    }

    /// Parses `--platform os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Self, ManifestError> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts[..] {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Self {
                os: os.into(),
                architecture: arch.into(),
                variant: None,
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Self {
                    os: os.into(),
                    architecture: arch.into(),
                    variant: Some(variant.into()),
                })
            }
            _ => Err(ManifestError::BadPlatform(s.to_string())),
        }
    }

    /// Does an index entry for `offered` serve a request for `self`? A missing
    /// variant on either side matches (arm64 entries often omit `v8`).
    fn accepts(&self, offered: &Platform) -> bool {
        self.os == offered.os
            && self.architecture == offered.architecture
            && match (&self.variant, &offered.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

/// A parsed manifest document.
#[derive(Debug, Clone)]
pub enum Document {
    Index(Vec<Descriptor>),
    Manifest(Manifest),
}

#[derive(Debug, Clone)]
pub struct Manifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("malformed manifest: {0}")]
    Malformed(String),
    #[error("unsupported manifest type `{0}`: den reads Docker schema 2 and OCI manifests")]
    UnsupportedManifest(String),
    #[error("unsupported layer media type `{0}`: den reads tar, tar+gzip and tar+zstd layers")]
    UnsupportedLayer(String),
    #[error(
        "no image for platform {wanted} in the index; it offers: {offered}. Choose one with --platform"
    )]
    NoPlatform { wanted: Platform, offered: String },
    #[error("invalid platform `{0}`: use os/arch[/variant], e.g. linux/amd64")]
    BadPlatform(String),
    #[error("malformed image config: {0}")]
    Config(String),
}

/// Parses a manifest or index; `content_type` is the registry's header (may be empty).
pub fn parse(bytes: &[u8], content_type: &str) -> Result<Document, ManifestError> {
    let raw: Raw =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
    let media_type = raw
        .media_type
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| content_type.to_string());
    if raw.schema_version == 1
        || media_type.starts_with("application/vnd.docker.distribution.manifest.v1")
    {
        return Err(ManifestError::UnsupportedManifest(
            if media_type.is_empty() {
                "schema 1".into()
            } else {
                media_type
            },
        ));
    }
    match (raw.manifests, raw.config, raw.layers) {
        (Some(list), None, _) => Ok(Document::Index(list)),
        (None, Some(config), Some(layers)) => {
            for l in &layers {
                Compression::of_media_type(&l.media_type)?;
            }
            Ok(Document::Manifest(Manifest { config, layers }))
        }
        _ if !media_type.is_empty()
            && !crate::registry::MANIFEST_TYPES.contains(&media_type.as_str()) =>
        {
            Err(ManifestError::UnsupportedManifest(media_type))
        }
        _ => Err(ManifestError::Malformed(
            "neither an index (manifests) nor a manifest (config and layers)".into(),
        )),
    }
}

/// The index entry for `wanted`, skipping attestation manifests.
pub fn pick<'a>(
    entries: &'a [Descriptor],
    wanted: &Platform,
) -> Result<&'a Descriptor, ManifestError> {
    let usable = |d: &&Descriptor| d.platform.as_ref().is_some_and(|p| p.os != "unknown");
    entries
        .iter()
        .filter(usable)
        .find(|d| d.platform.as_ref().is_some_and(|p| wanted.accepts(p)))
        .ok_or_else(|| ManifestError::NoPlatform {
            wanted: wanted.clone(),
            offered: entries
                .iter()
                .filter(usable)
                .filter_map(|d| d.platform.as_ref())
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn of_media_type(media_type: &str) -> Result<Self, ManifestError> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Ok(Self::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Ok(Self::Gzip),
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Ok(Self::Zstd),
            other => Err(ManifestError::UnsupportedLayer(other.to_string())),
        }
    }

    /// What the first bytes of a blob say; a media type can be wrong
    /// (Docker's `.tar.gzip` type is used for uncompressed layers in the wild).
    pub fn sniff(head: &[u8]) -> Self {
        match head {
            [0x1f, 0x8b, ..] => Self::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Self::Zstd,
            _ => Self::None,
        }
    }
}

/// The parts of an image config den needs beyond passing it through.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigSummary {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    pub rootfs: RootFs,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl ConfigSummary {
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Config(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(arch: &str, os: &str, variant: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: Digest::of(arch.as_bytes()),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: os.into(),
                variant: variant.map(Into::into),
            }),
            annotations: None,
        }
    }

    #[test]
    fn picks_platform_with_variant() {
        let list = vec![
            desc("unknown", "unknown", None),
            desc("arm", "linux", Some("v6")),
            desc("arm", "linux", Some("v7")),
            desc("amd64", "linux", None),
        ];
        assert_eq!(
            pick(&list, &Platform::parse("linux/arm/v7").unwrap()).unwrap(),
            &list[2]
        );
        assert_eq!(
            pick(&list, &Platform::parse("linux/amd64").unwrap()).unwrap(),
            &list[3]
        );
        let err = pick(&list, &Platform::parse("linux/s390x").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("linux/arm/v6, linux/arm/v7, linux/amd64"),
            "{err}"
        );
    }

    #[test]
    fn parses_and_refuses() {
        assert!(matches!(
            parse(br#"{"schemaVersion":2,"manifests":[]}"#, ""),
            Ok(Document::Index(_))
        ));
        assert!(matches!(
            parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, ""),
            Err(ManifestError::UnsupportedManifest(_))
        ));
        assert!(matches!(parse(b"{", ""), Err(ManifestError::Malformed(_))));
        let d = Digest::of(b"x");
        let bad = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{d}","size":1}},"layers":[{{"mediaType":"application/x-foo","digest":"{d}","size":1}}]}}"#
        );
        assert!(matches!(
            parse(bad.as_bytes(), ""),
            Err(ManifestError::UnsupportedLayer(_))
        ));
        assert!(Platform::parse("linux").is_err());
    }

    #[test]
    fn sniffs_compression() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"etc/"), Compression::None);
    }
}
