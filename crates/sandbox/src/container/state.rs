//! A container's run-time state, `state.json` in its directory, written by
//! its supervisor (temp file + rename) and read by every other den command.
//!
//! The supervisor records its own pid and start time: a reader that finds
//! `Running` but no live process with that pid and start time (a zombie
//! counts as dead) knows the supervisor died (kill -9) and reports the container as exited, so `den ps`
//! stays truthful and never waits on a dead process.
//!
//! A container with a health check also has `health.json` beside it
//! (`health`), written the same way by the same supervisor.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Restarting,
    Exited,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    /// The supervisor (in the host's pid namespace).
    pub supervisor_pid: i32,
    /// Its start time in clock ticks since boot (field 22 of /proc/PID/stat),
    /// so a recycled pid is not mistaken for it.
    pub supervisor_start: u64,
    /// The container's init process, as the host sees it.
    pub pid: i32,
    pub exit_code: Option<i32>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub restarts: u32,
    /// Why the container could not start, if it could not.
    pub error: Option<String>,
}

/// The largest `state.json` a reader accepts (den writes a few hundred bytes).
const MAX_FILE: u64 = 1 << 20;

pub fn path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

impl State {
    /// A container not started yet, by `supervisor` (0: none).
    pub fn created(supervisor: i32) -> State {
        State {
            status: Status::Created,
            supervisor_pid: supervisor,
            supervisor_start: if supervisor > 0 {
                start_time(supervisor).unwrap_or(0)
            } else {
                0
            },
            pid: 0,
            exit_code: None,
            started_at: None,
            finished_at: None,
            restarts: 0,
            error: None,
        }
    }

    /// The state as last written (none when missing, unreadable or
    /// past [`MAX_FILE`]).
    pub fn read(dir: &Path) -> Option<State> {
        den_atomic::read_json(&path(dir), MAX_FILE).ok()
    }

    /// Replaces `state.json` atomically (`den_atomic`; the temp file in the
    /// container's own directory, which the supervisor knows and which is
    /// removed with the container).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        write_private(
            dir,
            "state.json",
            &serde_json::to_vec(self).expect("state serializes"),
        )
    }

    /// Is the supervisor that wrote this still alive? A zombie is not: a
    /// supervisor killed with -9 stays one until its parent reaps it, which
    /// an init that never reaps would never do.
    pub fn supervisor_alive(&self) -> bool {
        if self.supervisor_pid <= 0 {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.supervisor_pid))
        else {
            return false;
        };
        parse_start_time(&stat) == Some(self.supervisor_start) && !parse_dead(&stat)
    }

    /// The state as it really is: `Running`/`Restarting` with a dead
    /// supervisor becomes `Exited` (exit code unknown: -1... reported as 255).
    pub fn observed(mut self) -> State {
        if matches!(
            self.status,
            Status::Running | Status::Restarting | Status::Created
        ) && self.supervisor_pid > 0
            && !self.supervisor_alive()
        {
            self.status = Status::Exited;
            self.exit_code = self.exit_code.or(Some(255));
            self.error = self
                .error
                .or(Some("the container's supervisor died".into()));
        }
        self
    }
}

/// Replaces `dir/name` atomically (temp file + rename) with a file only the
/// owner of `dir` reads (0600): the container's state and health.
pub(crate) fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    den_atomic::replace(
        &dir.join(name),
        dir,
        den_atomic::Durability::Unsynced,
        |f| {
            // Only the owner reads a container's files.
            owned_like_dir(f, dir);
            f.write_all(bytes)
        },
    )
}

/// Start time of `pid` in clock ticks since boot, from /proc/PID/stat.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Field 22 of a /proc/PID/stat line; the command (field 2) may hold spaces
/// and parentheses, so fields are counted after its last `)`.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Is the process of this /proc/PID/stat line a zombie (`Z`) or dead
/// (`X`)? Its state is field 3, the first after the command.
pub fn parse_dead(stat: &str) -> bool {
    let Some(close) = stat.rfind(')') else {
        return false;
    };
    matches!(stat[close + 1..].split_whitespace().next(), Some("Z" | "X"))
}

/// Now, as RFC 3339 with nanoseconds, UTC (`2026-11-29T10:19:56.123456789Z`).
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// Civil date from Unix seconds (Howard Hinnant's algorithm).
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Gives a file the owner of the container's directory: the user who runs
/// den. Made by root of the user namespace, it would otherwise belong to a
/// subordinate id when root inside is not the user (`--userns=keep-id`), and
/// with mode 0600 the user's `den ps`/`stop`/`rm -f`/`logs` could not read it.
pub(crate) fn owned_like_dir(file: &impl std::os::fd::AsFd, dir: &Path) {
    if let Ok(st) = rustix::fs::stat(dir) {
        let uid = rustix::fs::Uid::from_raw(st.st_uid);
        let gid = rustix::fs::Gid::from_raw(st.st_gid);
        rustix::fs::fchown(file, Some(uid), Some(gid)).ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_dates() {
        let stat = "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_start_time(stat), Some(98765));
        assert!(!parse_dead(stat));
        assert!(parse_dead("1234 (sup (Z) X) Z 1 1234 1234 0 -1 0"));
        assert!(parse_dead("1234 (sup) X 1 1234"));
        assert!(!parse_dead("1234 (a) Z) R 1 1234"));
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_747_699_200, 5), "2025-05-20T00:00:00.000000005Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000000000Z");
        assert!(start_time(std::process::id() as i32).is_some());
    }
}
