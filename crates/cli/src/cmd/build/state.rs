//! A stage's state while it builds: the image config being written (kept
//! as JSON so fields den does not know survive), its layers, the stage's
//! ARGs and SHELL.

use std::collections::BTreeMap;

use anyhow::Context as _;
use den_image::manifest::Platform;
use den_image::store::{ImageRecord, LayerRecord, Store};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone)]
pub struct StageState {
    /// The OCI image configuration.
    pub config: Value,
    pub layers: Vec<LayerRecord>,
    /// ARGs declared in this stage, with their values.
    pub args: BTreeMap<String, String>,
    /// Whether this stage set CMD (ENTRYPOINT clears an inherited one).
    pub cmd_set: bool,
    pub platform: Platform,
    /// The cache key of the last step (the base image's id at first).
    pub key: String,
}

impl StageState {
    pub fn scratch() -> Self {
        let platform = Platform::host();
        StageState {
            config: json!({
                "architecture": platform.architecture,
                "os": platform.os,
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            }),
            layers: Vec::new(),
            args: BTreeMap::new(),
            cmd_set: false,
            platform,
            key: "scratch".into(),
        }
    }

    pub fn from_image(store: &Store, image: &ImageRecord) -> anyhow::Result<Self> {
        let mut config: Value = serde_json::from_slice(&store.read_blob(&image.id)?)
            .with_context(|| format!("image {}: malformed config", image.id.short()))?;
        if !config["config"].is_object() {
            config["config"] = json!({});
        }
        if !config["history"].is_array() {
            config["history"] = json!([]);
        }
        Ok(StageState {
            config,
            layers: image.layers.clone(),
            args: BTreeMap::new(),
            cmd_set: false,
            platform: image.platform.clone(),
            key: image.id.to_string(),
        })
    }

    /// The `config` object of the image config.
    pub fn cfg(&mut self) -> &mut Map<String, Value> {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        self.config["config"]
            .as_object_mut()
            .expect("config is an object")
    }

    fn cfg_str(&self, key: &str) -> Option<String> {
        self.config["config"][key]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// `Env` as `K=V` strings.
    pub fn env_list(&self) -> Vec<String> {
        self.config["config"]["Env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What values are expanded with: the stage's ARGs, then ENV over them.
    pub fn expand_env(&self) -> BTreeMap<String, String> {
        let mut m = self.args.clone();
        for kv in self.env_list() {
            if let Some((k, v)) = kv.split_once('=') {
                m.insert(k.to_owned(), v.to_owned());
            }
        }
        m
    }

    /// The environment of a RUN: ENV, plus ARGs ENV does not set.
    pub fn run_env(&self) -> Vec<String> {
        let mut env = self.env_list();
        for (k, v) in &self.args {
            if !env
                .iter()
                .any(|e| e.split_once('=').map(|p| p.0) == Some(k))
            {
                env.push(format!("{k}={v}"));
            }
        }
        env
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        let mut env = self.env_list();
        let entry = format!("{key}={value}");
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map(|p| p.0) == Some(key))
        {
            Some(e) => *e = entry,
            None => env.push(entry),
        }
        self.cfg().insert("Env".into(), json!(env));
    }

    pub fn workdir(&self) -> String {
        self.cfg_str("WorkingDir").unwrap_or_else(|| "/".into())
    }

    pub fn user(&self) -> Option<String> {
        self.cfg_str("User")
    }

    pub fn shell(&self) -> Vec<String> {
        self.config["config"]["Shell"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// Adds `key` to the map-valued field `field` (ExposedPorts, Volumes).
    pub fn add_to_set(&mut self, field: &str, key: &str) {
        let cfg = self.cfg();
        if !cfg.get(field).is_some_and(Value::is_object) {
            cfg.insert(field.into(), json!({}));
        }
        cfg[field]
            .as_object_mut()
            .expect("object")
            .insert(key.into(), json!({}));
    }

    /// Removes the base's `ONBUILD` triggers from the config (they run
    /// once, in the stage built on it, and are not inherited further).
    pub fn take_onbuild(&mut self) -> anyhow::Result<Vec<String>> {
        let Some(v) = self.cfg().remove("OnBuild") else {
            return Ok(Vec::new());
        };
        let list: Vec<String> = match v {
            serde_json::Value::Null => Vec::new(),
            v => serde_json::from_value(v).map_err(|e| {
                anyhow::anyhow!("the base image's OnBuild is not a list of instructions: {e}")
            })?,
        };
        if list.len() > MAX_TRIGGERS {
            anyhow::bail!(
                "the base image has {} ONBUILD triggers; den runs at most {MAX_TRIGGERS}",
                list.len()
            );
        }
        Ok(list)
    }

    pub fn set_label(&mut self, key: &str, value: &str) {
        let cfg = self.cfg();
        if !cfg.get("Labels").is_some_and(Value::is_object) {
            cfg.insert("Labels".into(), json!({}));
        }
        cfg["Labels"]
            .as_object_mut()
            .expect("object")
            .insert(key.into(), json!(value));
    }

    /// One history entry for an instruction.
    pub fn history(&mut self, created_by: &str, empty_layer: bool, created: &str) {
        let mut h = json!({
            "created": created,
            "created_by": created_by,
            "comment": "buildkit.dockerfile.v0",
        });
        if empty_layer {
            h["empty_layer"] = json!(true);
        }
        if let Some(a) = self.config["history"].as_array_mut() {
            a.push(h);
        }
    }

    /// `created` of the last history entry (the image's `created`).
    pub fn last_created(&self) -> Option<String> {
        self.config["history"]
            .as_array()
            .and_then(|a| a.last())
            .and_then(|h| h["created"].as_str().map(str::to_owned))
    }

    pub fn add_layer(&mut self, layer: LayerRecord) {
        if !self.config["rootfs"]["diff_ids"].is_array() {
            self.config["rootfs"] = json!({"type": "layers", "diff_ids": []});
        }
        self.config["rootfs"]["diff_ids"]
            .as_array_mut()
            .expect("array")
            .push(json!(layer.diff_id.to_string()));
        self.layers.push(layer);
    }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The most `ONBUILD` triggers a base image may hand a build.
const MAX_TRIGGERS: usize = 256;
