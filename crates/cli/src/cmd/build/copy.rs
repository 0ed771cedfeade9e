//! `COPY`/`ADD` of context files and `WORKDIR`: the files are written
//! straight from the context into a new layer tar, with the owners and
//! modes the instruction gives them.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};
use den_build::archive::Format;
use den_build::context::{Context as BuildContext, Ownership, parents};
use den_build::dockerfile::{Copy, Source};
use den_build::layer::LayerWriter;
use den_build::words;
use den_image::digest::Digest;
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

/// The expanded sources of a COPY/ADD: context paths, and here-documents
/// (file name, content).
pub struct Sources {
    pub paths: Vec<String>,
    pub inline: Vec<(String, String)>,
}

/// The expanded sources and destination of a COPY/ADD.
pub fn expand(
    c: &Copy,
    env: &BTreeMap<String, String>,
    add: bool,
) -> anyhow::Result<(Sources, String)> {
    let mut out = Sources {
        paths: Vec::new(),
        inline: Vec::new(),
    };
    for s in &c.sources {
        match s {
            Source::Path(p) => {
                let p = words::expand(p, env)?;
                if !add && super::fetch::is_url(&p) {
                    bail!("COPY cannot download {p}: use ADD");
                }
                out.paths.push(p);
            }
            Source::Heredoc(h) => {
                if !den_build::script::valid_file_name(&h.name) {
                    bail!(
                        "here-document name {:?} is not a file name: use a plain name such as <<EOF",
                        h.name
                    );
                }
                // Quotes are text in a body; variables expand unless the
                // delimiter was quoted (BuildKit's rule).
                let content = if h.expand {
                    let mut lexer = words::Lexer::new('\\');
                    lexer.skip_quotes = true;
                    lexer.process(&h.content, env)?.word
                } else {
                    h.content.clone()
                };
                out.inline.push((h.name.clone(), content));
            }
        }
    }
    Ok((out, words::expand(&c.dest, env)?))
}

/// What a `COPY` writes: its entries, the destination (absolute), whether
/// it is a directory, and the owners.
pub struct CopyPlan {
    pub entries: Vec<den_build::layer::Entry>,
    /// Here-documents: path in the image (relative) and content.
    pub inline: Vec<(String, String)>,
    /// `--from`: the files come from this stage or image instead.
    pub from: Option<From>,
    pub dest: String,
    pub dest_is_dir: bool,
    pub own: Ownership,
    /// `--chown` was given (else `--from` keeps the source's owners).
    pub chown: bool,
    /// `SOURCE_DATE_EPOCH`.
    pub epoch: Option<u64>,
    /// `ADD` of local archives: extracted at the destination.
    pub archives: Vec<(std::path::PathBuf, Format)>,
    /// `ADD URL`: the downloads, each with its entry.
    pub downloads: Vec<(super::fetch::Fetched, den_build::layer::Entry)>,
}

/// `COPY --from`'s source: a built stage or an image, and the paths.
pub struct From {
    pub state: StageState,
    pub sources: Vec<String>,
}

impl CopyPlan {
    /// The part of the step's cache key this plan gives (content included;
    /// for `--from`, the source's key stands for its content).
    pub fn key(&self, memo: &mut crate::build_cache::HashMemo) -> anyhow::Result<String> {
        let mut content =
            den_build::context::content_key(&self.entries, &mut |p, m| memo.hash(p, m))?;
        for (dest, data) in &self.inline {
            content.push_str(&format!("\0{dest}\0{}", Digest::of(data.as_bytes())));
        }
        if let Some(f) = &self.from {
            content.push_str(&format!("\0from\0{}\0{:?}", f.state.key, f.sources));
        }
        for (path, _) in &self.archives {
            let meta = fs_err::metadata(path)?;
            content.push_str(&format!("\0archive\0{}", memo.hash(path, &meta)?));
        }
        for (f, e) in &self.downloads {
            content.push_str(&format!("\0url\0{}\0{}\0{:?}", f.digest, e.dest, e.mode));
        }
        Ok(format!(
            "{}\0{}\0{}:{}:{:?}:{}\0{content}",
            self.dest, self.dest_is_dir, self.own.uid, self.own.gid, self.own.mode, self.chown
        ))
    }
}

/// Resolves `COPY sources dest` against the context, or against `from`
/// (the stage or image `--from` names, resolved by the builder).
pub fn copy_plan(
    store: &Store,
    context: &BuildContext,
    st: &StageState,
    c: &Copy,
    add: bool,
    from: Option<StageState>,
) -> anyhow::Result<CopyPlan> {
    let env = st.expand_env();
    let (sources, raw_dest) = expand(c, &env, add)?;
    let dest_is_dir = raw_dest.ends_with('/')
        || raw_dest == "."
        || raw_dest.ends_with("/.")
        || sources.paths.len() + sources.inline.len() > 1;
    let dest = den_build::ignore::clean(&absolute(&st.workdir(), &raw_dest));
    let own = ownership(store, st, c)?;
    let mut paths = sources.paths.clone();
    let (mut archives, mut downloads) = (Vec::new(), Vec::new());
    if add && from.is_none() {
        paths.clear();
        for p in &sources.paths {
            if super::fetch::is_url(p) {
                let f = super::fetch::fetch(store, p, c.checksum.as_deref())?;
                let rel = dest.trim_start_matches('/');
                let entry = den_build::layer::Entry {
                    source: f.path.clone(),
                    dest: match dest_is_dir {
                        true if rel.is_empty() => f.name.clone(),
                        true => format!("{rel}/{}", f.name),
                        false => rel.to_owned(),
                    },
                    uid: own.uid,
                    gid: own.gid,
                    mode: Some(own.mode.unwrap_or(0o600)),
                };
                downloads.push((f, entry));
            } else if let Some(a) = local_archive(context, p)? {
                archives.push(a);
            } else {
                paths.push(p.clone());
            }
        }
    }
    if c.checksum.is_some() && downloads.is_empty() {
        bail!("ADD --checksum is only for a URL source");
    }
    let (entries, from) = match from {
        None => (context.entries(&paths, &dest, dest_is_dir, own)?, None),
        Some(state) => (
            Vec::new(),
            Some(From {
                state,
                sources: sources.paths.clone(),
            }),
        ),
    };
    let rel = dest.trim_start_matches('/');
    let inline = sources
        .inline
        .into_iter()
        .map(|(name, data)| match dest_is_dir {
            true if rel.is_empty() => (name, data),
            true => (format!("{rel}/{name}"), data),
            false => (rel.to_owned(), data),
        })
        .collect();
    Ok(CopyPlan {
        entries,
        inline,
        from,
        dest,
        dest_is_dir,
        own,
        chown: c.chown.is_some(),
        epoch: None,
        archives,
        downloads,
    })
}

/// A local `ADD` source that is one tar archive (plain, gzip or zstd; by
/// its first bytes, as Docker tells): its host path and format.
fn local_archive(
    context: &BuildContext,
    src: &str,
) -> anyhow::Result<Option<(std::path::PathBuf, Format)>> {
    let Ok((false, entries)) = context.bind_entries(src) else {
        return Ok(None);
    };
    let [e] = &entries[..] else {
        return Ok(None);
    };
    if !fs_err::metadata(&e.source)?.is_file() {
        return Ok(None);
    }
    Ok(den_build::archive::format_of(&e.source)
        .with_context(|| format!("reading {}", e.source.display()))?
        .map(|f| (e.source.clone(), f)))
}

/// Writes the layer of a planned `COPY`.
pub fn copy_layer(ctx: &Context, store: &Store, plan: &CopyPlan) -> anyhow::Result<LayerRecord> {
    let tar = commit::tmp_tar(store);
    let written = match &plan.from {
        None => (|| {
            let mut w = LayerWriter::create(&tar)?;
            write_entries(&mut w, plan, &plan.entries)?;
            Ok::<_, anyhow::Error>(w.finish()?)
        })(),
        Some(f) => from_tar(ctx, store, plan, f, &tar),
    };
    match written {
        Ok(w) => commit::commit_tar(ctx, store, &tar, &w),
        Err(e) => {
            fs_err::remove_file(&tar).ok();
            Err(e)
        }
    }
}

/// The name a `RUN --mount=type=bind,from=…` source has in its layer.
pub const BIND_NAME: &str = "bind";

/// `RUN --mount=type=bind,from=…,source=PATH`: PATH of the stage or image
/// (resolved inside its root, as `COPY --from` resolves it, owners kept)
/// as a layer of the store, at [`BIND_NAME`].
pub fn bind_layer(
    ctx: &Context,
    store: &Store,
    state: &StageState,
    path: &str,
) -> anyhow::Result<LayerRecord> {
    let plan = CopyPlan {
        entries: Vec::new(),
        inline: Vec::new(),
        from: Some(From {
            state: state.clone(),
            sources: vec![path.to_owned()],
        }),
        dest: format!("/{BIND_NAME}"),
        dest_is_dir: false,
        own: Ownership::default(),
        chown: false,
        epoch: None,
        archives: Vec::new(),
        downloads: Vec::new(),
    };
    copy_layer(ctx, store, &plan)
}

/// The parents of the destination, the destination directory, `entries`
/// and the here-documents, into `w`.
fn write_entries(
    w: &mut LayerWriter,
    plan: &CopyPlan,
    entries: &[den_build::layer::Entry],
) -> anyhow::Result<()> {
    let own = plan.own;
    w.clamp_times(plan.epoch);
    let rel = plan.dest.trim_start_matches('/');
    for p in parents(rel) {
        w.dir(&p, 0, 0, 0o755)?;
    }
    if plan.dest_is_dir && !rel.is_empty() {
        w.dir(rel, own.uid, own.gid, 0o755)?;
    }
    for e in entries.iter().chain(plan.downloads.iter().map(|(_, e)| e)) {
        w.append(e)?;
    }
    if !plan.archives.is_empty() && !plan.dest_is_dir && !rel.is_empty() {
        w.dir(rel, own.uid, own.gid, 0o755)?;
    }
    let chown = plan.chown.then_some((own.uid, own.gid));
    for (path, format) in &plan.archives {
        w.append_archive(path, *format, rel, chown)?;
    }
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    for (path, data) in &plan.inline {
        let mode = own.mode.unwrap_or(0o664);
        w.data(path, (own.uid, own.gid, mode), now, data.as_bytes())?;
    }
    Ok(())
}

/// What `den __internal copy-from` is asked to write.
#[derive(serde::Serialize, serde::Deserialize)]
struct FromRequest {
    sources: Vec<String>,
    dest: String,
    dest_is_dir: bool,
    uid: u32,
    gid: u32,
    mode: Option<u32>,
    chown: bool,
    epoch: Option<u64>,
}

/// `COPY --from`: a build container on the source's layers (never run);
/// `den __internal copy-from` mounts its root in a private mount namespace
/// inside the user namespace, so the source's owners and modes read as the
/// image has them, and writes the layer tar.
fn from_tar(
    ctx: &Context,
    store: &Store,
    plan: &CopyPlan,
    f: &From,
    tar: &Path,
) -> anyhow::Result<den_build::layer::Written> {
    let c = super::run_step::BuildContainer::create(
        ctx,
        store,
        &f.state,
        vec!["true".into()],
        "none",
        &[],
    )?;
    let req = FromRequest {
        sources: f.sources.clone(),
        dest: plan.dest.clone(),
        dest_is_dir: plan.dest_is_dir,
        uid: plan.own.uid,
        gid: plan.own.gid,
        mode: plan.own.mode,
        chown: plan.chown,
        epoch: plan.epoch,
    };
    let res = std::process::Command::new(
        std::env::current_exe().context("cannot find den's own binary")?,
    )
    .arg("--root")
    .arg(&ctx.root)
    .args(["__internal", "copy-from", &c.id])
    .arg(serde_json::to_string(&req)?)
    .arg(tar)
    .stdin(std::process::Stdio::null())
    .output();
    c.remove(ctx)?;
    let res = res?;
    if !res.status.success() {
        bail!(
            "{}",
            String::from_utf8_lossy(&res.stderr)
                .trim()
                .trim_start_matches("den: ")
        );
    }
    commit::parse_written(&String::from_utf8_lossy(&res.stdout))
}

/// The inside of `den __internal copy-from`: opens `out`, enters the build
/// container's filesystem (user namespace, private mount namespace,
/// chroot), resolves the sources there and writes the layer.
pub fn copy_from_child(
    ctx: &Context,
    mapping: &den_sandbox::idmap::IdMapping,
    id: &str,
    request: &str,
    out: &str,
) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let req: FromRequest = serde_json::from_str(request)?;
    let containers = crate::containers::Containers::open(&ctx.root)?;
    let spec = den_sandbox::container::spec::ContainerSpec::read(
        &containers.dir_of(id).join("spec.json"),
    )?;
    let out = Path::new(out);
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out)
            .with_context(|| format!("creating {}", out.display()))?
    };
    den_sandbox::container::join::enter_filesystem(&spec, None, mapping)?;
    let own = Ownership {
        uid: req.uid,
        gid: req.gid,
        mode: req.mode,
    };
    // Inside the chroot every path, symlinks included, stays in the source.
    let root = BuildContext::new(Path::new("/"), None)?;
    let mut entries = root
        .entries(&req.sources, &req.dest, req.dest_is_dir, own)
        .map_err(|e| match e {
            den_build::context::ContextError::Missing(s) => anyhow::anyhow!(
                "COPY source {s}: no such file or directory in the --from stage or image"
            ),
            other => other.into(),
        })?;
    if !req.chown {
        for e in &mut entries {
            let meta = fs_err::symlink_metadata(&e.source)?;
            e.uid = meta.uid();
            e.gid = meta.gid();
        }
    }
    let plan = CopyPlan {
        entries: Vec::new(),
        inline: Vec::new(),
        from: None,
        dest: req.dest,
        dest_is_dir: req.dest_is_dir,
        own,
        chown: req.chown,
        epoch: req.epoch,
        archives: Vec::new(),
        downloads: Vec::new(),
    };
    let mut w = LayerWriter::on_file(file, out);
    write_entries(&mut w, &plan, &entries)?;
    let written = w.finish()?;
    println!("{} {}", written.digest, written.size);
    Ok(())
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
