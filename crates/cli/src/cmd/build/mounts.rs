//! `RUN --mount=…` as `den run` flags for the step's container:
//!
//! - `type=cache`: a directory in den's store, `ROOT/build-mounts/cache/<hash of id>`,
//!   kept between builds (`id=` defaults to the target, as in BuildKit).
//!   `sharing=locked` and `private` hold an exclusive lock on it for the
//!   step (den gives a `private` user the same directory after waiting,
//!   rather than a second instance); `shared` does not lock.
//! - `type=bind` from the context: the source's files (resolved as COPY
//!   resolves them: beneath the context, no symlink leading out,
//!   `.dockerignore`d files left out) copied into a private directory made
//!   for the step, so `rw` writes never reach the context and are
//!   discarded with the step's container. Its key is the files' content.
//! - `type=bind,from=STAGE|IMAGE`: the source written as a layer of the
//!   store by `COPY --from`'s code (resolved inside the source's root),
//!   bound read-only. Its key is the source's key.
//! - `type=tmpfs`: `den run --mount type=tmpfs`.
//!
//! The mount targets are left out of the step's layer
//! ([`Planned::targets`]), so nothing of a mount, not even the empty
//! mount point den made for it, ends up in the image.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use den_build::context::{Context as BuildContext, ContextError, content_key};
use den_build::dockerfile::{Mount, MountKind, Sharing};
use den_build::layer::Entry;
use den_build::words;
use den_image::digest::Digest;
use den_image::store::{FileLock, Store};

use super::state::StageState;
use crate::context::Context;

/// The flags, the part of the step's key they give, the cache locks to
/// hold while the step runs, and the binds to make when it runs.
#[derive(Default)]
pub struct Planned {
    pub flags: Vec<String>,
    pub key: String,
    pub cache_dirs: Vec<(PathBuf, bool)>,
    pub binds: Vec<Bind>,
    /// Every mount target (absolute), left out of the step's layer.
    pub targets: Vec<String>,
}

/// A `type=bind` mount, made only when the step runs (not on a cache hit).
pub struct Bind {
    target: String,
    readonly: bool,
    source: BindSource,
}

enum BindSource {
    /// Context files; `dir` when the source is a directory.
    Context { entries: Vec<Entry>, dir: bool },
    /// `from=`: a stage or image, and the path in it.
    From { state: StageState, path: String },
}

/// Context copies of a step's binds; each goes into the build container's
/// directory after the step (removed with it, inside the user namespace,
/// whatever ids the step gave the files it wrote), or is removed on drop.
#[derive(Default)]
pub struct BindDirs(Vec<PathBuf>);

impl BindDirs {
    /// Moves the copies into `dir` (the build container's directory).
    pub fn into_container(mut self, dir: &Path) {
        for (n, p) in std::mem::take(&mut self.0).into_iter().enumerate() {
            if fs_err::rename(&p, dir.join(format!("bind-{n}"))).is_err() {
                remove(&p);
            }
        }
    }
}

impl Drop for BindDirs {
    fn drop(&mut self) {
        for p in &self.0 {
            remove(p);
        }
    }
}

fn remove(p: &Path) {
    if p.is_dir() {
        fs_err::remove_dir_all(p).ok();
    } else {
        fs_err::remove_file(p).ok();
    }
}

impl Planned {
    /// Takes the cache locks (`sharing=locked|private`); held until dropped.
    pub fn lock(&self) -> anyhow::Result<Vec<FileLock>> {
        let mut locks = Vec::new();
        for (dir, exclusive) in &self.cache_dirs {
            if *exclusive {
                locks.push(FileLock::exclusive(&dir.with_extension("lock"))?);
            }
        }
        Ok(locks)
    }

    /// Makes the binds: their `-v` flags, and the context copies.
    pub fn make_binds(
        &self,
        ctx: &Context,
        store: &Store,
    ) -> anyhow::Result<(Vec<String>, BindDirs)> {
        let mut flags = Vec::new();
        let mut dirs = BindDirs::default();
        for b in &self.binds {
            let source = match &b.source {
                BindSource::Context { entries, dir } => {
                    let path = super::commit::tmp_tar(store).with_extension("bind");
                    dirs.0.push(path.clone());
                    copy_entries(entries, *dir, &path)?;
                    path
                }
                BindSource::From { state, path } => {
                    let layer = super::copy::bind_layer(ctx, store, state, path)?;
                    store
                        .layer_tree(&layer.diff_id)
                        .join(super::copy::BIND_NAME)
                }
            };
            let ro = if b.readonly { ":ro" } else { "" };
            flags.push("-v".into());
            flags.push(format!("{}:{}{ro}", source.display(), b.target));
        }
        Ok((flags, dirs))
    }
}

/// Plans a step's mounts. `from` resolves a `from=` name to the stage or
/// image; `hash` gives a context file's content hash (the memo).
pub fn plan(
    store: &Store,
    context: &BuildContext,
    st: &StageState,
    mounts: &[Mount],
    from: &mut dyn FnMut(&str) -> anyhow::Result<StageState>,
    hash: &mut dyn FnMut(&Path, &std::fs::Metadata) -> std::io::Result<String>,
) -> anyhow::Result<Planned> {
    let env = st.expand_env();
    let mut p = Planned::default();
    for m in mounts {
        let target = words::expand(&m.target, &env)?;
        let target = den_build::ignore::clean(&super::copy::absolute(&st.workdir(), &target));
        if target.contains([',', ':']) || target == "/" {
            bail!(
                "--mount target {target}: den cannot mount on / or on a path with a comma or colon"
            );
        }
        p.targets.push(target.clone());
        match m.kind {
            MountKind::Tmpfs => {
                let size = m
                    .size
                    .map(|s| format!(",tmpfs-size={s}"))
                    .unwrap_or_default();
                p.flags.push("--mount".into());
                p.flags.push(format!("type=tmpfs,target={target}{size}"));
                p.key.push_str(&format!("tmpfs:{target}:{size}\0"));
            }
            MountKind::Bind => bind(context, &env, m, target, from, hash, &mut p)?,
            MountKind::Cache => {
                if m.uid.is_some_and(|u| u != 0) || m.gid.is_some_and(|g| g != 0) {
                    bail!(
                        "--mount=type=cache with uid=/gid= other than 0 is not supported by den build yet: chown the directory in the step"
                    );
                }
                let id = match &m.id {
                    Some(id) => words::expand(id, &env)?,
                    None => target.clone(),
                };
                let dir = cache_dir(store, &id, m.mode)?;
                p.flags.push("-v".into());
                let ro = if m.readonly { ":ro" } else { "" };
                p.flags.push(format!("{}:{target}{ro}", dir.display()));
                p.key.push_str(&format!("cache:{target}:{id}:{ro}\0"));
                p.cache_dirs.push((dir, m.sharing != Sharing::Shared));
            }
        }
    }
    Ok(p)
}

/// Plans a `type=bind` mount (see the module doc).
fn bind(
    context: &BuildContext,
    env: &std::collections::BTreeMap<String, String>,
    m: &Mount,
    target: String,
    from: &mut dyn FnMut(&str) -> anyhow::Result<StageState>,
    hash: &mut dyn FnMut(&Path, &std::fs::Metadata) -> std::io::Result<String>,
    p: &mut Planned,
) -> anyhow::Result<()> {
    let source = match &m.source {
        Some(s) => words::expand(s, env)?,
        None => "/".into(),
    };
    let rw = if m.readonly { "ro" } else { "rw" };
    let source = match &m.from {
        Some(name) => {
            if !m.readonly {
                bail!(
                    "RUN --mount=type=bind,from={name},rw is not supported by den build yet: bind it read-only and copy what the step changes"
                );
            }
            let state = from(name)?;
            p.key
                .push_str(&format!("bind:{target}:from:{}:{source}:{rw}\0", state.key));
            BindSource::From {
                state,
                path: source,
            }
        }
        None => {
            let (dir, entries) = context.bind_entries(&source).map_err(|e| match e {
                ContextError::Missing(s) => anyhow::anyhow!(
                    "RUN --mount=type=bind,source={s}: no such file or directory in the build context (or excluded by .dockerignore)"
                ),
                ContextError::Outside(s) => anyhow::anyhow!(
                    "RUN --mount=type=bind,source={s}: the source is outside the build context; copy it into the context first"
                ),
                other => other.into(),
            })?;
            let content = content_key(&entries, hash)?;
            p.key
                .push_str(&format!("bind:{target}:context:{dir}:{content}:{rw}\0"));
            BindSource::Context { entries, dir }
        }
    };
    p.binds.push(Bind {
        target,
        readonly: m.readonly,
        source,
    });
    Ok(())
}

/// Copies context entries to `to` (a directory when `dir`, else the one
/// file). Entry destinations are names read from the context's
/// directories, so they stay beneath `to`; symlinks are copied as links.
fn copy_entries(entries: &[Entry], dir: bool, to: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if dir {
        fs_err::create_dir(to)?;
        fs_err::set_permissions(to, std::fs::Permissions::from_mode(0o755))?;
    }
    for e in entries {
        let dest = if e.dest.is_empty() {
            to.to_path_buf()
        } else {
            to.join(&e.dest)
        };
        let meta = fs_err::symlink_metadata(&e.source)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            fs_err::create_dir(&dest)?;
            fs_err::set_permissions(&dest, meta.permissions())?;
        } else if ft.is_symlink() {
            fs_err::os::unix::fs::symlink(fs_err::read_link(&e.source)?, &dest)?;
        } else if ft.is_file() {
            fs_err::copy(&e.source, &dest)
                .with_context(|| format!("binding {}", e.source.display()))?;
        }
    }
    Ok(())
}

/// `ROOT/build-mounts/cache/<sha256 of id>`, made mode `mode=` (0700 by
/// default) if new; its parents are den's private 0700 directories, so a
/// wider `mode=` only matters inside the step.
fn cache_dir(store: &Store, id: &str, mode: Option<u32>) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let base = store.root().join("build-mounts").join("cache");
    crate::private::private_dir(&store.root().join("build-mounts"))?;
    crate::private::private_dir(&base)?;
    let dir = base.join(Digest::of(id.as_bytes()).hex());
    // mkdir is the atomic step: a concurrent build either makes it or
    // finds it.
    match std::fs::DirBuilder::new().create(&dir) {
        Ok(()) => {
            let mode = mode.unwrap_or(crate::private::DIR_MODE) & 0o7777;
            fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(mode))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot create {}", dir.display())));
        }
    }
    Ok(dir)
}
