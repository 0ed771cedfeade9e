//! Container records on disk: `ROOT/containers/<id>/config.json`, one per
//! container, written by rename under `ROOT/containers.lock`. The record
//! names the image, so images in use are not removed.
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
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

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
}

pub struct Containers {
    dir: PathBuf,
}

impl Containers {
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        let dir = root.join("containers");
        fs_err::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn lock(&self) -> anyhow::Result<File> {
        let path = self.dir.join("../containers.lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        f.lock()
            .with_context(|| format!("lock {}", path.display()))?;
        Ok(f)
    }

    /// Every record that can be read.
    pub fn list(&self) -> anyhow::Result<Vec<Record>> {
        let mut out = Vec::new();
        for entry in fs_err::read_dir(&self.dir)? {
            let path = entry?.path().join("config.json");
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

/// temp file + rename, so a reader never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = fs_err::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}

/// A random 64-hex-digit container id.
pub fn new_id() -> String {
    let bytes: [u8; 32] = std::array::from_fn(|_| 0).map(|_: u8| rand_byte());
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn rand_byte() -> u8 {
    use std::io::Read;
    let mut b = [0u8; 1];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .ok();
    b[0]
}
