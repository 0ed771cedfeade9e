//! Steps den runs in a child of itself, inside its user namespace. The child
//! is a fresh single-threaded process: the namespace is entered before
//! anything else happens.

use den_image::digest::Digest;
use den_image::unpack::UnpackOptions;
use den_sandbox::container::nsfds::Namespaces;
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
        return supervise(ctx, spec, &mapping, *detach, *attach_stdin);
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
        return crate::cp_tar::container_side(ctx, &mapping, container, op, path);
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
            true,
        ));
    }
    if let InternalCommand::UsernsKeeper = &cmd {
        let announce = || den_sandbox::container::announce("ready");
        let fail = |e: den_sandbox::userns::UsernsError| report(Err(e.into()), true);
        let forked = den_sandbox::userns::keeper::keeper_main(&ctx.root, &mapping, announce, fail);
        return Ok(report(forked.map(|()| 0).map_err(Into::into), true));
    }
    if let InternalCommand::NetworkWire { container, request } = &cmd {
        return crate::networks::wire_in_container(ctx, container, request);
    }
    // The keeper's namespace maps the same ids: joining it is cheaper.
    if !den_sandbox::userns::keeper::join(&ctx.root, &mapping)? {
        enter_user_namespace(&mapping)?;
    }
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
        InternalCommand::CommitUpper {
            upper,
            out,
            epoch,
            mount_points,
        } => {
            commit_upper(
                std::path::Path::new(&upper),
                std::path::Path::new(&out),
                epoch,
                &mount_points,
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
        | InternalCommand::NetworkInfra { .. }
        | InternalCommand::NetworkWire { .. }
        | InternalCommand::UsernsKeeper
        | InternalCommand::Man { .. } => unreachable!("handled above"),
    }
    Ok(0)
}

/// The container's supervisor (`den __internal container`, or a fork of
/// the CLI: `launch`): runs the container in `spec` to its end.
pub fn supervise(
    ctx: &Context,
    spec: &std::path::Path,
    mapping: &IdMapping,
    detach: bool,
    attach_stdin: bool,
) -> anyhow::Result<i32> {
    let spec = ContainerSpec::read(spec)?;
    let opts = den_sandbox::container::Options {
        detached: detach,
        attach_stdin,
        network_locks: crate::prepare::infras_up(ctx, &spec.network)?,
        shared_userns: crate::keeper::for_container(ctx, &spec, mapping),
    };
    Ok(report(
        den_sandbox::container::run(&spec, mapping, opts),
        detach,
    ))
}

/// `den top`'s child: joins the container's user namespace, lists its processes.
fn top(ctx: &Context, id: &str) -> anyhow::Result<i32> {
    let containers = crate::containers::Containers::open(&ctx.root)?;
    let state = containers.state(id);
    let ns = Namespaces::fetch(&containers.dir_of(id))?;
    let procs = den_sandbox::container::join::processes(&ns, state.pid)?;
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

/// A container's status, or its set-up error with its whole chain, each
/// cause once (exit 125/126/127): sent to the den command that started this
/// process in the background, else printed.
fn report(result: Result<i32, den_sandbox::container::SetupError>, background: bool) -> i32 {
    use den_sandbox::container::report::{Background, chain_of, tell_starter};
    match result {
        Ok(code) => code,
        Err(e) => {
            let chain = chain_of(&e);
            let code = e.exit_code();
            let told = background
                && tell_starter(&Background::Failed {
                    code,
                    chain: chain.clone(),
                })
                .is_ok();
            if !told {
                eprintln!("den: {}", chain.join(": "));
            }
            code
        }
    }
}

/// `den exec`'s child: joins the container and runs the request.
fn exec(ctx: &Context, mapping: &IdMapping, id: &str, request: &str) -> anyhow::Result<i32> {
    let containers = crate::containers::Containers::open(&ctx.root)?;
    let dir = containers.dir_of(id);
    let spec = ContainerSpec::read(&dir.join("spec.json"))?;
    let req: den_sandbox::container::join::ExecRequest = serde_json::from_str(request)?;
    let single = matches!(mapping, IdMapping::Single { .. });
    let joined = Namespaces::fetch(&dir)
        .and_then(|ns| den_sandbox::container::join::exec_in(&spec, &ns, &req, single));
    Ok(report(joined, false))
}

/// `den __internal commit-upper`: a RUN step's overlay upper directory as
/// a layer tar at `out` (already in the user namespace, so owners are kept).
/// With `epoch` (`SOURCE_DATE_EPOCH`), no file time is later than it.
fn commit_upper(
    upper: &std::path::Path,
    out: &std::path::Path,
    epoch: Option<u64>,
    mount_points: &[String],
) -> anyhow::Result<()> {
    let mut w = den_build::layer::LayerWriter::create(out)?;
    w.clamp_times(epoch);
    w.append_upper(upper, mount_points)?;
    let written = w.finish()?;
    println!("{} {}", written.digest, written.size);
    Ok(())
}
