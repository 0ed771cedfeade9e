//! Opening and clearing paths strictly beneath the layer root.
//!
//! Every lookup of a directory goes through `openat2` with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`, so a symlink anywhere in a
//! parent path (`a -> /etc`, `a -> ..`) fails with `ELOOP` instead of being
//! followed; final components are then handled with `*at` calls that do not
//! follow symlinks either.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Mode of the directories we create: owner-writable so that entries can be
/// created in them even without `CAP_DAC_OVERRIDE`; the layer's own mode is
/// applied at the end.
pub(super) const DIR_MODE: u32 = 0o755;

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// Opens the directory `path` (normalised, non-empty) beneath `dirfd`,
/// refusing symlinks in every component. The fd is `O_RDONLY` rather than
/// `O_PATH` so that `fsetxattr` (opaque directories) works on it.
pub(super) fn open_dir(dirfd: BorrowedFd<'_>, path: &[u8]) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut attempts = 0;
    loop {
        match fs::openat2(dirfd, path, flags, Mode::empty(), RESOLVE) {
            // openat2 asks for a retry when a rename raced with the lookup.
            Err(Errno::AGAIN) if attempts < 8 => attempts += 1,
            result => return result,
        }
    }
}

/// Why a parent directory could not be opened.
pub(super) enum ResolveError {
    /// The component ending at this byte offset of the path is a symlink.
    Symlink(usize),
    /// A system call failed with `errno`.
    Io(&'static str, Errno),
}

/// Opens the directory `path` beneath `root`; with `create`, missing
/// components are made one by one with `mkdirat` (mode [`DIR_MODE`]).
pub(super) fn open_parent(
    root: BorrowedFd<'_>,
    path: &[u8],
    create: bool,
) -> Result<OwnedFd, ResolveError> {
    // Fast path: the whole directory already exists.
    if let Ok(fd) = open_dir(root, path) {
        return Ok(fd);
    }
    // Slow path: walk component by component, so we can create what is
    // missing and name the component that is a symlink.
    let mut current: Option<OwnedFd> = None;
    let mut end = 0;
    for component in path.split(|b| *b == b'/') {
        end += component.len();
        let dirfd = current.as_ref().map_or(root, |fd| fd.as_fd());
        let next = match open_dir(dirfd, component) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => {
                match fs::mkdirat(dirfd, component, Mode::from_raw_mode(DIR_MODE)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(errno) => return Err(ResolveError::Io("create parent directory", errno)),
                }
                open_dir(dirfd, component).map_err(|e| classify(e, end))?
            }
            Err(errno) => return Err(classify(errno, end)),
        };
        current = Some(next);
        end += 1; // the `/` separator
    }
    current.ok_or(ResolveError::Io("open parent directory", Errno::NOENT))
}

fn classify(errno: Errno, end: usize) -> ResolveError {
    match errno {
        Errno::LOOP | Errno::XDEV => ResolveError::Symlink(end),
        errno => ResolveError::Io("open parent directory", errno),
    }
}

/// A one-entry cache of the most recently used parent directory: consecutive
/// entries of a layer usually share their parent.
///
/// The cache never goes stale: it always holds the parent of the latest
/// entry (for an entry in the root it is emptied), the only operation that
/// removes directories ([`make_room`]) removes children of that parent, and a
/// different parent path is always resolved afresh.
#[derive(Default)]
pub(super) struct Parents {
    path: Vec<u8>,
    fd: Option<OwnedFd>,
}

impl Parents {
    /// The directory `path` beneath `root` (`root` itself for an empty path),
    /// created if missing.
    pub(super) fn get<'a>(
        &'a mut self,
        root: BorrowedFd<'a>,
        path: &[u8],
    ) -> Result<BorrowedFd<'a>, ResolveError> {
        if path.is_empty() {
            // The root's children may be replaced now, the cached one too.
            self.fd = None;
            return Ok(root);
        }
        let hit = self.fd.is_some() && self.path == path;
        if !hit {
            self.fd = None;
            let fd = open_parent(root, path, true)?;
            self.path.clear();
            self.path.extend_from_slice(path);
            self.fd = Some(fd);
        }
        self.fd
            .as_ref()
            .map(|fd| fd.as_fd())
            .ok_or(ResolveError::Io("open parent directory", Errno::NOENT))
    }
}

/// What was at a name an entry wants to create.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Existing {
    /// A directory, and the entry is a directory too: keep it.
    KeptDir,
    /// Removed (recursively for a directory); the name is free now.
    Removed,
}

/// Frees `name` in `parent` for a new entry, or keeps an existing directory
/// when the new entry is a directory as well.
pub(super) fn make_room(
    parent: BorrowedFd<'_>,
    name: &[u8],
    want_dir: bool,
) -> Result<Existing, Errno> {
    let stat = fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
        if want_dir {
            return Ok(Existing::KeptDir);
        }
        remove_tree(parent, name)?;
    } else {
        fs::unlinkat(parent, name, AtFlags::empty())?;
    }
    Ok(Existing::Removed)
}

/// `rm -rf parent/name`, never following symlinks: the directory is opened
/// with `O_NOFOLLOW` and everything below it is removed by name relative to
/// its fd.
fn remove_tree<P: rustix::path::Arg + Copy>(parent: BorrowedFd<'_>, name: P) -> Result<(), Errno> {
    let dirfd = fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut dir = Dir::read_from(&dirfd)?;
    while let Some(child) = dir.read() {
        let child = child?;
        let child_name = child.file_name();
        if child_name == c"." || child_name == c".." {
            continue;
        }
        if child.file_type() == FileType::Directory {
            remove_tree(dirfd.as_fd(), child_name)?;
        } else {
            match fs::unlinkat(&dirfd, child_name, AtFlags::empty()) {
                // d_type was DT_UNKNOWN and this is a directory.
                Err(Errno::ISDIR) => remove_tree(dirfd.as_fd(), child_name)?,
                result => result?,
            }
        }
    }
    fs::unlinkat(parent, name, AtFlags::REMOVEDIR)
}
