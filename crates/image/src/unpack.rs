//! OCI layer unpacking: one decompressed layer tar stream into one directory,
//! in the form rootless overlayfs (mounted with `userxattr`) reads as a layer.
//!
//! # Theory of operation
//!
//! [`unpack_layer`] walks the tar stream once, in order, and turns each entry
//! into filesystem objects below `dest`. It never builds a path string to
//! hand to the kernel: it holds a directory fd for `dest`, opens each entry's
//! parent directory with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)` (creating missing parents one component at a time),
//! and creates the final component with `*at` calls relative to that parent
//! that do not follow symlinks (`O_CREAT | O_EXCL | O_NOFOLLOW`, `mkdirat`,
//! `symlinkat`, `linkat` without `AT_SYMLINK_FOLLOW`, `mknodat`).
//!
//! Architecture invariant: nothing outside `dest` is created or changed.
//! Names are checked first (`paths`: no absolute names, no `..`), and
//! `beneath` refuses any parent path or hard link target that goes through a
//! symlink. Symlink *targets* are stored verbatim: they are only resolved
//! inside the container, never by us.
//!
//! An entry whose name exists already replaces it (both directories: the
//! directory stays and gets the new metadata; otherwise the old path is removed
//! first, recursively for a directory). Metadata is applied in the order the
//! kernel needs: data, then `chown` (it clears setuid bits and file
//! capabilities), then xattrs, then `chmod`, then the times. Directory owners,
//! modes and times are applied at the end, deepest first, so that a read-only
//! directory does not stop its children from being created and the creation
//! of children does not change the directory's mtime afterwards.
//!
//! # Sparse files
//!
//! A GNU sparse entry's holes stay holes: the tar crate reads them as zeros,
//! and each all-zero chunk becomes a seek, so a 2 KiB layer describing a
//! 200 MB file allocates a few blocks. Reading the zeros still costs time, so
//! a sparse entry's real size is capped (8 GiB) and a larger one refuses the
//! layer before anything is created for it.
//!
//! # Whiteouts
//!
//! OCI whiteouts become what overlayfs itself writes to an upper layer:
//! `.wh.NAME` becomes a character device 0:0 named NAME, and `.wh..wh..opq`
//! sets `user.overlay.opaque=y` on its directory (the `userxattr` namespace,
//! because den mounts overlayfs from a user namespace). Since Linux 5.8 the
//! kernel lets anyone create a 0:0 character device (a "whiteout") without
//! `CAP_MKNOD`; checked on kernel 6.18 with `unshare -Urm` as an unprivileged
//! user: `mknod f c 0 0` succeeds and a `-o userxattr` overlay hides the lower
//! `f`, and `user.overlay.opaque` hides the lower directory's contents. The
//! alternative, xattr whiteouts (`user.overlay.whiteout` on an empty file), is
//! meant for lower layers of nested overlays and was not needed. Other
//! `.wh..wh.*` names (aufs bookkeeping) are skipped. A whiteout whose name
//! already exists in this layer is dropped: per the OCI spec a whiteout only
//! hides files of the layers below.
//!
//! # What is skipped
//!
//! Device nodes (a user namespace cannot create them), xattrs the kernel
//! refuses (an unprivileged namespace root may set `user.*` and
//! `security.capability`), overlayfs' own xattrs (`*.overlay.*`, which would
//! change how the mount reads the layer) and, with
//! [`UnpackOptions::ignore_chown_errors`], owners the namespace cannot map.
//! Each is noted in [`UnpackReport::skipped`]; none fails the layer.

// Code map: `paths` checks names (pure), `beneath` opens and clears paths
// under the root fd, `create` makes one entry's object and applies its
// metadata; this file holds the API, the entry loop and the deferred
// directory metadata.
mod beneath;
mod create;
mod paths;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, Gid, Mode, OFlags, Timespec, Timestamps, Uid};
use rustix::io::Errno;
use tar::EntryType;

use beneath::{Parents, ResolveError};
use paths::{Whiteout, show};

/// How to unpack a layer.
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    /// Single-id user namespace: chown to ids the namespace does not map fails
    /// with EINVAL; skip those chowns (files stay owned by the caller) instead
    /// of failing.
    pub ignore_chown_errors: bool,
}

/// What [`unpack_layer`] did.
#[derive(Debug, Default)]
pub struct UnpackReport {
    /// Tar entries read (global PAX headers not counted).
    pub entries: u64,
    /// Bytes of regular file data written.
    pub bytes: u64,
    /// One note per thing left out, e.g. "dev/null: character device node skipped".
    pub skipped: Vec<String>,
}

/// Why a layer could not be unpacked. Entry names are as in the layer (after
/// stripping a leading `./`, except for refused names, which are shown raw).
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("cannot open the layer directory {}", dest.display())]
    OpenDest {
        dest: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the layer's tar stream")]
    Tar {
        #[source]
        source: io::Error,
    },
    #[error("layer entry `{entry}`: invalid {field} in its tar header")]
    BadHeader {
        entry: String,
        field: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("layer entry `{entry}`: {reason}")]
    UnsafePath { entry: String, reason: String },
    #[error("layer entry `{entry}`: hard link target `{target}`: {reason}")]
    UnsafeLinkTarget {
        entry: String,
        target: String,
        reason: String,
    },
    #[error("layer entry `{entry}`: cannot read its data from the tar stream")]
    ReadData {
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "layer entry `{entry}`: sparse file of {size} bytes refused: den unpacks sparse files \
         of at most {} bytes",
        create::SPARSE_MAX
    )]
    SparseTooLarge { entry: String, size: u64 },
    #[error("layer entry `{entry}`: cannot chown to {uid}:{gid}{}", chown_hint(.source))]
    Chown {
        entry: String,
        uid: u32,
        gid: u32,
        #[source]
        source: io::Error,
    },
    #[error("layer entry `{entry}`: cannot {op}")]
    Io {
        entry: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

fn chown_hint(source: &io::Error) -> &'static str {
    match source.raw_os_error() {
        Some(libc::EINVAL) => {
            " (the id is not mapped in this user namespace: give the user subordinate ids \
             in /etc/subuid and /etc/subgid, or use single-id mode)"
        }
        Some(libc::EPERM) => " (not permitted: run as root in a user namespace that maps the id)",
        _ => "",
    }
}

fn io_err(path: &[u8], op: &'static str, errno: Errno) -> UnpackError {
    UnpackError::Io {
        entry: show(path),
        op,
        source: errno.into(),
    }
}

/// Unpacks the layer `tar` (already decompressed) into `dest`, an existing
/// empty directory, and stops at the tar end-of-archive marker: the caller
/// reads (and hashes) whatever follows.
///
/// Run it as root in a user namespace (or as real root); as an unprivileged
/// user without one it works only with `ignore_chown_errors` and files owned
/// by others end up owned by the caller.
///
/// On error the whole layer is refused and `dest` is left half-written: the
/// caller deletes it. No entry, even a refused one, creates or changes
/// anything outside `dest`.
pub fn unpack_layer<R: Read>(
    tar: R,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackReport, UnpackError> {
    let root = rfs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| UnpackError::OpenDest {
        dest: dest.to_path_buf(),
        source: e.into(),
    })?;
    let mut unpacker = Unpacker {
        fs: Fs {
            root,
            parents: Parents::default(),
        },
        path: Vec::new(),
        link: Vec::new(),
        out: Out {
            opts,
            buf: vec![0; COPY_BUF],
            dirs: Vec::new(),
            report: UnpackReport::default(),
            chown_skipped: 0,
        },
    };
    let mut archive = tar::Archive::new(tar);
    for entry in archive
        .entries()
        .map_err(|source| UnpackError::Tar { source })?
    {
        let mut entry = entry.map_err(|source| UnpackError::Tar { source })?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.finish()
}

/// Copy buffer size: large reads let the decompressor work in big chunks.
const COPY_BUF: usize = 1 << 20;

/// Initial mode of files and fifos until the layer's mode is applied.
const PRIVATE: u32 = 0o600;

/// The unpacker's state, split so that an entry's name, the directory fds and
/// the output can be borrowed at the same time.
struct Unpacker<'o> {
    fs: Fs,
    /// The current entry's normalised name (reused buffer).
    path: Vec<u8>,
    /// The current hard link's normalised target (reused buffer).
    link: Vec<u8>,
    out: Out<'o>,
}

/// Directory fds: `dest` and the cached parent of the latest entry.
struct Fs {
    root: OwnedFd,
    parents: Parents,
}

impl Fs {
    /// The parent directory `parent` of entry `path`, created if missing.
    fn parent(&mut self, parent: &[u8], path: &[u8]) -> Result<BorrowedFd<'_>, UnpackError> {
        self.parents
            .get(self.root.as_fd(), parent)
            .map_err(|e| resolve_err(e, parent, path))
    }
}

fn resolve_err(err: ResolveError, parent: &[u8], path: &[u8]) -> UnpackError {
    match err {
        ResolveError::Symlink(end) => UnpackError::UnsafePath {
            entry: show(path),
            reason: format!(
                "its parent `{}` is a symlink; entries may not be written through symlinks",
                show(&parent[..end])
            ),
        },
        ResolveError::Io(op, errno) => io_err(path, op, errno),
    }
}

/// Owner, mode, times and xattrs of one entry.
struct Meta {
    uid: u32,
    gid: u32,
    /// Permission bits including setuid, setgid and sticky.
    mode: u32,
    mtime: Timespec,
    /// `SCHILY.xattr.*` PAX records: (name, value). Empty (no allocation) for
    /// most entries.
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    fn read<R: Read>(entry: &mut tar::Entry<'_, R>, path: &[u8]) -> Result<Meta, UnpackError> {
        let header = entry.header();
        let bad = |field| {
            move |source| UnpackError::BadHeader {
                entry: show(path),
                field,
                source,
            }
        };
        // The tar crate has already applied PAX `uid`/`gid` records.
        let uid = id(header.uid().map_err(bad("uid"))?).map_err(bad("uid"))?;
        let gid = id(header.gid().map_err(bad("gid"))?).map_err(bad("gid"))?;
        let mode = header.mode().map_err(bad("mode"))? & 0o7777;
        let secs = header.mtime().map_err(bad("mtime"))?;
        let mut meta = Meta {
            uid,
            gid,
            mode,
            mtime: Timespec {
                tv_sec: i64::try_from(secs).unwrap_or(i64::MAX),
                tv_nsec: 0,
            },
            xattrs: Vec::new(),
        };
        if let Some(pax) = entry.pax_extensions().map_err(bad("PAX header"))? {
            for record in pax {
                let record = record.map_err(bad("PAX header"))?;
                let key = record.key_bytes();
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    meta.xattrs
                        .push((name.to_vec(), record.value_bytes().to_vec()));
                } else if key == b"mtime"
                    && let Some(mtime) = parse_pax_time(record.value_bytes())
                {
                    meta.mtime = mtime;
                }
            }
        }
        Ok(meta)
    }

    fn times(&self) -> Timestamps {
        Timestamps {
            last_access: self.mtime,
            last_modification: self.mtime,
        }
    }
}

/// A numeric owner id; `-1` means "unchanged" to chown, so it is refused.
fn id(raw: u64) -> io::Result<u32> {
    match u32::try_from(raw) {
        Ok(id) if id != u32::MAX => Ok(id),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("id {raw} out of range"),
        )),
    }
}

/// A PAX time, `SECONDS[.FRACTION]`, possibly negative.
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let text = std::str::from_utf8(value).ok()?;
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let mut tv_sec: i64 = secs.parse().ok()?;
    let digits = &frac[..frac.len().min(9)];
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut tv_nsec: i64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    for _ in digits.len()..9 {
        tv_nsec *= 10;
    }
    if secs.starts_with('-') && tv_nsec > 0 {
        tv_sec -= 1;
        tv_nsec = 1_000_000_000 - tv_nsec;
    }
    Some(Timespec { tv_sec, tv_nsec })
}

/// A directory whose owner, mode and times are applied at the end.
struct DeferredDir {
    path: Vec<u8>,
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: Timespec,
}

/// Everything an entry produces besides filesystem objects.
struct Out<'o> {
    opts: &'o UnpackOptions,
    buf: Vec<u8>,
    dirs: Vec<DeferredDir>,
    report: UnpackReport,
    chown_skipped: u64,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let mut kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        self.out.report.entries += 1;
        {
            let raw = entry.path_bytes();
            paths::normalize(&raw, &mut self.path).map_err(|reason| UnpackError::UnsafePath {
                entry: show(&raw),
                reason: reason.into(),
            })?;
            // Pre-POSIX archives mark directories with a trailing slash only.
            if kind == EntryType::Regular && raw.last() == Some(&b'/') && entry.size() == 0 {
                kind = EntryType::Directory;
            }
        }
        let path = self.path.as_slice();
        if path.is_empty() && kind != EntryType::Directory {
            return Err(UnpackError::UnsafePath {
                entry: show(&entry.path_bytes()),
                reason: "only a directory may stand for the layer root".into(),
            });
        }
        let (_, name) = paths::split(path);
        match paths::whiteout(name) {
            Whiteout::None => {}
            which => return self.out.whiteout(&mut self.fs, path, which),
        }
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let meta = Meta::read(entry, path)?;
                self.out.file(&mut self.fs, path, entry, kind, &meta)
            }
            EntryType::Directory => {
                let meta = Meta::read(entry, path)?;
                self.out.dir(&mut self.fs, path, &meta)
            }
            EntryType::Symlink => {
                let meta = Meta::read(entry, path)?;
                let target = entry.link_name_bytes().unwrap_or_default();
                self.out.symlink(&mut self.fs, path, &target, &meta)
            }
            EntryType::Link => {
                let raw = entry.link_name_bytes().unwrap_or_default();
                paths::normalize(&raw, &mut self.link).map_err(|reason| {
                    UnpackError::UnsafeLinkTarget {
                        entry: show(path),
                        target: show(&raw),
                        reason: reason.into(),
                    }
                })?;
                self.out.hardlink(&mut self.fs, path, &self.link)
            }
            EntryType::Fifo => {
                let meta = Meta::read(entry, path)?;
                self.out.fifo(&mut self.fs, path, &meta)
            }
            EntryType::Char | EntryType::Block => {
                let what = if kind == EntryType::Char {
                    "character"
                } else {
                    "block"
                };
                self.out
                    .note(format!("{}: {what} device node skipped", show(path)));
                Ok(())
            }
            other => {
                let byte = other.as_byte().escape_ascii();
                self.out.note(format!(
                    "{}: unsupported entry type `{byte}` skipped",
                    show(path)
                ));
                Ok(())
            }
        }
    }

    /// Applies the deferred directory metadata, deepest first, and returns
    /// the report.
    fn finish(mut self) -> Result<UnpackReport, UnpackError> {
        let mut dirs = std::mem::take(&mut self.out.dirs);
        // Stable: a directory listed twice gets the metadata of its last entry.
        dirs.sort_by_key(|dir| Reverse(paths::depth(&dir.path)));
        let root = self.fs.root.as_fd();
        for dir in &dirs {
            let opened;
            let fd = if dir.path.is_empty() {
                root
            } else {
                match beneath::open_dir(root, &dir.path) {
                    Ok(fd) => {
                        opened = fd;
                        opened.as_fd()
                    }
                    // Replaced by a later entry (or removed with its parent).
                    Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                    Err(e) => return Err(io_err(&dir.path, "open directory", e)),
                }
            };
            let res = rfs::fchown(
                fd,
                Some(Uid::from_raw(dir.uid)),
                Some(Gid::from_raw(dir.gid)),
            );
            self.out.chowned(res, &dir.path, dir.uid, dir.gid)?;
            rfs::fchmod(fd, Mode::from_raw_mode(dir.mode))
                .map_err(|e| io_err(&dir.path, "set directory mode", e))?;
            let times = Timestamps {
                last_access: dir.mtime,
                last_modification: dir.mtime,
            };
            rfs::futimens(fd, &times).map_err(|e| io_err(&dir.path, "set directory times", e))?;
        }
        let mut report = self.out.report;
        if self.out.chown_skipped > 0 {
            report.skipped.push(format!(
                "{} entries kept the caller's owner: their uid/gid cannot be mapped here",
                self.out.chown_skipped
            ));
        }
        Ok(report)
    }
}

/// The xattr that makes a directory opaque in a `userxattr` overlay mount.
const OPAQUE_XATTR: &str = "user.overlay.opaque";
