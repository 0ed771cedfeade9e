//! A `RUN` step: a den container on an overlay of the stage's layers, made
//! exactly as `den run` makes one (same security defaults, private network
//! unless told otherwise), run attached; its overlay upper directory then
//! becomes the step's layer.

use anyhow::{Context as _, bail};
use clap::Parser;
use den_image::digest::Digest;
use den_image::store::{ImageRecord, LayerRecord, Store};

use super::commit;
use super::state::StageState;
use crate::args::{Cli, Command, RunArgs};
use crate::containers::{Containers, Record, new_id};
use crate::context::Context;
use crate::prepare::{NewContainer, prepare_container};
use crate::private::write_atomic;
use crate::run_flags::{self, ImageConfig};

/// How a RUN step ended when its command failed.
#[derive(Debug)]
pub struct Failed(pub i32);

/// `den run`'s flags for a build container: defaults, and the network.
fn run_args(network: &str) -> anyhow::Result<RunArgs> {
    let cli = Cli::try_parse_from(["den", "run", "--network", network])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match cli.command {
        Command::Run(a) => Ok(*a),
        _ => unreachable!("parsed as run"),
    }
}

/// Runs `argv` in a container on `st`'s layers; returns the new layer, or
/// `Failed` with the exit status. The container is removed either way.
pub fn run(
    ctx: &Context,
    store: &Store,
    st: &StageState,
    argv: Vec<String>,
    network: &str,
    quiet: bool,
) -> anyhow::Result<Result<LayerRecord, Failed>> {
    let args = run_args(network)?;
    let flags = run_flags::Validated::from_args(&args, ctx)?;
    let config = ImageConfig {
        env: Some(st.run_env()),
        working_dir: Some(st.workdir()),
        user: st.user(),
        ..ImageConfig::default()
    };
    let plan = run_flags::network_plan(&args, &flags.network, &config)?;
    let id = new_id();
    let containers = Containers::open(&ctx.root)?;
    let record = Record {
        id: id.clone(),
        name: format!("den-build-{}", &id[..12]),
        image_id: None,
        image: "den build".into(),
        command: argv.clone(),
        created: chrono::Utc::now().to_rfc3339(),
        layers: st.layers.iter().map(|l| l.diff_id.to_string()).collect(),
        volumes: Vec::new(),
        ports: Vec::new(),
    };
    let dir = containers.create(&record)?;
    let result = (|| {
        let image = ImageRecord {
            id: Digest::of(id.as_bytes()),
            names: Vec::new(),
            repo_digests: Vec::new(),
            manifest: Digest::of(b""),
            manifest_media_type: String::new(),
            layers: st.layers.clone(),
            platform: st.platform.clone(),
            created: None,
            size: 0,
        };
        let spec = prepare_container(
            ctx,
            NewContainer {
                args: &args,
                flags: &flags,
                plan,
                store,
                image: Some(&image),
                config: &config,
                process_args: argv,
                record: &record,
                dir: &dir,
            },
        )?;
        let spec_path = dir.join("spec.json");
        write_atomic(&ctx.root, &spec_path, &serde_json::to_vec_pretty(&spec)?)?;
        let code = crate::launch::attach(supervisor(ctx, &spec_path, quiet)?, false, false)?;
        if code != 0 {
            return Ok(Err(Failed(code)));
        }
        let tar = commit::tmp_tar(store);
        let written = match commit::upper_to_tar(ctx, &dir.join("upper"), &tar) {
            Ok(w) => w,
            Err(e) => {
                fs_err::remove_file(&tar).ok();
                return Err(e);
            }
        };
        commit::commit_tar(ctx, store, &tar, &written).map(Ok)
    })();
    containers.detach(&id).ok();
    crate::in_userns::remove_container(ctx, &id).context("removing the build container")?;
    result
}

/// `den __internal container SPEC`; with `-q` the step's output goes to
/// standard error, so standard output carries only the image id.
fn supervisor(
    ctx: &Context,
    spec: &std::path::Path,
    quiet: bool,
) -> anyhow::Result<std::process::Command> {
    let exe = std::env::current_exe().context("cannot find den's own binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--root")
        .arg(&ctx.root)
        .args(["__internal", "container"])
        .arg(spec);
    if quiet {
        use std::os::fd::AsFd;
        let err = std::io::stderr().as_fd().try_clone_to_owned()?;
        cmd.stdout(std::process::Stdio::from(err));
    }
    Ok(cmd)
}

/// The argv of a RUN: exec form as is, shell form through the SHELL.
pub fn argv(st: &StageState, command: &den_build::dockerfile::Command) -> Vec<String> {
    match command {
        den_build::dockerfile::Command::Exec(v) => v.clone(),
        den_build::dockerfile::Command::Shell(s) => {
            let mut v = st.shell();
            v.push(s.clone());
            v
        }
    }
}

/// Refuses what den build does not run yet, with what to do instead.
pub fn supported(run: &den_build::dockerfile::Run) -> anyhow::Result<()> {
    if !run.heredocs.is_empty() {
        bail!(
            "RUN with a here-document is not supported by den build yet: put the script in a file and COPY it"
        );
    }
    if !run.mounts.is_empty() {
        bail!("RUN --mount is not supported by den build yet: COPY what the step needs instead");
    }
    Ok(())
}
