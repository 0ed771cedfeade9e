//! Writing a new layer as an uncompressed OCI tar, hashed while written
//! (the hash is the layer's diff id, and its blob digest: den stores built
//! layers uncompressed).
//!
//! Two sources: files a `COPY`/`ADD` takes from the context ([`Entry`],
//! written with the owners and modes the instruction asks for), and an
//! overlay upper directory after a `RUN` ([`write_upper`]), whose whiteouts
//! (0:0 character devices) and opaque directories (`*.overlay.opaque`
//! xattrs) become OCI `.wh.` entries. The upper directory holds files owned
//! by subordinate ids: [`write_upper`] runs inside den's user namespace.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// Errors writing a layer; each names the path.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Reading a source or writing the tar failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// A local archive `ADD` extracts holds an entry den will not write.
    #[error("ADD {archive}: entry {entry:?} {why}")]
    Archive {
        /// The archive.
        archive: PathBuf,
        /// The entry's name.
        entry: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> LayerError + 'a {
    move |source| LayerError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A finished layer tar: `sha256:<hex>` of its bytes and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// `sha256:…` of the tar.
    pub digest: String,
    /// Bytes.
    pub size: u64,
}

/// A sink that hashes what passes through it.
pub(crate) struct Hashing<W> {
    inner: W,
    hash: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A layer tar being written to a file.
pub struct LayerWriter {
    pub(crate) tar: tar::Builder<Hashing<BufWriter<File>>>,
    pub(crate) path: PathBuf,
    /// `SOURCE_DATE_EPOCH`: no file time in the layer is later.
    epoch: Option<u64>,
}

/// One file a `COPY` writes: where it comes from on the host and how it
/// lands in the image.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The source on the host (not followed if a symlink).
    pub source: PathBuf,
    /// The path in the image, relative (`app/x.py`).
    pub dest: String,
    /// Owner in the image.
    pub uid: u32,
    /// Group in the image.
    pub gid: u32,
    /// `--chmod`, replacing the source's permission bits.
    pub mode: Option<u32>,
}

impl LayerWriter {
    /// Creates `path` (mode 0600) for a new layer.
    pub fn create(path: &Path) -> Result<Self, LayerError> {
        // std opens every file with O_CLOEXEC.
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err("create", path))?;
        Ok(Self::on_file(file, path))
    }

    /// A layer written to `file`, already open (`path` names it in errors).
    pub fn on_file(file: File, path: &Path) -> Self {
        let sink = Hashing {
            inner: BufWriter::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            size: 0,
        };
        let mut tar = tar::Builder::new(sink);
        tar.mode(tar::HeaderMode::Complete);
        tar.follow_symlinks(false);
        LayerWriter {
            tar,
            path: path.to_path_buf(),
            epoch: None,
        }
    }

    /// Clamps every file time written from now on to `epoch` (seconds),
    /// as BuildKit does with `SOURCE_DATE_EPOCH`.
    pub fn clamp_times(&mut self, epoch: Option<u64>) {
        self.epoch = epoch;
    }

    pub(crate) fn time(&self, mtime: u64) -> u64 {
        self.epoch.map_or(mtime, |e| mtime.min(e))
    }

    /// A regular file `dest` with `data` (a `COPY <<EOF` here-document).
    pub fn data(
        &mut self,
        dest: &str,
        own: (u32, u32, u32),
        mtime: u64,
        data: &[u8],
    ) -> Result<(), LayerError> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_uid(own.0.into());
        h.set_gid(own.1.into());
        h.set_mode(own.2);
        h.set_mtime(self.time(mtime));
        h.set_size(data.len() as u64);
        self.tar
            .append_data(&mut h, dest, data)
            .map_err(io_err("write", &self.path))
    }

    /// A directory entry `dest` (for parents and `WORKDIR`).
    pub fn dir(&mut self, dest: &str, uid: u32, gid: u32, mode: u32) -> Result<(), LayerError> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_uid(uid.into());
        h.set_gid(gid.into());
        h.set_mtime(0);
        h.set_size(0);
        let name = format!("{}/", dest.trim_end_matches('/'));
        self.tar
            .append_data(&mut h, &name, io::empty())
            .map_err(io_err("write", &self.path))
    }

    /// Appends a context file, directory or symlink as `e.dest`.
    pub fn append(&mut self, e: &Entry) -> Result<(), LayerError> {
        let meta = std::fs::symlink_metadata(&e.source).map_err(io_err("stat", &e.source))?;
        let mut h = tar::Header::new_gnu();
        h.set_uid(e.uid.into());
        h.set_gid(e.gid.into());
        h.set_mtime(self.time(meta.mtime().max(0) as u64));
        h.set_mode(e.mode.unwrap_or(meta.mode() & 0o7777));
        let ft = meta.file_type();
        if ft.is_dir() {
            return self.dir_with(&mut h, &e.dest);
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(&e.source).map_err(io_err("readlink", &e.source))?;
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            return self
                .tar
                .append_link(&mut h, &e.dest, &target)
                .map_err(io_err("write", &self.path));
        }
        if !ft.is_file() {
            // Sockets, fifos and devices in a context are not copied (Docker
            // refuses devices too).
            return Ok(());
        }
        let file = File::open(&e.source).map_err(io_err("open", &e.source))?;
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(meta.len());
        self.tar
            .append_data(&mut h, &e.dest, file)
            .map_err(io_err("read", &e.source))
    }

    fn dir_with(&mut self, h: &mut tar::Header, dest: &str) -> Result<(), LayerError> {
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        let name = format!("{}/", dest.trim_end_matches('/'));
        self.tar
            .append_data(h, &name, io::empty())
            .map_err(io_err("write", &self.path))
    }

    /// Ends the archive; the digest and size of what was written.
    pub fn finish(self) -> Result<Written, LayerError> {
        let path = self.path.clone();
        let mut sink = self.tar.into_inner().map_err(io_err("write", &path))?;
        sink.flush().map_err(io_err("write", &path))?;
        Ok(Written {
            digest: format!("sha256:{}", hex::encode(sink.hash.finalize())),
            size: sink.size,
        })
    }

    /// Walks an overlay upper directory into this layer (see the module
    /// doc). `mount_points` are the RUN step's mount targets (absolute):
    /// an empty file or directory there is the mount point den made, not
    /// part of the layer (BuildKit leaves them out too).
    pub fn append_upper(
        &mut self,
        upper: &Path,
        mount_points: &[String],
    ) -> Result<(), LayerError> {
        let stubs: Vec<&str> = mount_points
            .iter()
            .map(|m| m.trim_matches('/'))
            .chain(MOUNT_POINTS.iter().copied())
            .collect();
        self.walk_upper(upper, "", &stubs)
    }

    fn walk_upper(&mut self, dir: &Path, rel: &str, stubs: &[&str]) -> Result<(), LayerError> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .map_err(io_err("read", dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_err("read", dir))?;
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let dest = format!("{rel}{}", name.to_string_lossy());
            let meta = std::fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
            let ft = meta.file_type();
            if stubs.contains(&dest.as_str()) && is_empty(&path, &meta) {
                continue;
            }
            if ft.is_char_device() && meta.rdev() == 0 {
                let wh = format!("{rel}.wh.{}", name.to_string_lossy());
                self.dir_or_marker(&wh)?;
                continue;
            }
            self.append(&Entry {
                source: path.clone(),
                dest: dest.clone(),
                uid: meta.uid(),
                gid: meta.gid(),
                mode: None,
            })?;
            if ft.is_dir() {
                if is_opaque(&path) {
                    self.dir_or_marker(&format!("{dest}/.wh..wh..opq"))?;
                }
                self.walk_upper(&path, &format!("{dest}/"), stubs)?;
            }
        }
        Ok(())
    }

    /// An empty regular file: a whiteout marker.
    fn dir_or_marker(&mut self, name: &str) -> Result<(), LayerError> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(0);
        h.set_mtime(0);
        self.tar
            .append_data(&mut h, name, io::empty())
            .map_err(io_err("write", &self.path))
    }
}

/// Files the RUN container had bind-mounted (den makes empty mount points
/// for them when the image lacks them): not part of the layer, as in Docker.
const MOUNT_POINTS: &[&str] = &["etc/hosts", "etc/hostname", "etc/resolv.conf"];

/// An empty regular file or an empty directory (without opaque mark).
fn is_empty(path: &Path, meta: &std::fs::Metadata) -> bool {
    let ft = meta.file_type();
    (ft.is_file() && meta.len() == 0)
        || (ft.is_dir()
            && !is_opaque(path)
            && std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none()))
}

/// Whether overlayfs marked `dir` opaque (it hides the lower layers' content).
fn is_opaque(dir: &Path) -> bool {
    ["user.overlay.opaque", "trusted.overlay.opaque"]
        .iter()
        .any(|attr| matches!(xattr::get(dir, attr), Ok(Some(v)) if v == b"y"))
}
