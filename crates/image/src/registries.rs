//! Registry settings: which registries are plain HTTP ("insecure") and which
//! mirrors serve a registry, read from `registries.toml` in den's config dir.
//!
//! ```toml
//! [[registry]]
//! location = "127.0.0.1:5000"
//! insecure = true
//!
//! [[registry]]
//! location = "docker.io"
//! [[registry.mirror]]
//! location = "127.0.0.1:5000"
//! insecure = true
//! ```
//!
//! The format follows containers-registries.conf(5) so a podman user can copy
//! entries over. Plain HTTP is used only for a host marked insecure here, by
//! `--tls-verify=false`, or on loopback (`127.0.0.0/8`, `localhost`, `[::1]`,
//! insecure by default as in Docker; `--tls-verify=true` turns that off);
//! there is never a silent fall-back from HTTPS.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistriesConf {
    #[serde(default, rename = "registry")]
    pub registries: Vec<RegistryEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryEntry {
    pub location: String,
    #[serde(default)]
    pub insecure: bool,
    #[serde(default, rename = "mirror")]
    pub mirrors: Vec<MirrorEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorEntry {
    pub location: String,
    #[serde(default)]
    pub insecure: bool,
}

/// Where to send requests for one registry: a host[:port] and its scheme.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The host[:port] requests go to (`registry-1.docker.io` for `docker.io`).
    pub host: String,
    pub insecure: bool,
    /// True when this endpoint is a mirror of the reference's registry.
    pub mirror: bool,
}

impl Endpoint {
    pub fn base_url(&self) -> String {
        let scheme = if self.insecure { "http" } else { "https" };
        format!("{scheme}://{}", self.host)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
}

impl RegistriesConf {
    /// Reads `dir/registries.toml`; a missing file means no special settings.
    pub fn load(dir: &Path) -> Result<Self, ConfError> {
        let path = dir.join("registries.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map_err(|e| ConfError::Parse {
                path,
                source: Box::new(e),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfError::Read { path, source }),
        }
    }

    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    fn entry(&self, registry: &str) -> Option<&RegistryEntry> {
        self.registries.iter().find(|r| r.location == registry)
    }

    /// Is `registry` to be spoken to over plain HTTP?
    pub fn is_insecure(&self, registry: &str, tls_verify: Option<bool>) -> bool {
        match tls_verify {
            Some(verify) => !verify,
            None => is_loopback(registry) || self.entry(registry).is_some_and(|e| e.insecure),
        }
    }

    /// The endpoints to try for `registry`, in order: its mirrors, then the
    /// registry itself. `tls_verify = Some(false)` makes the registry itself
    /// plain HTTP; mirrors keep their own setting.
    pub fn endpoints(&self, registry: &str, tls_verify: Option<bool>) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = self
            .entry(registry)
            .map(|e| &e.mirrors[..])
            .unwrap_or_default()
            .iter()
            .map(|m| Endpoint {
                host: m.location.clone(),
                insecure: m.insecure || self.is_insecure(&m.location, None),
                mirror: true,
            })
            .collect();
        out.push(Endpoint {
            host: api_host(registry).to_string(),
            insecure: self.is_insecure(registry, tls_verify),
            mirror: false,
        });
        out
    }
}

/// Is `registry` (`host[:port]`) on this machine's loopback: `localhost`,
/// `127.0.0.0/8` or `[::1]`?
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(rest, |(h, _)| h),
        None => registry.split_once(':').map_or(registry, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Docker Hub's API lives on another host than its name.
pub fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
[[registry]]
location = "127.0.0.1:5000"
insecure = true

[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "127.0.0.1:5000"
"#;

    #[test]
    fn mirrors_come_first_and_inherit_insecure() {
        let conf = RegistriesConf::parse(CONF).unwrap();
        let eps = conf.endpoints("docker.io", None);
        assert_eq!(eps.len(), 2);
        assert_eq!(eps[0].base_url(), "http://127.0.0.1:5000");
        assert!(eps[0].mirror);
        assert_eq!(eps[1].base_url(), "https://registry-1.docker.io");
    }

    #[test]
    fn tls_verify_flag_wins_for_the_registry() {
        let conf = RegistriesConf::default();
        assert_eq!(
            conf.endpoints("reg.example:5000", None)[0].base_url(),
            "https://reg.example:5000"
        );
        assert_eq!(
            conf.endpoints("reg.example:5000", Some(false))[0].base_url(),
            "http://reg.example:5000"
        );
        assert_eq!(
            conf.endpoints("localhost:5000", Some(true))[0].base_url(),
            "https://localhost:5000"
        );
        let conf = RegistriesConf::parse(CONF).unwrap();
        assert_eq!(
            conf.endpoints("127.0.0.1:5000", Some(true))[0].base_url(),
            "https://127.0.0.1:5000"
        );
    }

    #[test]
    fn loopback_registries_are_insecure_by_default() {
        let conf = RegistriesConf::default();
        for reg in [
            "127.0.0.1:5000",
            "127.9.8.7",
            "localhost",
            "LOCALHOST:80",
            "[::1]:5000",
        ] {
            assert!(conf.is_insecure(reg, None), "{reg}");
        }
        for reg in [
            "128.0.0.1:5000",
            "localhost.example",
            "docker.io",
            "[::2]:5000",
            "10.0.0.1",
        ] {
            assert!(!conf.is_insecure(reg, None), "{reg}");
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(RegistriesConf::parse("[[registry]]\nlocation='x'\ninsecur=true\n").is_err());
    }
}
