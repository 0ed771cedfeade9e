//! `den commit [-c INSTRUCTION]… [-m MSG] [-a AUTHOR] CONTAINER [IMAGE]`:
//! a container's changes as a new image.
//!
//! The container's overlay upper directory becomes one new layer on top of
//! its image's: `den __internal commit-upper` walks it inside the user
//! namespace (the files belong to the container's ids) and writes an OCI
//! layer, overlayfs' whiteouts (character devices 0/0) as `.wh.NAME` and
//! its opaque directories (`user.overlay.opaque`) as `.wh..wh..opq`, the
//! same walk `den build` commits RUN steps with (`den_build::layer`). The
//! layer is stored uncompressed and unpacked like a pulled one, so the
//! image runs, pushes and saves like any other.
//!
//! The config is the image's, with `-c` applied (CMD, ENTRYPOINT, ENV,
//! EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL, in Dockerfile syntax,
//! values expanded against the image's environment) and a history entry
//! carrying `-m` and `--author`. Docker also carries the container's own
//! run flags (its command, `-e`) into the image; den does not: say them
//! with `-c`. A running container is read as it runs (`--pause=false`,
//! podman's default; Docker's is to pause): den has no freezer to pause it
//! with, so `--pause` (`=true`) on a running container is refused.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;

use anyhow::{Context as _, bail};
use den_build::dockerfile::{self, Kind};
use den_build::words;
use den_image::digest::Digest;
use den_image::manifest::OCI_MANIFEST;
use den_image::reference::ImageRef;
use den_image::store::{ImageRecord, LayerRecord, Store};
use den_sandbox::container::state::Status;
use serde_json::{Value, json};

use crate::args::CommitArgs;
use crate::containers::Containers;
use crate::context::Context;

/// OCI media type of an uncompressed layer.
const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Longest `-c` value, `-m` and `--author` (they go into the config).
const MAX_TEXT: usize = 64 << 10;

pub fn run(ctx: &Context, a: &CommitArgs) -> anyhow::Result<i32> {
    let changes = parse_changes(&a.changes)?;
    for (flag, v) in [("-m", &a.message), ("--author", &a.author)] {
        if v.as_ref().is_some_and(|v| v.len() > MAX_TEXT) {
            bail!("{flag} is longer than {MAX_TEXT} bytes");
        }
    }
    let name = match &a.image {
        Some(i) => {
            let r = ImageRef::parse(i).with_context(|| format!("invalid image name `{i}`"))?;
            if r.digest.is_some() {
                bail!("cannot commit to a digest `{i}`: give NAME[:TAG]");
            }
            Some(r.tagged_name().unwrap_or_else(|| r.to_string()))
        }
        None => None,
    };
    let containers = Containers::open(&ctx.root)?;
    let r = containers.find(&a.container)?;
    if a.pause == Some(true) && containers.state(&r.id).status == Status::Running {
        bail!(
            "den commit --pause: den cannot pause container {}: pausing needs the cgroup freezer, which den does not use; commit it as it runs with --pause=false (den's default), or stop it first",
            r.name
        );
    }
    let Some(image_id) = &r.image_id else {
        bail!(
            "container {} runs a directory (--rootfs), not an image: den commit needs a container made from an image",
            r.name
        );
    };
    let store = ctx.store()?;
    let base = crate::local_images::resolve(&store, &store.images()?, image_id)?;
    let mut config: Value = serde_json::from_slice(&store.read_blob(&base.id)?)?;
    apply(&mut config, &changes)?;
    let layer = commit_upper(ctx, &store, &containers.dir_of(&r.id).join("upper"))?;
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    finish_config(&mut config, &layer, &created, a);
    let id = write_image(&store, &base, config, layer, name, created)?;
    println!("{id}");
    Ok(0)
}

/// Each `-c` as one Dockerfile instruction of the kinds commit applies.
fn parse_changes(changes: &[String]) -> anyhow::Result<Vec<Kind>> {
    let mut out = Vec::new();
    for c in changes {
        if c.len() > MAX_TEXT || c.contains('\n') {
            bail!(
                "invalid -c `{}`: one instruction on one line per -c",
                c.lines().next().unwrap_or("")
            );
        }
        let text = format!("FROM scratch\n{c}\n");
        let parsed = dockerfile::parse("-c", &text).map_err(|e| {
            // The error names the instruction's place in the text made above.
            let e = e.to_string();
            anyhow::anyhow!("invalid -c `{c}`: {}", e.trim_start_matches("-c:2: "))
        })?;
        let inst = match parsed.stages.first().map(|s| s.instructions.as_slice()) {
            Some([one]) => one.kind.clone(),
            _ => bail!("invalid -c `{c}`: give one instruction"),
        };
        match inst {
            Kind::Cmd(_)
            | Kind::Entrypoint(_)
            | Kind::Env(_)
            | Kind::Expose(_)
            | Kind::Label(_)
            | Kind::User(_)
            | Kind::Workdir(_)
            | Kind::Volume(_)
            | Kind::StopSignal(_) => out.push(inst),
            _ => bail!(
                "den commit -c applies CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME or STOPSIGNAL, not `{c}`"
            ),
        }
    }
    Ok(out)
}

/// The image config's `Env` as a map (for expanding `-c` values).
fn env_of(cfg: &Value) -> BTreeMap<String, String> {
    cfg["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str()?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Applies the changes to `config.config`, in order, as `den build` does.
fn apply(config: &mut Value, changes: &[Kind]) -> anyhow::Result<()> {
    if !config["config"].is_object() {
        config["config"] = json!({});
    }
    let cfg = &mut config["config"];
    for change in changes {
        let env = env_of(cfg);
        let ex = |s: &str| words::expand(s, &env).map_err(|e| anyhow::anyhow!("-c: {e}"));
        match change {
            Kind::Cmd(c) => cfg["Cmd"] = json!(command(cfg, c)),
            Kind::Entrypoint(c) => cfg["Entrypoint"] = json!(command(cfg, c)),
            Kind::Env(kvs) => {
                for kv in kvs {
                    let (k, v) = (ex(&kv.key)?, ex(&kv.value)?);
                    set_env(cfg, &k, &v);
                }
            }
            Kind::Expose(ports) => {
                for p in ports {
                    for p in words::expand_words(p, &env).map_err(|e| anyhow::anyhow!("-c: {e}"))? {
                        let p = if p.contains('/') {
                            p
                        } else {
                            format!("{p}/tcp")
                        };
                        add_to_set(cfg, "ExposedPorts", &p);
                    }
                }
            }
            Kind::Label(kvs) => {
                for kv in kvs {
                    let (k, v) = (ex(&kv.key)?, ex(&kv.value)?);
                    if !cfg["Labels"].is_object() {
                        cfg["Labels"] = json!({});
                    }
                    cfg["Labels"][k] = json!(v);
                }
            }
            Kind::User(u) => cfg["User"] = json!(ex(u)?),
            Kind::Workdir(d) => {
                let d = ex(d)?;
                let dir = if d.starts_with('/') {
                    d
                } else {
                    let base = cfg["WorkingDir"]
                        .as_str()
                        .unwrap_or("/")
                        .trim_end_matches('/');
                    format!("{base}/{d}")
                };
                cfg["WorkingDir"] = json!(dir);
            }
            Kind::Volume(vs) => {
                for v in vs {
                    add_to_set(cfg, "Volumes", &ex(v)?);
                }
            }
            Kind::StopSignal(s) => {
                let s = ex(s)?;
                dockerfile::signal(&s).map_err(|e| anyhow::anyhow!("-c STOPSIGNAL: {e}"))?;
                cfg["StopSignal"] = json!(s);
            }
            _ => unreachable!("parse_changes keeps only the kinds above"),
        }
    }
    Ok(())
}

/// Exec form as is; shell form through the image's SHELL (`/bin/sh -c`).
fn command(cfg: &Value, c: &dockerfile::Command) -> Vec<String> {
    match c {
        dockerfile::Command::Exec(v) => v.clone(),
        dockerfile::Command::Shell(s) => {
            let mut shell: Vec<String> = cfg["Shell"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .filter(|v: &Vec<String>| !v.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            shell.push(s.clone());
            shell
        }
    }
}

fn set_env(cfg: &mut Value, key: &str, value: &str) {
    let mut list: Vec<Value> = cfg["Env"].as_array().cloned().unwrap_or_default();
    let entry = json!(format!("{key}={value}"));
    let prefix = format!("{key}=");
    match list
        .iter_mut()
        .find(|e| e.as_str().is_some_and(|s| s.starts_with(&prefix)))
    {
        Some(e) => *e = entry,
        None => list.push(entry),
    }
    cfg["Env"] = Value::Array(list);
}

fn add_to_set(cfg: &mut Value, field: &str, key: &str) {
    if !cfg[field].is_object() {
        cfg[field] = json!({});
    }
    cfg[field][key] = json!({});
}

/// The upper directory as a layer of the store (blob and unpacked).
fn commit_upper(ctx: &Context, store: &Store, upper: &Path) -> anyhow::Result<LayerRecord> {
    let tar = store.tmp_dir().join(format!(
        "commit-{}-{}.tar",
        std::process::id(),
        crate::containers::new_id()
    ));
    let args = [
        OsStr::new("commit-upper"),
        upper.as_os_str(),
        tar.as_os_str(),
    ];
    let written = crate::in_userns::helper(ctx, &args)
        .context("writing the container's changes as a layer failed");
    let written = match written {
        Ok(w) => w,
        Err(e) => {
            fs_err::remove_file(&tar).ok();
            return Err(e);
        }
    };
    let (digest, size) = written
        .trim()
        .split_once(' ')
        .context("den's layer helper answered garbage")?;
    let digest: Digest = digest.parse()?;
    let size: u64 = size
        .parse()
        .context("den's layer helper answered garbage")?;
    if store.has_blob(&digest) {
        fs_err::remove_file(&tar)?;
    } else {
        store.commit_blob_file(&tar, &digest)?;
    }
    let d = digest.to_string();
    crate::in_userns::helper(ctx, &["unpack", &d, &d]).context("unpacking the new layer failed")?;
    Ok(LayerRecord {
        blob: digest.clone(),
        media_type: LAYER_TAR.into(),
        size,
        diff_id: digest,
    })
}

/// The new layer's diff id, the history entry, author and time.
fn finish_config(config: &mut Value, layer: &LayerRecord, created: &str, a: &CommitArgs) {
    if !config["rootfs"]["diff_ids"].is_array() {
        config["rootfs"] = json!({"type": "layers", "diff_ids": []});
    }
    if let Some(ids) = config["rootfs"]["diff_ids"].as_array_mut() {
        ids.push(json!(layer.diff_id.to_string()));
    }
    let mut entry = json!({"created": created, "created_by": "den commit"});
    if let Some(m) = &a.message {
        entry["comment"] = json!(m);
    }
    if let Some(au) = &a.author {
        entry["author"] = json!(au);
        config["author"] = json!(au);
    }
    if !config["history"].is_array() {
        config["history"] = json!([]);
    }
    if let Some(h) = config["history"].as_array_mut() {
        h.push(entry);
    }
    config["created"] = json!(created);
}

/// Config and manifest blobs and the image record; returns the id.
fn write_image(
    store: &Store,
    base: &ImageRecord,
    config: Value,
    layer: LayerRecord,
    name: Option<String>,
    created: String,
) -> anyhow::Result<Digest> {
    let config_bytes = serde_json::to_vec(&config)?;
    let id = store.put_blob(&config_bytes)?;
    let mut layers = base.layers.clone();
    layers.push(layer);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": id.to_string(),
            "size": config_bytes.len(),
        },
        "layers": layers.iter().map(|l| json!({
            "mediaType": l.media_type,
            "digest": l.blob.to_string(),
            "size": l.size,
        })).collect::<Vec<_>>(),
    });
    let manifest = store.put_blob(&serde_json::to_vec(&manifest)?)?;
    let size = layers
        .iter()
        .map(|l| store.layer_info(&l.diff_id).map(|i| i.size).unwrap_or(0))
        .sum();
    store.record_image(ImageRecord {
        id: id.clone(),
        names: name.into_iter().collect(),
        repo_digests: Vec::new(),
        manifest,
        manifest_media_type: OCI_MANIFEST.into(),
        layers,
        platform: base.platform.clone(),
        created: Some(created),
        size,
    })?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(changes: &[&str]) -> Value {
        let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        let mut config = json!({"config": {"Env": ["PATH=/bin"], "WorkingDir": "/srv"}});
        apply(&mut config, &parse_changes(&changes).unwrap()).unwrap();
        config["config"].clone()
    }

    #[test]
    fn changes_apply_like_dockerfile_instructions() {
        let c = applied(&[
            // One instruction's values see the environment before it
            // (Docker's rule: `ENV abc=bye def=$abc`).
            "ENV A=1 B=${A}2",
            "ENV C=${A}3",
            "ENV PATH=/usr/bin:$PATH",
            "WORKDIR app",
            "CMD echo hi",
            "ENTRYPOINT [\"/init\"]",
            "EXPOSE 80 53/udp",
            "LABEL \"k v\"=x",
            "USER 1000:1000",
            "VOLUME [\"/a\", \"/b\"]",
            "STOPSIGNAL 9",
        ]);
        assert_eq!(
            c["Env"],
            json!(["PATH=/usr/bin:/bin", "A=1", "B=2", "C=13"])
        );
        assert_eq!(c["WorkingDir"], "/srv/app");
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(c["Entrypoint"], json!(["/init"]));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Labels"], json!({"k v": "x"}));
        assert_eq!(c["User"], "1000:1000");
        assert_eq!(c["Volumes"], json!({"/a": {}, "/b": {}}));
        assert_eq!(c["StopSignal"], "9");
    }

    #[test]
    fn other_instructions_are_refused() {
        for bad in [
            "RUN ls",
            "COPY a b",
            "FROM busybox",
            "HEALTHCHECK NONE",
            "CMD a\nRUN b",
            "",
        ] {
            assert!(parse_changes(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
