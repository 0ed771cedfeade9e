//! `den build`: a Dockerfile read and checked (`--check` stops there), the
//! stages `--target` needs built in order, each instruction a step: RUN as
//! a den container whose overlay upper directory becomes a layer, COPY and
//! WORKDIR written straight into a layer tar, the rest edits the image
//! config. The result is an ordinary image record in the store.

mod cache;
mod commit;
mod copy;
mod run_step;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use den_build::dockerfile::{self, Command as Cmd, Instruction, Kind};
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

/// The Dockerfile's name (for messages) and text.
fn read_dockerfile(a: &BuildArgs) -> anyhow::Result<(String, String)> {
    if a.file.as_deref() == Some("-") {
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
    step: usize,
    steps: usize,
    cache: cache::Cache,
}

impl<'a> Builder<'a> {
    fn new(ctx: &'a Context, a: &'a BuildArgs, file: &str, text: &str) -> anyhow::Result<Self> {
        let df = dockerfile::parse(file, text)?;
        let build_args = parse_build_args(&a.build_args);
        let meta = meta_args(&df, &build_args)?;
        let context = den_build::context::Context::new(Path::new(&a.context), ignore_matcher(a)?)?;
        Ok(Builder {
            ctx,
            a,
            df,
            cache: cache::Cache::open(&ctx.store()?),
            store: ctx.store()?,
            context,
            build_args,
            meta,
            step: 0,
            steps: 0,
        })
    }

    fn say(&self, line: &str) {
        if !self.a.quiet {
            println!("{line}");
        }
    }

    fn build(&mut self) -> anyhow::Result<i32> {
        let graph = StageGraph::new(&self.df, &self.meta)?;
        let target = StageGraph::target(&self.df, self.a.target.as_deref())?;
        let order = graph.needed(target);
        self.steps = order
            .iter()
            .map(|i| 1 + self.df.stages[*i].instructions.len())
            .sum();
        // Held for the whole build: gc must not take layers the build uses.
        let _shared = self.store.lock_shared()?;
        let mut built: HashMap<usize, StageState> = HashMap::new();
        for i in order {
            match self.build_stage(i, &graph.bases[i], &built)? {
                Ok(st) => {
                    built.insert(i, st);
                }
                Err(code) => return Ok(code),
            }
        }
        let st = built.remove(&target).expect("target was built");
        let id = self.write_image(st)?;
        if let Some(f) = &self.a.iidfile {
            fs_err::write(f, format!("{id}\n"))?;
        }
        if self.a.quiet {
            println!("{id}");
        } else {
            for t in &self.a.tags {
                println!("Successfully tagged {t}");
            }
            println!("{id}");
        }
        Ok(0)
    }

    /// Builds one stage; `Err(code)` when a RUN failed (already reported).
    fn build_stage(
        &mut self,
        index: usize,
        base: &Ref,
        built: &HashMap<usize, StageState>,
    ) -> anyhow::Result<Result<StageState, i32>> {
        let stage = self.df.stages[index].clone();
        self.step += 1;
        self.say(&format!(
            "STEP {}/{}: FROM {}{}",
            self.step,
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
        for inst in &stage.instructions {
            self.step += 1;
            self.say(&format!("STEP {}/{}: {}", self.step, self.steps, inst.text));
            if let Err(code) = self.instruction(&mut st, inst)? {
                return Ok(Err(code));
            }
        }
        Ok(Ok(st))
    }

    fn err_at(&self, inst: &Instruction, e: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!("{}:{}: {e}", self.df.file, inst.line)
    }

    /// Runs one instruction on `st`; `Err(code)` when a RUN failed.
    fn instruction(
        &mut self,
        st: &mut StageState,
        inst: &Instruction,
    ) -> anyhow::Result<Result<(), i32>> {
        let env = st.expand_env();
        let ex = |w: &str| words::expand(w, &env).map_err(|e| self.err_at(inst, e));
        match &inst.kind {
            Kind::Run(r) => {
                run_step::supported(r).map_err(|e| self.err_at(inst, e))?;
                let argv = run_step::argv(st, &r.command);
                let network = match r.network {
                    dockerfile::Network::Default => self.a.network.clone(),
                    dockerfile::Network::None => "none".into(),
                    dockerfile::Network::Host => "host".into(),
                };
                let key = cache::key(&[
                    &st.key,
                    "RUN",
                    &serde_json::to_string(&argv)?,
                    &st.config["config"].to_string(),
                    &serde_json::to_string(&st.args)?,
                    &network,
                ]);
                let created_by = format!("RUN {} # buildkit", argv.join(" "));
                return self.layer_step(st, key, &created_by, |b, st| {
                    match run_step::run(b.ctx, &b.store, st, argv.clone(), &network, b.a.quiet)? {
                        Ok(l) => Ok(Ok(l)),
                        Err(run_step::Failed(code)) => {
                            eprintln!(
                                "den: {}:{}: RUN {} exited with status {code}",
                                b.df.file,
                                inst.line,
                                argv.join(" ")
                            );
                            Ok(Err(BUILD_FAILED))
                        }
                    }
                });
            }
            Kind::Copy(c) | Kind::Add(c) => {
                let add = matches!(inst.kind, Kind::Add(_));
                let plan = copy::copy_plan(&self.store, &self.context, st, c, add)
                    .map_err(|e| self.err_at(inst, e))?;
                let key = cache::key(&[&st.key, "COPY", &plan.key()?]);
                let created_by = format!("{} # buildkit", inst.text);
                return self.layer_step(st, key, &created_by, |b, _| {
                    copy::copy_layer(b.ctx, &b.store, &plan)
                        .map(Ok)
                        .map_err(|e| b.err_at(inst, e))
                });
            }
            Kind::Workdir(d) => {
                let dir = ignore::clean(&copy::absolute(&st.workdir(), &ex(d)?));
                st.cfg().insert("WorkingDir".into(), json!(dir));
                let key = cache::key(&[&st.key, "WORKDIR", &dir]);
                return self.layer_step(st, key, &format!("WORKDIR {dir}"), |b, _| {
                    copy::workdir_layer(b.ctx, &b.store, &dir).map(Ok)
                });
            }
            Kind::Env(kvs) => {
                for kv in kvs {
                    // Each pair sees the ones before it (Docker's rule).
                    let env = st.expand_env();
                    let k = words::expand(&kv.key, &env).map_err(|e| self.err_at(inst, e))?;
                    let v = words::expand(&kv.value, &env).map_err(|e| self.err_at(inst, e))?;
                    st.set_env(&k, &v);
                }
            }
            Kind::Arg(defs) => {
                for d in defs {
                    let value = match (self.build_args.get(&d.name), &d.default) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(def)) => Some(
                            words::expand(def, &st.expand_env())
                                .map_err(|e| self.err_at(inst, e))?,
                        ),
                        (None, None) => self.meta.get(&d.name).cloned(),
                    };
                    if let Some(v) = value {
                        st.args.insert(d.name.clone(), v);
                    }
                }
            }
            Kind::Expose(ports) => {
                for p in ports {
                    for p in words::expand_words(p, &env).map_err(|e| self.err_at(inst, e))? {
                        let p = if p.contains('/') {
                            p
                        } else {
                            format!("{p}/tcp")
                        };
                        st.add_to_set("ExposedPorts", &p);
                    }
                }
            }
            Kind::Cmd(c) => {
                let v = command(st, c);
                st.cfg().insert("Cmd".into(), json!(v));
                st.cmd_set = true;
            }
            Kind::Entrypoint(c) => {
                let v = command(st, c);
                st.cfg().insert("Entrypoint".into(), json!(v));
                if !st.cmd_set {
                    st.cfg().remove("Cmd");
                }
            }
            Kind::User(u) => {
                let u = ex(u)?;
                st.cfg().insert("User".into(), json!(u));
            }
            Kind::Label(kvs) => {
                for kv in kvs {
                    st.set_label(&ex(&kv.key)?, &ex(&kv.value)?);
                }
            }
            Kind::Maintainer(m) => st.set_label("maintainer", m),
            Kind::Volume(vs) => {
                for v in vs {
                    st.add_to_set("Volumes", &ex(v)?);
                }
            }
            Kind::StopSignal(s) => {
                let s = ex(s)?;
                st.cfg().insert("StopSignal".into(), json!(s));
            }
            Kind::Shell(sh) => {
                st.cfg().insert("Shell".into(), json!(sh));
            }
            Kind::Healthcheck(h) => {
                let hc = healthcheck(h);
                st.cfg().insert("Healthcheck".into(), hc);
            }
            Kind::Onbuild(i) => {
                let cfg = st.cfg();
                let mut list = cfg
                    .get("OnBuild")
                    .and_then(|v| v.as_array().cloned())
                    .unwrap_or_default();
                list.push(json!(i.text));
                cfg.insert("OnBuild".into(), json!(list));
            }
        }
        // A step that only edits the config: its key covers the result.
        let key = cache::key(&[
            &st.key,
            &inst.text,
            &st.config["config"].to_string(),
            &serde_json::to_string(&st.args)?,
        ]);
        let created = match self.lookup(&key) {
            Some(hit) => hit.created,
            None => self.record(&key, None)?,
        };
        st.history(&history_text(inst), true, &created);
        st.key = key;
        Ok(Ok(()))
    }

    /// A step that makes a layer: taken from the cache when its key is
    /// there, else `make` runs and its layer is recorded.
    fn layer_step(
        &mut self,
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
        st.history(created_by, false, &created);
        st.key = key;
        Ok(Ok(()))
    }

    /// The cached result of `key` (announced as CACHED), unless --no-cache.
    fn lookup(&self, key: &str) -> Option<cache::Hit> {
        if self.a.no_cache {
            return None;
        }
        let hit = self.cache.get(&self.store, key)?;
        self.say("--> CACHED");
        Some(hit)
    }

    /// Records a step that ran now; its creation time.
    fn record(&mut self, key: &str, layer: Option<LayerRecord>) -> anyhow::Result<String> {
        let created = state::now();
        self.cache.put(
            key,
            cache::Hit {
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
            &Reporter::new(self.a.quiet),
        )
    }

    /// Writes the config and manifest blobs and the image record; the id.
    fn write_image(&self, mut st: StageState) -> anyhow::Result<Digest> {
        // The last step's time: a cached rebuild gives the same config.
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

/// `CMD`/`ENTRYPOINT`: exec form as is, shell form through the SHELL.
fn command(st: &StageState, c: &Cmd) -> Vec<String> {
    match c {
        Cmd::Exec(v) => v.clone(),
        Cmd::Shell(s) => {
            let mut v = st.shell();
            v.push(s.clone());
            v
        }
    }
}

/// Docker's Healthcheck config (durations in nanoseconds).
fn healthcheck(h: &dockerfile::Healthcheck) -> serde_json::Value {
    let test = match &h.test {
        None => vec!["NONE".to_owned()],
        Some(Cmd::Exec(v)) => std::iter::once("CMD".to_owned()).chain(v.clone()).collect(),
        Some(Cmd::Shell(s)) => vec!["CMD-SHELL".to_owned(), s.clone()],
    };
    let mut v = json!({ "Test": test });
    let ns = |d: &Option<std::time::Duration>| d.map(|d| d.as_nanos() as u64);
    for (k, d) in [
        ("Interval", ns(&h.interval)),
        ("Timeout", ns(&h.timeout)),
        ("StartPeriod", ns(&h.start_period)),
        ("StartInterval", ns(&h.start_interval)),
    ] {
        if let Some(d) = d {
            v[k] = json!(d);
        }
    }
    if let Some(r) = h.retries {
        v["Retries"] = json!(r);
    }
    v
}

/// CREATED BY of a step that makes no layer.
fn history_text(inst: &Instruction) -> String {
    inst.text.clone()
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
