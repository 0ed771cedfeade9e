//! Registry credentials: den's own auth file (written by `den login`, in the
//! `~/.docker/config.json` format, mode 0600) and, read-only, the files other
//! tools leave: `$REGISTRY_AUTH_FILE`, podman's `auth.json`, docker's
//! `config.json`. Credential helpers are not run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            B64.encode(format!("{}:{}", self.username, self.password))
        )
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid auth file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where credentials are looked up, first match wins.
#[derive(Debug, Clone)]
pub struct AuthStore {
    /// den's own file, the one `login` writes.
    pub own: PathBuf,
    /// Files of other tools, read only.
    pub others: Vec<PathBuf>,
}

impl AuthStore {
    /// The usual places for a user with config dir `config` (den's) and `home`.
    pub fn standard(config: &Path, home: &Path) -> Self {
        let mut others = Vec::new();
        if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
            others.push(PathBuf::from(p));
        }
        if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR") {
            others.push(Path::new(&run).join("containers/auth.json"));
        }
        others.push(home.join(".config/containers/auth.json"));
        others.push(home.join(".docker/config.json"));
        Self {
            own: config.join("auth.json"),
            others,
        }
    }

    pub fn get(&self, registry: &str) -> Result<Option<Credentials>, AuthError> {
        for path in std::iter::once(&self.own).chain(&self.others) {
            let Some(file) = read(path)? else { continue };
            for key in keys_for(registry) {
                if let Some(c) = file
                    .auths
                    .get(&key)
                    .and_then(|e| e.auth.as_deref())
                    .and_then(decode)
                {
                    return Ok(Some(c));
                }
            }
        }
        Ok(None)
    }

    /// Stores credentials for `registry` in den's own file (atomic, mode 0600).
    pub fn store(&self, registry: &str, creds: &Credentials) -> Result<(), AuthError> {
        let mut file = read(&self.own)?.unwrap_or_default();
        let entry = file.auths.entry(registry.to_string()).or_default();
        entry.auth = Some(B64.encode(format!("{}:{}", creds.username, creds.password)));
        self.write(&file)
    }

    /// Removes `registry` from den's own file; false if it had no entry.
    pub fn remove(&self, registry: &str) -> Result<bool, AuthError> {
        let Some(mut file) = read(&self.own)? else {
            return Ok(false);
        };
        let removed = keys_for(registry)
            .iter()
            .any(|k| file.auths.remove(k).is_some());
        if removed {
            self.write(&file)?;
        }
        Ok(removed)
    }

    fn write(&self, file: &AuthFile) -> Result<(), AuthError> {
        let werr = |source| AuthError::Write {
            path: self.own.clone(),
            source,
        };
        let dir = self.own.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(werr)?;
        let text = serde_json::to_vec_pretty(file).expect("auth file serializes");
        // Beside the file (it lives outside the store); 0600 like the file.
        den_atomic::replace_bytes(&self.own, dir, den_atomic::Durability::Synced, &text)
            .map_err(werr)
    }
}

fn read(path: &Path) -> Result<Option<AuthFile>, AuthError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| AuthError::Parse {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e)
            if e.kind() == std::io::ErrorKind::PermissionDenied && !path.ends_with("auth.json") =>
        {
            Ok(None)
        }
        Err(source) => Err(AuthError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Docker Hub credentials are filed under several historical keys.
fn keys_for(registry: &str) -> Vec<String> {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            vec![
                "docker.io".into(),
                "https://index.docker.io/v1/".into(),
                "index.docker.io".into(),
                "registry-1.docker.io".into(),
            ]
        }
        r => vec![r.to_string(), format!("https://{r}"), format!("http://{r}")],
    }
}

fn decode(auth: &str) -> Option<Credentials> {
    let raw = B64.decode(auth.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_get_remove_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore {
            own: dir.path().join("den/auth.json"),
            others: vec![],
        };
        let c = Credentials {
            username: "den".into(),
            password: "p:ss".into(),
        };
        store.store("127.0.0.1:5001", &c).unwrap();
        assert_eq!(store.get("127.0.0.1:5001").unwrap(), Some(c));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&store.own).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(store.remove("127.0.0.1:5001").unwrap());
        assert_eq!(store.get("127.0.0.1:5001").unwrap(), None);
    }

    #[test]
    fn reads_docker_config_hub_key() {
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("config.json");
        std::fs::write(
            &docker,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}},"credsStore":"x"}"#,
        )
        .unwrap();
        let store = AuthStore {
            own: dir.path().join("none.json"),
            others: vec![docker],
        };
        assert_eq!(store.get("docker.io").unwrap().unwrap().username, "u");
    }
}
