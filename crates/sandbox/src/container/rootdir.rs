//! `--rootfs DIR`: a host directory as the container's read-only lower
//! layer, writes going to a tmpfs of the container's (gone when it exits).
//!
//! A directory with mounts below it (like `/`) cannot be an overlay's lower
//! layer in a user namespace: its submounts are locked to it. Then the root
//! is a tmpfs holding one overlay per subdirectory, the symlinks, and files
//! bound read-only (`split_dir`). On `/` that is a dozen overlays: about a
//! millisecond, more than an image's whole root.
//!
//! Every mount of the tree is made with the new mount API (`fsopen`,
//! `fsmount`, `open_tree`) over a scratch tmpfs mounted nowhere, and
//! attached with `move_mount`: the container attaches the tree's root at
//! its `merged` first, then each mount to it.
//!
//! The keeper's builder (`userns::builder`) builds the next tree the same
//! way ahead of time, but leaves it detached ([`Detached`]), in a
//! mount namespace of its own copied from the host's. The container
//! attaches it ([`mount`]) only if what decided the tree's shape is as it
//! was: the mount table, and every directory whose listing or emptiness
//! was read, stat-ed before it was read ([`Stamp`]). Anything else, and the
//! container builds its own tree, as without a keeper. The contents below
//! the tree's overlays are the host's, live, as in a tree built at start.
//!
//! ```text
//! builder (own mount ns)                 container process (own mount ns)
//!   mount table, stat, list, fsmount...    mount table, stat the stamp's dirs
//!   a detached tree ──fd (via keeper)──►   the same? move_mount onto merged
//!                                          else: build here, attached
//! ```

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, unshare};
use serde::{Deserialize, Serialize};

use rustix::fs::{AtFlags, Mode};

use super::SetupError;
use super::mounts::io_err;

/// A tree built ahead of time (by the keeper), and what it was built from.
#[derive(Debug)]
pub struct Spare {
    pub tree: OwnedFd,
    pub stamp: Stamp,
}

/// What a tree of `lower` was built from (module doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    lower: PathBuf,
    /// Each mount's device, root, mount point, type and source, sorted:
    /// what two copies of a mount table share (mount ids and order differ).
    mounts: String,
    shape: Shape,
}

/// What a tree's shape was read from, each read after it was stat-ed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Shape {
    /// Each directory whose listing or emptiness was read.
    dirs: Vec<Seen>,
    /// Each directory whose permission bits a directory of the tree shows
    /// (an overlay's root shows its upper's, which takes the lower's).
    modes: Vec<(PathBuf, u32)>,
}

impl Shape {
    /// The first directory that is not as it was, if any.
    fn changed(&self) -> Option<&Path> {
        let dir = self
            .dirs
            .iter()
            .find(|s| Seen::of(&s.path).as_ref() != Some(*s));
        let mode = || self.modes.iter().find(|(p, m)| mode_of(p) != Some(*m));
        dir.map(|s| s.path.as_path())
            .or_else(|| mode().map(|(p, _)| p.as_path()))
    }

    /// The permission bits of the directory `path`, recorded.
    fn mode(&mut self, path: &Path) -> Option<u32> {
        let mode = mode_of(path)?;
        self.modes.push((path.to_path_buf(), mode));
        Some(mode)
    }
}

/// Permission bits, set-id and sticky bits of `path` (not followed).
fn mode_of(path: &Path) -> Option<u32> {
    let m = std::fs::symlink_metadata(path).ok()?;
    Some(m.mode() & 0o7777)
}

/// A directory as stat-ed: another one at its path, or any entry added,
/// removed or renamed, or a change of its mode changes this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    path: PathBuf,
    dev: u64,
    ino: u64,
    ctime: (i64, i64),
    mtime: (i64, i64),
}

impl Seen {
    fn of(path: &Path) -> Option<Seen> {
        let m = std::fs::symlink_metadata(path).ok()?;
        Some(Seen::from_meta(path, &m))
    }

    fn from_meta(path: &Path, m: &std::fs::Metadata) -> Seen {
        Seen {
            path: path.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
            ctime: (m.ctime(), m.ctime_nsec()),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }
}

impl Stamp {
    /// Why a tree of `lower` built now would not be built from the same,
    /// if it would not.
    fn stale(&self, lower: &Path, table: &MountTable) -> Option<String> {
        if self.lower != lower {
            return Some(format!("built for {}", self.lower.display()));
        }
        if self.mounts != table.canonical {
            return Some("the mount table changed".into());
        }
        let dir = self.shape.changed()?;
        Some(format!("{} changed", dir.display()))
    }
}

/// This mount namespace's mounts (`/proc/self/mountinfo`; empty when
/// unreadable).
struct MountTable {
    canonical: String,
    points: Vec<PathBuf>,
}

impl MountTable {
    fn read() -> Self {
        Self::from_file(Path::new("/proc/self/mountinfo"))
    }

    fn from_file(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut lines = Vec::new();
        let mut points = Vec::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split(' ').take(5).collect();
            let [_, _, dev, root, point] = fields[..] else {
                continue;
            };
            let (_, tail) = line.split_once(" - ").unwrap_or_default();
            let kind: Vec<&str> = tail.split(' ').take(2).collect();
            // A cgroup mount's root is shown relative to the reader's cgroup
            // namespace, which a container has of its own.
            let root = if tail.starts_with("cgroup") { "" } else { root };
            lines.push(format!("{dev} {root} {point} {}\n", kind.join(" ")));
            points.push(PathBuf::from(unescape_mountinfo(point)));
        }
        // The host lists its mounts in the order they were made, a copy in
        // the tree's order.
        lines.sort_unstable();
        MountTable {
            canonical: lines.concat(),
            points,
        }
    }
}

/// Mounts `lower`'s tree at `merged`: the keeper's `spare` if it still
/// holds, else one built here.
pub(super) fn mount(lower: &Path, merged: &Path, spare: Option<Spare>) -> Result<(), SetupError> {
    // Read before den's own mounts, which overlayfs does not mind.
    let table = MountTable::read();
    let why = match spare {
        Some(spare) => match spare.stamp.stale(lower, &table) {
            None => return attach(&spare.tree, rustix::fs::CWD, merged),
            Some(why) => why,
        },
        None => "none from the keeper".into(),
    };
    crate::trace::note(&format!("--rootfs tree built here: {why}"));
    build(lower, &table, Some(merged)).map(drop)
}

/// The mounts of the tree at `merged` below its root (a split tree's
/// overlays and files), as handles, before anything else is mounted there:
/// `--read-only` makes them read-only once the container's own mounts are
/// in place, and only them (not its volumes).
pub(super) fn tree_mounts(merged: &Path) -> Vec<OwnedFd> {
    use rustix::fs::OFlags;
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    MountTable::read()
        .points
        .iter()
        .filter(|p| p.starts_with(merged) && *p != merged)
        .filter_map(|p| rustix::fs::open(p, flags, Mode::empty()).ok())
        .collect()
}

/// Makes each of `tree`'s mounts read-only (see [`tree_mounts`]).
pub(super) fn seal(tree: &[OwnedFd]) -> Result<(), SetupError> {
    for fd in tree {
        crate::sys::mount_setattr_rdonly(fd.as_fd(), false).map_err(|errno| SetupError::Mount {
            what: "the --rootfs tree read-only".to_string(),
            target: "a mount of it".to_string(),
            errno,
        })?;
    }
    Ok(())
}

/// The keeper's builder's side: a mount namespace of its own, a private
/// copy of the host's made at [`Detached::new`], which it never leaves, and
/// that copy's mounts (read once: nothing mounts in it, the trees it
/// builds stay detached).
pub struct Detached {
    table: MountTable,
}

impl Detached {
    /// Moves the calling (single-threaded) process to a mount namespace of
    /// its own.
    pub fn new() -> Result<Detached, SetupError> {
        unshare(CloneFlags::CLONE_NEWNS).map_err(|errno| SetupError::Namespace {
            what: "mount",
            errno,
        })?;
        super::mounts::make_private()?;
        Ok(Detached {
            table: MountTable::read(),
        })
    }

    /// Whether the copy still has the mounts `pid` has (the keeper: the
    /// host's); it goes stale when the host mounts or unmounts.
    pub fn fresh_against(&self, pid: i32) -> bool {
        let theirs = MountTable::from_file(Path::new(&format!("/proc/{pid}/mountinfo")));
        !theirs.canonical.is_empty() && theirs.canonical == self.table.canonical
    }

    /// The tree of `lower`, detached, with its stamp. Attaching mounts to a
    /// detached one needs Linux 6.15: before, this fails, and containers
    /// build their own.
    pub fn build(&self, lower: &Path) -> Result<Spare, SetupError> {
        let (tree, shape) = build(lower, &self.table, None)?;
        let stamp = Stamp {
            lower: lower.to_path_buf(),
            mounts: self.table.canonical.clone(),
            shape,
        };
        Ok(Spare { tree, stamp })
    }
}

/// Builds `lower`'s tree: one overlay of it, or, with mounts below it, a
/// tmpfs holding an overlay per entry (`split_dir`). Its root is attached
/// at `at` first (a container's: each mount is then attached to a mounted
/// tree, as every kernel allows), or left detached (`None`, the keeper's
/// builder); returns the root's mount and the directories it read.
fn build(
    lower: &Path,
    table: &MountTable,
    at: Option<&Path>,
) -> Result<(OwnedFd, Shape), SetupError> {
    // The upper may not lie inside the lower (overlayfs refuses
    // overlapping layers, and the lower may be `/`): a tmpfs mounted
    // nowhere, which the overlays keep while they are mounted.
    let nowhere = Path::new("a detached mount");
    let scratch = new_mount("tmpfs", &[("mode", "0700")], &[])
        .map_err(mount_err("a scratch tmpfs", nowhere))?;
    for d in ["upper", "work"] {
        make_dir(&scratch, Path::new(d), None)?;
    }
    let mut shape = Shape::default();
    // A failed overlay mount costs milliseconds: try none that the kernel
    // refuses for the (locked) mounts this namespace was made with below
    // its lower directory.
    let mode = shape.mode(lower);
    if !mounts_below(&table.points, lower) {
        shape.dirs.extend(Seen::of(lower));
        if let Ok(root) = overlay(lower, &scratch, "root", mode) {
            attach_root(&root, at)?;
            return Ok((root, shape));
        }
    }
    let mode = format!("{:o}", mode.unwrap_or(0o755));
    let root = new_mount("tmpfs", &[("mode", &mode)], &[])
        .map_err(mount_err("the root tmpfs", nowhere))?;
    attach_root(&root, at)?;
    let points = &table.points;
    split_dir(
        lower,
        (&root, Path::new("")),
        &scratch,
        ("", 0),
        (points, &mut shape),
    )?;
    Ok((root, shape))
}

fn mount_err<'a>(what: &'a str, target: &'a Path) -> impl Fn(rustix::io::Errno) -> SetupError + 'a {
    move |e| SetupError::Mount {
        what: what.to_string(),
        target: target.display().to_string(),
        errno: nix::Error::from_raw(e.raw_os_error()),
    }
}

/// A new mount of `fstype`, detached (the new mount API).
fn new_mount(
    fstype: &str,
    options: &[(&str, &str)],
    flags: &[&str],
) -> rustix::io::Result<OwnedFd> {
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
    let fs = rustix::mount::fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?;
    for (key, value) in options {
        rustix::mount::fsconfig_set_string(&fs, *key, *value)?;
    }
    for flag in flags {
        rustix::mount::fsconfig_set_flag(&fs, *flag)?;
    }
    rustix::mount::fsconfig_create(&fs)?;
    rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
}

fn attach_root(root: &OwnedFd, at: Option<&Path>) -> Result<(), SetupError> {
    match at {
        Some(at) => attach(root, rustix::fs::CWD, at),
        None => Ok(()),
    }
}

/// Attaches the mount `what` at `rel` beneath `dir`.
fn attach(what: &OwnedFd, dir: impl AsFd, rel: &Path) -> Result<(), SetupError> {
    use rustix::mount::{MoveMountFlags, move_mount};
    move_mount(what, "", dir, rel, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
        .map_err(mount_err("a mount of the --rootfs tree", rel))
}

/// Makes directory `rel` beneath `dir`, with `mode` if given (the host
/// directory's it stands for: /tmp's sticky 1777), else 0777 less the umask.
fn make_dir(dir: &OwnedFd, rel: &Path, mode: Option<u32>) -> Result<(), SetupError> {
    let err = |e: rustix::io::Errno| io_err("create", rel)(e.into());
    rustix::fs::mkdirat(dir, rel, Mode::from_raw_mode(0o777)).map_err(err)?;
    match mode {
        Some(m) => {
            rustix::fs::chmodat(dir, rel, Mode::from_raw_mode(m), AtFlags::empty()).map_err(err)
        }
        None => Ok(()),
    }
}

/// One overlay: `lower` read-only, writes to `upper/KEY` of `scratch`,
/// whose `mode` its root shows.
fn overlay(
    lower: &Path,
    scratch: &OwnedFd,
    key: &str,
    mode: Option<u32>,
) -> Result<OwnedFd, SetupError> {
    make_dir(scratch, &Path::new("upper").join(key), mode)?;
    make_dir(scratch, &Path::new("work").join(key), None)?;
    let dir = |d: &str| format!("/proc/self/fd/{}/{d}/{key}", scratch.as_raw_fd());
    let lowerdir = lower.to_str().ok_or_else(|| SetupError::Io {
        what: "use as a lower layer".into(),
        path: lower.into(),
        source: std::io::ErrorKind::InvalidData.into(),
    })?;
    let (upper, work) = (dir("upper"), dir("work"));
    let options = [
        ("lowerdir", lowerdir),
        ("upperdir", &upper),
        ("workdir", &work),
    ];
    new_mount("overlay", &options, &["userxattr"]).map_err(mount_err("an overlay", lower))
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether something is mounted strictly below `dir`, which would make the
/// kernel refuse `dir` as an overlay's lower layer in a user namespace.
fn mounts_below(points: &[PathBuf], dir: &Path) -> bool {
    points.iter().any(|p| p != dir && p.starts_with(dir))
}

/// Fills `rel` beneath `root` (a directory of the root tmpfs) with
/// `lower`'s entries: an overlay per subdirectory where possible, else the
/// same split one level down (a few levels deep: /etc may hold bind-mounted
/// files), the symlinks, and files bound read-only. Each directory listed,
/// or found empty, goes to `shape`, stat-ed before it is read, and each
/// directory's mode, which its stand-in takes.
fn split_dir(
    lower: &Path,
    (root, rel): (&OwnedFd, &Path),
    scratch: &OwnedFd,
    (prefix, depth): (&str, u32),
    (points, shape): (&[PathBuf], &mut Shape),
) -> Result<(), SetupError> {
    shape.dirs.extend(Seen::of(lower));
    for entry in std::fs::read_dir(lower).map_err(io_err("list", lower))? {
        let entry = entry.map_err(io_err("list", lower))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let (from, to) = (entry.path(), rel.join(&name));
        let kind = entry.file_type().map_err(io_err("stat", &from))?;
        if kind.is_symlink() {
            let target = std::fs::read_link(&from).map_err(io_err("read", &from))?;
            rustix::fs::symlinkat(&target, root, &to)
                .map_err(|e| io_err("create", &to)(e.into()))?;
        } else if kind.is_dir() {
            let meta = std::fs::symlink_metadata(&from).ok();
            let mode = meta.as_ref().map(|m| m.mode() & 0o7777);
            if let Some(m) = mode {
                shape.modes.push((from.clone(), m));
            }
            make_dir(root, &to, mode)?;
            // The container mounts its own /proc, /dev and /sys.
            if depth == 0 && ["proc", "dev", "sys"].contains(&name.as_str()) {
                continue;
            }
            // An empty directory needs no overlay: the plain one on the
            // root tmpfs takes writes the same way and looks the same (an
            // overlay's root shows its upper's owner and mode). About 60 µs
            // each, and as much again when the container's mounts go.
            // More than two links: it holds a directory (a listing of a
            // large directory costs more than an overlay's mount).
            let holds_dirs = meta.as_ref().is_some_and(|m| m.nlink() > 2);
            if !holds_dirs && is_empty_dir(&from) {
                shape.dirs.extend(meta.map(|m| Seen::from_meta(&from, &m)));
                continue;
            }
            let key = format!("{prefix}{name}");
            let whole = match mounts_below(points, &from) {
                true => None,
                false => overlay(&from, scratch, &key, mode).ok(),
            };
            match whole {
                Some(o) => attach(&o, root, &to)?,
                None if depth < 3 => {
                    let prefix = format!("{key}%");
                    let inner = (root, to.as_path());
                    split_dir(&from, inner, scratch, (&prefix, depth + 1), (points, shape))?;
                }
                None => {}
            }
        } else if kind.is_file() {
            bind_file(&from, root, &to)?;
        }
    }
    Ok(())
}

/// Binds the host file `from` at `rel` beneath `root` (a file of the
/// host's stays the host's: the container cannot write it).
fn bind_file(from: &Path, root: &OwnedFd, rel: &Path) -> Result<(), SetupError> {
    use rustix::fs::{OFlags, openat};
    use rustix::mount::{OpenTreeFlags, open_tree};
    let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC;
    openat(root, rel, flags, Mode::from_raw_mode(0o666))
        .map_err(|e| io_err("create", rel)(e.into()))?;
    let flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    let file = open_tree(rustix::fs::CWD, from, flags).map_err(mount_err("a root file", from))?;
    attach(&file, root, rel)
}

/// Whether `dir` lists no entry (false when it cannot be read: an overlay
/// then keeps it as unreadable inside as outside).
fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_below_a_directory() {
        assert_eq!(
            unescape_mountinfo(r"/mnt/my\040disk\134x"),
            r"/mnt/my disk\x"
        );
        assert_eq!(unescape_mountinfo(r"/odd\9"), r"/odd\9");
        let points: Vec<PathBuf> = ["/", "/proc", "/mnt/a b", "/usrx"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert!(mounts_below(&points, Path::new("/")));
        assert!(mounts_below(&points, Path::new("/mnt")));
        assert!(!mounts_below(&points, Path::new("/mnt/a b")), "itself");
        assert!(!mounts_below(&points, Path::new("/usr")), "not /usrx");
    }
}
