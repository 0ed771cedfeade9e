//! Advisory file locks (flock) that are released when dropped, so a killed
//! process never leaves a lock behind.

use std::fs::{File, OpenOptions};
use std::path::Path;

use super::{StoreError, io_err};

#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    pub fn shared(path: &Path) -> Result<Self, StoreError> {
        let file = open(path)?;
        file.lock_shared().map_err(io_err("lock", path))?;
        Ok(Self { _file: file })
    }

    pub fn exclusive(path: &Path) -> Result<Self, StoreError> {
        let file = open(path)?;
        file.lock().map_err(io_err("lock", path))?;
        Ok(Self { _file: file })
    }
}

fn open(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("open", path))
}
