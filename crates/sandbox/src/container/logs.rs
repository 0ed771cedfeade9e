//! Container logs: what the container writes to stdout and stderr, kept by
//! its supervisor as JSON lines (Docker's json-file format) in `ctr.log`,
//! rotated to `ctr.log.1` when it passes a size limit.
//!
//! ```text
//! {"log":"hello\n","stream":"stdout","time":"2026-11-29T10:19:56.123456789Z"}
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Default size at which `ctr.log` is rotated.
pub const MAX_LOG: u64 = 10 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join("ctr.log")
}

/// Appends entries, splitting at newlines, rotating by size.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max: u64,
    /// Bytes of a line not yet ended, per stream (0 stdout, 1 stderr).
    pending: [Vec<u8>; 2],
}

/// The log holds what the container printed: only its owner reads it.
fn open_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    if let Some(dir) = path.parent() {
        super::state::owned_like_dir(&file, dir);
    }
    Ok(file)
}

impl LogWriter {
    pub fn open(dir: &Path, max: u64) -> std::io::Result<Self> {
        let path = path(dir);
        let file = open_private(&path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path,
            file,
            size,
            max,
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// Records `bytes` read from stream 0 (stdout) or 1 (stderr).
    pub fn write(&mut self, stream: usize, bytes: &[u8]) -> std::io::Result<()> {
        self.pending[stream].extend_from_slice(bytes);
        while let Some(end) = self.pending[stream].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending[stream].drain(..=end).collect();
            self.append(stream, &line)?;
        }
        // A very long line without a newline is cut, like Docker does at 16 KiB.
        if self.pending[stream].len() >= 16 << 10 {
            let line = std::mem::take(&mut self.pending[stream]);
            self.append(stream, &line)?;
        }
        Ok(())
    }

    /// Writes out partial lines (at exit).
    pub fn flush_pending(&mut self) -> std::io::Result<()> {
        for stream in 0..2 {
            if !self.pending[stream].is_empty() {
                let line = std::mem::take(&mut self.pending[stream]);
                self.append(stream, &line)?;
            }
        }
        Ok(())
    }

    fn append(&mut self, stream: usize, line: &[u8]) -> std::io::Result<()> {
        let entry = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: ["stdout", "stderr"][stream].into(),
            time: super::state::now_rfc3339(),
        };
        let mut text = serde_json::to_vec(&entry).expect("log entry serializes");
        text.push(b'\n');
        if self.size + text.len() as u64 > self.max && self.size > 0 {
            self.rotate()?;
        }
        self.file.write_all(&text)?;
        self.size += text.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        std::fs::rename(&self.path, self.path.with_extension("log.1"))?;
        self.file = open_private(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// All entries kept for a container, oldest first.
pub fn read_all(dir: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    for p in [path(dir).with_extension("log.1"), path(dir)] {
        if let Ok(text) = std::fs::read_to_string(&p) {
            out.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_streams_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(dir.path(), 300).unwrap();
        w.write(0, b"hel").unwrap();
        w.write(1, b"oops\n").unwrap();
        w.write(0, b"lo\nworld\npart").unwrap();
        w.flush_pending().unwrap();
        let got: Vec<(String, String)> = read_all(dir.path())
            .into_iter()
            .map(|e| (e.stream, e.log))
            .collect();
        let want = [
            ("stderr", "oops\n"),
            ("stdout", "hello\n"),
            ("stdout", "world\n"),
            ("stdout", "part"),
        ];
        assert_eq!(got, want.map(|(a, b)| (a.to_string(), b.to_string())));
        for i in 0..20 {
            w.write(0, format!("line {i}\n").as_bytes()).unwrap();
        }
        assert!(dir.path().join("ctr.log.1").exists(), "rotated");
        assert!(std::fs::metadata(dir.path().join("ctr.log")).unwrap().len() <= 300);
        let all = read_all(dir.path());
        assert_eq!(all.last().unwrap().log, "line 19\n");
    }
}
