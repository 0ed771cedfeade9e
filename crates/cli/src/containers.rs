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
//! ```

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::private::private_dir;

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

impl Containers {
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        let dir = root.join("containers");
        private_dir(&dir)?;
        Ok(Self { dir })
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
            let path = entry.path().join("config.json");
            if let Ok(bytes) = std::fs::read(&path)
                && let Ok(r) = serde_json::from_slice::<Record>(&bytes)
            {
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
        let dir = self.dir_of(&record.id);
        private_dir(&dir)?;
        // The overlay's root takes `upper`'s mode: keep it as made (0755
        // under the usual umask), so the container's users can enter `/`.
        for sub in ["upper", "work", "merged"] {
            fs_err::create_dir_all(dir.join(sub))?;
        }
        write_atomic(
            &dir.join("config.json"),
            &serde_json::to_vec_pretty(record)?,
        )?;
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
            &self.dir_of(&rec.id).join("config.json"),
            &serde_json::to_vec_pretty(&rec)?,
        )
    }

    /// Takes a record out of the listing (renames its directory away, under
    /// the lock) and returns where its files now are, to be deleted inside
    /// the user namespace.
    pub fn detach(&self, id: &str) -> anyhow::Result<PathBuf> {
        let _lock = self.lock()?;
        let from = self.dir_of(id);
        let to = self.dir.join(format!(".rm-{id}"));
        fs_err::rename(&from, &to)?;
        Ok(to)
    }
}

/// Opens (creating) and locks `path` exclusively; unlocked when dropped.
pub fn lock_file(path: &Path) -> anyhow::Result<File> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(crate::private::FILE_MODE)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    f.lock()
        .with_context(|| format!("lock {}", path.display()))?;
    Ok(f)
}

/// temp file + rename, so a reader never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = crate::private::create_private_file(&tmp)?;
    f.write_all(bytes)
        .with_context(|| format!("write {}", tmp.display()))?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}

/// A random 64-hex-digit container id.
pub fn new_id() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    if std::fs::File::open("/dev/urandom")
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
