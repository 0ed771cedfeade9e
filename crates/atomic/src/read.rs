//! Reading back what den wrote, bounded: [`read_bounded`] and
//! [`read_json`] are the one way den reads its own records and state
//! (container health, network members, build caches), so a file that grew
//! past what den would ever write (a bug, a full disk, another process
//! appending) is refused with its path and size instead of being read
//! whole into memory. The reader never reads more than `max + 1` bytes:
//! the length check does not trust the file's size in its metadata (a
//! growing file or a FIFO).

use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a file could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is larger than {max} bytes, more than den ever writes there: refused (remove the file if den should start it anew)",
        path.display()
    )]
    TooLarge { path: PathBuf, max: u64 },
    #[error("{} is not what den writes there", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl ReadError {
    /// The file does not exist (often not an error: nothing written yet).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// The whole file, refused past `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max.saturating_add(1)).read_to_end(&mut bytes))
        .map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge {
            path: path.to_owned(),
            max,
        });
    }
    Ok(bytes)
}

/// The file as JSON of type `T`, refused past `max` bytes.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path, max: u64) -> Result<T, ReadError> {
    let bytes = read_bounded(path, max)?;
    serde_json::from_slice(&bytes).map_err(|source| ReadError::Invalid {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversize_files_are_refused_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"[1, 2, 3]").unwrap();
        assert_eq!(read_json::<Vec<u8>>(&path, 9).unwrap(), [1, 2, 3]);
        let e = read_json::<Vec<u8>>(&path, 8).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{} is larger than 8 bytes, more than den ever writes there: refused (remove the file if den should start it anew)",
                path.display()
            )
        );
        assert!(!e.is_not_found());
        let e = read_json::<Vec<u8>>(&dir.path().join("none.json"), 8).unwrap_err();
        assert!(e.is_not_found(), "{e}");
        std::fs::write(&path, b"{").unwrap();
        let e = read_json::<Vec<u8>>(&path, 8).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{} is not what den writes there", path.display())
        );
    }
}
