//! den's store is private to its user. Every directory den keeps there (the
//! root, `containers/`, `volumes/`, `networks/`, the image store's) is made
//! with mode 0700 and, when it already exists, checked through an fd opened
//! with `O_NOFOLLOW`:
//!
//! - a symlink, something not a directory, or a directory owned by another
//!   user is refused (another user who made it, or can swap what it holds,
//!   could plant a `spec.json` that den would run as this user);
//! - a directory of the user's with group or other bits is tightened to 0700,
//!   with a warning (a store made by an older den, or by hand).
//!
//! Files holding configuration, environment, state or logs are created 0600
//! ([`write_atomic`]).

use std::fs::{File, OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, bail};

/// Set in `den __internal` children: the den that started them checked the
/// store already, and they may run inside a user namespace where owners
/// read differently (so they only create what is missing, mode 0700).
static CHECKED_BY_PARENT: AtomicBool = AtomicBool::new(false);

/// This process is a `den __internal` child of a den that checked the store.
pub fn checked_by_parent() {
    CHECKED_BY_PARENT.store(true, Ordering::Relaxed);
}

/// Mode of den's directories.
pub const DIR_MODE: u32 = 0o700;

/// Makes `dir` (and its missing parents) mode 0700, or checks the existing
/// one as the module doc says.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    let fresh = match std::fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)
                .with_context(|| {
                    format!("cannot create the den store directory {}", dir.display())
                })?;
            true
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!("cannot create the den store directory {}", dir.display())
            });
        }
    };
    if CHECKED_BY_PARENT.load(Ordering::Relaxed) {
        return Ok(());
    }
    let fd = open_dir_nofollow(dir)?;
    let meta = fd
        .metadata()
        .with_context(|| format!("stat {}", dir.display()))?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        bail!(
            "refusing the den store directory {}: it belongs to uid {}, not to you (uid {me}); remove it, or choose a directory of your own with --root or DEN_ROOT",
            dir.display(),
            meta.uid()
        );
    }
    let mode = meta.mode() & 0o7777;
    if mode != DIR_MODE {
        fd.set_permissions(Permissions::from_mode(DIR_MODE))
            .with_context(|| {
                format!(
                    "cannot make the den store directory {} private (mode {mode:04o}): run `chmod 700 {}`",
                    dir.display(),
                    dir.display()
                )
            })?;
        if !fresh && mode & 0o077 != 0 {
            crate::log::warn(format_args!(
                "the den store directory {} was mode {mode:04o}, open to other users; made it 0700",
                dir.display()
            ));
        }
    }
    Ok(())
}

/// Opens `dir` without following a symlink in its last component; a
/// symlink or non-directory there is refused with one line naming it.
fn open_dir_nofollow(dir: &Path) -> anyhow::Result<File> {
    let flags = nix::libc::O_NOFOLLOW | nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC;
    match OpenOptions::new().read(true).custom_flags(flags).open(dir) {
        Ok(f) => Ok(f),
        Err(_) if fs_err::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) => {
            bail!(
                "refusing the den store directory {}: it is a symlink; pass the directory it points to with --root or DEN_ROOT",
                dir.display()
            )
        }
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => bail!(
            "refusing the den store directory {}: it is not a directory; move it away, or choose another store with --root or DEN_ROOT",
            dir.display()
        ),
        Err(e) => Err(e).with_context(|| format!("open {}", dir.display())),
    }
}

/// Replaces `path`, a file of the store at `root`, atomically and 0600:
/// written in the store's `tmp/` and renamed over it (`den_atomic`; not
/// fsynced, as its policy says for records). A `kill -9` mid-write leaves
/// only a temp file that the next command that opens the store sweeps.
pub fn write_atomic(root: &Path, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = root.join("tmp");
    private_dir(&tmp)?;
    den_atomic::replace(path, &tmp, den_atomic::Durability::Unsynced, |f| {
        std::io::Write::write_all(f, bytes)?;
        crate::containers::stop_point("write:before-rename");
        Ok(())
    })
    .with_context(|| format!("write {}", path.display()))
}
