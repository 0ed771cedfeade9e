//! Temp files in `tmp/` carry their owner: `NAME-PID-START`, with the pid
//! and the start time (clock ticks since boot, `/proc/PID/stat` field 22)
//! of the den process that made them. [`Store::sweep_tmp`] runs when a
//! store is opened and removes the ones whose owner is gone, so a `kill -9`
//! leaves nothing that the next command does not clean up. Files without an
//! owner suffix (`blob-*.partial`, the resumable downloads, and locks) are
//! left alone.

use std::path::Path;

use super::Store;
use super::layers::remove_tree;

/// Prefixes of temp entries that carry an owner (`write-`: a file being
/// replaced by [`den_atomic::replace`]).
const OWNED: [&str; 3] = ["put-", "trash-", den_atomic::TEMP_PREFIX];

pub(crate) use den_atomic::owner_suffix;
use den_atomic::start_time;

/// The owner (pid, start time) a temp name records, if it is an owned name.
fn owner(name: &str) -> Option<(u32, u64)> {
    if !OWNED.iter().any(|p| name.starts_with(p)) {
        return None;
    }
    let mut parts = name.rsplitn(3, '-');
    let start = parts.next()?.parse().ok()?;
    let pid = parts.next()?.parse().ok()?;
    parts.next()?;
    Some((pid, start))
}

/// Is the process that made `name` gone (or was its pid reused)?
fn stale(proc: &Path, name: &str) -> bool {
    match owner(name) {
        Some((pid, start)) => start_time(proc, pid) != Some(start),
        None => false,
    }
}

impl Store {
    /// Removes temp entries whose owner process is gone. Best effort: an
    /// entry it cannot remove here (a trashed layer owned by subordinate
    /// ids) waits for [`Store::purge_tmp`], which runs in the user namespace.
    pub fn sweep_tmp(&self) {
        self.sweep_tmp_in(Path::new("/proc"));
    }

    fn sweep_tmp_in(&self, proc: &Path) {
        let Ok(entries) = std::fs::read_dir(self.tmp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            if stale(proc, &entry.file_name().to_string_lossy()) {
                remove_tree(&entry.path()).ok();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_parsed_from_owned_names_only() {
        assert_eq!(owner("put-abc-12-345"), Some((12, 345)));
        assert_eq!(owner("trash-abc-12-345"), Some((12, 345)));
        assert_eq!(owner("write-Ab9xQz-12-345"), Some((12, 345)));
        assert_eq!(owner("blob-abc.partial"), None);
        assert_eq!(owner("layer-abc.lock"), None);
        assert_eq!(owner("put-12"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let proc = Path::new("/proc");
        let me = format!("put-x-{}", owner_suffix());
        assert!(!stale(proc, &me));
        let reused = format!("put-x-{}-1", std::process::id());
        assert!(stale(proc, &reused));
        assert!(stale(proc, "put-x-4294967295-1"));
    }
}
