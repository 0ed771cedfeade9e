//! What this host lets an unprivileged user do: the checks behind
//! `den system check`.
//!
//! Each check really tries the thing where it can (a forked child unshares a
//! user namespace, mounts an overlay, ...) rather than reading config, and says
//! in one line how to fix it when it fails. [`rootless_checks`] forks, so it
//! must be called from a single-threaded process (the CLI main thread before
//! any runtime starts); a check that cannot fork reports that as its failure.
//!
//! Checks with `required: false` are degradations den can live with: without
//! subordinate ids den runs in single-id mode, without `/dev/net/tun` only
//! `--network none` works, without cgroup delegation there are no limits.

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount, umount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, statfs};
use nix::unistd::{AccessFlags, Gid, Uid, User, access};
use serde::Serialize;

use crate::channel;
use crate::idmap::{self, IdMapping, UsernsMode, find_id_tool, subordinate_ranges};
use crate::sys::{self, ChildExit};
use crate::userns::enter_user_namespace;

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// What was found, e.g. `allowed (max 96365)`.
    pub detail: String,
    /// One line telling the user how to fix it; `None` when `ok`.
    pub fix: Option<String>,
    /// Whether den cannot run without it (`false`: a warning only).
    pub required: bool,
}

impl Check {
    fn pass(name: &'static str, required: bool, detail: impl Into<String>) -> Check {
        Check {
            name,
            ok: true,
            detail: detail.into(),
            fix: None,
            required,
        }
    }

    fn fail(
        name: &'static str,
        required: bool,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name,
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
            required,
        }
    }
}

/// Run every rootless check, in the order a user should fix them. Uses the
/// system temporary directory as scratch space for the overlay check.
pub fn rootless_checks() -> Vec<Check> {
    vec![
        check_user_namespaces(),
        check_subordinate_ids(),
        check_id_tools(),
        check_overlay(&std::env::temp_dir()),
        check_tun(),
        check_landlock(),
        check_seccomp(),
        check_cgroup_delegation(),
    ]
}

/// Run `f` in a forked child and bring back its `Ok`/`Err` message (over
/// the typed [`crate::channel`]).
fn in_child(f: impl FnOnce() -> Result<String, String>) -> Result<String, String> {
    let (child, mut rx, ()) =
        channel::fork_reporting::<Result<String, String>, _>(false, (), move |mut tx| {
            i32::from(tx.send(&f()).is_err())
        })
        .map_err(|e| error_chain(&e))?;
    let msg = rx.recv_some();
    let exit = child.wait().map_err(|e| format!("waitpid: {e}"))?;
    match (msg, exit) {
        (Ok(result), _) => result,
        (Err(e), ChildExit::Code(code)) => Err(format!(
            "the probe process exited with {code}: {}",
            error_chain(&e)
        )),
        (Err(_), ChildExit::Signal(sig)) => Err(format!("the probe process was killed by {sig}")),
    }
}

/// An error and its sources, joined with `: `.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    s
}

fn read_trimmed(path: &str) -> Option<String> {
    fs_err::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn own_single_mapping() -> IdMapping {
    IdMapping::Single {
        uid: Uid::current().as_raw(),
        gid: Gid::current().as_raw(),
    }
}

/// Can this user create a user namespace and map its own ids? Tried for real.
fn check_user_namespaces() -> Check {
    const NAME: &str = "user namespaces";
    let max = read_trimmed("/proc/sys/user/max_user_namespaces");
    let result = in_child(|| {
        enter_user_namespace(&own_single_mapping()).map_err(|e| error_chain(&e))?;
        Ok(String::new())
    });
    match result {
        Ok(_) => Check::pass(
            NAME,
            true,
            format!("allowed (max {})", max.as_deref().unwrap_or("?")),
        ),
        Err(e) => {
            let mut fix = String::from("as root: sysctl -w user.max_user_namespaces=15000");
            if read_trimmed("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
                fix.push_str(" kernel.unprivileged_userns_clone=1");
            }
            if read_trimmed("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref()
                == Some("1")
            {
                fix.push_str(" (and allow den in AppArmor, or set kernel.apparmor_restrict_unprivileged_userns=0)");
            }
            Check::fail(NAME, true, e, fix)
        }
    }
}

fn user_name(uid: u32) -> String {
    User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

/// Does this user own ranges in /etc/subuid and /etc/subgid?
fn check_subordinate_ids() -> Check {
    const NAME: &str = "subordinate ids";
    let uid = Uid::current().as_raw();
    let forced = UsernsMode::from_env() == UsernsMode::Single;
    match subordinate_ranges(uid, Path::new("/etc/subuid"), Path::new("/etc/subgid")) {
        Ok((u, g)) => {
            let mut detail = format!(
                "uids {}-{}, gids {}-{}",
                u.start,
                u64::from(u.start) + u64::from(u.count) - 1,
                g.start,
                u64::from(g.start) + u64::from(g.count) - 1
            );
            if forced {
                detail.push_str(&format!(" (unused: {}=single)", idmap::USERNS_ENV));
            }
            Check::pass(NAME, false, detail)
        }
        Err(e) => {
            let files = ["/etc/subuid", "/etc/subgid"]
                .map(|f| fs_err::read_to_string(f).unwrap_or_default());
            let start = idmap::next_free_subid_start(&[&files[0], &files[1]]);
            let range = format!("{start}-{}", start + u64::from(idmap::MAX_MAPPED) - 1);
            Check::fail(
                NAME,
                false,
                format!("{e}; den runs in single-id mode (only your own id is mapped)"),
                format!(
                    "as root: usermod --add-subuids {range} --add-subgids {range} {}",
                    user_name(uid)
                ),
            )
        }
    }
}

/// Are newuidmap/newgidmap installed setuid root, and do they accept our
/// ranges? The mapping is tried in a forked child when subordinate ids exist.
fn check_id_tools() -> Check {
    const NAME: &str = "newuidmap/newgidmap";
    let tools: Result<Vec<PathBuf>, _> = ["newuidmap", "newgidmap"]
        .into_iter()
        .map(find_id_tool)
        .collect();
    let tools = match tools {
        Ok(t) => t,
        Err(e) => {
            let fix = match e {
                idmap::IdToolError::NotFound { .. } => "as root: apt-get install uidmap".to_owned(),
                idmap::IdToolError::NotSetuid { ref path } => {
                    format!(
                        "as root: chmod u+s {} (or reinstall uidmap)",
                        path.display()
                    )
                }
            };
            let detail = format!("{e}; den runs in single-id mode");
            return Check::fail(NAME, false, detail, fix);
        }
    };
    let names = format!(
        "{} and {} setuid root",
        tools[0].display(),
        tools[1].display()
    );
    let uid = Uid::current().as_raw();
    let Ok((sub_uid, sub_gid)) =
        subordinate_ranges(uid, Path::new("/etc/subuid"), Path::new("/etc/subgid"))
    else {
        return Check::pass(
            NAME,
            false,
            format!("{names} (unused without subordinate ids)"),
        );
    };
    let map = IdMapping::Subordinate {
        uid,
        gid: Gid::current().as_raw(),
        sub_uid,
        sub_gid,
    };
    let count = map.mapped_count();
    match in_child(|| {
        enter_user_namespace(&map)
            .map(|()| String::new())
            .map_err(|e| error_chain(&e))
    }) {
        Ok(_) => Check::pass(
            NAME,
            false,
            format!("{names}; mapped {count} ids in a test namespace"),
        ),
        Err(e) => Check::fail(
            NAME,
            false,
            format!("mapping subordinate ids failed: {e}"),
            "check that the /etc/subuid and /etc/subgid ranges do not overlap other users' or your own uid, or set DEN_USERNS=single",
        ),
    }
}

/// Can a user namespace mount an overlay? Tried in a forked child, with
/// scratch directories under `scratch_parent` (removed afterwards).
pub fn check_overlay(scratch_parent: &Path) -> Check {
    const NAME: &str = "overlayfs";
    const FIX: &str = "use a kernel >= 5.11 with CONFIG_OVERLAY_FS (modprobe overlay), and keep den's storage on ext4, xfs or btrfs";
    let scratch = match tempfile::Builder::new()
        .prefix(".den-probe-")
        .tempdir_in(scratch_parent)
    {
        Ok(dir) => dir,
        Err(e) => {
            let detail = format!(
                "cannot create a scratch directory in {}: {e}",
                scratch_parent.display()
            );
            return Check::fail(NAME, true, detail, "set TMPDIR to a writable directory");
        }
    };
    let dirs = ["lower", "upper", "work", "merged"].map(|d| scratch.path().join(d));
    for dir in &dirs {
        if let Err(e) = fs_err::create_dir(dir) {
            return Check::fail(
                NAME,
                true,
                e.to_string(),
                "set TMPDIR to a writable directory",
            );
        }
    }
    let fstype = statfs(scratch.path()).map(|s| format!("{:?}", s.filesystem_type()));
    let result = in_child(|| mount_overlay(&dirs));
    // The kernel leaves `work/work` with mode 000, which would stop the
    // scratch directory's removal from listing it.
    let _ = fs_err::set_permissions(dirs[2].join("work"), Permissions::from_mode(0o700));
    let on = format!("on {}", scratch_parent.display());
    match result {
        Ok(detail) => Check::pass(NAME, true, format!("{detail} {on}")),
        Err(e) => Check::fail(
            NAME,
            true,
            format!("{e} ({on}, {})", fstype.unwrap_or_default()),
            FIX,
        ),
    }
}

/// In the probe child: user + mount namespace, overlay, write through it.
fn mount_overlay([lower, upper, work, merged]: &[PathBuf; 4]) -> Result<String, String> {
    enter_user_namespace(&own_single_mapping()).map_err(|e| error_chain(&e))?;
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("making / private: {e}"))?;
    let opts = |extra: &str| {
        format!(
            "lowerdir={},upperdir={},workdir={}{extra}",
            lower.display(),
            upper.display(),
            work.display()
        )
    };
    // `userxattr` (Linux 5.11+) stores overlay metadata in user.* xattrs, the
    // only kind an unprivileged user may set.
    let try_mount = |o: &str| {
        mount(
            Some("overlay"),
            merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(o),
        )
    };
    let how = match try_mount(&opts(",userxattr")) {
        Ok(()) => "mounted with userxattr",
        Err(Errno::EINVAL) => {
            try_mount(&opts("")).map_err(|e| format!("mount -t overlay: {e}"))?;
            "mounted (without userxattr)"
        }
        Err(e) => return Err(format!("mount -t overlay: {e}")),
    };
    fs_err::write(merged.join("probe"), "den").map_err(|e| e.to_string())?;
    let copied_up = upper.join("probe").exists();
    umount(merged).map_err(|e| format!("umount: {e}"))?;
    match copied_up {
        true => Ok(how.to_owned()),
        false => Err("a file written to the overlay did not appear in its upper directory".into()),
    }
}

/// Can this user open /dev/net/tun? pasta needs it to give a container a
/// network.
fn check_tun() -> Check {
    const NAME: &str = "/dev/net/tun";
    match fs_err::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        Ok(_) => Check::pass(NAME, false, "usable"),
        Err(e) => {
            let fix = match e.raw_os_error().map(Errno::from_raw) {
                Some(Errno::ENOENT) | Some(Errno::ENODEV) | Some(Errno::ENXIO) => {
                    "as root: modprobe tun; containers get no network (only --network none) until then"
                }
                _ => {
                    "as root: chmod 0666 /dev/net/tun (the usual mode on desktop distributions); containers get no network until then"
                }
            };
            Check::fail(NAME, false, e.to_string(), fix)
        }
    }
}

/// Which Landlock ABI does the kernel offer?
fn check_landlock() -> Check {
    const NAME: &str = "landlock";
    match sys::landlock_abi_version() {
        Ok(abi) if abi >= 4 => {
            Check::pass(NAME, true, format!("ABI {abi} (filesystem and TCP rules)"))
        }
        Ok(abi) => Check::pass(
            NAME,
            true,
            format!("ABI {abi} (filesystem rules; no TCP rules before ABI 4)"),
        ),
        Err(Errno::EOPNOTSUPP) => Check::fail(
            NAME,
            true,
            "built into the kernel but disabled at boot",
            "add landlock to the kernel's lsm= boot parameter",
        ),
        Err(e) => Check::fail(
            NAME,
            true,
            format!("not available ({e})"),
            "use a kernel >= 5.13 built with CONFIG_SECURITY_LANDLOCK=y",
        ),
    }
}

/// Seccomp mode and filter count from `/proc/self/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeccompStatus {
    /// 0: none, 1: strict, 2: filter.
    pub mode: u32,
    pub filters: Option<u32>,
}

/// Parse the `Seccomp:` and `Seccomp_filters:` lines of `/proc/PID/status`;
/// `None` when the kernel was built without seccomp (no such line).
pub fn parse_seccomp_status(status: &str) -> Option<SeccompStatus> {
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse::<u32>().ok())
    };
    Some(SeccompStatus {
        mode: field("Seccomp:")?,
        filters: field("Seccomp_filters:"),
    })
}

fn check_seccomp() -> Check {
    const NAME: &str = "seccomp";
    const FIX: &str = "use a kernel built with CONFIG_SECCOMP_FILTER=y";
    let status = match fs_err::read_to_string("/proc/self/status") {
        Ok(s) => s,
        Err(e) => return Check::fail(NAME, true, e.to_string(), "mount /proc"),
    };
    match parse_seccomp_status(&status) {
        Some(SeccompStatus { mode: 0, .. }) => Check::pass(NAME, true, "available"),
        Some(SeccompStatus { mode: 2, filters }) => Check::pass(
            NAME,
            true,
            format!(
                "available (den itself already runs under {} filter(s))",
                filters.unwrap_or(1)
            ),
        ),
        Some(SeccompStatus { mode, .. }) => Check::fail(
            NAME,
            true,
            format!("den runs in seccomp mode {mode} and cannot add filters"),
            "run den outside a strict-mode seccomp sandbox",
        ),
        None => Check::fail(
            NAME,
            true,
            "the kernel has no seccomp (no Seccomp line in /proc/self/status)",
            FIX,
        ),
    }
}

/// The path of this process's cgroup in the unified (v2) hierarchy: the
/// `0::PATH` line of `/proc/self/cgroup`.
pub fn parse_unified_cgroup(proc_self_cgroup: &str) -> Option<&str> {
    proc_self_cgroup.lines().find_map(|l| l.strip_prefix("0::"))
}

/// Is /sys/fs/cgroup a cgroup v2 hierarchy, and may this user manage its own
/// cgroup there (delegation)?
fn check_cgroup_delegation() -> Check {
    const NAME: &str = "cgroup v2 delegation";
    const FIX_V1: &str = "boot with systemd.unified_cgroup_hierarchy=1 and delegate via systemd user@.service; den runs without resource limits until then";
    const FIX_DELEGATE: &str = "delegate a cgroup to the user (systemd: user@.service with Delegate=yes); den runs without resource limits until then";
    let root = Path::new("/sys/fs/cgroup");
    let is_v2 = |p: &Path| statfs(p).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC);
    if !is_v2(root) {
        let kind = match is_v2(&root.join("unified")) {
            true => "a hybrid v1/v2 hierarchy",
            false => "a cgroup v1 hierarchy (or none)",
        };
        return Check::fail(NAME, false, format!("/sys/fs/cgroup is {kind}"), FIX_V1);
    }
    let own = fs_err::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|s| parse_unified_cgroup(&s).map(str::to_owned));
    let Some(own) = own else {
        return Check::fail(NAME, false, "no 0:: line in /proc/self/cgroup", FIX_V1);
    };
    let dir = root.join(own.trim_start_matches('/'));
    let writable = ["", "cgroup.procs", "cgroup.subtree_control"]
        .iter()
        .all(|f| access(&dir.join(f), AccessFlags::W_OK).is_ok());
    if !writable {
        return Check::fail(
            NAME,
            false,
            format!("{own} is not writable by this user"),
            FIX_DELEGATE,
        );
    }
    let controllers =
        read_trimmed(&dir.join("cgroup.controllers").to_string_lossy()).unwrap_or_default();
    Check::pass(
        NAME,
        false,
        format!("{own} delegated (controllers: {controllers})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seccomp_status() {
        let cases = [
            (
                "Name:\tx\nSeccomp:\t0\nSeccomp_filters:\t0\n",
                Some((0, Some(0))),
            ),
            ("Seccomp:\t2\nSeccomp_filters:\t3\n", Some((2, Some(3)))),
            ("Seccomp:\t1\n", Some((1, None))),
            ("Name:\tx\nNoNewPrivs:\t0\n", None),
            ("Seccomp:\tgarbage\n", None),
        ];
        for (status, want) in cases {
            let got = parse_seccomp_status(status).map(|s| (s.mode, s.filters));
            assert_eq!(got, want, "{status:?}");
        }
    }

    #[test]
    fn unified_cgroup() {
        let cases = [
            (
                "0::/user.slice/user-1000.slice/session-1.scope\n",
                Some("/user.slice/user-1000.slice/session-1.scope"),
            ),
            ("12:pids:/\n1:name=systemd:/\n0::/\n", Some("/")),
            ("9:name=systemd:/\n8:pids:/\n", None),
            ("", None),
        ];
        for (contents, want) in cases {
            assert_eq!(parse_unified_cgroup(contents), want, "{contents:?}");
        }
    }
}
