//! Which context files a `COPY`/`ADD` takes and where they land.
//!
//! A source is resolved beneath the context: `..` that leaves it and
//! symlinks that lead out are refused; `.dockerignore`d paths do not exist
//! for the build. Directories are walked without following symlinks.

use std::path::{Path, PathBuf};

use crate::ignore::{Matcher, clean};
use crate::layer::Entry;

/// A source that cannot be copied.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// `..` or a symlink leads out of the context.
    #[error("COPY source {0} is outside the build context; copy the file into the context first")]
    Outside(String),
    /// Nothing there (or it is ignored).
    #[error(
        "COPY source {0}: no such file or directory in the build context (or excluded by .dockerignore)"
    )]
    Missing(String),
    /// Reading the context failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ContextError + 'a {
    move |source| ContextError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The build context: its directory and its `.dockerignore`.
pub struct Context {
    root: PathBuf,
    ignore: Option<Matcher>,
}

/// Owners and mode a `COPY` gives what it writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ownership {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// `--chmod`.
    pub mode: Option<u32>,
}

impl Context {
    /// The context at `root` (made absolute and canonical).
    pub fn new(root: &Path, ignore: Option<Matcher>) -> Result<Self, ContextError> {
        let root = std::fs::canonicalize(root).map_err(io_err("open context", root))?;
        Ok(Context { root, ignore })
    }

    /// The context directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn ignored(&self, rel: &str) -> bool {
        self.ignore.as_ref().is_some_and(|m| m.matches(rel))
    }

    /// The entries `COPY sources… dest` writes; `dest` is absolute in the
    /// image, `dest_is_dir` when it ends in `/` or there are several
    /// sources or globs. Parent directories come first.
    pub fn entries(
        &self,
        sources: &[String],
        dest: &str,
        dest_is_dir: bool,
        own: Ownership,
    ) -> Result<Vec<Entry>, ContextError> {
        let dest = dest
            .trim_start_matches('/')
            .trim_end_matches('/')
            .to_owned();
        let mut out = Vec::new();
        for src in sources {
            let matched = self.resolve(src)?;
            let many = matched.len() > 1 || has_glob(src);
            for (rel, path) in matched {
                let meta = std::fs::metadata(&path).map_err(io_err("stat", &path))?;
                let base = if meta.is_dir() {
                    dest.clone()
                } else if dest_is_dir || many {
                    join(&dest, rel.rsplit('/').next().unwrap_or(&rel))
                } else {
                    dest.clone()
                };
                if meta.is_dir() {
                    self.walk(&path, &rel, &base, own, &mut out)?;
                } else {
                    out.push(entry(path, base, own));
                }
            }
        }
        Ok(out)
    }

    /// A `RUN --mount=type=bind,source=SRC` from the context: whether the
    /// source is a directory, and its entries (destinations relative to
    /// the bind's root, `""` for a lone file). No globs; `..` and symlinks
    /// leading out are refused as for COPY, `.dockerignore`d files left out.
    pub fn bind_entries(&self, src: &str) -> Result<(bool, Vec<Entry>), ContextError> {
        if has_glob(src) {
            return Err(ContextError::Missing(src.to_owned()));
        }
        let [(_, path)] = &self.resolve(src)?[..] else {
            return Err(ContextError::Missing(src.to_owned()));
        };
        let dir = std::fs::metadata(path)
            .map_err(io_err("stat", path))?
            .is_dir();
        let entries = self.entries(&[src.to_owned()], "", false, Ownership::default())?;
        Ok((dir, entries))
    }

    /// `(relative path, host path)` for a source: the glob's matches, or
    /// the one path, checked to stay inside the context.
    fn resolve(&self, src: &str) -> Result<Vec<(String, PathBuf)>, ContextError> {
        let rel = clean(src.trim_start_matches('/'));
        if rel == ".." || rel.starts_with("../") {
            return Err(ContextError::Outside(src.to_owned()));
        }
        if has_glob(&rel) {
            let m = Matcher::new(&[rel.as_str()]).map_err(|e| ContextError::Io {
                op: "match",
                path: PathBuf::from(src),
                source: std::io::Error::other(e),
            })?;
            let mut found = Vec::new();
            self.glob(&self.root.clone(), "", &m, &mut found)?;
            if found.is_empty() {
                return Err(ContextError::Missing(src.to_owned()));
            }
            return Ok(found);
        }
        let path = if rel == "." {
            self.root.clone()
        } else {
            self.root.join(&rel)
        };
        if rel != "." && self.ignored(&rel) {
            return Err(ContextError::Missing(src.to_owned()));
        }
        let real = match std::fs::canonicalize(&path) {
            Ok(r) => r,
            Err(_) if std::fs::symlink_metadata(&path).is_ok() => {
                return Err(ContextError::Outside(src.to_owned()));
            }
            Err(_) => return Err(ContextError::Missing(src.to_owned())),
        };
        if !real.starts_with(&self.root) {
            return Err(ContextError::Outside(src.to_owned()));
        }
        Ok(vec![(rel, real)])
    }

    fn glob(
        &self,
        dir: &Path,
        rel: &str,
        m: &Matcher,
        found: &mut Vec<(String, PathBuf)>,
    ) -> Result<(), ContextError> {
        for (name, path) in sorted_dir(dir)? {
            let r = join(rel, &name);
            if self.ignored(&r) {
                continue;
            }
            if m.matches_exact(&r) {
                let real = std::fs::canonicalize(&path).map_err(io_err("resolve", &path))?;
                if !real.starts_with(&self.root) {
                    return Err(ContextError::Outside(r));
                }
                found.push((r, real));
            } else if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                self.glob(&path, &r, m, found)?;
            }
        }
        Ok(())
    }

    fn walk(
        &self,
        dir: &Path,
        rel: &str,
        dest: &str,
        own: Ownership,
        out: &mut Vec<Entry>,
    ) -> Result<(), ContextError> {
        if !dest.is_empty() {
            let mut e = entry(dir.to_path_buf(), dest.to_owned(), own);
            e.mode = own.mode.map(|_| 0o755).or(e.mode);
            out.push(e);
        }
        for (name, path) in sorted_dir(dir)? {
            let r = if rel == "." {
                name.clone()
            } else {
                join(rel, &name)
            };
            if self.ignored(&r) {
                continue;
            }
            let d = join(dest, &name);
            let meta = std::fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
            if meta.is_dir() {
                self.walk(&path, &r, &d, own, out)?;
            } else {
                out.push(entry(path, d, own));
            }
        }
        Ok(())
    }
}

fn entry(source: PathBuf, dest: String, own: Ownership) -> Entry {
    Entry {
        source,
        dest,
        uid: own.uid,
        gid: own.gid,
        mode: own.mode,
    }
}

fn sorted_dir(dir: &Path) -> Result<Vec<(String, PathBuf)>, ContextError> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map_err(io_err("read", dir))?
        .map(|e| e.map(|e| (e.file_name().to_string_lossy().into_owned(), e.path())))
        .collect::<Result<_, _>>()
        .map_err(io_err("read", dir))?;
    v.sort();
    Ok(v)
}

fn join(a: &str, b: &str) -> String {
    match a {
        "" | "." => b.to_owned(),
        _ => format!("{a}/{b}"),
    }
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The parent directories of `dest` (relative, outermost first).
pub fn parents(dest: &str) -> Vec<String> {
    let parts: Vec<&str> = dest
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    (1..parts.len()).map(|k| parts[..k].join("/")).collect()
}

/// The cache key part of what a `COPY` writes: for each entry its
/// destination, owner, mode, type and link target or the SHA-256 of its
/// bytes. Modification times are left out, so a fresh checkout still hits.
/// `hash` gives a regular file's SHA-256 (hex): [`hash_file`], or a memo
/// of it keyed by what `stat` says.
pub fn content_key(
    entries: &[Entry],
    hash: &mut dyn FnMut(&Path, &std::fs::Metadata) -> std::io::Result<String>,
) -> Result<String, ContextError> {
    use sha2::{Digest as _, Sha256};
    use std::os::unix::fs::MetadataExt;
    let mut all = Sha256::new();
    for e in entries {
        let meta = std::fs::symlink_metadata(&e.source).map_err(io_err("stat", &e.source))?;
        let mode = e.mode.unwrap_or(meta.mode() & 0o7777);
        let ft = meta.file_type();
        let what = if ft.is_symlink() {
            let t = std::fs::read_link(&e.source).map_err(io_err("readlink", &e.source))?;
            format!("link:{}", t.display())
        } else if ft.is_file() {
            format!(
                "file:{}",
                hash(&e.source, &meta).map_err(io_err("read", &e.source))?
            )
        } else {
            format!("dir-or-other:{}", ft.is_dir())
        };
        let line = format!("{}\0{}\0{}\0{mode:o}\0{what}\n", e.dest, e.uid, e.gid);
        all.update(line.as_bytes());
    }
    Ok(hex::encode(all.finalize()))
}

/// The SHA-256 (hex) of a file's bytes.
pub fn hash_file(path: &Path, _meta: &std::fs::Metadata) -> std::io::Result<String> {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}
