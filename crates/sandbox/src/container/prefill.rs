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
//! and never followed out of the root. Device nodes and sockets (which a
//! user namespace cannot create) are skipped; hard links become separate
//! copies.
//!
//! The volume side may be shared with running containers, which can swap an
//! entry for a symlink to a host path while it is being filled (this runs
//! before `pivot_root`, where such a link would lead to the user's files).
//! So every entry is created and then opened with `openat2(RESOLVE_BENEATH
//! | RESOLVE_NO_SYMLINKS)` and `O_NOFOLLOW`, and owner, mode and times are
//! set on that descriptor (`fchown`, `fchmod`, `futimens`; for a symlink,
//! the link itself through `AT_EMPTY_PATH`): no path is looked up twice.
//! A volume is filled once, when the cli marked it ([`PREFILL_PENDING`]),
//! and only while empty.

use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Stat, Timestamps};
use rustix::io::Errno;

use super::SetupError;
use super::spec::{Mount, PREFILL_PENDING};

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
    if !claim_fill(volume)? {
        return Ok(());
    }
    if !is_empty(&dst).map_err(fail("list the volume", &volume.display().to_string()))? {
        return Ok(());
    }
    copy_tree(&src, &dst, target)?;
    let st = rustix::fs::fstat(&src).map_err(fail("stat", target))?;
    set_meta(&dst, &st).map_err(fail("set owner, mode and times of the volume from", target))
}

/// Removes the volume's [`PREFILL_PENDING`] mark: true for the one caller
/// that removed it, false when it was gone (filled before, or never marked).
fn claim_fill(volume: &Path) -> Result<bool, SetupError> {
    let Some(mark) = volume.parent().map(|d| d.join(PREFILL_PENDING)) else {
        return Ok(false);
    };
    match std::fs::remove_file(&mark) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(SetupError::Io {
            what: "remove the new volume's fill marker".into(),
            path: mark,
            source,
        }),
    }
}

/// Opens the entry `name` of `dir` (in the volume) without following a
/// symlink: the entry itself, whatever replaced it since it was created.
fn open_entry(dir: &OwnedFd, name: &CStr, flags: OFlags) -> Result<OwnedFd, Errno> {
    // openat2 takes a mode only to create.
    let mode = match flags.contains(OFlags::CREATE) {
        true => Mode::from_raw_mode(0o600),
        false => Mode::empty(),
    };
    rustix::fs::openat2(
        dir,
        name,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        mode,
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    )
}

fn fail(what: &str, path: &str) -> impl FnOnce(Errno) -> SetupError {
    let (what, path) = (what.to_string(), path.into());
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
        let meta = |r: Result<(), Errno>| r.map_err(fail("set owner, mode and times of", &child));
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => meta(set_meta(&copy_dir(src, dst, name, &child)?, &st))?,
            FileType::RegularFile => meta(set_meta(&copy_file(src, dst, name, &child)?, &st))?,
            FileType::Symlink => {
                let to = rustix::fs::readlinkat(src, name, Vec::new())
                    .map_err(fail("read the link", &child))?;
                rustix::fs::symlinkat(to.as_c_str(), dst, name).map_err(fail("copy", &child))?;
                let link = open_entry(dst, name, OFlags::PATH).map_err(fail("open", &child))?;
                meta(set_link_meta(&link, &st))?;
            }
            FileType::Fifo => {
                rustix::fs::mknodat(dst, name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
                    .map_err(fail("copy", &child))?;
                // Non-blocking: opening a FIFO to read does not wait for a writer.
                let fifo = open_entry(dst, name, OFlags::RDONLY | OFlags::NONBLOCK)
                    .map_err(fail("open the copy of", &child))?;
                meta(set_meta(&fifo, &st))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Copies a directory; returns the copy, opened.
fn copy_dir(src: &OwnedFd, dst: &OwnedFd, name: &CStr, path: &str) -> Result<OwnedFd, SetupError> {
    match rustix::fs::mkdirat(dst, name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(fail("copy", path)(e)),
    }
    let from = rustix::fs::openat(
        src,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(fail("open", path))?;
    let to = open_entry(dst, name, OFlags::RDONLY | OFlags::DIRECTORY)
        .map_err(fail("open the copy of", path))?;
    copy_tree(&from, &to, path)?;
    Ok(to)
}

/// Copies a regular file; returns the copy, opened.
fn copy_file(src: &OwnedFd, dst: &OwnedFd, name: &CStr, path: &str) -> Result<OwnedFd, SetupError> {
    let from = rustix::fs::openat(
        src,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(fail("open", path))?;
    let to = open_entry(dst, name, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL)
        .map_err(fail("create the copy of", path))?;
    let mut copy = std::fs::File::from(to);
    std::io::copy(&mut std::fs::File::from(from), &mut copy).map_err(|e| SetupError::Io {
        what: "copy into the new volume".into(),
        path: path.into(),
        source: e,
    })?;
    Ok(copy.into())
}

/// Owner first (a chown clears set-id bits), then mode, then times, all
/// on the open entry.
fn set_meta(fd: &OwnedFd, st: &Stat) -> Result<(), Errno> {
    let (uid, gid) = ids_of(st);
    set_owner(rustix::fs::fchown(fd.as_fd(), Some(uid), Some(gid)))?;
    rustix::fs::fchmod(fd, mode_of(st))?;
    rustix::fs::futimens(fd, &times_of(st))
}

/// [`set_meta`] for a symlink opened with `O_PATH|O_NOFOLLOW`: owner and
/// times of the link itself (a link has no mode of its own).
fn set_link_meta(link: &OwnedFd, st: &Stat) -> Result<(), Errno> {
    let (uid, gid) = ids_of(st);
    let on_link = AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW;
    set_owner(rustix::fs::chownat(
        link,
        c"",
        Some(uid),
        Some(gid),
        on_link,
    ))?;
    rustix::fs::utimensat(link, c"", &times_of(st), on_link)
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
