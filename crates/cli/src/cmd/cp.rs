//! `den cp`: files between a container and the host, as a tar stream
//! between den (the host side, as the user) and `den __internal cp` (the
//! container side, inside its user and mount namespaces). Both sides write
//! through the image unpacker, which refuses any entry that would land
//! outside its destination; what comes out of a container is filtered first
//! ([`crate::cp_tar::sanitize`]) and unpacked into a temporary directory,
//! then moved in without ever replacing a host directory. `-` as the host
//! side streams the tar archive itself (stdout or stdin), as Docker does.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use den_image::unpack::{UnpackOptions, unpack_layer};

use crate::containers::Containers;
use crate::context::Context;
use crate::cp_tar::{append_host_entry, base_name, sanitize};

/// `CONTAINER:PATH` → (container, path); host paths have no `:` before a `/`.
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':')
        .filter(|(c, _)| !c.is_empty() && !c.contains('/'))
}

fn helper(ctx: &Context, id: &str, op: &str, path: &str) -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("cannot find den's own binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(&ctx.root)
        .args(["__internal", "cp", id, op, path]);
    Ok(cmd)
}

pub fn run(ctx: &Context, source: &str, destination: &str) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    match (split(source), split(destination)) {
        (Some((c, src)), None) => {
            let id = joinable(&containers, c)?;
            if destination == "-" {
                return stream_out(ctx, &id, src);
            }
            copy_out(ctx, &id, src, source, Path::new(destination))
        }
        (None, Some((c, dst))) => {
            let id = joinable(&containers, c)?;
            if source == "-" {
                return stream_in(ctx, &id, dst, destination);
            }
            copy_in(ctx, &id, Path::new(source), dst)
        }
        (Some(_), Some(_)) => {
            bail!("copying between two containers is not supported: copy through the host")
        }
        (None, None) => bail!("one of the paths must name a container: CONTAINER:PATH"),
    }
}

/// The id of container `name`; a running one must be one den can join
/// (`nsfds::require_served`). A stopped one is mounted, not joined.
fn joinable(containers: &Containers, name: &str) -> anyhow::Result<String> {
    let id = containers.find(name)?.id;
    if containers.state(&id).status == den_sandbox::container::state::Status::Running {
        den_sandbox::container::nsfds::require_served(&containers.dir_of(&id), name)?;
    }
    Ok(id)
}

/// What `path` is in the container: "dir", "file" or "missing".
fn container_kind(ctx: &Context, id: &str, path: &str) -> anyhow::Result<String> {
    let out = crate::in_userns::helper(ctx, &["cp", id, "stat", path])?;
    Ok(out.trim().to_string())
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    if status.success() { 0 } else { 125 }
}

fn copy_in(ctx: &Context, id: &str, src: &Path, dst: &str) -> anyhow::Result<i32> {
    if !src.exists() {
        bail!("no such file or directory on the host: {}", src.display());
    }
    let (dir, name) = match container_kind(ctx, id, dst)?.as_str() {
        "dir" => (dst.to_string(), base_name(&src.to_string_lossy())?),
        _ if dst.ends_with('/') => bail!("directory {dst} does not exist in the container"),
        _ => (
            Path::new(dst)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| "/".into()),
            base_name(dst)?,
        ),
    };
    let mut child = helper(ctx, id, "in", &dir)?.stdin(Stdio::piped()).spawn()?;
    let stdin = child.stdin.take().expect("piped");
    let mut tar = tar::Builder::new(stdin);
    let written = append_host_entry(&mut tar, src, Path::new(&name))
        .and_then(|()| Ok(tar.into_inner()?.flush()?));
    let status = child.wait()?;
    written?;
    Ok(exit_code(status))
}

/// `den cp - CTR:DIR`: a tar archive from stdin, unpacked into DIR.
fn stream_in(ctx: &Context, id: &str, dst: &str, shown: &str) -> anyhow::Result<i32> {
    if container_kind(ctx, id, dst)? != "dir" {
        bail!(
            "{shown} is not a directory: copying a tar archive from stdin needs a directory to unpack it in"
        );
    }
    Ok(exit_code(helper(ctx, id, "in", dst)?.status()?))
}

/// `den cp CTR:PATH -`: PATH as a tar archive on stdout.
fn stream_out(ctx: &Context, id: &str, src: &str) -> anyhow::Result<i32> {
    Ok(exit_code(
        helper(ctx, id, "out", src)?.stdin(Stdio::null()).status()?,
    ))
}

/// Copies the container's `src` (`shown` is how the user named it) to the
/// host's `dst`. The entry is unpacked into a private temporary directory
/// beside its destination, then moved in: nothing of the host's changes
/// unless the whole copy arrived, and a host directory is never replaced.
fn copy_out(ctx: &Context, id: &str, src: &str, shown: &str, dst: &Path) -> anyhow::Result<i32> {
    let name = base_name(src)?;
    let (dir, target) = if dst.is_dir() {
        (dst.to_path_buf(), dst.join(&name))
    } else {
        let parent = dst
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            bail!("directory {} does not exist on the host", parent.display());
        }
        (parent.to_path_buf(), dst.to_path_buf())
    };
    let staging = tempfile::Builder::new()
        .prefix(".den-cp-")
        .tempdir_in(&dir)
        .with_context(|| format!("cannot create a temporary directory in {}", dir.display()))?;
    let mut child = helper(ctx, id, "out", src)?
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let stream = child.stdout.take().expect("piped");
    let origin = Path::new(src.trim_end_matches('/'))
        .parent()
        .map_or_else(|| "/".to_string(), |p| p.to_string_lossy().into_owned());
    let (reader, writer) = std::io::pipe().context("cannot create a pipe")?;
    let (filtered, unpacked) = std::thread::scope(|s| {
        let filter = s.spawn(move || sanitize(stream, writer, &origin));
        let opts = UnpackOptions {
            ignore_chown_errors: true,
        };
        let unpacked = unpack_layer(reader, staging.path(), &opts);
        (filter.join(), unpacked)
    });
    let status = child.wait()?;
    if !status.success() {
        bail!("copying {shown} out of the container failed");
    }
    filtered.map_err(|_| anyhow::anyhow!("copying {shown}: the filter thread panicked"))??;
    unpacked.with_context(|| format!("copying {shown}"))?;
    let staged = staging.path().join(&name);
    if lstat_if_exists(&staged)?.is_none() {
        bail!("nothing copied: {shown} is not a file, directory or link");
    }
    check_conflicts(&staged, &target, shown)?;
    place(&staged, &target)?;
    Ok(0)
}

/// Refuses (before anything moves) a copy that would replace a directory
/// with a non-directory or the reverse, as Docker does.
fn check_conflicts(staged: &Path, target: &Path, shown: &str) -> anyhow::Result<()> {
    let Some(existing) = lstat_if_exists(target)? else {
        return Ok(());
    };
    let new = fs_err::symlink_metadata(staged)?;
    match (new.is_dir(), existing.is_dir()) {
        (false, true) => bail!(
            "cannot overwrite directory \"{}\" with non-directory \"{shown}\"",
            target.display()
        ),
        (true, false) => bail!(
            "cannot overwrite non-directory \"{}\" with directory \"{shown}\"",
            target.display()
        ),
        (true, true) => {
            for entry in fs_err::read_dir(staged)? {
                let n = entry?.file_name();
                let shown = format!("{}/{}", shown.trim_end_matches('/'), n.to_string_lossy());
                check_conflicts(&staged.join(&n), &target.join(&n), &shown)?;
            }
            Ok(())
        }
        (false, false) => Ok(()),
    }
}

/// Moves `staged` to `target`: into a missing place or over a
/// non-directory by rename; into an existing directory entry by entry.
fn place(staged: &Path, target: &Path) -> anyhow::Result<()> {
    match lstat_if_exists(target)? {
        Some(existing) if existing.is_dir() => {
            for entry in fs_err::read_dir(staged)? {
                let n = entry?.file_name();
                place(&staged.join(&n), &target.join(&n))?;
            }
            Ok(())
        }
        _ => Ok(fs_err::rename(staged, target)?),
    }
}

fn lstat_if_exists(p: &Path) -> anyhow::Result<Option<std::fs::Metadata>> {
    match fs_err::symlink_metadata(p) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("stat {}", p.display())),
    }
}
