//! Every image container's overlay is mounted `volatile` (overlayfs skips
//! syncing its upper layer at unmount and on fsync), so a container's end
//! costs no `syncfs` of the whole filesystem: `den rm -f` of a running
//! container and a `--rm` run's exit wait for no disk.
//!
//! The kernel marks a volatile mount with the directory
//! `WORK/work/incompat/volatile` and refuses to mount over that work
//! directory again while it exists: after a crash the upper layer may have
//! lost writes (Documentation/filesystems/overlayfs.rst, "Volatile mount").
//! Only when the system did not crash in between may it be removed. So:
//!
//! - a kept container that ends while its supervisor lives (its command
//!   exits, `den stop`, the host shutting down) gets its upper layer synced
//!   and the marker removed by the supervisor ([`make_durable`]): what the
//!   old non-volatile unmount did, at the same cost, off the path of
//!   `rm -f`, which asks the supervisor not to (`control`'s `remove`);
//! - a marker found when a container starts was left by a supervisor that
//!   died (SIGKILL) or by a crash: the supervisor removes it when the
//!   container's previous start was in this boot (the boot id recorded in
//!   `state.json`), and otherwise refuses to start the container
//!   ([`clear_marker`]).

use std::path::{Path, PathBuf};

use super::SetupError;

/// The kernel's marker, relative to the overlay's work directory.
const MARKER: &str = "work/incompat/volatile";

/// This boot's id, unique per boot of the machine.
pub(super) fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string()).filter(|s| !s.is_empty())
}

fn marker(work: &Path) -> PathBuf {
    work.join(MARKER)
}

/// Before a start: removes the marker of an earlier volatile mount of
/// `work` when `same_boot` (no crash can have come between), else refuses.
pub(super) fn clear_marker(work: &Path, same_boot: bool) -> Result<(), SetupError> {
    let marker = marker(work);
    if !marker.exists() {
        return Ok(());
    }
    if !same_boot {
        return Err(SetupError::VolatileLost { marker });
    }
    std::fs::remove_dir_all(&marker).map_err(|e| SetupError::Io {
        what: "remove overlayfs's volatile marker".into(),
        path: marker,
        source: e,
    })
}

/// After the last run of a kept container: syncs its upper layer's
/// filesystem, then removes the marker, so the container starts again
/// after any later reboot. Failures are warnings (the marker then stays
/// and the next start in this boot clears it).
pub(super) fn make_durable(upper: &Path, work: &Path) {
    let synced = std::fs::File::open(upper)
        .and_then(|f| rustix::fs::syncfs(&f).map_err(std::io::Error::from));
    if let Err(e) = synced {
        eprintln!("den: warning: cannot sync {}: {e}", upper.display());
        return;
    }
    if let Err(e) = clear_marker(work, true) {
        eprintln!("den: warning: {e}");
    }
}
