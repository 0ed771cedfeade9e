//! `COPY`/`ADD` of context files and `WORKDIR`: the files are written
//! straight from the context into a new layer tar, with the owners and
//! modes the instruction gives them.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};
use den_build::context::{Context as BuildContext, Ownership, parents};
use den_build::dockerfile::{Copy, Source};
use den_build::layer::LayerWriter;
use den_build::words;
use den_image::store::{LayerRecord, Store};

use super::commit;
use super::state::StageState;
use crate::context::Context;

/// `dest` made absolute against the stage's WORKDIR.
pub fn absolute(workdir: &str, dest: &str) -> String {
    if dest.starts_with('/') {
        dest.to_owned()
    } else {
        format!("{}/{dest}", workdir.trim_end_matches('/'))
    }
}

/// The expanded sources and destination of a COPY/ADD.
pub fn expand(
    c: &Copy,
    env: &BTreeMap<String, String>,
    add: bool,
) -> anyhow::Result<(Vec<String>, String)> {
    let mut sources = Vec::new();
    for s in &c.sources {
        match s {
            Source::Path(p) => {
                let p = words::expand(p, env)?;
                if add && (p.starts_with("http://") || p.starts_with("https://")) {
                    bail!(
                        "ADD of a URL ({p}) is not supported by den build yet: download it in a RUN step"
                    );
                }
                sources.push(p);
            }
            Source::Heredoc(_) => {
                bail!(
                    "COPY from a here-document is not supported by den build yet: put the text in a context file"
                )
            }
        }
    }
    Ok((sources, words::expand(&c.dest, env)?))
}

/// What a `COPY` writes: its entries, the destination (absolute), whether
/// it is a directory, and the owners.
pub struct CopyPlan {
    pub entries: Vec<den_build::layer::Entry>,
    pub dest: String,
    pub dest_is_dir: bool,
    pub own: Ownership,
}

impl CopyPlan {
    /// The part of the step's cache key this plan gives (content included).
    pub fn key(&self) -> anyhow::Result<String> {
        let content = den_build::context::content_key(&self.entries)?;
        Ok(format!(
            "{}\0{}\0{}:{}:{:?}\0{content}",
            self.dest, self.dest_is_dir, self.own.uid, self.own.gid, self.own.mode
        ))
    }
}

/// Resolves `COPY sources dest` against the context.
pub fn copy_plan(
    store: &Store,
    context: &BuildContext,
    st: &StageState,
    c: &Copy,
    add: bool,
) -> anyhow::Result<CopyPlan> {
    if c.from.is_some() {
        bail!(
            "COPY --from is not supported by den build yet: build that stage's files in this stage"
        );
    }
    let env = st.expand_env();
    let (sources, raw_dest) = expand(c, &env, add)?;
    let dest_is_dir =
        raw_dest.ends_with('/') || raw_dest == "." || raw_dest.ends_with("/.") || sources.len() > 1;
    let dest = den_build::ignore::clean(&absolute(&st.workdir(), &raw_dest));
    let own = ownership(store, st, c)?;
    let entries = context.entries(&sources, &dest, dest_is_dir, own)?;
    Ok(CopyPlan {
        entries,
        dest,
        dest_is_dir,
        own,
    })
}

/// Writes the layer of a planned `COPY`.
pub fn copy_layer(ctx: &Context, store: &Store, plan: &CopyPlan) -> anyhow::Result<LayerRecord> {
    let CopyPlan {
        entries,
        dest,
        dest_is_dir,
        own,
    } = plan;
    let (dest_is_dir, own) = (*dest_is_dir, *own);
    let tar = commit::tmp_tar(store);
    let written = (|| {
        let mut w = LayerWriter::create(&tar)?;
        let rel = dest.trim_start_matches('/');
        for p in parents(rel) {
            w.dir(&p, 0, 0, 0o755)?;
        }
        if dest_is_dir && !rel.is_empty() {
            w.dir(rel, own.uid, own.gid, 0o755)?;
        }
        for e in entries {
            w.append(e)?;
        }
        Ok::<_, anyhow::Error>(w.finish()?)
    })();
    match written {
        Ok(w) => commit::commit_tar(ctx, store, &tar, &w),
        Err(e) => {
            fs_err::remove_file(&tar).ok();
            Err(e)
        }
    }
}

/// The layer of `WORKDIR dir`: the directory and its parents.
pub fn workdir_layer(ctx: &Context, store: &Store, dir: &str) -> anyhow::Result<LayerRecord> {
    let tar = commit::tmp_tar(store);
    let rel = dir.trim_start_matches('/');
    let mut w = LayerWriter::create(&tar)?;
    for p in parents(rel).into_iter().chain([rel.to_owned()]) {
        if !p.is_empty() {
            w.dir(&p, 0, 0, 0o755)?;
        }
    }
    let written = w.finish()?;
    commit::commit_tar(ctx, store, &tar, &written)
}

/// `--chown` (numeric, or names from the stage's /etc/passwd and
/// /etc/group) and `--chmod` (octal).
fn ownership(store: &Store, st: &StageState, c: &Copy) -> anyhow::Result<Ownership> {
    let env = st.expand_env();
    let mode = match &c.chmod {
        Some(m) => {
            let m = words::expand(m, &env)?;
            Some(
                u32::from_str_radix(&m, 8)
                    .ok()
                    .filter(|v| *v <= 0o7777)
                    .with_context(|| format!("--chmod={m}: use an octal mode such as 755"))?,
            )
        }
        None => None,
    };
    let Some(chown) = &c.chown else {
        return Ok(Ownership {
            uid: 0,
            gid: 0,
            mode,
        });
    };
    let chown = words::expand(chown, &env)?;
    let (user, group) = match chown.split_once(':') {
        Some((u, g)) => (u.to_owned(), Some(g.to_owned())),
        None => (chown.clone(), None),
    };
    let passwd = read_image_file(store, st, "etc/passwd");
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, lookup(&passwd, &user, 2, 3).map(|(_, g)| g).unwrap_or(n)),
        Err(_) => lookup_name(&passwd, &user).with_context(|| {
            format!("--chown={chown}: no user {user} in the image's /etc/passwd")
        })?,
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let groups = read_image_file(store, st, "etc/group");
                lookup_name(&groups, &g)
                    .map(|(id, _)| id)
                    .with_context(|| {
                        format!("--chown={chown}: no group {g} in the image's /etc/group")
                    })?
            }
        },
    };
    Ok(Ownership { uid, gid, mode })
}

/// `(field 2, field 3)` of the line whose field 0 is `name`.
fn lookup_name(text: &str, name: &str) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == name)
            .then(|| (f[2].parse().ok(), f[3].parse().ok()))
            .and_then(|(a, b)| Some((a?, b.unwrap_or(0))))
    })
}

/// The line whose uid field is `id`: `(uid, gid)`.
fn lookup(text: &str, id: &str, uid_field: usize, gid_field: usize) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() > gid_field && f[uid_field] == id {
            Some((f[uid_field].parse().ok()?, f[gid_field].parse().ok()?))
        } else {
            None
        }
    })
}

/// A small text file of the stage's image (topmost layer that has it);
/// empty when none has it. Layer trees are world-readable where the image
/// makes them so, as /etc/passwd is.
fn read_image_file(store: &Store, st: &StageState, rel: &str) -> String {
    for l in st.layers.iter().rev() {
        let p = store.layer_tree(&l.diff_id).join(rel);
        if let Ok(meta) = fs_err::symlink_metadata(&p)
            && meta.is_file()
            && meta.len() < 4 << 20
        {
            return fs_err::read_to_string(Path::new(&p)).unwrap_or_default();
        }
    }
    String::new()
}
