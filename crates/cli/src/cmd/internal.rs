//! Steps den runs in a child of itself, inside its user namespace. The child
//! is a fresh single-threaded process: the namespace is entered before
//! anything else happens.

use den_image::digest::Digest;
use den_image::unpack::UnpackOptions;
use den_sandbox::idmap::IdMapping;
use den_sandbox::userns::enter_user_namespace;

use crate::args::InternalCommand;
use crate::context::Context;

pub fn run(ctx: &Context, cmd: InternalCommand) -> anyhow::Result<i32> {
    let mapping = IdMapping::detect();
    enter_user_namespace(&mapping)?;
    let store = ctx.store()?;
    match cmd {
        InternalCommand::Unpack { blob, diff_id } => {
            let blob: Digest = blob.parse()?;
            let diff_id: Digest = diff_id.parse()?;
            let opts = UnpackOptions {
                ignore_chown_errors: matches!(mapping, IdMapping::Single { .. }),
            };
            let info = store.unpack_layer(&blob, &diff_id, &opts)?;
            println!("{}", serde_json::to_string(&info)?);
        }
        InternalCommand::Purge => store.purge_tmp()?,
    }
    Ok(0)
}

/// Runs `den __internal purge` and waits: deletes what gc moved to the trash.
pub fn purge(ctx: &Context) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .arg("--root")
        .arg(&ctx.root)
        .args(["__internal", "purge"])
        .stdin(std::process::Stdio::null())
        .output()?;
    if !out.status.success() {
        anyhow::bail!(
            "cleaning the store's trash failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
