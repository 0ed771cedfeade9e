//! Volumes on disk, Docker's `local` driver: a directory per volume and
//! a small record beside it, changed only under `ROOT/volumes.lock`. An
//! anonymous volume (`-v /path`) gets a random name and `anonymous: true`
//! in its record, which is what `den volume prune` (without `-a`) removes.
//!
//! ```text
//! ROOT/volumes.lock                 exclusive while volumes are created, claimed, removed
//! ROOT/volumes/<name>/meta.json     the record (written by rename)
//!                    /_data/        what containers see (files owned by subordinate ids)
//! ROOT/volumes/.new-<name>-<pid>/   a volume being created (renamed to <name> when whole;
//!                                   a crash's leftover is deleted with the removed ones)
//! ROOT/volumes/.rm-<name>-<pid>/    a removed volume waiting to be deleted inside the
//!                                   user namespace (`den __internal remove-volumes`)
//! ```
//!
//! A volume is filled from the image once: the first container that mounts
//! it ([`Volumes::claim`]) copies the image's content at the target into it
//! when it is empty, and the record says so from then on; the mark
//! `<name>/prefill-pending` makes that one container start, not its
//! restarts, do the copy. (Docker checks
//! only for emptiness, at every container it creates; deciding once, under
//! the lock, keeps two containers starting together from both copying.)

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::bail;
use den_sandbox::container::spec::{Mount, PREFILL_PENDING};
use serde::{Deserialize, Serialize};

use crate::private::write_atomic;

/// `meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeMeta {
    pub name: String,
    /// RFC 3339.
    pub created: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A container has mounted it: it is never filled from an image again.
    #[serde(default)]
    pub populated: bool,
    /// Made for `-v /path` (no name given): `volume prune` removes it when
    /// unused; named volumes go only with `prune -a`.
    #[serde(default)]
    pub anonymous: bool,
}

pub struct Volumes {
    dir: PathBuf,
}

impl Volumes {
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        let dir = root.join("volumes");
        crate::private::private_dir(&dir)?;
        Ok(Self { dir })
    }

    /// Held while volumes are created, claimed by a container or removed.
    pub fn lock(&self) -> anyhow::Result<File> {
        crate::containers::lock_file(&self.dir.with_extension("lock"))
    }

    /// Where a volume's content is (the mount source).
    /// The store this `volumes/` belongs to.
    fn root(&self) -> &Path {
        self.dir.parent().unwrap_or(Path::new("."))
    }

    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// The volume's record; a volume made before records existed (a bare
    /// `_data`) gets one from its directory, counted as already populated.
    pub fn get(&self, name: &str) -> anyhow::Result<VolumeMeta> {
        if !crate::names::is_valid(name) || !self.data_dir(name).is_dir() {
            bail!("no such volume: {name}");
        }
        let path = self.dir.join(name).join("meta.json");
        match read_meta(&path) {
            Ok(meta) => Ok(meta),
            Err(e) if e.is_not_found() => {
                let created = fs_err::metadata(self.dir.join(name))?
                    .modified()
                    .map(chrono::DateTime::<chrono::Utc>::from)
                    .unwrap_or_else(|_| chrono::Utc::now());
                Ok(VolumeMeta {
                    name: name.into(),
                    created: created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    labels: BTreeMap::new(),
                    populated: true,
                    anonymous: false,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every volume, by name.
    pub fn list(&self) -> anyhow::Result<Vec<VolumeMeta>> {
        let mut out = Vec::new();
        for entry in fs_err::read_dir(&self.dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Ok(meta) = self.get(&name) {
                out.push(meta);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Creates the volume unless it exists (the caller holds the lock).
    /// Returns whether it was created.
    fn create_locked(&self, name: &str) -> anyhow::Result<bool> {
        self.create_locked_as(name, false, BTreeMap::new())
    }

    fn create_locked_as(
        &self,
        name: &str,
        anonymous: bool,
        labels: BTreeMap<String, String>,
    ) -> anyhow::Result<bool> {
        crate::names::check("volume", name)?;
        if self.dir.join(name).exists() {
            return Ok(false);
        }
        let tmp = self.dir.join(format!(".new-{name}-{}", std::process::id()));
        if tmp.exists() {
            fs_err::remove_dir_all(&tmp)?;
        }
        crate::private::private_dir(&tmp)?;
        // `_data` is what containers see: its mode is theirs (0755 under
        // the usual umask, as Docker makes it), `tmp` keeps others out.
        fs_err::create_dir(tmp.join("_data"))?;
        let meta = VolumeMeta {
            name: name.into(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels,
            populated: false,
            anonymous,
        };
        write_atomic(
            self.root(),
            &tmp.join("meta.json"),
            &serde_json::to_vec_pretty(&meta)?,
        )?;
        fs_err::rename(&tmp, self.dir.join(name))?;
        Ok(true)
    }

    /// `den volume create`: an existing volume of that name is kept, as in Docker.
    pub fn create(&self, name: &str, labels: BTreeMap<String, String>) -> anyhow::Result<()> {
        let _lock = self.lock()?;
        self.create_locked_as(name, false, labels).map(drop)
    }

    /// A new anonymous volume (`-v /path`) with a random name; returns the name.
    pub fn create_anonymous(&self) -> anyhow::Result<String> {
        let _lock = self.lock()?;
        let name = crate::containers::new_id();
        self.create_locked_as(&name, true, BTreeMap::new())?;
        Ok(name)
    }

    /// A container is about to mount these volumes: creates the missing
    /// ones and, for each volume mounted for the first time while empty,
    /// sets `prefill` so the container copies the image's content into it.
    pub fn claim(&self, mounts: &mut [Mount]) -> anyhow::Result<()> {
        let _lock = self.lock()?;
        for m in mounts.iter_mut() {
            let Mount::Volume {
                source, prefill, ..
            } = m
            else {
                continue;
            };
            let Some(name) = self.name_of(source) else {
                continue;
            };
            self.create_locked(&name)?;
            let mut meta = self.get(&name)?;
            if meta.populated {
                continue;
            }
            *prefill = fs_err::read_dir(source.as_path())?.next().is_none();
            if *prefill {
                // The one start that removes it fills the volume: a restart
                // of the container (same spec) never fills it again.
                fs_err::write(self.dir.join(&name).join(PREFILL_PENDING), b"")?;
            }
            meta.populated = true;
            write_atomic(
                self.root(),
                &self.dir.join(&name).join("meta.json"),
                &serde_json::to_vec_pretty(&meta)?,
            )?;
        }
        Ok(())
    }

    /// The volume whose `_data` directory `source` is.
    fn name_of(&self, source: &Path) -> Option<String> {
        let vol = source.strip_prefix(&self.dir).ok()?;
        let mut parts = vol.iter();
        let name = parts.next()?.to_str()?.to_string();
        (parts.next()? == "_data" && parts.next().is_none()).then_some(name)
    }

    /// Takes a volume out of the store (the caller holds the lock): it is
    /// renamed away at once, its files are deleted by
    /// `den __internal remove-volumes` (they may belong to subordinate ids).
    pub fn detach(&self, name: &str) -> anyhow::Result<()> {
        fs_err::rename(
            self.dir.join(name),
            self.dir.join(format!(".rm-{name}-{}", std::process::id())),
        )?;
        Ok(())
    }

    /// Deletes what [`Volumes::detach`] set aside, and creations a crash
    /// cut short; returns the bytes freed. Runs inside the user namespace,
    /// called by a process that holds the lock.
    pub fn delete_detached(&self) -> anyhow::Result<u64> {
        let mut bytes = 0;
        for entry in fs_err::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".rm-") || name.starts_with(".new-") {
                bytes += tree_size(&entry.path());
                fs_err::remove_dir_all(entry.path())?;
            }
        }
        Ok(bytes)
    }
}

/// Bytes in the regular files below `path`, each hard-linked file once;
/// what cannot be read (directories of subordinate ids) counts as nothing.
pub fn tree_size(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs_err::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() && (meta.nlink() == 1 || seen.insert(meta.ino())) {
                total += meta.len();
            }
        }
    }
    total
}

/// The largest volume `meta.json` read back: its labels (den writes a few
/// hundred bytes).
const MAX_META: u64 = 1 << 20;

/// A volume's `meta.json`, bounded ([`MAX_META`]).
fn read_meta(path: &Path) -> Result<VolumeMeta, den_atomic::ReadError> {
    den_atomic::read_json(path, MAX_META)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_meta_is_refused_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.json");
        fs_err::File::create(&path)
            .unwrap()
            .set_len(MAX_META + 1)
            .unwrap();
        assert_eq!(
            read_meta(&path).unwrap_err().to_string(),
            format!(
                "{} is larger than 1048576 bytes, more than den ever writes there: refused (remove the file if den should start it anew)",
                path.display()
            )
        );
    }

    #[test]
    fn old_records_parse_and_source_maps_back_to_the_name() {
        let meta: VolumeMeta =
            serde_json::from_str(r#"{"name":"x","created":"2026-01-01T00:00:00Z"}"#).unwrap();
        assert!(!meta.populated && meta.labels.is_empty());
        let v = Volumes {
            dir: PathBuf::from("/r/volumes"),
        };
        assert_eq!(v.name_of(&v.data_dir("db")).as_deref(), Some("db"));
        assert_eq!(v.name_of(Path::new("/r/volumes/db")), None);
        assert_eq!(v.name_of(Path::new("/home/u/data")), None);
    }
}
