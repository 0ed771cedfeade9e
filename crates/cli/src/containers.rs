//! Container records on disk: `ROOT/containers/<id>/config.json`, one per
//! container, written by rename under `ROOT/containers.lock`. The record
//! names the image, its layers and its named volumes, so none of them is
//! removed while the container exists.
//!
//! ```text
//! ROOT/containers/<id>/config.json   the record
//!                     /spec.json     what the supervisor runs
//!                     /upper /work   the overlay's writable layer
//!                     /merged        the mount point of the root
//!                     /hosts /hostname /resolv.conf
//! ROOT/containers/.new-<id>/         a container being created (under the lock)
//! ROOT/containers/.rm-<id>/          a removed container being deleted (flocked
//!                                    by its deleter while it works)
//! ```
//!
//! Crash consistency: a container's directory appears whole or not at all.
//! [`Containers::create`] writes the record first, then the overlay
//! directories, all in `.new-<id>`, and renames that to `<id>` under the
//! lock: every `<id>` has its record, so every container is listed and
//! `rm -f` removes it. [`Containers::detach`] renames `<id>` to `.rm-<id>`
//! under the lock and holds an flock on `.rm-<id>` until its files are
//! deleted (inside the user namespace: they may belong to subordinate ids).
//! Every command that opens the containers directory sweeps what a killed
//! den left, under the lock: every `.new-*` (made under the lock, so never
//! in progress), each `.rm-*` nobody holds locked, and a `<id>` without a
//! record untouched for [`STALE`] (left by older versions, or by a `--rm`
//! supervisor of an older den killed while deleting; a `--rm` supervisor
//! now detaches its directory to `.rm-<id>` as `den rm` does and a forked
//! deleter holds its lock); they are deleted and their network
//! addresses freed.
//!
//! Test seam: with `DEN_TEST_STOP_AT=<step>` den stops itself (SIGSTOP) at
//! that step, so a test can kill it there ([`stop_point`]; ignored unless
//! set). Steps: `run:staged`, `run:created`, `rm:detached`,
//! `volume-rm:detached`, `network-rm:stopped`.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::private::{private_dir, write_atomic};

/// The largest container record read back: its command, labels, ports and
/// layers (den writes a few KiB).
const MAX_RECORD: u64 = 16 << 20;

/// A container's `config.json`, bounded ([`MAX_RECORD`]).
fn read_record(path: &Path) -> Result<Record, den_atomic::ReadError> {
    den_atomic::read_json(path, MAX_RECORD)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    /// Image id (config digest), if made from an image.
    pub image_id: Option<String>,
    /// What the user asked for (`busybox`, or the --rootfs directory).
    pub image: String,
    pub command: Vec<String>,
    pub created: String,
    /// Layer diff ids the container's root uses.
    pub layers: Vec<String>,
    /// Named volumes it mounts (kept from removal while the record exists).
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Published ports as `docker ps` shows them: `127.0.0.1:8080->5000/tcp`.
    #[serde(default)]
    pub ports: Vec<String>,
    /// `--label KEY=VALUE` (and compose's `com.docker.compose.*`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Record {
    /// `NetworkSettings.Ports` of `docker inspect`.
    pub fn ports_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for p in &self.ports {
            let Some((host, ctr)) = p.split_once("->") else {
                continue;
            };
            let (ip, port) = host.rsplit_once(':').unwrap_or(("", host));
            let entry = map
                .entry(ctr.to_string())
                .or_insert_with(|| serde_json::json!([]));
            if let Some(list) = entry.as_array_mut() {
                list.push(serde_json::json!({"HostIp": ip, "HostPort": port}));
            }
        }
        serde_json::Value::Object(map)
    }
}

pub struct Containers {
    dir: PathBuf,
}

/// How long a container directory without a record may sit untouched
/// before a sweep takes it for a crash's leftover.
pub const STALE: Duration = Duration::from_secs(10);

impl Containers {
    /// Opens the containers directory and sweeps what a killed den left
    /// there (module doc).
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        let dir = root.join("containers");
        private_dir(&dir)?;
        let c = Self { dir };
        c.sweep(root);
        Ok(c)
    }

    /// Deletes leftovers of killed den processes; best effort (a failure
    /// is a warning, and the next command tries again).
    fn sweep(&self, root: &Path) {
        if !self.has_leftovers() {
            return;
        }
        let doomed = match self.claim_leftovers() {
            Ok(d) => d,
            Err(e) => {
                crate::log::warn(format_args!("cannot sweep {}: {e:#}", self.dir.display()));
                return;
            }
        };
        for (id, _held) in doomed {
            crate::networks::Networks::open(root)
                .and_then(|n| n.leave_all(&id))
                .ok();
            if let Err(e) = crate::in_userns::remove_container_in(root, &id) {
                crate::log::warn(format_args!(
                    "cannot delete what a killed den left of container {id}: {e:#}"
                ));
            }
        }
    }

    /// A cheap look, without the lock: anything to sweep?
    fn has_leftovers(&self) -> bool {
        let Ok(entries) = fs_err::read_dir(&self.dir) else {
            return false;
        };
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(".rm-")
                || name.starts_with(".new-")
                || !e.path().join("config.json").exists()
        })
    }

    /// Under the lock: moves leftovers to `.rm-<id>` and locks each one no
    /// live den is deleting; returns them with their locks.
    fn claim_leftovers(&self) -> anyhow::Result<Vec<(String, File)>> {
        let _lock = self.lock()?;
        let mut out = Vec::new();
        for entry in fs_err::read_dir(&self.dir)? {
            let entry = entry?;
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let id = if let Some(id) = name.strip_prefix(".rm-") {
                id.to_string()
            } else if let Some(id) = name.strip_prefix(".new-") {
                id.to_string()
            } else if !entry.path().join("config.json").exists() && untouched_for(&entry.path()) {
                name.clone()
            } else {
                continue;
            };
            let gone = self.dir.join(format!(".rm-{id}"));
            if entry.path() != gone && fs_err::rename(entry.path(), &gone).is_err() {
                continue;
            }
            if let Some(held) = try_lock_dir(&gone) {
                out.push((id, held));
            }
        }
        Ok(out)
    }

    /// The store this `containers/` belongs to.
    fn root(&self) -> &Path {
        self.dir.parent().unwrap_or(Path::new("."))
    }

    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn lock(&self) -> anyhow::Result<File> {
        lock_file(&self.dir.with_extension("lock"))
    }

    /// Every record that can be read.
    pub fn list(&self) -> anyhow::Result<Vec<Record>> {
        let mut out = Vec::new();
        for entry in fs_err::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue; // being removed
            }
            if let Ok(r) = read_record(&entry.path().join("config.json")) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Creates the container's directory and record; the name must be free.
    pub fn create(&self, record: &Record) -> anyhow::Result<PathBuf> {
        let _lock = self.lock()?;
        if let Some(other) = self.list()?.into_iter().find(|r| r.name == record.name) {
            bail!(
                "the container name \"{}\" is already in use by container {}: remove that container or choose another name with --name",
                record.name,
                &other.id[..12]
            );
        }
        // Record first, then what the container owns, all out of sight
        // until the rename makes it whole at once. The overlay's root takes
        // `upper`'s mode: keep it as made (0755 under the usual umask), so
        // the container's users can enter `/`.
        let staged = self.dir.join(format!(".new-{}", record.id));
        private_dir(&staged)?;
        write_atomic(
            self.root(),
            &staged.join("config.json"),
            &serde_json::to_vec_pretty(record)?,
        )?;
        for sub in ["upper", "work", "merged"] {
            fs_err::create_dir(staged.join(sub))?;
        }
        stop_point("run:staged");
        let dir = self.dir_of(&record.id);
        fs_err::rename(&staged, &dir)?;
        stop_point("run:created");
        Ok(dir)
    }
}

impl Containers {
    /// A container by exact name, exact id, or unique id prefix.
    pub fn find(&self, query: &str) -> anyhow::Result<Record> {
        let all = self.list()?;
        if let Some(r) = all.iter().find(|r| r.name == query || r.id == query) {
            return Ok(r.clone());
        }
        let hits: Vec<&Record> = all
            .iter()
            .filter(|r| !query.is_empty() && r.id.starts_with(query))
            .collect();
        match hits.len() {
            1 => Ok(hits[0].clone()),
            0 => bail!("no such container: {query}"),
            n => bail!(
                "container id prefix {query} is ambiguous: it matches {n} containers; give more digits"
            ),
        }
    }

    /// The container's state as it really is (a dead supervisor means exited).
    pub fn state(&self, id: &str) -> den_sandbox::container::state::State {
        use den_sandbox::container::state::State;
        State::read(&self.dir_of(id))
            .map(State::observed)
            .unwrap_or_else(|| State::created(0))
    }

    /// Renames a container; the new name must be free.
    pub fn rename(&self, query: &str, new: &str) -> anyhow::Result<()> {
        let _lock = self.lock()?;
        let mut rec = self.find(query)?;
        if let Some(other) = self
            .list()?
            .into_iter()
            .find(|r| r.name == new && r.id != rec.id)
        {
            bail!(
                "the container name \"{new}\" is already in use by container {}: choose another name",
                &other.id[..12]
            );
        }
        rec.name = new.to_string();
        write_atomic(
            self.root(),
            &self.dir_of(&rec.id).join("config.json"),
            &serde_json::to_vec_pretty(&rec)?,
        )
    }

    /// Takes a record out of the listing (renames its directory away, under
    /// the lock) and returns where its files now are, to be deleted inside
    /// the user namespace, with a lock on that directory: no sweep touches
    /// it while the lock is held.
    pub fn detach(&self, id: &str) -> anyhow::Result<(PathBuf, File)> {
        let _lock = self.lock()?;
        let from = self.dir_of(id);
        let to = self.dir.join(format!(".rm-{id}"));
        fs_err::rename(&from, &to)?;
        let held = fs_err::File::open(&to)?.into_parts().0;
        held.lock()
            .with_context(|| format!("lock {}", to.display()))?;
        Ok((to, held))
    }
}

/// The directory's lock if nobody holds it (a live deleter does).
fn try_lock_dir(path: &Path) -> Option<File> {
    let f = fs_err::File::open(path).ok()?.into_parts().0;
    f.try_lock().ok()?;
    Some(f)
}

/// Not modified for [`STALE`].
fn untouched_for(path: &Path) -> bool {
    fs_err::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > STALE)
}

/// The test seam (module doc): stops this process at `step` when
/// `DEN_TEST_STOP_AT` names it.
pub fn stop_point(step: &str) {
    if std::env::var_os("DEN_TEST_STOP_AT").is_some_and(|v| v == step) {
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP).ok();
    }
}

/// Opens (creating) and locks `path` exclusively; unlocked when dropped.
pub fn lock_file(path: &Path) -> anyhow::Result<File> {
    den_atomic::lock(path).with_context(|| format!("lock {}", path.display()))
}

/// A random 64-hex-digit container id.
pub fn new_id() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    if fs_err::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        bytes[..16].copy_from_slice(&t.as_nanos().to_le_bytes());
        bytes[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_record_is_refused_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs_err::File::create(&path)
            .unwrap()
            .set_len(MAX_RECORD + 1)
            .unwrap();
        assert_eq!(
            read_record(&path).unwrap_err().to_string(),
            format!(
                "{} is larger than 16777216 bytes, more than den ever writes there: refused (remove the file if den should start it anew)",
                path.display()
            )
        );
    }
}
