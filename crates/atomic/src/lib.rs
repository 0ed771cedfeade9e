//! Replacing a file atomically: the one way den rewrites a file that other
//! den processes may read at any moment (image records, container, volume
//! and network records, a container's state, caches, credentials).
//!
//! [`replace`] writes the new contents to a temp file in `tmp_dir` and
//! renames it over the target ([`tempfile::NamedTempFile::persist`]), so a
//! reader sees the old file or the new one, never half of one. The temp
//! file is created `0600` and close-on-exec. Its name ends in the writer's
//! owner suffix ([`owner_suffix`]: `-PID-START`), and begins with
//! [`TEMP_PREFIX`], so when `tmp_dir` is the image store's `tmp/`, a
//! `kill -9` between the write and the rename leaves a file that the next
//! den command sweeps (`image::store::tmp`).
//!
//! `tmp_dir` must be on the target's filesystem. den passes the store's
//! `tmp/` for everything in the store; a process that does not know the
//! store (a container's supervisor) passes a directory that is removed
//! together with the target.
//!
//! # fsync policy
//!
//! [`Durability::Synced`] flushes the file's data to disk before the
//! rename: for what the user cannot recreate cheaply and what would be
//! lost or corrupt after a power cut (the image index `images.json`, saved
//! credentials). [`Durability::Unsynced`] skips it: for records rewritten
//! on every command or by a running container (container, volume and
//! network records, state, caches), whose crash recovery is the store's
//! sweep, not the disk; an fsync there would cost every `den run` a disk
//! flush. Neither fsyncs the directory: after a power cut a rename may be
//! lost, leaving the previous whole file, which every reader accepts.
//! Architecture invariant: this is the only place den replaces a file.

mod lock;
mod read;

pub use lock::lock;
pub use read::{ReadError, read_bounded, read_json};

use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Temp names made by [`replace`] begin with this.
pub const TEMP_PREFIX: &str = "write-";

/// Whether [`replace`] flushes the data before the rename (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Synced,
    Unsynced,
}

/// Replaces `path` with what `fill` writes, through a temp file in
/// `tmp_dir`. On error `path` is untouched and the temp file is gone.
/// The error is the bare I/O error: callers name `path` in theirs.
pub fn replace(
    path: &Path,
    tmp_dir: &Path,
    durability: Durability,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let suffix = format!("-{}", owner_suffix());
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(&suffix)
        .tempfile_in(tmp_dir)?;
    fill(tmp.as_file_mut())?;
    tmp.as_file_mut().flush()?;
    if durability == Durability::Synced {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// [`replace`] with `bytes` as the new contents.
pub fn replace_bytes(
    path: &Path,
    tmp_dir: &Path,
    durability: Durability,
    bytes: &[u8],
) -> std::io::Result<()> {
    replace(path, tmp_dir, durability, |f| f.write_all(bytes))
}

/// `PID-START`: this process's pid and start time (clock ticks since boot,
/// field 22 of `/proc/PID/stat`), which together name it even after the
/// pid is reused.
pub fn owner_suffix() -> String {
    let pid = std::process::id();
    let start = start_time(Path::new("/proc"), pid).unwrap_or(0);
    format!("{pid}-{start}")
}

/// Field 22 of `PROC/PID/stat`: when the process started.
pub fn start_time(proc: &Path, pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(proc.join(pid.to_string()).join("stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_whole_and_private_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let target = dir.path().join("rec.json");
        std::fs::write(&target, "old").unwrap();
        replace_bytes(&target, &tmp, Durability::Synced, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_failed_fill_keeps_the_old_file_and_removes_the_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("rec.json");
        std::fs::write(&target, "old").unwrap();
        let err = replace(&target, dir.path(), Durability::Unsynced, |f| {
            f.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temp_names_carry_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x");
        let mut seen = String::new();
        replace(&target, dir.path(), Durability::Unsynced, |_| {
            for e in std::fs::read_dir(dir.path())? {
                seen = e?.file_name().to_string_lossy().into_owned();
            }
            Ok(())
        })
        .unwrap();
        assert!(seen.starts_with(TEMP_PREFIX), "{seen}");
        assert!(seen.ends_with(&format!("-{}", owner_suffix())), "{seen}");
        let start = start_time(Path::new("/proc"), std::process::id()).unwrap();
        assert!(start > 0);
    }

    #[test]
    fn a_missing_tmp_dir_is_an_error_and_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x");
        let err =
            replace_bytes(&target, &dir.path().join("no"), Durability::Unsynced, b"a").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(!target.exists());
    }
}
