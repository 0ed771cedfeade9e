//! `--rootfs DIR`: a host directory as the container's read-only lower
//! layer, writes going to a tmpfs of the container's (gone when it exits).
//!
//! A directory with mounts below it (like `/`) cannot be an overlay's lower
//! layer in a user namespace: its submounts are locked to it. Then the root
//! is a tmpfs holding one overlay per subdirectory, the symlinks, and files
//! bound read-only (`split_dir`). On `/` that is a dozen overlays: about a
//! millisecond, more than an image's whole root.
//!
//! So the keeper builds the next tree ahead of time ([`build_detached`], in
//! a mount namespace of its own, made the way a container makes its own)
//! and hands it over as a detached mount. The container attaches it
//! ([`mount`]) only if what decided the tree's shape is as it was: the
//! mount table, and every directory whose listing or emptiness was read,
//! stat-ed before it was read ([`Stamp`]). Anything else, and the container
//! builds its own tree, as without a keeper. The contents below the tree's
//! overlays are the host's, live, as in a tree built at start.
//!
//! ```text
//! keeper's child (own mount ns)        container process (own mount ns)
//!   mount table, stat, list, mount       mount table, stat the stamp's dirs
//!   open_tree(CLONE|RECURSIVE) ──fd──►   the same? move_mount onto merged
//!   exits: its namespace goes            else: build here
//! ```

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::{CloneFlags, unshare};
use serde::{Deserialize, Serialize};

use super::SetupError;
use super::mounts::{io_err, mnt};

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
    /// Each mount's device, root, mount point, type and source: what two
    /// copies of a mount table share (mount ids differ).
    mounts: String,
    /// Each directory whose listing or emptiness was read.
    dirs: Vec<Seen>,
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
        Some(Seen {
            path: path.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
            ctime: (m.ctime(), m.ctime_nsec()),
            mtime: (m.mtime(), m.mtime_nsec()),
        })
    }
}

impl Stamp {
    /// Whether a tree of `lower` built now would be built from the same.
    fn holds(&self, lower: &Path, table: &MountTable) -> bool {
        self.lower == lower
            && self.mounts == table.canonical
            && self
                .dirs
                .iter()
                .all(|s| Seen::of(&s.path).as_ref() == Some(s))
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
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut table = MountTable {
            canonical: String::new(),
            points: Vec::new(),
        };
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
            table.canonical += &format!("{dev} {root} {point} {}\n", kind.join(" "));
            table.points.push(PathBuf::from(unescape_mountinfo(point)));
        }
        table
    }
}

/// Mounts `lower`'s tree at `merged`, writes going to a tmpfs at `scratch`:
/// the keeper's `spare` if it still holds, else one built here.
pub(super) fn mount(
    lower: &Path,
    merged: &Path,
    scratch: &Path,
    spare: Option<Spare>,
) -> Result<(), SetupError> {
    // Read before den's own mounts, which overlayfs does not mind.
    let table = MountTable::read();
    if let Some(spare) = spare.filter(|s| s.stamp.holds(lower, &table)) {
        return attach(spare.tree, merged);
    }
    build(lower, merged, scratch, &table).map(drop)
}

fn attach(tree: OwnedFd, at: &Path) -> Result<(), SetupError> {
    use rustix::mount::{MoveMountFlags, move_mount};
    move_mount(
        tree.as_fd(),
        "",
        rustix::fs::CWD,
        at,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| SetupError::Mount {
        what: "the keeper's root tree".into(),
        target: at.display().to_string(),
        errno: nix::Error::from_raw(e.raw_os_error()),
    })
}

/// Where the keeper's child builds a tree: a tmpfs over `/proc` in its own
/// mount namespace, a place no tree is built from (`/proc` of `/` is the
/// container's own; the keeper builds none of `/proc` itself).
const WORKSPACE: &str = "/proc";

/// Whether the keeper builds trees of `lower` ahead of time.
pub fn buildable(lower: &Path) -> bool {
    lower.is_absolute() && !lower.starts_with(WORKSPACE)
}

/// The keeper's child (single-threaded, in the keeper's user namespace):
/// in a mount namespace of its own, which it never leaves, builds the tree
/// of `lower` and returns it as a detached mount, with its stamp.
pub fn build_detached(lower: &Path) -> Result<Spare, SetupError> {
    if !buildable(lower) {
        return Err(SetupError::Io {
            what: "build ahead of time".into(),
            path: lower.into(),
            source: std::io::ErrorKind::InvalidInput.into(),
        });
    }
    unshare(CloneFlags::CLONE_NEWNS).map_err(|errno| SetupError::Namespace {
        what: "mount",
        errno,
    })?;
    super::mounts::make_private()?;
    let table = MountTable::read();
    let workspace = Path::new(WORKSPACE);
    mnt(
        "a workspace tmpfs",
        workspace,
        Some(Path::new("tmpfs")),
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0700"),
    )?;
    let (merged, scratch) = (workspace.join("merged"), workspace.join("scratch"));
    for d in [&merged, &scratch] {
        std::fs::create_dir(d).map_err(io_err("create", d))?;
    }
    let dirs = build(lower, &merged, &scratch, &table)?;
    use rustix::mount::{OpenTreeFlags, open_tree};
    let tree = open_tree(
        rustix::fs::CWD,
        &merged,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(|e| SetupError::Mount {
        what: "a detached copy of the root tree".into(),
        target: merged.display().to_string(),
        errno: nix::Error::from_raw(e.raw_os_error()),
    })?;
    let stamp = Stamp {
        lower: lower.to_path_buf(),
        mounts: table.canonical,
        dirs,
    };
    Ok(Spare { tree, stamp })
}

/// Builds `lower`'s tree at `merged`; returns the directories it read.
fn build(
    lower: &Path,
    merged: &Path,
    scratch: &Path,
    table: &MountTable,
) -> Result<Vec<Seen>, SetupError> {
    // The upper may not lie inside the lower (overlayfs refuses
    // overlapping layers, and the lower may be `/`): keep it on a tmpfs.
    mnt(
        "scratch tmpfs",
        scratch,
        Some(Path::new("tmpfs")),
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0700"),
    )?;
    let mut seen = Vec::new();
    // A failed overlay mount costs milliseconds: try none that the kernel
    // refuses for the (locked) mounts this namespace was made with below
    // its lower directory.
    if !mounts_below(&table.points, lower) {
        seen.extend(Seen::of(lower));
        if overlay_dir(lower, merged, scratch, "root").is_ok() {
            return Ok(seen);
        }
    }
    split_overlay(lower, merged, scratch, &table.points, &mut seen)?;
    Ok(seen)
}

/// One overlay: `lower` read-only, writes to `scratch/upper/NAME`.
fn overlay_dir(lower: &Path, merged: &Path, scratch: &Path, name: &str) -> Result<(), SetupError> {
    let (upper, work) = (
        scratch.join("upper").join(name),
        scratch.join("work").join(name),
    );
    for d in [&upper, &work] {
        std::fs::create_dir_all(d).map_err(io_err("create", d))?;
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        lower.display(),
        upper.display(),
        work.display()
    );
    mnt(
        "an overlay",
        merged,
        Some(Path::new("overlay")),
        Some("overlay"),
        MsFlags::empty(),
        Some(&opts),
    )
}

/// A directory with mounts below it (like `/`) cannot be an overlay's lower
/// layer in a user namespace (its submounts are locked to it). Then the root
/// is a tmpfs holding one overlay per top-level directory, the top-level
/// symlinks, and empty directories where a submount is (/proc, /dev, /sys
/// get den's own mounts anyway).
fn split_overlay(
    lower: &Path,
    merged: &Path,
    scratch: &Path,
    points: &[PathBuf],
    seen: &mut Vec<Seen>,
) -> Result<(), SetupError> {
    mnt(
        "the root tmpfs",
        merged,
        Some(Path::new("tmpfs")),
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0755"),
    )?;
    split_dir(lower, merged, scratch, ("", 0), (points, seen))
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

/// Fills `merged` (a directory on the root tmpfs) with `lower`'s entries:
/// an overlay per subdirectory where possible, else the same split one
/// level down (a few levels deep: /etc may hold bind-mounted files), the
/// symlinks, and files bound read-only. Each directory listed, or found
/// empty, goes to `seen`, stat-ed before it is read.
fn split_dir(
    lower: &Path,
    merged: &Path,
    scratch: &Path,
    (prefix, depth): (&str, u32),
    (points, seen): (&[PathBuf], &mut Vec<Seen>),
) -> Result<(), SetupError> {
    seen.extend(Seen::of(lower));
    for entry in std::fs::read_dir(lower).map_err(io_err("list", lower))? {
        let entry = entry.map_err(io_err("list", lower))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let (from, to) = (entry.path(), merged.join(&name));
        let kind = entry.file_type().map_err(io_err("stat", &from))?;
        if kind.is_symlink() {
            let target = std::fs::read_link(&from).map_err(io_err("read", &from))?;
            std::os::unix::fs::symlink(&target, &to).map_err(io_err("create", &to))?;
        } else if kind.is_dir() {
            std::fs::create_dir(&to).map_err(io_err("create", &to))?;
            // The container mounts its own /proc, /dev and /sys.
            if depth == 0 && ["proc", "dev", "sys"].contains(&name.as_str()) {
                continue;
            }
            // An empty directory needs no overlay: the plain one on the
            // root tmpfs takes writes the same way and looks the same (an
            // overlay's root shows its upper's owner and mode). About 60 µs
            // each, and as much again when the container's mounts go.
            let before = Seen::of(&from);
            if is_empty_dir(&from) {
                seen.extend(before);
                continue;
            }
            let key = format!("{prefix}{name}");
            let whole =
                !mounts_below(points, &from) && overlay_dir(&from, &to, scratch, &key).is_ok();
            if !whole && depth < 3 {
                let prefix = format!("{key}%");
                split_dir(&from, &to, scratch, (&prefix, depth + 1), (points, seen))?;
            }
        } else if kind.is_file() {
            std::fs::File::create(&to).map_err(io_err("create", &to))?;
            mnt(
                "a root file",
                &to,
                Some(&from),
                None,
                MsFlags::MS_BIND,
                None,
            )?;
        }
    }
    Ok(())
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
