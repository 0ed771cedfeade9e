//! `den cp`: files between a container and the host, as a tar stream
//! between den (the host side, as the user) and `den __internal cp` (the
//! container side, inside its user and mount namespaces). Both sides write
//! through the image unpacker, which refuses any entry that would land
//! outside its destination.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use den_image::unpack::{UnpackOptions, unpack_layer};
use den_sandbox::container::join;
use den_sandbox::container::spec::ContainerSpec;
use den_sandbox::container::state::Status;
use den_sandbox::idmap::IdMapping;

use crate::containers::Containers;
use crate::context::Context;

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
            copy_out(ctx, &containers.find(c)?.id, src, Path::new(destination))
        }
        (None, Some((c, dst))) => copy_in(ctx, &containers.find(c)?.id, Path::new(source), dst),
        (Some(_), Some(_)) => {
            bail!("copying between two containers is not supported: copy through the host")
        }
        (None, None) => bail!("one of the paths must name a container: CONTAINER:PATH"),
    }
}

fn base_name(p: &str) -> anyhow::Result<String> {
    Path::new(p.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .with_context(|| format!("`{p}` has no file name to copy"))
}

fn copy_in(ctx: &Context, id: &str, src: &Path, dst: &str) -> anyhow::Result<i32> {
    if !src.exists() {
        bail!("no such file or directory on the host: {}", src.display());
    }
    let out = helper(ctx, id, "stat", dst)?
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!(
            "{}",
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .trim_start_matches("den: ")
        );
    }
    let (dir, name) = match String::from_utf8_lossy(&out.stdout).trim() {
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
    let written = write_tar(stdin, src, &name);
    let status = child.wait()?;
    written?;
    Ok(if status.success() { 0 } else { 125 })
}

/// A tar of `src` named `name`, owned by root (uid 0 of the container, as
/// `docker cp` makes copied files).
fn write_tar(out: impl Write, src: &Path, name: &str) -> anyhow::Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Deterministic);
    if src.is_dir() {
        tar.append_dir_all(name, src)?;
    } else {
        tar.append_path_with_name(src, name)?;
    }
    tar.into_inner()?.flush()?;
    Ok(())
}

fn copy_out(ctx: &Context, id: &str, src: &str, dst: &Path) -> anyhow::Result<i32> {
    let name = base_name(src)?;
    let mut child = helper(ctx, id, "out", src)?
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let stream = child.stdout.take().expect("piped");
    let opts = UnpackOptions {
        ignore_chown_errors: true,
    };
    let (target, rename_to): (PathBuf, Option<PathBuf>) = if dst.is_dir() {
        (dst.to_path_buf(), None)
    } else {
        let parent = dst
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            bail!("directory {} does not exist on the host", parent.display());
        }
        let tmp = tempfile::Builder::new()
            .prefix(".den-cp-")
            .tempdir_in(parent)?
            .keep();
        (tmp, Some(dst.to_path_buf()))
    };
    let unpacked = unpack_layer(stream, &target, &opts);
    let status = child.wait()?;
    let result = unpacked.map_err(anyhow::Error::from).and_then(|_| {
        if status.success() {
            Ok(())
        } else {
            bail!("copying out of the container failed")
        }
    });
    if let Some(final_path) = rename_to {
        if result.is_ok() {
            fs_err::rename(target.join(&name), &final_path)?;
        }
        std::fs::remove_dir_all(&target).ok();
    }
    result.map(|()| 0)
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
    let spec: ContainerSpec =
        serde_json::from_slice(&fs_err::read(containers.dir_of(id).join("spec.json"))?)?;
    let state = containers.state(id);
    let running = (state.status == Status::Running).then_some((state.supervisor_pid, state.pid));
    let root = join::enter_filesystem(&spec, running, mapping)?;
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
            tar.follow_symlinks(false);
            if std::fs::symlink_metadata(&name).is_ok_and(|m| m.is_dir()) {
                tar.append_dir_all(&name, &name)?;
            } else {
                tar.append_path(&name)?;
            }
            tar.into_inner()?.flush()?;
        }
        other => bail!("unknown cp operation {other}"),
    }
    Ok(0)
}
