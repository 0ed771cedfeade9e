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
    if let InternalCommand::Container {
        spec,
        detach,
        attach_stdin,
    } = &cmd
    {
        let spec: ContainerSpec = serde_json::from_slice(&fs_err::read(spec)?)?;
        let opts = den_sandbox::container::Options {
            detached: *detach,
            attach_stdin: *attach_stdin,
        };
        return Ok(report(den_sandbox::container::run(&spec, &mapping, opts)));
    }
    if let InternalCommand::Exec {
        container,
        spec: request,
    } = &cmd
    {
        return exec(ctx, &mapping, container, request);
    }
    if let InternalCommand::Cp {
        container,
        op,
        path,
    } = &cmd
    {
        return super::cp::container_side(ctx, &mapping, container, op, path);
    }
    if let InternalCommand::CopyFrom {
        container,
        request,
        out,
    } = &cmd
    {
        return super::build::copy_from(ctx, &mapping, container, request, out).map(|()| 0);
    }
    if let InternalCommand::Top { container } = &cmd {
        return top(ctx, container);
    }
    if let InternalCommand::NetworkInfra { name } = &cmd {
        let networks = crate::networks::Networks::open(&ctx.root)?;
        let rec = networks.get(name)?;
        let dir = networks.dir_of(&rec.name);
        return Ok(report(
            den_sandbox::container::bridge::infra_main(
                &dir,
                rec.octet,
                &mapping,
                &ctx.root.join("cache"),
            )
            .map(|()| 0),
        ));
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
        InternalCommand::CommitUpper { upper, out, epoch } => {
            super::build::commit_upper(
                std::path::Path::new(&upper),
                std::path::Path::new(&out),
                epoch,
            )?;
        }
        InternalCommand::RemoveContainer { id } => {
            // Its directory, or where `Containers::detach` moved it.
            let containers = crate::containers::Containers::open(&ctx.root)?;
            let dir = containers.dir_of(&id);
            for d in [dir.clone(), dir.with_file_name(format!(".rm-{id}"))] {
                if d.exists() {
                    fs_err::remove_dir_all(&d)?;
                }
            }
        }
        InternalCommand::RemoveVolumes => {
            println!(
                "{}",
                crate::volumes::Volumes::open(&ctx.root)?.delete_detached()?
            );
        }
        InternalCommand::Container { .. }
        | InternalCommand::Exec { .. }
        | InternalCommand::Cp { .. }
        | InternalCommand::Top { .. }
        | InternalCommand::CopyFrom { .. }
        | InternalCommand::NetworkInfra { .. } => unreachable!("handled above"),
    }
    Ok(0)
}

/// `den top`'s child: joins the container's user namespace, lists its processes.
fn top(ctx: &Context, id: &str) -> anyhow::Result<i32> {
    let state = crate::containers::Containers::open(&ctx.root)?.state(id);
    let procs = den_sandbox::container::join::processes(state.supervisor_pid, state.pid)?;
    let rows: Vec<Vec<String>> = procs
        .iter()
        .map(|p| {
            vec![
                p.uid.to_string(),
                p.pid.to_string(),
                p.ppid.to_string(),
                p.command.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        crate::output::table(&["UID", "PID", "PPID", "CMD"], &rows)
    );
    Ok(0)
}

/// A container's status, or its set-up error printed (exit 125/126/127).
fn report(result: Result<i32, den_sandbox::container::SetupError>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("den: {e}");
            e.exit_code()
        }
    }
}

/// `den exec`'s child: joins the container and runs the request.
fn exec(ctx: &Context, mapping: &IdMapping, id: &str, request: &str) -> anyhow::Result<i32> {
    let containers = crate::containers::Containers::open(&ctx.root)?;
    let dir = containers.dir_of(id);
    let spec: ContainerSpec = serde_json::from_slice(&fs_err::read(dir.join("spec.json"))?)?;
    let state = containers.state(id);
    let req: den_sandbox::container::join::ExecRequest = serde_json::from_str(request)?;
    let single = matches!(mapping, IdMapping::Single { .. });
    Ok(report(den_sandbox::container::join::exec_in(
        &spec,
        state.supervisor_pid,
        state.pid,
        &req,
        single,
    )))
}

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
pub fn remove_container_in(root: &std::path::Path, id: &str) -> anyhow::Result<()> {
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

/// Runs `den __internal ARGS`; returns its standard output.
fn helper(ctx: &Context, args: &[&str]) -> anyhow::Result<String> {
    helper_in(&ctx.root, args)
}

fn helper_in(root: &std::path::Path, args: &[&str]) -> anyhow::Result<String> {
    let exe = std::env::current_exe()?;
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
