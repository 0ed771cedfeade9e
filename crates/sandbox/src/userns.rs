//! Entering a new user namespace as uid 0 / gid 0.
//!
//! Containers with the default subordinate mapping join the one their den
//! root's keeper holds instead, when it runs ([`keeper`]).
//!
//! [`enter_user_namespace`] unshares only the user namespace; callers unshare
//! mount, pid, network ... namespaces themselves afterwards (they then own
//! them, with full capabilities inside).
//!
//! Single-id mode writes the maps itself (an unprivileged process may map its
//! own uid and gid, after denying `setgroups`). Subordinate mode needs the
//! setuid helpers `newuidmap`/`newgidmap`, run from *outside* the new namespace
//! by a helper child forked beforehand:
//!
//! ```text
//!   parent (enters the namespace)           helper (stays outside)
//!   fork ----------------------------------> wait for `Unshared`
//!   unshare(CLONE_NEWUSER)
//!   send Unshared (or close: abort) -------> newuidmap PARENT 0 UID 1 1 SUB N-1
//!                                            newgidmap PARENT 0 GID 1 1 SUB N-1
//!                                            (keep-id: three lines, see idmap)
//!   recv HelperReport <--------------------- send Mapped | ToolFailed | SpawnFailed
//!   reap helper                              _exit(0)
//!   setresgid(0), setresuid(0)
//! ```

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Command;

use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{Gid, Pid, Uid, setresgid, setresuid};
use rustix::pipe::{PipeFlags, pipe_with};

use crate::idmap::{IdMapping, IdToolError, MapRange, find_id_tool};
use crate::sys;

mod builder;
pub mod keeper;
pub mod spare;

/// Why [`enter_user_namespace`] failed.
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("cannot count this process's threads in /proc/self/task")]
    ThreadCount(#[source] io::Error),
    #[error(
        "the process has {threads} threads; a user namespace can only be entered by a single-threaded process (den re-executes itself before starting any threads)"
    )]
    MultiThreaded { threads: usize },
    #[error(
        "user namespaces are disabled ({errno}): check `sysctl user.max_user_namespaces` (must be > 0) and, on kernels that have it, `sysctl kernel.unprivileged_userns_clone` (must be 1)"
    )]
    Disabled { errno: Errno },
    #[error("unshare(CLONE_NEWUSER) failed")]
    Unshare(#[source] Errno),
    #[error(transparent)]
    IdTool(#[from] IdToolError),
    #[error("{} failed ({status}): {stderr}", tool.display())]
    IdToolFailed {
        tool: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("cannot run {}", tool.display())]
    IdToolSpawn {
        tool: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the id-mapping helper process failed")]
    Helper(#[source] io::Error),
    #[error("cannot write {path}")]
    WriteMap {
        path: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot {what} the user namespace keeper's record {}", path.display())]
    Record {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot become {what} 0 inside the user namespace")]
    SetId {
        what: &'static str,
        #[source]
        source: Errno,
    },
}

/// Move the calling process into a new user namespace in which it is uid 0 and
/// gid 0, with the ids of `map` mapped.
///
/// Must be called in a single-threaded process (`unshare(CLONE_NEWUSER)` fails
/// with `EINVAL` otherwise, and the helper is forked); this is checked and
/// reported as [`UsernsError::MultiThreaded`]. Call it before starting any
/// thread or async runtime.
///
/// Supplementary groups are left alone: inside they show as `nogroup`.
///
/// On an error after the unshare (a map could not be written) the process is
/// left in a new namespace without ids; it should report and exit, not retry.
pub fn enter_user_namespace(map: &IdMapping) -> Result<(), UsernsError> {
    match sys::thread_count().map_err(UsernsError::ThreadCount)? {
        1 => {}
        threads => return Err(UsernsError::MultiThreaded { threads }),
    }
    match map {
        IdMapping::Single { uid, gid } => enter_single(*uid, *gid)?,
        IdMapping::Subordinate { .. } | IdMapping::KeepId { .. } => {
            let tools = IdTools {
                newuidmap: find_id_tool("newuidmap")?,
                newgidmap: find_id_tool("newgidmap")?,
                uid_args: map_args(&map.uid_map()),
                gid_args: map_args(&map.gid_map()),
            };
            enter_subordinate(&tools)?;
        }
    }
    become_root()
}

/// Single-id mode: unshare, deny setgroups, map our own ids to 0.
fn enter_single(uid: u32, gid: u32) -> Result<(), UsernsError> {
    unshare_user()?;
    // An unprivileged process may only write gid_map after giving up setgroups
    // for good (otherwise it could drop a group that restricts access).
    write_proc("/proc/self/setgroups", "deny")?;
    write_proc("/proc/self/uid_map", &format!("0 {uid} 1\n"))?;
    write_proc("/proc/self/gid_map", &format!("0 {gid} 1\n"))
}

fn unshare_user() -> Result<(), UsernsError> {
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|errno| match errno {
        // EPERM: disallowed by sysctl/LSM; ENOSPC/EUSERS: max_user_namespaces.
        Errno::EPERM | Errno::ENOSPC | Errno::EUSERS => UsernsError::Disabled { errno },
        e => UsernsError::Unshare(e),
    })
}

fn write_proc(path: &'static str, contents: &str) -> Result<(), UsernsError> {
    // One write(2): the kernel accepts a map only in a single write.
    std::fs::write(path, contents).map_err(|source| UsernsError::WriteMap { path, source })
}

/// After the maps are written our ids are already 0 inside; set all three of
/// real, effective and saved explicitly so nothing of the host ids lingers.
fn become_root() -> Result<(), UsernsError> {
    setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).map_err(|source| {
        UsernsError::SetId {
            what: "gid",
            source,
        }
    })?;
    setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).map_err(|source| {
        UsernsError::SetId {
            what: "uid",
            source,
        }
    })?;
    // With --userns=keep-id, root inside is a subordinate id outside: the id
    // change made the process non-dumpable, and its /proc files (namespace
    // handles among them) would belong to the host's root. Make it dumpable
    // again, as it was before: nothing outside gains access it did not have.
    nix::sys::prctl::set_dumpable(true).map_err(|source| UsernsError::SetId {
        what: "dumpable flag",
        source,
    })
}

/// `0 OWN 1 1 SUB N-1` (one triple per map line): the argument list for
/// newuidmap/newgidmap after the pid.
fn map_args(map: &[MapRange]) -> Vec<String> {
    map.iter()
        .flat_map(|r| [r.inside, r.outside, r.count])
        .map(|n| n.to_string())
        .collect()
}

/// What the helper runs, resolved before forking.
struct IdTools {
    newuidmap: PathBuf,
    newgidmap: PathBuf,
    uid_args: Vec<String>,
    gid_args: Vec<String>,
}

/// Subordinate mode: see the sequence in the module doc.
fn enter_subordinate(tools: &IdTools) -> Result<(), UsernsError> {
    let parent = Pid::this();
    let (go_rx, go_tx) =
        pipe_with(PipeFlags::CLOEXEC).map_err(|e| UsernsError::Helper(e.into()))?;
    let (report_rx, report_tx) =
        pipe_with(PipeFlags::CLOEXEC).map_err(|e| UsernsError::Helper(e.into()))?;
    // The helper must not hold the parent's ends: it sees EOF on `go` only
    // when every write end is closed.
    let (helper, (go_tx, report_rx)) = sys::fork_child((go_tx, report_rx), move || {
        helper_main(parent, tools, go_rx, report_tx)
    })
    .map_err(|e| UsernsError::Helper(io::Error::other(e)))?;

    let mut to_helper = ToHelper(File::from(go_tx));
    let from_helper = FromHelper(File::from(report_rx));
    if let Err(e) = unshare_user() {
        drop(to_helper); // EOF: the helper exits without mapping.
        let _ = helper.wait();
        return Err(e);
    }
    to_helper.unshared().map_err(UsernsError::Helper)?;
    let report = from_helper.report();
    let exit = helper.wait().map_err(|e| UsernsError::Helper(e.into()))?;
    match report.map_err(UsernsError::Helper)? {
        HelperReport::Mapped => Ok(()),
        HelperReport::ToolFailed {
            tool,
            status,
            stderr,
        } => Err(UsernsError::IdToolFailed {
            tool: tool.into(),
            status,
            stderr,
        }),
        HelperReport::SpawnFailed { tool, error } => Err(UsernsError::IdToolSpawn {
            tool: tool.into(),
            source: io::Error::other(error),
        }),
        HelperReport::Missing => Err(UsernsError::Helper(io::Error::other(format!(
            "the helper ended ({exit:?}) without reporting"
        )))),
    }
}

/// The helper child: wait for the parent to unshare, write its maps, report.
fn helper_main(parent: Pid, tools: &IdTools, go: OwnedFd, report: OwnedFd) -> i32 {
    let mut from_parent = File::from(go);
    let mut byte = [0u8; 1];
    if !matches!(from_parent.read(&mut byte), Ok(1)) || byte[0] != UNSHARED {
        return 1; // The parent could not unshare and gave up.
    }
    // Both tools at once: each is a setuid exec of a few milliseconds.
    let uid = spawn_tool(&tools.newuidmap, parent, &tools.uid_args);
    let gid = spawn_tool(&tools.newgidmap, parent, &tools.gid_args);
    let result = finish_tool(&tools.newuidmap, uid).and(finish_tool(&tools.newgidmap, gid));
    let msg = match result {
        Ok(()) => HelperReport::Mapped,
        Err(report) => report,
    };
    match (ReportSender(File::from(report))).send(&msg) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn spawn_tool(
    tool: &std::path::Path,
    pid: Pid,
    args: &[String],
) -> std::io::Result<std::process::Child> {
    Command::new(tool)
        .arg(pid.to_string())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
}

fn finish_tool(
    tool: &std::path::Path,
    child: std::io::Result<std::process::Child>,
) -> Result<(), HelperReport> {
    let name = || tool.display().to_string();
    let out = child
        .and_then(|c| c.wait_with_output())
        .map_err(|e| HelperReport::SpawnFailed {
            tool: name(),
            error: e.to_string(),
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(HelperReport::ToolFailed {
        tool: name(),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// The one byte the parent sends: "I have unshared, map me now".
const UNSHARED: u8 = b'U';

/// The helper's answer to the parent.
#[derive(Debug, PartialEq, Eq)]
enum HelperReport {
    Mapped,
    ToolFailed {
        tool: String,
        status: String,
        stderr: String,
    },
    SpawnFailed {
        tool: String,
        error: String,
    },
    /// The helper closed the pipe without a report (it crashed).
    Missing,
}

impl HelperReport {
    /// Wire format: a tag byte, then NUL-separated fields.
    fn encode(&self) -> Vec<u8> {
        let (tag, fields): (u8, Vec<&str>) = match self {
            HelperReport::Mapped => (b'M', vec![]),
            HelperReport::ToolFailed {
                tool,
                status,
                stderr,
            } => (b'F', vec![tool, status, stderr]),
            HelperReport::SpawnFailed { tool, error } => (b'S', vec![tool, error]),
            HelperReport::Missing => (b'?', vec![]),
        };
        let mut out = vec![tag];
        out.extend_from_slice(fields.join("\0").as_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> HelperReport {
        let Some((&tag, rest)) = bytes.split_first() else {
            return HelperReport::Missing;
        };
        let rest = String::from_utf8_lossy(rest);
        let mut f = rest.split('\0').map(str::to_owned);
        let mut next = || f.next().unwrap_or_default();
        match tag {
            b'M' => HelperReport::Mapped,
            b'F' => HelperReport::ToolFailed {
                tool: next(),
                status: next(),
                stderr: next(),
            },
            b'S' => HelperReport::SpawnFailed {
                tool: next(),
                error: next(),
            },
            _ => HelperReport::Missing,
        }
    }
}

/// Parent → helper.
struct ToHelper(File);

impl ToHelper {
    fn unshared(&mut self) -> io::Result<()> {
        self.0.write_all(&[UNSHARED])
    }
}

/// Helper → parent, sending side.
struct ReportSender(File);

impl ReportSender {
    fn send(mut self, report: &HelperReport) -> io::Result<()> {
        self.0.write_all(&report.encode())
    }
}

/// Helper → parent, receiving side: reads until the helper closes the pipe.
struct FromHelper(File);

impl FromHelper {
    fn report(mut self) -> io::Result<HelperReport> {
        let mut buf = Vec::new();
        self.0.read_to_end(&mut buf)?;
        Ok(HelperReport::decode(&buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newuidmap_args() {
        use crate::idmap::IdRange;
        let range = |start, count| IdRange { start, count };
        let cases = [
            (range(100000, 65536), false, "0 1000 1 1 100000 65535"),
            (range(100000, 1 << 20), false, "0 1000 1 1 100000 65535"),
            (range(5, 10), false, "0 1000 1 1 5 9"),
            (range(5, 1), false, "0 1000 1"),
            (
                range(100000, 65536),
                true,
                "0 100000 1000 1000 1000 1 1001 101000 64535",
            ),
        ];
        for (sub_uid, keep_id, want) in cases {
            let mut map = IdMapping::Subordinate {
                uid: 1000,
                gid: 1000,
                sub_uid,
                sub_gid: sub_uid,
            };
            if keep_id {
                map = map.keep_id().unwrap();
            }
            assert_eq!(map_args(&map.uid_map()).join(" "), want, "{map:?}");
        }
    }

    #[test]
    fn report_round_trip() {
        let cases = [
            HelperReport::Mapped,
            HelperReport::ToolFailed {
                tool: "/usr/bin/newuidmap".into(),
                status: "exit status: 1".into(),
                stderr: "newuidmap: uid range [1-65536) -> [100000-165536) not allowed".into(),
            },
            HelperReport::SpawnFailed {
                tool: "/x".into(),
                error: "No such file".into(),
            },
        ];
        for report in cases {
            assert_eq!(HelperReport::decode(&report.encode()), report);
        }
        assert_eq!(HelperReport::decode(b""), HelperReport::Missing);
    }
}
