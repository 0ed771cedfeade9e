//! Steps den runs in a child of itself, inside its user namespace. The child
//! is a fresh single-threaded process: the namespace is entered before
//! anything else happens.

use den_image::digest::Digest;
use den_image::unpack::UnpackOptions;
use den_sandbox::container::spec::ContainerSpec;
use den_sandbox::idmap::IdMapping;
use den_sandbox::userns::enter_user_namespace;

use crate::args::InternalCommand;
use crate::context::Context;

pub fn run(ctx: &Context, cmd: InternalCommand) -> anyhow::Result<i32> {
    let mapping = IdMapping::detect();
    if let InternalCommand::Container { spec } = &cmd {
        let spec: ContainerSpec = serde_json::from_slice(&fs_err::read(spec)?)?;
        return match den_sandbox::container::run(&spec, &mapping) {
            Ok(code) => Ok(code),
            Err(e) => {
                eprintln!("den: {e}");
                Ok(e.exit_code())
            }
        };
    }
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
        InternalCommand::RemoveContainer { id } => {
            let dir = crate::containers::Containers::open(&ctx.root)?.dir_of(&id);
            fs_err::remove_dir_all(&dir)?;
        }
        InternalCommand::Container { .. } => unreachable!("handled above"),
    }
    Ok(0)
}

/// Runs `den __internal purge` and waits: deletes what gc moved to the trash.
pub fn purge(ctx: &Context) -> anyhow::Result<()> {
    helper(ctx, &["purge"]).map_err(|e| e.context("cleaning the store's trash failed"))
}

/// Deletes a container's directory from inside the user namespace.
pub fn remove_container(ctx: &Context, id: &str) -> anyhow::Result<()> {
    helper(ctx, &["remove-container", id])
        .map_err(|e| e.context(format!("removing container {}", &id[..12])))
}

fn helper(ctx: &Context, args: &[&str]) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .arg("--root")
        .arg(&ctx.root)
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
    Ok(())
}
