//! The lock files den serialises writers with (`containers.lock`,
//! `networks.lock`, `userns.lock`, ...): [`lock`] is the one way to take one.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` (creating it `0600`, close-on-exec) and takes an exclusive
/// `flock` on it, waiting for the holder; released when the file is closed.
pub fn lock(path: &Path) -> std::io::Result<File> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)?;
    f.lock()?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_lock_is_private_and_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = lock(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let other = File::open(&path).unwrap();
        assert!(other.try_lock().is_err(), "held elsewhere");
        drop(held);
        assert!(other.try_lock().is_ok());
    }
}
