//! Steps the CLI runs in a child `den __internal …` inside its user
//! namespace and waits for: emptying the store's trash and deleting
//! container and volume directories, whose files belong to subordinate ids
//! the user cannot remove from outside; and the helpers of other commands
//! (`den commit`'s layer, `den cp`'s stat, a network's wiring) through
//! [`helper`], the one runner of such a child.

use std::ffi::OsStr;
use std::path::Path;

use anyhow::Context as _;

use crate::context::Context;

/// Runs `den __internal purge` and waits: deletes what gc moved to the trash.
pub fn purge(ctx: &Context) -> anyhow::Result<()> {
    helper(ctx, &["purge"])
        .map(drop)
        .map_err(|e| e.context("cleaning the store's trash failed"))
}

/// Deletes a container's directory from inside the user namespace.
pub fn remove_container(ctx: &Context, id: &str) -> anyhow::Result<()> {
    remove_container_in(&ctx.root, id)
}

/// [`remove_container`] for the store at `root`.
pub fn remove_container_in(root: &Path, id: &str) -> anyhow::Result<()> {
    helper_in(root, &["remove-container", id])
        .map(drop)
        .map_err(|e| e.context(format!("removing container {}", &id[..12.min(id.len())])))
}

/// Deletes the volumes `Volumes::detach` set aside, from inside the user
/// namespace; returns the bytes freed.
pub fn remove_volumes(ctx: &Context) -> anyhow::Result<u64> {
    let out = helper(ctx, &["remove-volumes"])
        .map_err(|e| e.context("deleting removed volumes failed"))?;
    Ok(out.trim().parse().unwrap_or(0))
}

/// Runs `den __internal ARGS` (standard input closed) and waits; its error
/// (one line) becomes this one's. Returns its standard output. `ARGS` may
/// be `&str` or, for paths, `&OsStr`.
pub fn helper<S: AsRef<OsStr>>(ctx: &Context, args: &[S]) -> anyhow::Result<String> {
    helper_in(&ctx.root, args)
}

fn helper_in<S: AsRef<OsStr>>(root: &Path, args: &[S]) -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("cannot find den's own binary")?;
    let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
    crate::log::debug(format_args!(
        "running den __internal {} in the user namespace",
        shown.join(" ")
    ));
    let out = std::process::Command::new(exe)
        .arg("--root")
        .arg(root)
        .arg("__internal")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()?;
    if !out.status.success() {
        anyhow::bail!(
            "{}",
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .trim_start_matches("den: ")
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
