//! Creating one entry's filesystem object below its parent directory fd, and
//! applying its metadata.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Uid};
use rustix::io::Errno;
use tar::EntryType;

use super::beneath::{self, Existing, ResolveError};
use super::paths::{self, Whiteout, show};
use super::{DeferredDir, Fs, Meta, OPAQUE_XATTR, Out, PRIVATE, UnpackError, io_err, resolve_err};

/// Creates the final component `name` of entry `path` with `create`; if the
/// name exists, makes room (see [`beneath::make_room`]) and tries once more.
/// Returns `None` when an existing directory was kept for a directory entry.
fn create_at<T>(
    parent: BorrowedFd<'_>,
    name: &[u8],
    path: &[u8],
    want_dir: bool,
    op: &'static str,
    mut create: impl FnMut() -> Result<T, Errno>,
) -> Result<Option<T>, UnpackError> {
    match create() {
        Ok(made) => return Ok(Some(made)),
        Err(Errno::EXIST) => {}
        Err(e) => return Err(io_err(path, op, e)),
    }
    let existing = beneath::make_room(parent, name, want_dir)
        .map_err(|e| io_err(path, "replace the existing path", e))?;
    match existing {
        Existing::KeptDir => Ok(None),
        Existing::Removed => create().map(Some).map_err(|e| io_err(path, op, e)),
    }
}

/// The largest real (expanded) size of a GNU sparse entry: its holes cost no
/// disk, but reading them costs time.
pub(super) const SPARSE_MAX: u64 = 8 << 30;

/// Reads the next chunk of an entry's data; `None` at its end.
fn read_chunk<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    buf: &mut [u8],
    path: &[u8],
) -> Result<Option<usize>, UnpackError> {
    loop {
        match entry.read(buf) {
            Ok(0) => return Ok(None),
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(UnpackError::ReadData {
                    entry: show(path),
                    source,
                });
            }
        }
    }
}

fn write_err(path: &[u8], source: io::Error) -> UnpackError {
    UnpackError::Io {
        entry: show(path),
        op: "write file data",
        source,
    }
}

impl Out<'_> {
    pub(super) fn note(&mut self, note: String) {
        self.report.skipped.push(note);
    }

    pub(super) fn file<R: Read>(
        &mut self,
        fs: &mut Fs,
        path: &[u8],
        entry: &mut tar::Entry<'_, R>,
        kind: EntryType,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        // Checked before anything is created: a few KiB of layer must not make
        // us read terabytes of zeros.
        if kind == EntryType::GNUSparse && entry.size() > SPARSE_MAX {
            return Err(UnpackError::SparseTooLarge {
                entry: show(path),
                size: entry.size(),
            });
        }
        let (parent_path, name) = paths::split(path);
        let parent = fs.parent(parent_path, path)?;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let create = || rfs::openat(parent, name, flags, Mode::from_raw_mode(PRIVATE));
        let Some(fd) = create_at(parent, name, path, false, "create file", create)? else {
            return Ok(()); // unreachable: only directory entries keep what exists
        };
        let mut file = File::from(fd);
        let written = self.data(entry, &mut file, path, kind == EntryType::GNUSparse)?;
        // A truncated stream ends the data early.
        if written != entry.size() {
            let source = io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "tar stream ends inside the file",
            );
            return Err(UnpackError::ReadData {
                entry: show(path),
                source,
            });
        }
        self.report.bytes += written;
        self.finish_fd(file.as_fd(), path, meta)
    }

    /// Copies an entry's data into `file`; returns the bytes copied. A GNU
    /// `sparse` entry keeps its holes as holes: an all-zero chunk (the tar
    /// crate turns each hole into zeros) is a seek, and the file's length
    /// is set at the end ([`Out::file`] has checked the real size against
    /// [`SPARSE_MAX`]).
    fn data<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        file: &mut File,
        path: &[u8],
        sparse: bool,
    ) -> Result<u64, UnpackError> {
        let mut written = 0u64;
        while let Some(n) = read_chunk(entry, &mut self.buf, path)? {
            let chunk = &self.buf[..n];
            if sparse && chunk.iter().all(|b| *b == 0) {
                file.seek(SeekFrom::Current(n as i64))
                    .map_err(|e| write_err(path, e))?;
            } else {
                file.write_all(chunk).map_err(|e| write_err(path, e))?;
            }
            written += n as u64;
        }
        if sparse {
            file.set_len(written).map_err(|e| write_err(path, e))?;
        }
        Ok(written)
    }

    pub(super) fn dir(&mut self, fs: &mut Fs, path: &[u8], meta: &Meta) -> Result<(), UnpackError> {
        if path.is_empty() {
            let root = fs.root.as_fd();
            self.set_xattrs(root, path, meta);
        } else {
            let (parent_path, name) = paths::split(path);
            let parent = fs.parent(parent_path, path)?;
            let mode = Mode::from_raw_mode(beneath::DIR_MODE);
            create_at(parent, name, path, true, "create directory", || {
                rfs::mkdirat(parent, name, mode)
            })?;
            if !meta.xattrs.is_empty() {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let fd = rfs::openat(parent, name, flags, Mode::empty())
                    .map_err(|e| io_err(path, "open directory", e))?;
                self.set_xattrs(fd.as_fd(), path, meta);
            }
        }
        self.dirs.push(DeferredDir {
            path: path.to_vec(),
            uid: meta.uid,
            gid: meta.gid,
            mode: meta.mode,
            mtime: meta.mtime,
        });
        Ok(())
    }

    pub(super) fn symlink(
        &mut self,
        fs: &mut Fs,
        path: &[u8],
        target: &[u8],
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        if target.is_empty() || target.contains(&0) {
            let source = io::Error::new(io::ErrorKind::InvalidData, "empty or contains a NUL byte");
            return Err(UnpackError::BadHeader {
                entry: show(path),
                field: "symlink target",
                source,
            });
        }
        let (parent_path, name) = paths::split(path);
        let parent = fs.parent(parent_path, path)?;
        create_at(parent, name, path, false, "create symlink", || {
            rfs::symlinkat(target, parent, name)
        })?;
        let (uid, gid) = (Uid::from_raw(meta.uid), Gid::from_raw(meta.gid));
        let res = rfs::chownat(
            parent,
            name,
            Some(uid),
            Some(gid),
            AtFlags::SYMLINK_NOFOLLOW,
        );
        self.chowned(res, path, meta.uid, meta.gid)?;
        if !meta.xattrs.is_empty() {
            self.note(format!("{}: xattrs on a symlink not applied", show(path)));
        }
        rfs::utimensat(parent, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err(path, "set symlink times", e))
    }

    pub(super) fn hardlink(
        &mut self,
        fs: &mut Fs,
        path: &[u8],
        target: &[u8],
    ) -> Result<(), UnpackError> {
        let unsafe_target = |reason: String| UnpackError::UnsafeLinkTarget {
            entry: show(path),
            target: show(target),
            reason,
        };
        if target.is_empty() {
            return Err(unsafe_target("names the layer root".into()));
        }
        if target == path {
            return Ok(()); // a link to itself: nothing to do
        }
        let (parent_path, name) = paths::split(path);
        let (target_parent_path, target_name) = paths::split(target);
        let root = fs.root.as_fd();
        let parent = fs
            .parents
            .get(root, parent_path)
            .map_err(|e| resolve_err(e, parent_path, path))?;
        let opened;
        let target_parent = if target_parent_path == parent_path {
            parent
        } else if target_parent_path.is_empty() {
            root
        } else {
            opened =
                beneath::open_parent(root, target_parent_path, false).map_err(|e| match e {
                    ResolveError::Symlink(end) => unsafe_target(format!(
                        "its parent `{}` is a symlink; links may not go through symlinks",
                        show(&target_parent_path[..end])
                    )),
                    ResolveError::Io(_, errno) => {
                        io_err(path, "open the hard link target's directory", errno)
                    }
                })?;
            opened.as_fd()
        };
        create_at(parent, name, path, false, "create hard link", || {
            rfs::linkat(target_parent, target_name, parent, name, AtFlags::empty())
        })?;
        Ok(())
    }

    pub(super) fn fifo(
        &mut self,
        fs: &mut Fs,
        path: &[u8],
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let (parent_path, name) = paths::split(path);
        let parent = fs.parent(parent_path, path)?;
        let mode = Mode::from_raw_mode(PRIVATE);
        create_at(parent, name, path, false, "create fifo", || {
            rfs::mknodat(parent, name, FileType::Fifo, mode, 0)
        })?;
        // Non-blocking read-only open of a fifo returns at once.
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rfs::openat(parent, name, flags, Mode::empty())
            .map_err(|e| io_err(path, "open fifo", e))?;
        self.finish_fd(fd.as_fd(), path, meta)
    }

    pub(super) fn whiteout(
        &mut self,
        fs: &mut Fs,
        path: &[u8],
        which: Whiteout<'_>,
    ) -> Result<(), UnpackError> {
        let (parent_path, _) = paths::split(path);
        match which {
            Whiteout::None => Ok(()),
            Whiteout::File(hidden) => {
                let parent = fs.parent(parent_path, path)?;
                match rfs::mknodat(parent, hidden, FileType::CharacterDevice, Mode::empty(), 0) {
                    // This layer has its own `hidden`, which wins over the whiteout.
                    Ok(()) | Err(Errno::EXIST) => Ok(()),
                    Err(e) => Err(io_err(path, "create whiteout (character device 0:0)", e)),
                }
            }
            Whiteout::Opaque => {
                let parent = fs.parent(parent_path, path)?;
                rfs::fsetxattr(parent, OPAQUE_XATTR, b"y", rfs::XattrFlags::empty()).map_err(|e| {
                    io_err(
                        path,
                        "mark the directory opaque (xattr user.overlay.opaque)",
                        e,
                    )
                })
            }
            Whiteout::Meta => {
                self.note(format!("{}: aufs metadata entry skipped", show(path)));
                Ok(())
            }
            Whiteout::Invalid => Err(UnpackError::UnsafePath {
                entry: show(path),
                reason: "whiteout that names no file".into(),
            }),
        }
    }

    /// Owner, xattrs, mode and times of a file or fifo, in that order.
    pub(super) fn finish_fd(
        &mut self,
        fd: BorrowedFd<'_>,
        path: &[u8],
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let res = rfs::fchown(
            fd,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        );
        self.chowned(res, path, meta.uid, meta.gid)?;
        self.set_xattrs(fd, path, meta);
        rfs::fchmod(fd, Mode::from_raw_mode(meta.mode)).map_err(|e| io_err(path, "set mode", e))?;
        rfs::futimens(fd, &meta.times()).map_err(|e| io_err(path, "set times", e))
    }

    /// The result of a chown: unmappable ids are skipped if the options say so.
    pub(super) fn chowned(
        &mut self,
        res: Result<(), Errno>,
        path: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<(), UnpackError> {
        match res {
            Ok(()) => Ok(()),
            Err(Errno::PERM | Errno::INVAL) if self.opts.ignore_chown_errors => {
                self.chown_skipped += 1;
                Ok(())
            }
            Err(e) => Err(UnpackError::Chown {
                entry: show(path),
                uid,
                gid,
                source: e.into(),
            }),
        }
    }

    /// Sets the entry's xattrs; what the kernel refuses is noted, not fatal.
    pub(super) fn set_xattrs(&mut self, fd: BorrowedFd<'_>, path: &[u8], meta: &Meta) {
        for (name, value) in &meta.xattrs {
            if name.starts_with(b"user.overlay.") || name.starts_with(b"trusted.overlay.") {
                self.note(format!(
                    "{}: xattr {} not set (reserved for overlayfs)",
                    show(path),
                    show(name)
                ));
                continue;
            }
            if let Err(e) = rfs::fsetxattr(fd, name.as_slice(), value, rfs::XattrFlags::empty()) {
                self.note(format!("{}: xattr {} not set: {e}", show(path), show(name)));
            }
        }
    }
}
