//! `RUN --mount=…` as `den run` flags for the step's container:
//!
//! - `type=cache`: a directory in den's store, `ROOT/build-mounts/cache/<hash of id>`,
//!   kept between builds (`id=` defaults to the target, as in BuildKit).
//!   `sharing=locked` and `private` hold an exclusive lock on it for the
//!   step (den gives a `private` user the same directory after waiting,
//!   rather than a second instance); `shared` does not lock.
//! - `type=tmpfs` and `type=bind` are refused for now.

use std::path::PathBuf;

use anyhow::bail;
use den_build::dockerfile::{Mount, MountKind, Sharing};
use den_build::words;
use den_image::digest::Digest;
use den_image::store::{FileLock, Store};

use super::state::StageState;

/// The flags, the part of the step's key they give, and the cache locks
/// to hold while the step runs.
#[derive(Default)]
pub struct Planned {
    pub flags: Vec<String>,
    pub key: String,
    pub cache_dirs: Vec<(PathBuf, bool)>,
}

impl Planned {
    /// Takes the cache locks (`sharing=locked|private`); held until dropped.
    pub fn lock(&self) -> anyhow::Result<Vec<FileLock>> {
        let mut locks = Vec::new();
        for (dir, exclusive) in &self.cache_dirs {
            if *exclusive {
                locks.push(FileLock::exclusive(&dir.with_extension("lock"))?);
            }
        }
        Ok(locks)
    }
}

pub fn plan(store: &Store, st: &StageState, mounts: &[Mount]) -> anyhow::Result<Planned> {
    let env = st.expand_env();
    let mut p = Planned::default();
    for m in mounts {
        let target = words::expand(&m.target, &env)?;
        let target = super::copy::absolute(&st.workdir(), &target);
        if target.contains(',') {
            bail!("--mount target {target}: a comma in a mount target is not supported");
        }
        match m.kind {
            MountKind::Tmpfs | MountKind::Bind => {
                bail!(
                    "RUN --mount=type=tmpfs and type=bind are not supported by den build yet: use type=cache, or COPY what the step needs"
                );
            }
            MountKind::Cache => {
                if m.uid.is_some_and(|u| u != 0) || m.gid.is_some_and(|g| g != 0) {
                    bail!(
                        "--mount=type=cache with uid=/gid= other than 0 is not supported by den build yet: chown the directory in the step"
                    );
                }
                let id = match &m.id {
                    Some(id) => words::expand(id, &env)?,
                    None => target.clone(),
                };
                let dir = cache_dir(store, &id, m.mode)?;
                p.flags.push("-v".into());
                let ro = if m.readonly { ":ro" } else { "" };
                p.flags.push(format!("{}:{target}{ro}", dir.display()));
                p.key.push_str(&format!("cache:{target}:{id}:{ro}\0"));
                p.cache_dirs.push((dir, m.sharing != Sharing::Shared));
            }
        }
    }
    Ok(p)
}

/// `ROOT/build-mounts/cache/<sha256 of id>`, made mode `mode=` (0700 by
/// default) if new; its parents are den's private 0700 directories, so a
/// wider `mode=` only matters inside the step.
fn cache_dir(store: &Store, id: &str, mode: Option<u32>) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let base = store.root().join("build-mounts").join("cache");
    crate::private::private_dir(&store.root().join("build-mounts"))?;
    crate::private::private_dir(&base)?;
    let dir = base.join(Digest::of(id.as_bytes()).hex());
    // mkdir is the atomic step: a concurrent build either makes it or
    // finds it.
    match std::fs::DirBuilder::new().create(&dir) {
        Ok(()) => {
            let mode = mode.unwrap_or(crate::private::DIR_MODE) & 0o7777;
            fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(mode))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot create {}", dir.display())));
        }
    }
    Ok(dir)
}
