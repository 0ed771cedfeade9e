//! The tar streams of `den cp`, one function per side, and the container
//! side itself ([`container_side`], the body of `den __internal cp`):
//!
//! - [`append_container_entry`], in the container (`den __internal cp out`):
//!   walks the entry with fds, never following a symlink and never blocking
//!   on an entry swapped for a FIFO after it was listed (each file is opened
//!   `O_NOFOLLOW | O_NONBLOCK` and its type checked on the fd).
//! - [`sanitize`], on the host, between that stream and the unpacker: what
//!   the container wrote is hostile, so setuid/setgid bits are cleared and
//!   device nodes, FIFOs and whiteout names are skipped with a warning; only
//!   directories, regular files and links reach the host.
//! - [`append_host_entry`], on the host, for copies into a container: each
//!   file with its own mode and mtime, owned by the container's root (as
//!   `docker cp` makes them).

use std::ffi::{CStr, OsStr};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use den_image::unpack::{UnpackOptions, unpack_layer};
use den_sandbox::container::join;
use den_sandbox::container::nsfds::Namespaces;
use den_sandbox::container::spec::ContainerSpec;
use den_sandbox::container::state::Status;
use den_sandbox::idmap::IdMapping;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use tar::{EntryType, Header};

use crate::containers::Containers;
use crate::context::Context;

/// A header for `st`: mode, owner and mtime as the container has them.
fn header_of(st: &Stat, kind: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(0);
    h
}

fn io(what: &str, path: &Path) -> impl FnOnce(rustix::io::Errno) -> anyhow::Error {
    let msg = format!("{what} {}", path.display());
    move |e| anyhow::Error::from(std::io::Error::from(e)).context(msg)
}

/// Appends `name` (relative to `parent`) as `archive_name`, recursively.
pub fn append_container_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    parent: BorrowedFd<'_>,
    name: &OsStr,
    archive_name: &Path,
) -> anyhow::Result<()> {
    let st = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(io("stat", archive_name))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let dir = rustix::fs::openat(parent, name, flags, Mode::empty())
                .map_err(io("open", archive_name))?;
            let st = rustix::fs::fstat(&dir).map_err(io("stat", archive_name))?;
            let mut h = header_of(&st, EntryType::Directory);
            tar.append_data(&mut h, archive_name, std::io::empty())?;
            let mut names = Vec::new();
            for entry in rustix::fs::Dir::read_from(&dir).map_err(io("list", archive_name))? {
                let entry = entry.map_err(io("list", archive_name))?;
                let n: &CStr = entry.file_name();
                if n != c"." && n != c".." {
                    names.push(OsStr::from_bytes(n.to_bytes()).to_os_string());
                }
            }
            names.sort();
            for n in names {
                append_container_entry(tar, dir.as_fd(), &n, &archive_name.join(&n))?;
            }
        }
        FileType::RegularFile => {
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
            let fd = rustix::fs::openat(parent, name, flags, Mode::empty())
                .map_err(io("open", archive_name))?;
            let st = rustix::fs::fstat(&fd).map_err(io("stat", archive_name))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                crate::log::warn(format_args!(
                    "not copied: {} changed into something other than a file while it was copied",
                    archive_name.display()
                ));
                return Ok(());
            }
            let mut h = header_of(&st, EntryType::Regular);
            h.set_size(u64::try_from(st.st_size).unwrap_or(0));
            let data = exactly(std::fs::File::from(fd), h.size()?);
            tar.append_data(&mut h, archive_name, data)?;
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(parent, name, Vec::new())
                .map_err(io("read the link", archive_name))?;
            let mut h = header_of(&st, EntryType::Symlink);
            tar.append_link(&mut h, archive_name, OsStr::from_bytes(target.to_bytes()))?;
        }
        kind @ (FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice) => {
            // Listed, never opened: the host side decides what to do with it.
            let mut h = header_of(&st, special_type(kind));
            h.set_device_major(rustix::fs::major(st.st_rdev))?;
            h.set_device_minor(rustix::fs::minor(st.st_rdev))?;
            tar.append_data(&mut h, archive_name, std::io::empty())?;
        }
        _ => crate::log::warn(format_args!(
            "not copied: {} is a socket",
            archive_name.display()
        )),
    }
    Ok(())
}

/// `size` bytes of `file`: a file that grew since its size was read is
/// cut, one that shrank is padded with zeros, so the archive stays whole.
fn exactly(file: impl Read, size: u64) -> impl Read {
    file.take(size).chain(std::io::repeat(0)).take(size)
}

fn special_type(kind: FileType) -> EntryType {
    match kind {
        FileType::Fifo => EntryType::Fifo,
        FileType::CharacterDevice => EntryType::Char,
        _ => EntryType::Block,
    }
}

/// Copies the container's tar from `input` to `output`, keeping only what
/// may be created on the host (see the module doc). Warnings name the
/// container path (`origin` is the directory the archive's names are in).
pub fn sanitize(input: impl Read, output: impl Write, origin: &str) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(input);
    let mut out = tar::Builder::new(output);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let shown = Path::new(origin).join(&path);
        let kind = entry.header().entry_type();
        let what = match kind {
            EntryType::Regular | EntryType::Directory | EntryType::Symlink | EntryType::Link => {
                None
            }
            EntryType::Fifo => Some("a FIFO"),
            EntryType::Char | EntryType::Block => Some("a device node"),
            _ => Some("not a file, directory or link"),
        };
        let whiteout = path
            .file_name()
            .is_some_and(|n| n.as_bytes().starts_with(b".wh."));
        if let Some(what) = what.or(whiteout.then_some("named like a whiteout (.wh.*)")) {
            crate::log::warn(format_args!(
                "not copied: {} is {what}; den creates only files, directories and links on the host",
                shown.display()
            ));
            continue;
        }
        let mut h = entry.header().clone();
        // Nobody else may run a copied program as this user.
        h.set_mode(h.mode()? & 0o1777);
        if matches!(kind, EntryType::Symlink | EntryType::Link) {
            let target = entry
                .link_name()?
                .map(|t| t.into_owned())
                .unwrap_or_default();
            out.append_link(&mut h, &path, target)?;
        } else {
            out.append_data(&mut h, &path, &mut entry)?;
        }
    }
    out.into_inner()?.flush()?;
    Ok(())
}

/// Appends the host's `src` as `name`, recursively: mode and mtime kept,
/// owned by uid and gid 0. Symlinks are stored, never followed.
pub fn append_host_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    src: &Path,
    name: &Path,
) -> anyhow::Result<()> {
    let meta = fs_err::symlink_metadata(src)?;
    let mut h = Header::new_gnu();
    h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    let ft = meta.file_type();
    if !ft.is_file() {
        h.set_size(0);
    }
    if ft.is_dir() {
        tar.append_data(&mut h, name, std::io::empty())?;
        let mut children: Vec<PathBuf> = fs_err::read_dir(src)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        children.sort();
        for child in children {
            let n = child
                .file_name()
                .context("a directory entry without a name")?;
            append_host_entry(tar, &child, &name.join(n))?;
        }
    } else if ft.is_symlink() {
        let target = fs_err::read_link(src)?;
        tar.append_link(&mut h, name, target)?;
    } else if ft.is_file() {
        let file = fs_err::File::open(src)?;
        tar.append_data(&mut h, name, exactly(file, meta.len()))?;
    } else if ft.is_fifo() || ft.is_socket() || ft.is_char_device() || ft.is_block_device() {
        crate::log::warn(format_args!(
            "not copied: {} is not a file, directory or link",
            src.display()
        ));
    } else {
        bail!("{}: unknown file type", src.display());
    }
    Ok(())
}

/// The last component of `p`, the name a copy takes.
pub fn base_name(p: &str) -> anyhow::Result<String> {
    Path::new(p.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .with_context(|| format!("`{p}` has no file name to copy"))
}

/// The container side, in a fresh single-threaded `den __internal cp`.
pub fn container_side(
    ctx: &Context,
    mapping: &IdMapping,
    id: &str,
    op: &str,
    path: &str,
) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let spec = ContainerSpec::read(&containers.dir_of(id).join("spec.json"))?;
    let state = containers.state(id);
    let running = match state.status == Status::Running {
        true => Some(Namespaces::fetch(&containers.dir_of(id))?),
        false => None,
    };
    let root = join::enter_filesystem(&spec, running.as_ref(), mapping)?;
    match op {
        "stat" => {
            println!(
                "{}",
                match join::path_kind(&root, path) {
                    Some(true) => "dir",
                    Some(false) => "file",
                    None => "missing",
                }
            );
        }
        "in" => {
            join::enter_dir(&root, path)?;
            let opts = UnpackOptions {
                ignore_chown_errors: matches!(mapping, IdMapping::Single { .. }),
            };
            unpack_layer(std::io::stdin().lock(), Path::new("."), &opts)
                .with_context(|| format!("copying into {path}"))?;
        }
        "out" => {
            let trimmed = path.trim_end_matches('/');
            let parent = Path::new(trimmed)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| "/".into());
            join::enter_dir(&root, &parent)?;
            let name = base_name(path)?;
            if join::path_kind(&root, trimmed).is_none() {
                bail!("no such file or directory in the container: {path}");
            }
            let mut tar = tar::Builder::new(std::io::stdout().lock());
            append_container_entry(
                &mut tar,
                rustix::fs::CWD,
                OsStr::new(&name),
                Path::new(&name),
            )?;
            tar.into_inner()?.flush()?;
        }
        other => bail!("unknown cp operation {other}"),
    }
    Ok(0)
}
