//! `--rm`: the container's directory leaves the store at once and its files
//! are deleted in the background, so whoever waits for the exit status (an
//! attached `den run --rm`) does not wait for the deletion too (about 2 ms
//! of the overlay's work directories and the rest).
//!
//! As `den rm` does it (`cli::containers::Containers::detach`): under
//! `ROOT/containers.lock`, `<id>` is renamed to `.rm-<id>`, which no listing
//! shows and which frees the name, and `.rm-<id>` is flocked. A forked
//! deleter inherits that lock (the descriptor is left open across the fork)
//! and deletes the files as root of the user namespace (they may belong to
//! subordinate ids), with /dev/null as its stdio, while the supervisor
//! exits. A deleter killed leaves `.rm-<id>` unlocked, which the next den
//! command's sweep deletes.
//!
//! The deleter also holds the last run's namespace handles, the last
//! references to the container's mount namespace: closing them makes the
//! kernel unmount the overlay and every mount of the container (for
//! `--rootfs /` a dozen overlays, about half a millisecond), which is thus
//! the deleter's work too, not the waiting caller's. Last, it lets go of
//! the keeper's connection of a run that took a `--rootfs` tree: the
//! keeper's builder makes the next tree then, after all of this run's work.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use rustix::io::FdFlags;

use super::super::nsfds::Namespaces;
use super::super::spec::{ContainerSpec, Network};

/// After the last run: the container's directory out of the store, its
/// place on its user networks given up. `ns`: the last run's namespaces,
/// let go here (without `--rm`) or by the deleter, and then the keeper's
/// connection, `keeper`.
pub(super) fn remove_when_done(
    spec: &ContainerSpec,
    ns: Option<Namespaces>,
    keeper: Option<UnixStream>,
) {
    let Some(dir) = &spec.remove_when_done else {
        return;
    };
    // As `den rm`: the other members stop resolving its name.
    if let Network::User(nets) = &spec.network {
        for u in nets {
            if let Err(e) = super::super::bridge::leave(&u.dir, &spec.id) {
                eprintln!("den: warning: could not leave network {}: {e}", u.name);
            }
        }
    }
    match detach(dir) {
        Ok((gone, held)) => delete_in_background(gone, held, (ns, keeper)),
        Err(_) => {
            drop(ns);
            delete(dir)
        }
    }
}

/// Renames `dir` to `.rm-<id>` under the containers' lock and locks it.
fn detach(dir: &Path) -> std::io::Result<(PathBuf, OwnedFd)> {
    let (Some(containers), Some(id)) = (dir.parent(), dir.file_name()) else {
        return Err(std::io::ErrorKind::InvalidInput.into());
    };
    let _lock = den_atomic::lock(&containers.with_extension("lock"))?;
    let gone = containers.join(format!(".rm-{}", id.to_string_lossy()));
    std::fs::rename(dir, &gone)?;
    let held = File::open(&gone)?;
    held.lock()?;
    Ok((gone, held.into()))
}

/// Forks the deleter of `gone`, which keeps `held` (its lock), `ns` and
/// `keeper`; deletes here if it cannot fork.
fn delete_in_background(
    gone: PathBuf,
    held: OwnedFd,
    (ns, keeper): (Option<Namespaces>, Option<UnixStream>),
) {
    let null = || {
        File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .ok()
            .map(OwnedFd::from)
    };
    let inherited = rustix::io::fcntl_setfd(&held, FdFlags::empty()).is_ok();
    // The handles cross the fork as the lock does; a handle that cannot is
    // closed here, as before.
    let ns = ns.map(Namespaces::into_inheritable);
    let keeper = keeper.filter(|k| rustix::io::fcntl_setfd(k, FdFlags::empty()).is_ok());
    let stdio = [null(), null(), null()];
    let doomed = gone.clone();
    let deleter = move || {
        // First the mounts (then nothing in the container's namespace
        // still uses the files below), then the files.
        drop(ns);
        delete(&doomed);
        drop(keeper);
        0
    };
    if !inherited || crate::sys::fork_clean(stdio, &[], deleter).is_err() {
        delete(&gone);
    }
    // Closing this copy keeps the deleter's: a flock belongs to the open
    // file, which the deleter still holds.
    drop(held);
}

fn delete(dir: &Path) {
    // The container's mount namespace died with it: nothing is mounted
    // here, and as root of the user namespace we may delete files owned
    // by subordinate ids.
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("den: warning: could not remove {}: {e}", dir.display());
    }
}
