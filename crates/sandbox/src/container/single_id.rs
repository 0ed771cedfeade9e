//! The container side of single-id mode: den's APT configuration on a
//! read-only tmpfs, and `APT_CONFIG` naming it. Why, and what it grants
//! (nothing), is in `crate::seccomp::single_id`, which also holds the
//! filter that makes ownership and id-switch calls to unmapped ids no-ops.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use rustix::fs::{Mode, OFlags};

use super::SetupError;
use super::mounts::{self, Kind};
use crate::seccomp::single_id::{APT_CONFIG_DIR, APT_CONFIG_PATH, APT_CONFIG_TEXT};

/// Mounts a small tmpfs on [`APT_CONFIG_DIR`] inside `root` (creating the
/// directory if the image lacks it), writes `apt.conf` there and makes the
/// tmpfs read-only. Nothing of the image is read or changed.
pub(super) fn mount_apt_config(root: &OwnedFd) -> Result<(), SetupError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let mount_point = mounts::resolve(root, APT_CONFIG_DIR, Kind::Dir)?;
    mount(
        Some("tmpfs"),
        &fd_path(&mount_point),
        Some("tmpfs"),
        flags,
        Some("mode=0755,size=16k"),
    )
    .map_err(|errno| mount_err("a tmpfs", errno))?;
    // Resolve again: `mount_point` still refers to the directory beneath.
    let tmpfs = mounts::resolve(root, APT_CONFIG_DIR, Kind::Dir)?;
    let dir = rustix::fs::openat(
        &tmpfs,
        ".",
        OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err("open", APT_CONFIG_DIR, e.into()))?;
    let file = rustix::fs::openat(
        &dir,
        "apt.conf",
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| io_err("create", APT_CONFIG_PATH, e.into()))?;
    std::fs::File::from(file)
        .write_all(APT_CONFIG_TEXT.as_bytes())
        .map_err(|e| io_err("write", APT_CONFIG_PATH, e))?;
    mount(
        None::<&str>,
        &fd_path(&tmpfs),
        None::<&str>,
        flags | MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|errno| mount_err("read-only", errno))
}

/// `APT_CONFIG` for den's configuration, unless the user set one.
pub(super) fn add_apt_config_env(env: &mut Vec<String>) {
    if !env.iter().any(|e| e.starts_with("APT_CONFIG=")) {
        env.push(format!("APT_CONFIG={APT_CONFIG_PATH}"));
    }
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn mount_err(what: &str, errno: nix::Error) -> SetupError {
    SetupError::Mount {
        what: format!("{what} for den's APT configuration"),
        target: APT_CONFIG_DIR.into(),
        errno,
    }
}

fn io_err(what: &str, path: &str, source: std::io::Error) -> SetupError {
    SetupError::Io {
        what: what.into(),
        path: Path::new(path).into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_config_env_keeps_the_users_choice() {
        let mut env = vec!["PATH=/bin".to_string()];
        add_apt_config_env(&mut env);
        assert_eq!(env, ["PATH=/bin", "APT_CONFIG=/run/den/apt.conf"]);
        let mut env = vec!["APT_CONFIG=/etc/mine.conf".to_string()];
        add_apt_config_env(&mut env);
        assert_eq!(env, ["APT_CONFIG=/etc/mine.conf"]);
    }

    #[test]
    fn apt_config_sets_the_sandbox_user_to_root() {
        let lines: Vec<&str> = APT_CONFIG_TEXT
            .lines()
            .filter(|l| !l.starts_with("//"))
            .collect();
        assert_eq!(lines, ["APT::Sandbox::User \"root\";"]);
    }
}
