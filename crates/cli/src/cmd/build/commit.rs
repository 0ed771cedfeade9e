//! Turning a written layer tar into a layer of the store: the tar becomes
//! a blob (den keeps built layers uncompressed, so blob digest = diff id)
//! and is unpacked by `den __internal unpack` inside the user namespace,
//! where the owners it names are kept.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};
use den_build::layer::Written;
use den_image::digest::Digest;
use den_image::store::{LayerRecord, Store};

use crate::context::Context;

/// OCI media type of an uncompressed layer.
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Moves `tar` into the store as a blob and unpacks it; removes `tar`.
pub fn commit_tar(
    ctx: &Context,
    store: &Store,
    tar: &Path,
    written: &Written,
) -> anyhow::Result<LayerRecord> {
    let digest: Digest = written.digest.parse()?;
    if store.has_blob(&digest) {
        fs_err::remove_file(tar)?;
    } else {
        store.commit_blob_file(tar, &digest)?;
    }
    unpack(ctx, &digest)?;
    Ok(LayerRecord {
        blob: digest.clone(),
        media_type: LAYER_TAR.into(),
        size: written.size,
        diff_id: digest,
    })
}

fn unpack(ctx: &Context, digest: &Digest) -> anyhow::Result<()> {
    let out = Command::new(std::env::current_exe().context("cannot find den's own binary")?)
        .arg("--root")
        .arg(&ctx.root)
        .args(["__internal", "unpack"])
        .arg(digest.to_string())
        .arg(digest.to_string())
        .stdin(std::process::Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!(
            "unpacking the new layer {} failed: {}",
            digest.short(),
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .trim_start_matches("den: ")
        );
    }
    Ok(())
}

/// Writes a RUN container's overlay upper directory as a layer tar at
/// `out`, from inside the user namespace (`den __internal commit-upper`);
/// the empty mount points den made for `mount_targets` are left out.
pub fn upper_to_tar(
    ctx: &Context,
    upper: &Path,
    out: &Path,
    epoch: Option<u64>,
    mount_targets: &[String],
) -> anyhow::Result<Written> {
    let mut cmd = Command::new(std::env::current_exe().context("cannot find den's own binary")?);
    cmd.arg("--root")
        .arg(&ctx.root)
        .args(["__internal", "commit-upper"])
        .arg(upper)
        .arg(out);
    if let Some(e) = epoch {
        cmd.arg(format!("--epoch={e}"));
    }
    for t in mount_targets {
        cmd.arg(format!("--mount-point={t}"));
    }
    let res = cmd.stdin(std::process::Stdio::null()).output()?;
    if !res.status.success() {
        bail!(
            "committing the RUN step's changes failed: {}",
            String::from_utf8_lossy(&res.stderr)
                .trim()
                .trim_start_matches("den: ")
        );
    }
    parse_written(&String::from_utf8_lossy(&res.stdout))
}

/// A helper's answer `DIGEST SIZE`.
pub fn parse_written(text: &str) -> anyhow::Result<Written> {
    let (digest, size) = text
        .trim()
        .split_once(' ')
        .context("den's layer helper answered garbage")?;
    Ok(Written {
        digest: digest.to_owned(),
        size: size
            .parse()
            .context("den's layer helper answered garbage")?,
    })
}

/// A fresh temporary layer path in the store's tmp/.
pub fn tmp_tar(store: &Store) -> std::path::PathBuf {
    store.tmp_dir().join(format!(
        "build-{}-{}.tar",
        std::process::id(),
        crate::containers::new_id()
    ))
}
