//! Where den keeps things for this user: the store, the config directory.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use den_image::auth::AuthStore;
use den_image::registries::RegistriesConf;
use den_image::store::Store;

use crate::private::private_dir;

pub struct Context {
    pub root: PathBuf,
    pub config_dir: PathBuf,
    pub home: PathBuf,
}

impl Context {
    pub fn new(root: Option<PathBuf>) -> anyhow::Result<Self> {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute());
        let xdg = |var: &str, fallback: &str| -> anyhow::Result<PathBuf> {
            match (
                std::env::var_os(var)
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute()),
                &home,
            ) {
                (Some(p), _) => Ok(p),
                (None, Some(h)) => Ok(h.join(fallback)),
                (None, None) => bail!("neither ${var} nor $HOME is set: set HOME, or pass --root"),
            }
        };
        let root = match root {
            Some(r) => absolute(&r)?,
            None => xdg("XDG_DATA_HOME", ".local/share")?.join("den"),
        };
        let config_dir = xdg("XDG_CONFIG_HOME", ".config")?.join("den");
        Ok(Self {
            root,
            config_dir,
            home: home.unwrap_or_else(|| PathBuf::from("/")),
        })
    }

    /// Creates the store root (mode 0700) or checks the existing one: see
    /// [`crate::private`]. Every command that uses the store calls it first.
    pub fn prepare_root(&self) -> anyhow::Result<()> {
        private_dir(&self.root)
    }

    pub fn store(&self) -> anyhow::Result<Store> {
        for sub in ["blobs", "blobs/sha256", "layers", "tmp"] {
            private_dir(&self.root.join(sub))?;
        }
        Ok(Store::open(&self.root)?)
    }

    pub fn registries(&self) -> anyhow::Result<RegistriesConf> {
        Ok(RegistriesConf::load(&self.config_dir)?)
    }

    pub fn auth(&self) -> AuthStore {
        AuthStore::standard(&self.config_dir, &self.home)
    }
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(cwd.join(p))
}
