//! One Dockerfile instruction on a stage's state, a function per family:
//! the steps that make a layer (RUN, COPY/ADD, WORKDIR, through
//! `Builder::layer_step`), and those that only change the config (ENV,
//! ARG, and one field each for the rest), recorded by `config_step`.

use std::collections::HashMap;

use den_build::dockerfile::{self, Command as Cmd, Instruction, Kind};
use den_build::{ignore, words};
use serde_json::json;

use super::state::StageState;
use super::{BUILD_FAILED, Builder, copy, mounts, run_step};

impl Builder<'_> {
    /// Runs one instruction on `st`; `Err(code)` when a RUN failed.
    pub(super) fn instruction(
        &self,
        st: &mut StageState,
        inst: &Instruction,
        stage: usize,
        built: &HashMap<usize, StageState>,
    ) -> anyhow::Result<Result<(), i32>> {
        match &inst.kind {
            Kind::Run(r) => return self.run_instruction(st, inst, r, stage, built),
            Kind::Copy(c) | Kind::Add(c) => {
                return self.copy_instruction(st, inst, c, stage, built);
            }
            Kind::Workdir(d) => return self.workdir_instruction(st, inst, d),
            Kind::Env(kvs) => self.env_instruction(st, inst, kvs)?,
            Kind::Arg(defs) => self.arg_instruction(st, inst, defs)?,
            kind => self.config_instruction(st, inst, kind)?,
        }
        self.config_step(st, inst)
    }

    /// RUN: the command in a build container; its upper layer is the step's.
    fn run_instruction(
        &self,
        st: &mut StageState,
        inst: &Instruction,
        r: &dockerfile::Run,
        stage: usize,
        built: &HashMap<usize, StageState>,
    ) -> anyhow::Result<Result<(), i32>> {
        run_step::supported(r).map_err(|e| self.err_at(inst, e))?;
        let script = den_build::script::script(&r.command, &r.heredocs, &st.shell());
        let network = match r.network {
            dockerfile::Network::Default => self.a.network.clone(),
            dockerfile::Network::None => "none".into(),
            dockerfile::Network::Host => "host".into(),
        };
        let mounts = mounts::plan(
            &self.store,
            &self.context,
            st,
            &r.mounts,
            &mut |name| self.copy_source(name, stage, built),
            &mut |p, m| self.memo.lock().expect("memo lock").hash(p, m),
        )
        .map_err(|e| self.err_at(inst, e))?;
        let spec = run_step::RunSpec {
            argv: script.argv,
            network,
            flags: self
                .a
                .volumes
                .iter()
                .flat_map(|v| ["-v".into(), v.clone()])
                .collect(),
            pipes: script.files,
            epoch: self.epoch,
            mounts,
        };
        let key = crate::build_cache::key(&[
            &st.key,
            "RUN",
            &spec.mounts.key,
            &serde_json::to_string(&spec.flags)?,
            &serde_json::to_string(&spec.argv)?,
            &serde_json::to_string(&spec.pipes)?,
            &st.config["config"].to_string(),
            &serde_json::to_string(&st.args)?,
            &spec.network,
        ]);
        let shown = spec.argv.join(" ");
        let created_by = format!("RUN {shown} # buildkit");
        self.layer_step(st, key, &created_by, |b, st| {
            match run_step::run(b.ctx, &b.store, st, &spec, b.quiet)? {
                Ok(l) => Ok(Ok(l)),
                Err(run_step::Failed(code)) => {
                    eprintln!(
                        "den: {}:{}: RUN {shown} exited with status {code}",
                        b.df.file, inst.line,
                    );
                    Ok(Err(BUILD_FAILED))
                }
            }
        })
    }

    /// COPY and ADD: files from the context, a URL or another stage or
    /// image, as a layer.
    fn copy_instruction(
        &self,
        st: &mut StageState,
        inst: &Instruction,
        c: &dockerfile::Copy,
        stage: usize,
        built: &HashMap<usize, StageState>,
    ) -> anyhow::Result<Result<(), i32>> {
        let add = matches!(inst.kind, Kind::Add(_));
        let from = match &c.from {
            Some(raw) => Some(
                self.copy_source(raw, stage, built)
                    .map_err(|e| self.err_at(inst, e))?,
            ),
            None => None,
        };
        let mut plan = copy::copy_plan(&self.store, &self.context, st, c, add, from)
            .map_err(|e| self.err_at(inst, e))?;
        plan.epoch = self.epoch;
        let content = plan.key(&mut self.memo.lock().expect("memo lock"))?;
        let key = crate::build_cache::key(&[&st.key, "COPY", &content]);
        let created_by = format!("{} # buildkit", inst.text);
        self.layer_step(st, key, &created_by, |b, _| {
            copy::copy_layer(b.ctx, &b.store, &plan)
                .map(Ok)
                .map_err(|e| b.err_at(inst, e))
        })
    }

    /// WORKDIR: the config's working directory, and a layer that makes it.
    fn workdir_instruction(
        &self,
        st: &mut StageState,
        inst: &Instruction,
        d: &str,
    ) -> anyhow::Result<Result<(), i32>> {
        let env = st.expand_env();
        let d = words::expand(d, &env).map_err(|e| self.err_at(inst, e))?;
        let dir = ignore::clean(&copy::absolute(&st.workdir(), &d));
        st.cfg().insert("WorkingDir".into(), json!(dir));
        let key = crate::build_cache::key(&[&st.key, "WORKDIR", &dir]);
        self.layer_step(st, key, &format!("WORKDIR {dir}"), |b, _| {
            copy::workdir_layer(b.ctx, &b.store, &dir).map(Ok)
        })
    }

    /// ENV: each pair sees the ones before it (Docker's rule).
    fn env_instruction(
        &self,
        st: &mut StageState,
        inst: &Instruction,
        kvs: &[dockerfile::KeyValue],
    ) -> anyhow::Result<()> {
        for kv in kvs {
            let env = st.expand_env();
            let k = words::expand(&kv.key, &env).map_err(|e| self.err_at(inst, e))?;
            let v = words::expand(&kv.value, &env).map_err(|e| self.err_at(inst, e))?;
            st.set_env(&k, &v);
        }
        Ok(())
    }

    /// ARG: a `--build-arg`, else the default, else the global ARG's value.
    fn arg_instruction(
        &self,
        st: &mut StageState,
        inst: &Instruction,
        defs: &[dockerfile::ArgDef],
    ) -> anyhow::Result<()> {
        for d in defs {
            let value = match (self.build_args.get(&d.name), &d.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(def)) => {
                    Some(words::expand(def, &st.expand_env()).map_err(|e| self.err_at(inst, e))?)
                }
                (None, None) => self.meta.get(&d.name).cloned(),
            };
            if let Some(v) = value {
                st.args.insert(d.name.clone(), v);
            }
        }
        Ok(())
    }

    /// The instructions that set one field of the image config (EXPOSE,
    /// CMD, ENTRYPOINT, USER, LABEL, MAINTAINER, VOLUME, STOPSIGNAL, SHELL,
    /// HEALTHCHECK, ONBUILD). `instruction` handles the others.
    fn config_instruction(
        &self,
        st: &mut StageState,
        inst: &Instruction,
        kind: &Kind,
    ) -> anyhow::Result<()> {
        let env = st.expand_env();
        let ex = |w: &str| words::expand(w, &env).map_err(|e| self.err_at(inst, e));
        match kind {
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
            Kind::Run(_)
            | Kind::Copy(_)
            | Kind::Add(_)
            | Kind::Workdir(_)
            | Kind::Env(_)
            | Kind::Arg(_) => {} // steps of their own in `instruction`
        }
        Ok(())
    }

    /// A step that only edits the config: its key covers the result. The
    /// ARG values are left out: a RUN's key has them (they are its
    /// environment), and a step that expands one has the value in its
    /// result, so a changed --build-arg re-runs only the steps using it.
    fn config_step(
        &self,
        st: &mut StageState,
        inst: &Instruction,
    ) -> anyhow::Result<Result<(), i32>> {
        let key = crate::build_cache::key(&[&st.key, &inst.text, &st.config["config"].to_string()]);
        let created = match self.lookup(&key) {
            Some(hit) => hit.created,
            None => self.record(&key, None)?,
        };
        st.history(&history_text(inst), true, &self.stamp(created));
        st.key = key;
        Ok(Ok(()))
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
