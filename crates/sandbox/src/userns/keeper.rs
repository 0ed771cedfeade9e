//! The user namespace that containers with the default subordinate mapping
//! share, one per den root, kept by a small "keeper" process (as podman's
//! pause process keeps its own).
//!
//! Making a user namespace with subordinate ids costs a helper fork and two
//! setuid executions (newuidmap, newgidmap): about 5 ms of every `den run`.
//! Joining one that exists is an open and a setns.
//!
//! ```text
//! ROOT/userns.json   {"pid", "start"} of the keeper, written by it (atomically)
//!                    once its namespace is mapped; its mtime is the last join
//!                    (recorded at most once a minute)
//! ROOT/userns.lock   held by whoever starts a keeper, and by a keeper ending
//! ```
//!
//! A joiner trusts nothing in the record. It opens `/proc/PID/ns/user`, then
//! checks that PID still has the record's start time (the pid was not
//! reused) and that the namespace maps exactly the ids the joiner would map
//! itself (read from the kernel: `/proc/PID/uid_map` and `gid_map`);
//! otherwise it makes a namespace of its own, as before there was a keeper.
//!
//! A keeper ends when its record is gone or names another process (its den
//! root was removed; another keeper replaced it), or after [`IDLE`] without a
//! join. The namespace outlives it while containers are in it.
//!
//! A keeper also keeps a spare network namespace ready for the next
//! container that needs a new one, and a `--rootfs` tree for the next
//! container of a directory asked for before (`spare`, `ROOT/userns.sock`).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::sched::{CloneFlags, setns};
use rustix::fs::{Mode, OFlags};

use super::UsernsError;
use super::spare::{self, Spares};
use crate::idmap::{IdMapping, MapRange};

/// The keeper's record, beneath the den root.
pub const RECORD: &str = "userns.json";
/// Taken by whoever starts a keeper, and by a keeper before it ends.
pub const LOCK: &str = "userns.lock";
/// How long a keeper waits for a join before it ends.
pub const IDLE: Duration = Duration::from_secs(600);
/// A join sooner than this after the last recorded one is not recorded.
const JOIN_RECORDED: Duration = Duration::from_secs(60);
/// How often a keeper looks at its record.
const POLL: Duration = Duration::from_secs(1);
/// A record is two numbers: anything longer is not one.
const MAX_RECORD: u64 = 256;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Record {
    pid: i32,
    start: u64,
}

/// A live keeper's user namespace, found and checked (module doc).
#[derive(Debug)]
pub struct Keeper {
    ns: OwnedFd,
    record: PathBuf,
    pid: i32,
}

impl Keeper {
    /// The keeper of `root` whose namespace maps exactly `mapping`, if one
    /// runs.
    pub fn find(root: &Path, mapping: &IdMapping) -> Option<Keeper> {
        let record = root.join(RECORD);
        let (ns, pid) = open(&record, mapping)?;
        Some(Keeper { ns, record, pid })
    }

    /// The keeper's pid (`den info`).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Moves the calling (single-threaded) process into the keeper's
    /// namespace, as root there, and records the join (at most once a
    /// minute: a write on every run would be I/O on the hot path). `None`,
    /// with nothing changed, if the kernel refuses the setns.
    pub fn join(self) -> Result<Option<Joined>, UsernsError> {
        if setns(self.ns.as_fd(), CloneFlags::CLONE_NEWUSER).is_err() {
            return Ok(None);
        }
        super::become_root()?;
        if std::fs::symlink_metadata(&self.record).is_ok_and(|m| idle_for(&m, JOIN_RECORDED)) {
            touch(&self.record);
        }
        let root = self.record.parent().map(Path::to_path_buf);
        Ok(root.map(|root| Joined { root }))
    }
}

/// A keeper whose namespace the calling process joined: it holds nothing
/// of the keeper but where to ask for spares.
#[derive(Debug)]
pub struct Joined {
    root: PathBuf,
}

impl Joined {
    /// Spares from the keeper (see `spare`): with `net` a fresh network
    /// namespace, owned by its user namespace, which the caller is in; a
    /// tree of `lower` for `--rootfs`. Whatever is missing, make.
    pub fn take(&self, net: bool, lower: Option<&Path>) -> spare::Taken {
        spare::take(&self.root, net, lower)
    }
}

/// Joins `root`'s keeper's namespace if one runs for `mapping` (see
/// [`Keeper::join`]); `false`, nothing changed, otherwise.
pub fn join(root: &Path, mapping: &IdMapping) -> Result<bool, UsernsError> {
    match Keeper::find(root, mapping) {
        Some(k) => Ok(k.join()?.is_some()),
        None => Ok(false),
    }
}

/// The keeper (`den __internal userns-keeper`): forks the process that keeps
/// the namespace and returns (the caller exits), so the keeper is not its
/// starter's child: the starter is a supervisor, whose children are its
/// container and its guard. The keeper makes the namespace, writes the
/// record, says `ready` through `announce` (or its error through `fail`,
/// which returns its exit code), then lingers (module doc). Must be called
/// in a single-threaded process.
pub fn keeper_main(
    root: &Path,
    mapping: &IdMapping,
    announce: impl FnOnce(),
    fail: impl FnOnce(UsernsError) -> i32,
) -> Result<(), UsernsError> {
    let keep = move || match keep(root, mapping, announce) {
        Ok(()) => 0,
        Err(e) => fail(e),
    };
    let (keeper, ()) =
        crate::sys::fork_child((), keep).map_err(|e| UsernsError::Helper(io::Error::other(e)))?;
    keeper.detach();
    Ok(())
}

fn keep(root: &Path, mapping: &IdMapping, announce: impl FnOnce()) -> Result<(), UsernsError> {
    crate::sys::close_inherited_fds();
    nix::unistd::setsid().ok();
    std::env::set_current_dir("/").ok();
    super::enter_user_namespace(mapping)?;
    // Under the starter's lock, as the record: a keeper ending idle removes
    // both under it.
    let spares = Spares::open(root).ok();
    let me = std::process::id() as i32;
    let record = Record {
        pid: me,
        start: crate::container::state::start_time(me).unwrap_or(0),
    };
    let path = root.join(RECORD);
    let bytes = serde_json::to_vec(&record).expect("serializes");
    den_atomic::replace_bytes(&path, root, den_atomic::Durability::Unsynced, &bytes)
        .map_err(record_error("write", &path))?;
    let written = std::fs::symlink_metadata(&path).map_err(record_error("read", &path))?;
    announce();
    linger(root, (written.dev(), written.ino()), spares);
    Ok(())
}

fn record_error(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> UsernsError {
    let path = path.to_path_buf();
    move |source| UsernsError::Record { what, path, source }
}

/// Waits until the record is no longer this keeper's, or nobody joined for
/// [`IDLE`], handing out `spares` meanwhile; the last check is made under
/// [`LOCK`], and the record and the socket go with the keeper.
fn linger(root: &Path, me: (u64, u64), mut spares: Option<Spares>) {
    let path = root.join(RECORD);
    let mine = |m: &std::fs::Metadata| (m.dev(), m.ino()) == me;
    let idle = |m: &std::fs::Metadata| idle_for(m, IDLE);
    loop {
        wait(&mut spares);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if mine(&m) && !idle(&m) => continue,
            Ok(m) if mine(&m) => {}
            _ => return,
        }
        let Ok(_lock) = den_atomic::lock(&root.join(LOCK)) else {
            continue;
        };
        match std::fs::symlink_metadata(&path) {
            Ok(m) if mine(&m) && idle(&m) => {
                std::fs::remove_file(&path).ok();
                Spares::remove(root);
                return;
            }
            Ok(m) if mine(&m) => {}
            _ => return,
        }
    }
}

/// Waits [`POLL`], handing out spares meanwhile; a failure to serve ends
/// serving (the containers then make their own namespaces and trees).
fn wait(spares: &mut Option<Spares>) {
    let failed = match spares {
        Some(s) => s.wait(POLL).is_err(),
        None => {
            std::thread::sleep(POLL);
            false
        }
    };
    if failed {
        *spares = None;
    }
}

/// Whether the record was last touched `long` ago or more.
fn idle_for(m: &std::fs::Metadata, long: Duration) -> bool {
    m.modified()
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|d| d >= long)
}

/// The namespace of the keeper `record` names, checked as the module doc
/// says.
fn open(record: &Path, mapping: &IdMapping) -> Option<(OwnedFd, i32)> {
    if !matches!(mapping, IdMapping::Subordinate { .. }) {
        return None;
    }
    let record: Record = den_atomic::read_json(record, MAX_RECORD).ok()?;
    let ns = rustix::fs::open(
        format!("/proc/{}/ns/user", record.pid),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", record.pid)).ok()?;
    let same = crate::container::state::parse_start_time(&stat) == Some(record.start)
        && !crate::container::state::parse_dead(&stat);
    let mapped = read_map(record.pid, "uid_map")? == mapping.uid_map()
        && read_map(record.pid, "gid_map")? == mapping.gid_map();
    (same && mapped).then_some((ns, record.pid))
}

/// `/proc/PID/uid_map` (or `gid_map`) as ranges, in the reader's terms.
fn read_map(pid: i32, which: &str) -> Option<Vec<MapRange>> {
    let text = std::fs::read_to_string(PathBuf::from(format!("/proc/{pid}/{which}"))).ok()?;
    parse_map(&text)
}

fn parse_map(text: &str) -> Option<Vec<MapRange>> {
    text.lines()
        .map(|line| {
            let mut n = line.split_whitespace().map(str::parse::<u32>);
            let range = MapRange {
                inside: n.next()?.ok()?,
                outside: n.next()?.ok()?,
                count: n.next()?.ok()?,
            };
            n.next().is_none().then_some(range)
        })
        .collect()
}

/// Sets the record's mtime to now: the keeper's idle time starts again.
fn touch(path: &Path) {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, UTIME_NOW};
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: UTIME_NOW,
    };
    let times = Timestamps {
        last_access: now,
        last_modification: now,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_reads_as_the_kernel_prints_it() {
        let text = "         0       1001          1\n         1     165536      65536\n";
        assert_eq!(
            parse_map(text),
            Some(vec![
                MapRange {
                    inside: 0,
                    outside: 1001,
                    count: 1
                },
                MapRange {
                    inside: 1,
                    outside: 165536,
                    count: 65536
                },
            ])
        );
    }

    #[test]
    fn a_map_with_a_bad_line_is_none() {
        assert_eq!(parse_map("0 1001\n"), None);
        assert_eq!(parse_map("0 1001 1 7\n"), None);
        assert_eq!(parse_map("0 x 1\n"), None);
    }
}
