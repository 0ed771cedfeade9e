//! `den build`: a Dockerfile read and checked (`--check` stops there), the
//! stages `--target` needs built in order, each instruction a step: RUN as
//! a den container whose overlay upper directory becomes a layer, COPY and
//! WORKDIR written straight into a layer tar, the rest edits the image
//! config. The result is an ordinary image record in the store.

mod commit;
mod copy;
mod fetch;
mod instruction;
mod mounts;
mod run_step;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, bail};
use den_build::dockerfile::{self, Instruction};
use den_build::graph::{Ref, StageGraph, meta_args};
use den_build::{ignore, words};
use den_image::digest::Digest;
use den_image::manifest::{OCI_MANIFEST, Platform};
use den_image::pull::PullOptions;
use den_image::reference::ImageRef;
use den_image::store::{ImageRecord, LayerRecord, Store};
use serde_json::json;

use crate::args::BuildArgs;
use crate::context::Context;
use crate::progress::Reporter;
use state::StageState;

/// How a build ended when a RUN failed: exit code 1, like Docker.
const BUILD_FAILED: i32 = 1;

pub fn run(ctx: &Context, a: &BuildArgs) -> anyhow::Result<i32> {
    let (file, text) = read_dockerfile(a)?;
    if a.check {
        return Ok(check(&file, &text));
    }
    let mut b = Builder::new(ctx, a, &file, &text)?;
    b.build()
}

/// `den __internal copy-from`'s work (it enters the user namespace).
pub fn copy_from(
    ctx: &Context,
    mapping: &den_sandbox::idmap::IdMapping,
    container: &str,
    request: &str,
    out: &str,
) -> anyhow::Result<()> {
    copy::copy_from_child(ctx, mapping, container, request, out)
}

/// The Dockerfile's name (for messages) and text.
fn read_dockerfile(a: &BuildArgs) -> anyhow::Result<(String, String)> {
    if a.context == "-" && a.file.is_some() {
        bail!(
            "den build -: the Dockerfile comes from standard input, so -f cannot name another; give a context directory with -f FILE"
        );
    }
    if a.file.as_deref() == Some("-") || a.context == "-" {
        let mut text = String::new();
        std::io::stdin()
            .take(1 << 20)
            .read_to_string(&mut text)
            .context("reading the Dockerfile from standard input")?;
        return Ok(("-".into(), text));
    }
    let path = match &a.file {
        Some(f) => PathBuf::from(f),
        None => Path::new(&a.context).join("Dockerfile"),
    };
    let meta = fs_err::metadata(&path)
        .with_context(|| "no Dockerfile: give one with -f FILE or put it in the context")?;
    if meta.len() > 1 << 20 {
        bail!(
            "{}: a Dockerfile of {} bytes is too large (the limit is 1 MiB)",
            path.display(),
            meta.len()
        );
    }
    let text = fs_err::read_to_string(&path)?;
    Ok((path.display().to_string(), text))
}

/// `--check`: every problem as `FILE:LINE: message`; 1 if one is an error.
fn check(file: &str, text: &str) -> i32 {
    let problems = dockerfile::check(text);
    for p in &problems {
        println!("{}", p.display(file));
    }
    i32::from(problems.iter().any(|p| !p.warning))
}

struct Builder<'a> {
    ctx: &'a Context,
    a: &'a BuildArgs,
    df: dockerfile::Dockerfile,
    store: Store,
    context: den_build::context::Context,
    build_args: BTreeMap<String, String>,
    meta: BTreeMap<String, String>,
    step: AtomicUsize,
    steps: usize,
    cache: Mutex<crate::build_cache::Cache>,
    memo: Mutex<crate::build_cache::HashMemo>,
    /// `SOURCE_DATE_EPOCH` (environment or --build-arg).
    epoch: Option<u64>,
    /// `-q` or `--progress=quiet`.
    quiet: bool,
    /// `--label`s.
    labels: Vec<(String, String)>,
    /// The empty context of `den build -`, removed when the build ends.
    _empty: Option<EmptyContext>,
}

/// `den build -`'s context: an empty private directory in the store's tmp/.
struct EmptyContext(PathBuf);

impl EmptyContext {
    fn new(store: &Store) -> anyhow::Result<Self> {
        let dir = commit::tmp_tar(store).with_extension("context");
        fs_err::create_dir(&dir)?;
        Ok(EmptyContext(dir))
    }
}

impl Drop for EmptyContext {
    fn drop(&mut self) {
        fs_err::remove_dir(&self.0).ok();
    }
}

/// `--progress`: whether it asks for quiet output.
fn progress_quiet(value: &str) -> anyhow::Result<bool> {
    match value {
        "auto" | "plain" | "tty" => Ok(false),
        "quiet" => Ok(true),
        other => bail!("invalid --progress value `{other}`: use auto, plain or quiet"),
    }
}

/// `--label K=V` (or `K`, an empty value).
fn parse_labels(list: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    list.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            if k.is_empty() {
                bail!("invalid --label `{l}`: use KEY=VALUE");
            }
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

impl<'a> Builder<'a> {
    fn new(ctx: &'a Context, a: &'a BuildArgs, file: &str, text: &str) -> anyhow::Result<Self> {
        let quiet = a.quiet || progress_quiet(&a.progress)?;
        let labels = parse_labels(&a.labels)?;
        let df = dockerfile::parse(file, text)?;
        let build_args = parse_build_args(&a.build_args);
        let meta = meta_args(&df, &build_args)?;
        let empty = match a.context.as_str() {
            "-" => Some(EmptyContext::new(&ctx.store()?)?),
            _ => None,
        };
        let context = match &empty {
            Some(e) => den_build::context::Context::new(&e.0, None)?,
            None => den_build::context::Context::new(Path::new(&a.context), ignore_matcher(a)?)?,
        };
        let epoch = source_date_epoch(&build_args)?;
        Ok(Builder {
            quiet,
            labels,
            _empty: empty,
            epoch,
            ctx,
            a,
            df,
            cache: Mutex::new(crate::build_cache::Cache::open(&ctx.store()?)),
            memo: Mutex::new(crate::build_cache::HashMemo::open(&ctx.store()?)),
            store: ctx.store()?,
            context,
            build_args,
            meta,
            step: AtomicUsize::new(0),
            steps: 0,
        })
    }

    fn say(&self, line: &str) {
        if !self.quiet {
            println!("{line}");
        }
    }

    fn build(&mut self) -> anyhow::Result<i32> {
        let graph = StageGraph::new(&self.df, &self.meta)?;
        let target = StageGraph::target(&self.df, self.a.target.as_deref())?;
        self.steps = graph
            .needed(target)
            .iter()
            .map(|i| 1 + self.df.stages[*i].instructions.len())
            .sum();
        // Held for the whole build: gc must not take layers the build uses.
        let _shared = self.store.lock_shared()?;
        let mut built: HashMap<usize, StageState> = HashMap::new();
        for wave in graph.waves(target) {
            for (i, result) in self.build_wave(&wave, &graph, &built)? {
                match result {
                    Ok(st) => {
                        built.insert(i, st);
                    }
                    Err(code) => return Ok(code),
                }
            }
        }
        self.memo.lock().expect("memo lock").save()?;
        let st = built.remove(&target).expect("target was built");
        let id = self.write_image(st)?;
        if let Some(f) = &self.a.iidfile {
            fs_err::write(f, format!("{id}\n"))?;
        }
        if self.quiet {
            println!("{id}");
        } else {
            for t in &self.a.tags {
                println!("Successfully tagged {t}");
            }
            println!("{id}");
        }
        Ok(0)
    }

    /// Builds a wave of stages that do not depend on each other, each in
    /// its own thread (their RUN steps are separate processes); the
    /// results in the wave's order. Every stage of the wave is finished
    /// before the first error is returned.
    #[allow(clippy::type_complexity)]
    fn build_wave(
        &self,
        wave: &[usize],
        graph: &StageGraph,
        built: &HashMap<usize, StageState>,
    ) -> anyhow::Result<Vec<(usize, Result<StageState, i32>)>> {
        if let [i] = wave {
            return Ok(vec![(*i, self.build_stage(*i, &graph.bases[*i], built)?)]);
        }
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = wave
                .iter()
                .map(|&i| s.spawn(move || (i, self.build_stage(i, &graph.bases[i], built))))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a stage's thread panicked"))
                .collect()
        });
        results
            .into_iter()
            .map(|(i, r)| r.map(|r| (i, r)))
            .collect()
    }

    /// Builds one stage; `Err(code)` when a RUN failed (already reported).
    fn build_stage(
        &self,
        index: usize,
        base: &Ref,
        built: &HashMap<usize, StageState>,
    ) -> anyhow::Result<Result<StageState, i32>> {
        let stage = self.df.stages[index].clone();
        self.say(&format!(
            "STEP {}/{}: FROM {}{}",
            self.next_step(),
            self.steps,
            stage.base,
            stage
                .name
                .as_ref()
                .map(|n| format!(" AS {n}"))
                .unwrap_or_default()
        ));
        let mut st = match base {
            Ref::Scratch => StageState::scratch(),
            Ref::Stage(i) => {
                let mut s = built.get(i).cloned().context("base stage was not built")?;
                s.args.clear();
                s.cmd_set = false;
                s
            }
            Ref::Image(name) => {
                let image = self.find_or_pull(name)?;
                StageState::from_image(&self.store, &image)?
            }
        };
        let triggers = st
            .take_onbuild()
            .map_err(|e| self.err_at_line(stage.line, e))?;
        let triggers = dockerfile::parse_triggers(&stage.base, &triggers)?;
        if let Some(e) = self.epoch {
            // Layers written under an epoch differ (clamped times): their
            // cache entries must not be shared with builds without one.
            st.key = crate::build_cache::key(&[&st.key, "SOURCE_DATE_EPOCH", &e.to_string()]);
        }
        for mut inst in triggers {
            // Errors and failures point at the FROM that brought it.
            inst.line = stage.line;
            self.say(&format!("--> ONBUILD {}", inst.text));
            if let Err(code) = self.instruction(&mut st, &inst, index, built)? {
                return Ok(Err(code));
            }
        }
        for inst in &stage.instructions {
            self.say(&format!(
                "STEP {}/{}: {}",
                self.next_step(),
                self.steps,
                inst.text
            ));
            if let Err(code) = self.instruction(&mut st, inst, index, built)? {
                return Ok(Err(code));
            }
        }
        Ok(Ok(st))
    }

    /// A step's creation time: `SOURCE_DATE_EPOCH` when it is set.
    fn stamp(&self, created: String) -> String {
        match self
            .epoch
            .and_then(|e| chrono::DateTime::from_timestamp(e as i64, 0))
        {
            Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            None => created,
        }
    }

    fn next_step(&self) -> usize {
        self.step.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// What `COPY --from=NAME` in stage `current` copies from: a built
    /// stage, or an image from the store (pulled if missing).
    fn copy_source(
        &self,
        raw: &str,
        current: usize,
        built: &HashMap<usize, StageState>,
    ) -> anyhow::Result<StageState> {
        let name = words::expand(raw, &self.meta)?;
        match den_build::graph::resolve(&self.df, current, &name).map_err(anyhow::Error::msg)? {
            Ref::Stage(i) => built
                .get(&i)
                .cloned()
                .with_context(|| format!("--from={name}: that stage was not built")),
            Ref::Scratch => Ok(StageState::scratch()),
            Ref::Image(image) => StageState::from_image(&self.store, &self.find_or_pull(&image)?),
        }
    }

    fn err_at(&self, inst: &Instruction, e: impl std::fmt::Display) -> anyhow::Error {
        self.err_at_line(inst.line, e)
    }

    fn err_at_line(&self, line: usize, e: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!("{}:{line}: {e}", self.df.file)
    }

    /// A step that makes a layer: taken from the cache when its key is
    /// there, else `make` runs and its layer is recorded.
    fn layer_step(
        &self,
        st: &mut StageState,
        key: String,
        created_by: &str,
        make: impl FnOnce(&Self, &StageState) -> anyhow::Result<Result<LayerRecord, i32>>,
    ) -> anyhow::Result<Result<(), i32>> {
        let (layer, created) = match self.lookup(&key).and_then(|h| Some((h.layer?, h.created))) {
            Some(hit) => hit,
            None => match make(self, st)? {
                Ok(l) => {
                    let created = self.record(&key, Some(l.clone()))?;
                    (l, created)
                }
                Err(code) => return Ok(Err(code)),
            },
        };
        st.add_layer(layer);
        st.history(created_by, false, &self.stamp(created));
        st.key = key;
        Ok(Ok(()))
    }

    /// The cached result of `key` (announced as CACHED), unless --no-cache.
    fn lookup(&self, key: &str) -> Option<crate::build_cache::Hit> {
        if self.a.no_cache {
            return None;
        }
        let hit = self
            .cache
            .lock()
            .expect("cache lock")
            .get(&self.store, key)?;
        self.say("--> CACHED");
        Some(hit)
    }

    /// Records a step that ran now; its creation time.
    fn record(&self, key: &str, layer: Option<LayerRecord>) -> anyhow::Result<String> {
        let created = state::now();
        self.cache.lock().expect("cache lock").put(
            key,
            crate::build_cache::Hit {
                layer,
                created: created.clone(),
            },
        )?;
        Ok(created)
    }

    fn find_or_pull(&self, name: &str) -> anyhow::Result<ImageRecord> {
        let images = self.store.images()?;
        let found = crate::local_images::resolve(&self.store, &images, name);
        let pull = match (self.a.pull.as_str(), &found) {
            ("always", _) | ("missing", Err(_)) => true,
            ("missing" | "never", Ok(_)) => false,
            ("never", Err(_)) => bail!(
                "base image {name} is not in the store and --pull=never was given: pull it first with `den pull {name}`"
            ),
            (other, _) => bail!("invalid --pull value `{other}`: use missing, always or never"),
        };
        if !pull {
            return found;
        }
        let opts = PullOptions {
            platform: Platform::host(),
            tls_verify: self.a.registry.tls_verify,
        };
        crate::registry::pull_image(
            self.ctx,
            &ImageRef::parse(name)?,
            &opts,
            &self.a.registry,
            &Reporter::new(self.quiet),
        )
    }

    /// Writes the config and manifest blobs and the image record; the id.
    fn write_image(&self, mut st: StageState) -> anyhow::Result<Digest> {
        // The last step's time: a cached rebuild gives the same config.
        for (k, v) in &self.labels {
            st.set_label(k, v);
        }
        let created = st.last_created().unwrap_or_else(state::now);
        st.config["created"] = json!(created);
        let config_bytes = serde_json::to_vec(&st.config)?;
        let config = self.store.put_blob(&config_bytes)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config.to_string(),
                "size": config_bytes.len(),
            },
            "layers": st.layers.iter().map(|l| json!({
                "mediaType": l.media_type,
                "digest": l.blob.to_string(),
                "size": l.size,
            })).collect::<Vec<_>>(),
        });
        let manifest = self.store.put_blob(&serde_json::to_vec(&manifest)?)?;
        let mut names = Vec::new();
        for t in &self.a.tags {
            let r = ImageRef::parse(t).with_context(|| format!("invalid tag {t}"))?;
            names.push(r.tagged_name().unwrap_or_else(|| r.to_string()));
        }
        let size = st
            .layers
            .iter()
            .map(|l| {
                self.store
                    .layer_info(&l.diff_id)
                    .map(|i| i.size)
                    .unwrap_or(0)
            })
            .sum();
        self.store.record_image(ImageRecord {
            id: config.clone(),
            names,
            repo_digests: Vec::new(),
            manifest,
            manifest_media_type: OCI_MANIFEST.into(),
            layers: st.layers,
            platform: st.platform,
            created: Some(created),
            size,
        })?;
        Ok(config)
    }
}

/// `--build-arg K=V`, or `K` taken from the environment (skipped if unset).
fn parse_build_args(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .filter_map(|a| match a.split_once('=') {
            Some((k, v)) => Some((k.to_owned(), v.to_owned())),
            None => std::env::var(a).ok().map(|v| (a.clone(), v)),
        })
        .collect()
}

/// `SOURCE_DATE_EPOCH` from `--build-arg`, else from the environment.
fn source_date_epoch(build_args: &BTreeMap<String, String>) -> anyhow::Result<Option<u64>> {
    let value = match build_args.get("SOURCE_DATE_EPOCH") {
        Some(v) => v.clone(),
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => v,
            Err(_) => return Ok(None),
        },
    };
    if value.is_empty() {
        return Ok(None);
    }
    let e = value
        .parse::<u64>()
        .ok()
        .filter(|e| *e <= i64::MAX as u64 / 2);
    e.map(Some).with_context(|| {
        format!("SOURCE_DATE_EPOCH={value} is not a time: give whole seconds since 1970, such as $(git log -1 --format=%ct)")
    })
}

/// The `.dockerignore` that applies, parsed.
fn ignore_matcher(a: &BuildArgs) -> anyhow::Result<Option<ignore::Matcher>> {
    let df = a.file.as_deref().filter(|f| *f != "-").map(Path::new);
    let Some(path) = ignore::ignore_file_for(Path::new(&a.context), df, |p| p.is_file()) else {
        return Ok(None);
    };
    let text = fs_err::read_to_string(&path)?;
    Ok(Some(ignore::parse_ignore_file(
        &path.display().to_string(),
        &text,
    )?))
}
