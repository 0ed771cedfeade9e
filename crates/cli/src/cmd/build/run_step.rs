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

/// What a RUN step runs: its argv, the network, more `den run` flags
/// (mounts), and here-document files placed under `/dev/pipes`.
pub struct RunSpec {
    pub argv: Vec<String>,
    pub network: String,
    pub flags: Vec<String>,
    pub pipes: Vec<(String, String)>,
    /// `--mount=…`.
    pub mounts: super::mounts::Planned,
    /// `SOURCE_DATE_EPOCH`.
    pub epoch: Option<u64>,
}

/// `den run`'s flags for a build container: defaults, the network and
/// the step's mounts.
fn run_args(network: &str, flags: &[String]) -> anyhow::Result<RunArgs> {
    let mut argv = vec!["den", "run", "--network", network];
    argv.extend(flags.iter().map(String::as_str));
    let cli = Cli::try_parse_from(argv).map_err(|e| anyhow::anyhow!("{e}"))?;
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
    spec: &RunSpec,
    quiet: bool,
) -> anyhow::Result<Result<LayerRecord, Failed>> {
    let pipes = Pipes::write(store, &spec.pipes)?;
    let mut flags = spec.flags.clone();
    if let Some(p) = &pipes {
        flags.push("-v".into());
        flags.push(format!(
            "{}:{}:ro",
            p.0.display(),
            den_build::script::PIPES_DIR
        ));
    }
    let _locks = spec.mounts.lock()?;
    flags.extend(spec.mounts.flags.iter().cloned());
    let (bind_flags, binds) = spec.mounts.make_binds(ctx, store)?;
    // `den build -v HOST:CTR`'s mount points stay out of the layer too.
    let mut targets = spec.mounts.targets.clone();
    targets.extend(
        flags
            .chunks(2)
            .filter(|f| f[0] == "-v")
            .filter_map(|f| f.get(1)?.split(':').nth(1).map(str::to_owned)),
    );
    flags.extend(bind_flags);
    let c = BuildContainer::create(ctx, store, st, spec.argv.clone(), &spec.network, &flags)?;
    let result = (|| {
        let Some(code) = attach_interruptible(supervisor(ctx, &c.spec, quiet)?)? else {
            bail!("the build was interrupted: its RUN step was stopped and removed");
        };
        if code != 0 {
            return Ok(Err(Failed(code)));
        }
        let tar = commit::tmp_tar(store);
        let upper = c.dir.join("upper");
        let written = match commit::upper_to_tar(ctx, &upper, &tar, spec.epoch, &targets) {
            Ok(w) => w,
            Err(e) => {
                fs_err::remove_file(&tar).ok();
                return Err(e);
            }
        };
        commit::commit_tar(ctx, store, &tar, &written).map(Ok)
    })();
    binds.into_container(&c.dir);
    c.remove(ctx)?;
    result
}

/// Runs the step's supervisor and waits for it; `None` when SIGINT or
/// SIGTERM came first (Ctrl-C reaches the whole process group: the step's
/// PID 1 may ignore it, so den stops the step itself). The supervisor is
/// then killed, and its guard kills the container: nothing runs on.
fn attach_interruptible(mut cmd: std::process::Command) -> anyhow::Result<Option<i32>> {
    use std::os::unix::process::ExitStatusExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let ids = [
        signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?,
        signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?,
    ];
    let waited = (|| {
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .spawn()
            .context("cannot start the container supervisor")?;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(
                    status
                        .code()
                        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
                ));
            }
            if stop.load(Ordering::SeqCst) {
                child.kill().ok();
                child.wait()?;
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    })();
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
    waited
}

/// A build container: made as `den run` makes one, on a stage's layers;
/// `remove` deletes it.
pub struct BuildContainer {
    pub id: String,
    pub dir: std::path::PathBuf,
    pub spec: std::path::PathBuf,
}

impl BuildContainer {
    pub fn create(
        ctx: &Context,
        store: &Store,
        st: &StageState,
        argv: Vec<String>,
        network: &str,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let args = run_args(network, extra)?;
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
            labels: Default::default(),
        };
        let dir = containers.create(&record)?;
        let c = BuildContainer {
            spec: dir.join("spec.json"),
            id: id.clone(),
            dir: dir.clone(),
        };
        let made = (|| {
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
            write_atomic(&ctx.root, &c.spec, &serde_json::to_vec_pretty(&spec)?)
        })();
        match made {
            Ok(()) => Ok(c),
            Err(e) => {
                c.remove(ctx).ok();
                Err(e)
            }
        }
    }

    pub fn remove(self, ctx: &Context) -> anyhow::Result<()> {
        Containers::open(&ctx.root)?.detach(&self.id).ok();
        crate::in_userns::remove_container(ctx, &self.id).context("removing the build container")
    }
}

/// A private directory of here-document scripts, bind-mounted read-only
/// at `/dev/pipes`; removed when dropped.
struct Pipes(std::path::PathBuf);

impl Pipes {
    fn write(store: &Store, files: &[(String, String)]) -> anyhow::Result<Option<Pipes>> {
        use fs_err::os::unix::fs::OpenOptionsExt;
        use std::os::unix::fs::PermissionsExt;
        if files.is_empty() {
            return Ok(None);
        }
        let dir = Pipes(commit::tmp_tar(store).with_extension("pipes"));
        fs_err::create_dir(&dir.0)?;
        // Readable by the step's user, whoever it is (the directory is
        // inside the store, which only the user can enter).
        fs_err::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755))?;
        for (name, content) in files {
            let path = dir.0.join(name);
            let mut f = fs_err::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o755)
                .open(&path)?;
            std::io::Write::write_all(&mut f, content.as_bytes())?;
        }
        Ok(Some(dir))
    }
}

impl Drop for Pipes {
    fn drop(&mut self) {
        fs_err::remove_dir_all(&self.0).ok();
    }
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

/// Refuses what den build does not run yet, with what to do instead.
pub fn supported(run: &den_build::dockerfile::Run) -> anyhow::Result<()> {
    for h in &run.heredocs {
        if !den_build::script::valid_file_name(&h.name) {
            bail!(
                "here-document name {:?} is not a file name: use a plain name such as <<EOF",
                h.name
            );
        }
    }
    Ok(())
}
