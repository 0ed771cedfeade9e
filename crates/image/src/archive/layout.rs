//! The files of an OCI layout directory (`den load -i DIR`). The directory is
//! the user's choice, its contents are not: every file is opened beneath it
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, must be a regular
//! file, and is read only up to a bound (4 MiB for `index.json` and
//! manifests, a blob's descriptor size for blobs), so a link to `/dev/zero`
//! or a fifo fails at once.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rustix::fs::{self as rfs, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::ArchiveError;
use crate::manifest::Descriptor;
use crate::registry::MAX_MANIFEST;

/// Opens `name` beneath `dir`: `None` if it does not exist, else the file and
/// its size.
fn open(dir: &Path, name: &str) -> Result<Option<(File, u64)>, ArchiveError> {
    let path = dir.join(name);
    let refuse = |why: &str| ArchiveError::LayoutFile {
        path: path.clone(),
        why: why.into(),
    };
    let root = rfs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ArchiveError::Io {
        path: dir.to_path_buf(),
        source: e.into(),
    })?;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let fd = match rfs::openat2(&root, name, flags, Mode::empty(), resolve) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) => {
            return Err(refuse(
                "is a symlink (or lies under one): den follows no symlinks inside an OCI layout",
            ));
        }
        Err(e) => {
            return Err(ArchiveError::Io {
                path,
                source: e.into(),
            });
        }
    };
    let stat = rfs::fstat(&fd).map_err(|e| ArchiveError::Io {
        path: path.clone(),
        source: e.into(),
    })?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(refuse("is not a regular file"));
    }
    Ok(Some((
        File::from(fd),
        u64::try_from(stat.st_size).unwrap_or(0),
    )))
}

/// Reads a metadata file (`index.json`, `manifest.json`) of at most 4 MiB.
pub(super) fn read_small(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
    let Some((file, len)) = open(dir, name)? else {
        return Ok(None);
    };
    let too_large = || ArchiveError::LayoutFile {
        path: dir.join(name),
        why: "is larger than 4 MiB: den reads index.json and manifests up to 4 MiB".into(),
    };
    if len > MAX_MANIFEST {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ArchiveError::Io {
            path: dir.join(name),
            source: e,
        })?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(too_large());
    }
    Ok(Some(bytes))
}

/// Opens blob `desc` for reading exactly its descriptor's size; `None` if
/// the layout lacks it.
pub(super) fn blob(dir: &Path, desc: &Descriptor) -> Result<Option<impl Read>, ArchiveError> {
    let name = format!("blobs/sha256/{}", desc.digest.hex());
    let Some((file, len)) = open(dir, &name)? else {
        return Ok(None);
    };
    if len != desc.size {
        return Err(ArchiveError::LayoutFile {
            path: dir.join(name),
            why: format!("is {len} bytes but its descriptor says {}", desc.size),
        });
    }
    Ok(Some(file.take(desc.size)))
}
