//! The container's filesystem, built inside its own mount namespace:
//! overlay root, /proc, a minimal /dev, read-only /sys, the user's mounts,
//! Docker's masked and read-only paths, then pivot_root.
//!
//! Every mount target inside the root is resolved with
//! `openat2(RESOLVE_IN_ROOT)`, so a symlink in the image (`/data -> /etc`)
//! resolves inside the container and can never aim a mount at a host path;
//! the mount is then made on `/proc/self/fd/N`.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::SetupError;
use super::spec::{ContainerSpec, Mount, Rootfs};

/// Device nodes bind-mounted from the host: a user namespace cannot mknod
/// real devices, and these are harmless.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Docker's masked paths: files get /dev/null, directories an empty read-only tmpfs.
const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

pub(super) fn mnt(
    what: &str,
    target: &Path,
    source: Option<&Path>,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), SetupError> {
    mount(source, target, fstype, flags, data).map_err(|e| SetupError::Mount {
        what: what.to_string(),
        target: target.display().to_string(),
        errno: e,
    })
}

/// Stops mount events from leaking to the host's namespace and back.
pub(super) fn make_private() -> Result<(), SetupError> {
    mnt(
        "private propagation",
        Path::new("/"),
        None,
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )
}

/// What a container's overlay root is mounted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootMount {
    /// The container's own run (its set-up, in the supervisor's child).
    Run,
    /// `den cp` with a container that is not running (`join`).
    Copy,
}

/// Whether an overlay root is mounted `volatile`: the one place den decides
/// it. Only for the run of a container removed when it exits (`--rm`): a
/// volatile unmount skips syncing the upper layer, which is deleted right
/// after. Never for a kept container, whose programs trust fsync; and never
/// for a copy, because overlayfs leaves a marker (`work/incompat/volatile`)
/// after a volatile mount and refuses every later mount of that upper layer,
/// so a `den create --rm` container copied into before its start could not
/// start.
pub fn volatile_root(removed_when_done: bool, mount: RootMount) -> bool {
    removed_when_done && mount == RootMount::Run
}

/// Mounts the container's root (`spare`: a `--rootfs` tree the keeper
/// built, see `rootdir`); returns where it is.
pub(super) fn mount_root(
    rootfs: &Rootfs,
    spare: Option<super::rootdir::Spare>,
) -> Result<PathBuf, SetupError> {
    match rootfs {
        Rootfs::Overlay {
            layers_dir,
            lowers,
            upper,
            work,
            merged,
            volatile,
        } => {
            // Relative lower paths keep the option string short (the kernel
            // takes one page): run the mount from the layers directory.
            std::env::set_current_dir(layers_dir).map_err(|e| SetupError::Io {
                what: "enter the layers directory".into(),
                path: layers_dir.clone(),
                source: e,
            })?;
            let lowerdir = lowers
                .iter()
                .map(|l| format!("{l}/diff"))
                .collect::<Vec<_>>()
                .join(":");
            let opts = format!(
                "lowerdir={lowerdir},upperdir={},workdir={},userxattr{}",
                upper.display(),
                work.display(),
                if *volatile { ",volatile" } else { "" }
            );
            mnt(
                "the overlay root",
                merged,
                Some(Path::new("overlay")),
                Some("overlay"),
                MsFlags::empty(),
                Some(&opts),
            )?;
            Ok(merged.clone())
        }
        Rootfs::Directory { lower, merged } => {
            super::rootdir::mount(lower, merged, spare)?;
            Ok(merged.clone())
        }
    }
}

pub(super) fn io_err(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> SetupError {
    let (what, path) = (what.to_string(), path.to_path_buf());
    move |source| SetupError::Io { what, path, source }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Dir,
    File,
}

/// Opens `target` (a container path) beneath `root` as an O_PATH fd,
/// creating it (and missing parents) as `kind` if absent.
pub(super) fn resolve(root: &OwnedFd, target: &str, kind: Kind) -> Result<OwnedFd, SetupError> {
    let rel = target.trim_start_matches('/');
    let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let open = |p: &str| {
        rustix::fs::openat2(
            root,
            if p.is_empty() { "." } else { p },
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            how,
        )
    };
    match open(rel) {
        Ok(fd) => return Ok(fd),
        Err(rustix::io::Errno::NOENT) => {}
        Err(e) => {
            return Err(SetupError::Resolve {
                target: target.to_string(),
                errno: e,
            });
        }
    }
    let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    let parent_fd = resolve(root, parent, Kind::Dir)?;
    // Reopen the parent as a real directory fd (O_PATH fds cannot create).
    let dir = rustix::fs::openat(
        &parent_fd,
        ".",
        OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SetupError::Resolve {
        target: target.to_string(),
        errno: e,
    })?;
    let made = match kind {
        Kind::Dir => rustix::fs::mkdirat(&dir, name, Mode::from_bits_truncate(0o755)),
        Kind::File => rustix::fs::openat(
            &dir,
            name,
            OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_bits_truncate(0o644),
        )
        .map(drop),
    };
    match made {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => {
            return Err(SetupError::Resolve {
                target: target.to_string(),
                errno: e,
            });
        }
    }
    open(rel).map_err(|e| SetupError::Resolve {
        target: target.to_string(),
        errno: e,
    })
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

/// Binds `source` onto `target` inside the root, read-only if asked.
fn bind(
    root: &OwnedFd,
    source: &Path,
    target: &str,
    read_only: bool,
    what: &str,
) -> Result<(), SetupError> {
    let kind = if source.is_dir() {
        Kind::Dir
    } else {
        Kind::File
    };
    let fd = resolve(root, target, kind)?;
    let at = fd_path(&fd);
    mnt(
        what,
        &at,
        Some(source),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    if read_only {
        // Re-resolve: the fd still points at the mount point below the new mount.
        let fd = resolve(root, target, kind)?;
        remount_read_only(&fd_path(&fd), what)?;
    }
    Ok(())
}

/// Remounts a bind mount read-only, keeping the flags a user namespace may
/// not clear (nosuid, nodev, noexec are locked on mounts from the host).
fn remount_read_only(at: &Path, what: &str) -> Result<(), SetupError> {
    use nix::sys::statvfs::{FsFlags, statvfs};
    let have = statvfs(at).map(|s| s.flags()).unwrap_or(FsFlags::empty());
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if have.contains(fs) {
            flags |= ms;
        }
    }
    mnt(what, at, None, None, flags, None)
}

fn tmpfs(
    root: &OwnedFd,
    target: &str,
    flags: MsFlags,
    options: &str,
    what: &str,
) -> Result<(), SetupError> {
    let fd = resolve(root, target, Kind::Dir)?;
    mnt(
        what,
        &fd_path(&fd),
        Some(Path::new("tmpfs")),
        Some("tmpfs"),
        flags,
        Some(options),
    )
}

/// With `-t`: the slave of the container's own pty (`pty::take_terminal`)
/// on /dev/console, as runc and Docker do, for the container's init only.
pub(super) fn bind_console(root: &OwnedFd, slave: &OwnedFd) -> Result<(), SetupError> {
    bind(root, &fd_path(slave), "/dev/console", false, "/dev/console")
}

/// /proc of the new pid namespace, a minimal /dev, /sys read-only.
pub(super) fn mount_system(root: &OwnedFd, spec: &ContainerSpec) -> Result<(), SetupError> {
    let proc_fd = resolve(root, "/proc", Kind::Dir)?;
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mnt(
        "/proc",
        &fd_path(&proc_fd),
        Some(Path::new("proc")),
        Some("proc"),
        nosuid,
        None,
    )?;
    tmpfs(
        root,
        "/dev",
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        "mode=755,size=65536k",
        "/dev",
    )?;
    for dev in DEVICES {
        bind(
            root,
            &Path::new("/dev").join(dev),
            &format!("/dev/{dev}"),
            false,
            "a device node",
        )?;
    }
    let pts = resolve(root, "/dev/pts", Kind::Dir)?;
    mnt(
        "/dev/pts",
        &fd_path(&pts),
        Some(Path::new("devpts")),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    tmpfs(
        root,
        "/dev/shm",
        nosuid,
        "mode=1777,size=65536k",
        "/dev/shm",
    )?;
    let dev = resolve(root, "/dev", Kind::Dir)?;
    let dev = rustix::fs::openat(
        &dev,
        ".",
        OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SetupError::Resolve {
        target: "/dev".into(),
        errno: e,
    })?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        rustix::fs::symlinkat(to, &dev, link).map_err(|e| SetupError::Resolve {
            target: format!("/dev/{link}"),
            errno: e,
        })?;
    }
    bind(
        root,
        Path::new("/sys"),
        "/sys",
        !spec.security.privileged,
        "/sys",
    )?;
    if !spec.security.privileged {
        sys_read_only_recursive(root)?;
    }
    Ok(())
}

/// The remount above only covers /sys itself; its submounts (the cgroup
/// hierarchies under /sys/fs/cgroup, securityfs, …) become read-only here.
fn sys_read_only_recursive(root: &OwnedFd) -> Result<(), SetupError> {
    let fd = resolve(root, "/sys", Kind::Dir)?;
    crate::sys::mount_setattr_rdonly(fd.as_fd(), true).map_err(|e| SetupError::Mount {
        what: "/sys and its submounts read-only".to_string(),
        target: "/sys".to_string(),
        errno: e,
    })
}

/// The user's volumes and tmpfs mounts, and den's generated /etc files.
pub(super) fn mount_user(root: &OwnedFd, mounts: &[Mount]) -> Result<(), SetupError> {
    let mut generated: Option<OwnedFd> = None;
    for (n, m) in mounts.iter().enumerate() {
        match m {
            Mount::Bind {
                source,
                target,
                read_only,
            }
            | Mount::Volume {
                source,
                target,
                read_only,
                ..
            } => bind(
                root,
                source,
                target,
                *read_only,
                &format!("volume {}", source.display()),
            )?,
            Mount::Tmpfs { target, options } => tmpfs(
                root,
                target,
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                options,
                "tmpfs",
            )?,
            Mount::File { target, content } => {
                let fs = match generated.take() {
                    Some(fs) => fs,
                    None => generated_tmpfs()?,
                };
                generated_file(&fs, &n.to_string(), root, target, content)?;
                generated = Some(fs);
            }
        }
    }
    Ok(())
}

fn generated_err(target: &str) -> impl Fn(rustix::io::Errno) -> SetupError + '_ {
    move |e| SetupError::Mount {
        what: "den's generated file".into(),
        target: target.to_string(),
        errno: nix::Error::from_raw(e.raw_os_error()),
    }
}

/// A tmpfs mounted nowhere (the new mount API's detached mount), for den's
/// generated files (`Mount::File`): only its files are bind-mounted into
/// the root, and it goes away with the last of them.
fn generated_tmpfs() -> Result<OwnedFd, SetupError> {
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
    let err = generated_err("a detached tmpfs");
    let fs = rustix::mount::fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC).map_err(&err)?;
    rustix::mount::fsconfig_set_string(&fs, "size", "64k").map_err(&err)?;
    rustix::mount::fsconfig_set_string(&fs, "mode", "0755").map_err(&err)?;
    rustix::mount::fsconfig_create(&fs).map_err(&err)?;
    rustix::mount::fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )
    .map_err(&err)
}

/// Writes `content` as file `name` of the detached tmpfs `fs` and binds it
/// onto `target` inside the root (resolved there, made if missing).
fn generated_file(
    fs: &OwnedFd,
    name: &str,
    root: &OwnedFd,
    target: &str,
    content: &str,
) -> Result<(), SetupError> {
    use rustix::mount::{MoveMountFlags, OpenTreeFlags};
    use std::io::Write;
    let err = generated_err(target);
    let file = rustix::fs::openat(
        fs,
        name,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(&err)?;
    std::fs::File::from(file)
        .write_all(content.as_bytes())
        .map_err(|e| SetupError::Io {
            what: "write den's generated".into(),
            path: target.into(),
            source: e,
        })?;
    let tree = rustix::mount::open_tree(
        fs,
        name,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(&err)?;
    let at = resolve(root, target, Kind::File)?;
    rustix::mount::move_mount(
        &tree,
        "",
        &at,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(&err)
}

/// An existing path inside the root, as an O_PATH fd; `None` if absent.
fn existing(root: &OwnedFd, path: &str) -> Option<OwnedFd> {
    let rel = path.trim_start_matches('/');
    rustix::fs::openat2(
        root,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT,
    )
    .ok()
}

/// Docker's masked and read-only paths under /proc and /sys.
pub(super) fn restrict_paths(root: &OwnedFd) -> Result<(), SetupError> {
    for path in MASKED {
        let Some(fd) = existing(root, path) else {
            continue;
        };
        let is_dir = rustix::fs::fstat(&fd)
            .map(|s| rustix::fs::FileType::from_raw_mode(s.st_mode).is_dir())
            .unwrap_or(false);
        if is_dir {
            mnt(
                "a masked path",
                &fd_path(&fd),
                Some(Path::new("tmpfs")),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0"),
            )?;
        } else {
            mnt(
                "a masked path",
                &fd_path(&fd),
                Some(Path::new("/dev/null")),
                None,
                MsFlags::MS_BIND,
                None,
            )?;
        }
    }
    for path in READ_ONLY {
        let Some(fd) = existing(root, path) else {
            continue;
        };
        let at = fd_path(&fd);
        mnt(
            "a read-only path",
            &at,
            Some(&at),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        // Again: the first fd still points below the new bind mount.
        let fd = existing(root, path).ok_or_else(|| SetupError::Resolve {
            target: path.to_string(),
            errno: rustix::io::Errno::NOENT,
        })?;
        remount_read_only(&fd_path(&fd), "a read-only path")?;
    }
    Ok(())
}

/// Makes `root` the process's `/` and detaches the host's tree.
pub(super) fn pivot(root: &Path) -> Result<(), SetupError> {
    let io = |what: &str| {
        let what = what.to_string();
        move |e: nix::Error| SetupError::Mount {
            what,
            target: root.display().to_string(),
            errno: e,
        }
    };
    nix::unistd::chdir(root).map_err(io("enter the new root"))?;
    nix::unistd::pivot_root(".", ".").map_err(io("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(io("detach the host root"))?;
    nix::unistd::chdir("/").map_err(io("enter /"))
}

/// `--read-only`: the root becomes read-only (after all mount points exist).
pub(super) fn seal_root(read_only: bool) -> Result<(), SetupError> {
    if read_only {
        remount_read_only(Path::new("/"), "the read-only root")?;
    }
    Ok(())
}
