//! Filling a new named volume from the image, as Docker does: before the
//! volume is mounted over its target, the tree at the target inside the
//! container's root is copied into the volume's directory, keeping owners,
//! modes, symlinks and timestamps (the volume's own directory takes the
//! owner and mode of the target, so `/var/lib/mysql` stays the mysql
//! user's).
//!
//! Runs in the container process, inside the user namespace as its root,
//! right after the root is mounted and before any other mount: what is copied
//! is the image's content, not den's generated files or other volumes. The
//! target is opened with `openat2(RESOLVE_IN_ROOT)` and walked with `*at`
//! calls and `O_NOFOLLOW`, so a symlink in the image is copied as a symlink
//! and never followed out of the root. Only an empty volume is filled.
//! Device nodes and sockets (which a user namespace cannot create) are
//! skipped; hard links become separate copies.

use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Stat, Timestamps};
use rustix::io::Errno;

use super::SetupError;
use super::spec::Mount;

/// Copies the image's content into every volume the spec marks `prefill`.
pub(super) fn prefill_volumes(root: &OwnedFd, mounts: &[Mount]) -> Result<(), SetupError> {
    for m in mounts {
        if let Mount::Volume {
            source,
            target,
            prefill: true,
            ..
        } = m
        {
            prefill(root, source, target)?;
        }
    }
    Ok(())
}

fn prefill(root: &OwnedFd, volume: &Path, target: &str) -> Result<(), SetupError> {
    let rel = target.trim_start_matches('/');
    let src = match rustix::fs::openat2(
        root,
        if rel.is_empty() { "." } else { rel },
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        // Nothing there (or not a directory): nothing to copy.
        Err(Errno::NOENT | Errno::NOTDIR) => return Ok(()),
        Err(errno) => {
            return Err(SetupError::Resolve {
                target: target.to_string(),
                errno,
            });
        }
    };
    let dst = rustix::fs::open(
        volume,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(fail("open the volume", &volume.display().to_string()))?;
    if !is_empty(&dst).map_err(fail("list the volume", &volume.display().to_string()))? {
        return Ok(());
    }
    copy_tree(&src, &dst, target)?;
    let st = rustix::fs::fstat(&src).map_err(fail("stat", target))?;
    set_owner(chown_fd(&dst, &st)).map_err(fail("set the owner of the volume from", target))?;
    rustix::fs::fchmod(&dst, mode_of(&st))
        .and_then(|()| rustix::fs::futimens(&dst, &times_of(&st)))
        .map_err(fail("set the mode of the volume from", target))
}

fn fail(what: &str, path: &str) -> impl FnOnce(Errno) -> SetupError {
    let (what, path) = (format!("prefilling a volume: {what}"), path.into());
    move |e| SetupError::Io {
        what,
        path,
        source: e.into(),
    }
}

fn is_empty(dir: &OwnedFd) -> Result<bool, Errno> {
    for entry in Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Copies the entries of `src` into `dst`; `path` names `src` in errors.
fn copy_tree(src: &OwnedFd, dst: &OwnedFd, path: &str) -> Result<(), SetupError> {
    for entry in Dir::read_from(src).map_err(fail("list", path))? {
        let entry = entry.map_err(fail("list", path))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let child = format!("{}/{}", path.trim_end_matches('/'), name.to_string_lossy());
        let st = rustix::fs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(fail("stat", &child))?;
        let copied = match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => copy_dir(src, dst, name, &child)?,
            FileType::RegularFile => copy_file(src, dst, name, &child)?,
            FileType::Symlink => {
                let to = rustix::fs::readlinkat(src, name, Vec::new())
                    .map_err(fail("read the link", &child))?;
                rustix::fs::symlinkat(to.as_c_str(), dst, name).map_err(fail("copy", &child))?;
                true
            }
            FileType::Fifo => {
                rustix::fs::mknodat(dst, name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
                    .map_err(fail("copy", &child))?;
                true
            }
            _ => false,
        };
        if copied {
            set_meta_at(dst, name, &st).map_err(fail("set owner, mode and times of", &child))?;
        }
    }
    Ok(())
}

fn copy_dir(src: &OwnedFd, dst: &OwnedFd, name: &CStr, path: &str) -> Result<bool, SetupError> {
    match rustix::fs::mkdirat(dst, name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(fail("copy", path)(e)),
    }
    let open = |dir: &OwnedFd| {
        rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let from = open(src).map_err(fail("open", path))?;
    let to = open(dst).map_err(fail("open the copy of", path))?;
    copy_tree(&from, &to, path)?;
    Ok(true)
}

fn copy_file(src: &OwnedFd, dst: &OwnedFd, name: &CStr, path: &str) -> Result<bool, SetupError> {
    let from = rustix::fs::openat(
        src,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(fail("open", path))?;
    let to = rustix::fs::openat(
        dst,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(fail("create the copy of", path))?;
    std::io::copy(&mut std::fs::File::from(from), &mut std::fs::File::from(to)).map_err(|e| {
        SetupError::Io {
            what: "prefilling a volume: copy".into(),
            path: path.into(),
            source: e,
        }
    })?;
    Ok(true)
}

/// Owner first (a chown clears set-id bits), then mode, then times.
fn set_meta_at(dir: &OwnedFd, name: &CStr, st: &Stat) -> Result<(), Errno> {
    let (uid, gid) = ids_of(st);
    set_owner(rustix::fs::chownat(
        dir,
        name,
        Some(uid),
        Some(gid),
        AtFlags::SYMLINK_NOFOLLOW,
    ))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
        rustix::fs::chmodat(dir, name, mode_of(st), AtFlags::empty())?;
    }
    rustix::fs::utimensat(dir, name, &times_of(st), AtFlags::SYMLINK_NOFOLLOW)
}

fn chown_fd(fd: &OwnedFd, st: &Stat) -> Result<(), Errno> {
    let (uid, gid) = ids_of(st);
    rustix::fs::fchown(fd.as_fd(), Some(uid), Some(gid))
}

/// An id the namespace does not map (single-id mode shows those as the
/// overflow id) cannot be given: the copy keeps the namespace root's.
fn set_owner(r: Result<(), Errno>) -> Result<(), Errno> {
    match r {
        Err(Errno::INVAL) => Ok(()),
        other => other,
    }
}

fn ids_of(st: &Stat) -> (rustix::fs::Uid, rustix::fs::Gid) {
    (
        rustix::fs::Uid::from_raw(st.st_uid),
        rustix::fs::Gid::from_raw(st.st_gid),
    )
}

fn mode_of(st: &Stat) -> Mode {
    Mode::from_raw_mode(st.st_mode & 0o7777)
}

fn times_of(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: st.st_atime as _,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}
