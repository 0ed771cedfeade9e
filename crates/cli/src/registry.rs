//! Fetching from registries, shared by `den pull`, `run`, `build`, `push`,
//! `login` and `load`: the async runtime (made per command, dropped when
//! it returns), `--creds`, and the unpacker that runs each layer in a
//! `den __internal unpack` child inside the user namespace.

use anyhow::Context as _;
use den_image::auth::Credentials;
use den_image::digest::Digest;
use den_image::pull::{BoxFuture, PullOptions, Puller, Unpacker};
use den_image::reference::ImageRef;
use den_image::registry::Client;
use den_image::store::{ImageRecord, LayerInfo};

use crate::args::RegistryFlags;
use crate::context::Context;
use crate::progress::Reporter;

/// Pulls `image` into the store. Starts (and ends) the async runtime: call
/// it only from the CLI's main thread, never from a namespace set-up path.
pub fn pull_image(
    ctx: &Context,
    image: &ImageRef,
    opts: &PullOptions,
    flags: &RegistryFlags,
    reporter: &Reporter,
) -> anyhow::Result<ImageRecord> {
    let store = ctx.store()?;
    let conf = ctx.registries()?;
    let client = Client::new(ctx.auth(), parse_creds(flags.creds.as_deref())?);
    let unpacker = ChildUnpacker {
        root: ctx.root.clone(),
    };
    let puller = Puller {
        store: &store,
        client: &client,
        conf: &conf,
        unpacker: &unpacker,
        progress: reporter,
    };
    let rt = runtime()?;
    let record = rt
        .block_on(puller.pull(image, opts))
        .with_context(|| format!("pulling {image}"))?;
    Ok(record)
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn parse_creds(creds: Option<&str>) -> anyhow::Result<Option<Credentials>> {
    let Some(c) = creds else { return Ok(None) };
    let (u, p) = c
        .split_once(':')
        .with_context(|| "--creds must be USER:PASSWORD".to_string())?;
    Ok(Some(Credentials {
        username: u.into(),
        password: p.into(),
    }))
}

/// Unpacks each layer in a child `den __internal unpack`, which enters the
/// user namespace first (so file owners map to subordinate ids). Children
/// run in parallel, one per layer.
pub struct ChildUnpacker {
    pub root: std::path::PathBuf,
}

impl Unpacker for ChildUnpacker {
    fn unpack<'a>(
        &'a self,
        blob: &'a Digest,
        diff_id: &'a Digest,
    ) -> BoxFuture<'a, Result<LayerInfo, String>> {
        Box::pin(async move {
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot find den's own binary: {e}"))?;
            let out = tokio::process::Command::new(exe)
                .arg("--root")
                .arg(&self.root)
                .args([
                    "__internal",
                    "unpack",
                    &blob.to_string(),
                    &diff_id.to_string(),
                ])
                .stdin(std::process::Stdio::null())
                .output()
                .await
                .map_err(|e| format!("cannot start the unpack helper: {e}"))?;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                return Err(err.trim().trim_start_matches("den: ").to_string());
            }
            serde_json::from_slice(&out.stdout)
                .map_err(|e| format!("unpack helper answered garbage: {e}"))
        })
    }
}
