//! Container logs: what the container writes to stdout and stderr, kept by
//! its supervisor in `ctr.log`, in the format of its log driver
//! (`--log-driver`, [`LogConfig`]):
//!
//! ```text
//! json-file  {"log":"hello\n","stream":"stdout","time":"2026-11-29T10:19:56.123456789Z"}
//! k8s-file   2026-11-29T10:19:56.123456789Z stdout F hello      (P: a partial line)
//! ```
//!
//! `none` keeps nothing (the output is still shown to an attached client);
//! `passthrough` gives the container den's own stdout and stderr, so
//! nothing passes the supervisor (an attached, non-terminal run only: the
//! cli refuses it otherwise). When `ctr.log` would pass `max-size`, it is
//! rotated: `ctr.log.1` becomes `ctr.log.2` and so on, the oldest beyond
//! `max-file` files is deleted (with `max-file=1`, `ctr.log` starts over).
//! [`read_all`] reads both formats, line by line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Default size at which `ctr.log` is rotated.
pub const MAX_LOG: u64 = 10 << 20;
/// Default number of log files kept (`ctr.log` and `ctr.log.1`).
pub const MAX_FILES: u32 = 2;
/// Most log files `--log-opt max-file` may keep.
pub const MAX_FILES_LIMIT: u32 = 100;

/// `--log-driver`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Driver {
    #[default]
    JsonFile,
    K8sFile,
    None,
    Passthrough,
}

impl Driver {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "json-file" => Some(Self::JsonFile),
            "k8s-file" => Some(Self::K8sFile),
            "none" => Some(Self::None),
            "passthrough" => Some(Self::Passthrough),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::JsonFile => "json-file",
            Self::K8sFile => "k8s-file",
            Self::None => "none",
            Self::Passthrough => "passthrough",
        }
    }

    /// Whether the driver writes `ctr.log`.
    pub fn keeps_logs(self) -> bool {
        matches!(self, Self::JsonFile | Self::K8sFile)
    }
}

/// `--log-driver` and `--log-opt`, as the cli checked them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    pub driver: Driver,
    /// Bytes at which `ctr.log` is rotated.
    pub max_size: u64,
    /// Files kept, `ctr.log` included (1..=[`MAX_FILES_LIMIT`]).
    pub max_file: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            driver: Driver::JsonFile,
            max_size: MAX_LOG,
            max_file: MAX_FILES,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join("ctr.log")
}

/// Appends entries, splitting at newlines, rotating by size. `ctr.log` is
/// made at the first entry: a container that prints nothing has none.
pub struct LogWriter {
    path: PathBuf,
    /// Opened (and made) at the first entry.
    file: Option<File>,
    size: u64,
    max: u64,
    files: u32,
    k8s: bool,
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
    /// The writer `config` asks for; `None` for a driver that keeps no log.
    pub fn open(dir: &Path, config: &LogConfig) -> std::io::Result<Option<Self>> {
        if !config.driver.keeps_logs() {
            return Ok(None);
        }
        Ok(Some(Self {
            path: path(dir),
            file: None,
            size: 0,
            max: config.max_size.max(1),
            files: config.max_file.clamp(1, MAX_FILES_LIMIT),
            k8s: config.driver == Driver::K8sFile,
            pending: [Vec::new(), Vec::new()],
        }))
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
        let text = if self.k8s {
            k8s_line(&entry)
        } else {
            let mut text = serde_json::to_vec(&entry).expect("log entry serializes");
            text.push(b'\n');
            text
        };
        let file = match self.file.take() {
            Some(f) => f,
            None => {
                // Appended to: what an earlier run of the container wrote stays.
                let f = open_private(&self.path)?;
                self.size = f.metadata()?.len();
                f
            }
        };
        self.file = Some(file);
        if self.size + text.len() as u64 > self.max && self.size > 0 {
            self.rotate()?;
        }
        self.file
            .as_mut()
            .expect("opened just above")
            .write_all(&text)?;
        self.size += text.len() as u64;
        Ok(())
    }

    /// `ctr.log.N-1` goes, each older file moves up one, `ctr.log`
    /// becomes `ctr.log.1`; with one file, `ctr.log` starts over.
    fn rotate(&mut self) -> std::io::Result<()> {
        if self.files > 1 {
            let old = |n: u32| rotated(&self.path, n);
            match std::fs::remove_file(old(self.files - 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            for n in (1..self.files - 1).rev() {
                match std::fs::rename(old(n), old(n + 1)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&self.path, old(1))?;
        } else {
            std::fs::remove_file(&self.path)?;
        }
        self.file = Some(open_private(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    path.with_extension(format!("log.{n}"))
}

/// `TIME STREAM F|P TEXT`: the text without its newline, `P` when the line
/// was cut before one.
fn k8s_line(e: &Entry) -> Vec<u8> {
    let (text, tag) = match e.log.strip_suffix('\n') {
        Some(t) => (t, 'F'),
        None => (e.log.as_str(), 'P'),
    };
    format!("{} {} {tag} {text}\n", e.time, e.stream).into_bytes()
}

fn parse_k8s(line: &str) -> Option<Entry> {
    let mut parts = line.splitn(4, ' ');
    let (time, stream, tag) = (parts.next()?, parts.next()?, parts.next()?);
    let text = parts.next().unwrap_or("");
    let log = match tag {
        "F" => format!("{text}\n"),
        "P" => text.to_string(),
        _ => return None,
    };
    Some(Entry {
        log,
        stream: stream.to_string(),
        time: time.to_string(),
    })
}

/// All entries kept for a container, oldest first, in either format.
pub fn read_all(dir: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let base = path(dir);
    let mut files: Vec<PathBuf> = (1..MAX_FILES_LIMIT)
        .map(|n| rotated(&base, n))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files.push(base);
    for p in files {
        if let Ok(text) = std::fs::read_to_string(&p) {
            out.extend(
                text.lines()
                    .filter_map(|l| serde_json::from_str(l).ok().or_else(|| parse_k8s(l))),
            );
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
        let config = LogConfig {
            max_size: 300,
            ..LogConfig::default()
        };
        let mut w = LogWriter::open(dir.path(), &config).unwrap().unwrap();
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

    #[test]
    fn the_log_is_made_at_the_first_entry_and_appended_to_later() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig::default();
        let mut w = LogWriter::open(dir.path(), &config).unwrap().unwrap();
        w.flush_pending().unwrap();
        assert!(!path(dir.path()).exists(), "no output, no log");
        w.write(0, b"one\n").unwrap();
        drop(w);
        let mut again = LogWriter::open(dir.path(), &config).unwrap().unwrap();
        again.write(1, b"two\n").unwrap();
        let got: Vec<String> = read_all(dir.path()).into_iter().map(|e| e.log).collect();
        assert_eq!(got, ["one\n", "two\n"]);
    }

    #[test]
    fn k8s_file_format_and_rotation_keeps_max_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            driver: Driver::K8sFile,
            max_size: 200,
            max_file: 3,
        };
        let mut w = LogWriter::open(dir.path(), &config).unwrap().unwrap();
        w.write(1, b"oops\n").unwrap();
        w.write(0, b"cut").unwrap();
        w.flush_pending().unwrap();
        let text = std::fs::read_to_string(path(dir.path())).unwrap();
        let first = text.lines().next().unwrap();
        assert!(first.ends_with(" stderr F oops"), "{first}");
        assert!(text.lines().nth(1).unwrap().ends_with(" stdout P cut"));
        let got: Vec<String> = read_all(dir.path()).into_iter().map(|e| e.log).collect();
        assert_eq!(got, ["oops\n", "cut"]);
        for i in 0..60 {
            w.write(0, format!("line {i}\n").as_bytes()).unwrap();
        }
        assert!(dir.path().join("ctr.log.2").exists());
        assert!(!dir.path().join("ctr.log.3").exists(), "max-file 3");
        let all = read_all(dir.path());
        assert_eq!(all.last().unwrap().log, "line 59\n");
        let nums: Vec<u32> = all
            .iter()
            .filter_map(|e| e.log.strip_prefix("line ")?.trim().parse().ok())
            .collect();
        assert!(
            nums.windows(2).all(|w| w[1] == w[0] + 1),
            "in order: {nums:?}"
        );
    }

    #[test]
    fn one_file_starts_over_and_none_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            max_size: 100,
            max_file: 1,
            ..LogConfig::default()
        };
        let mut w = LogWriter::open(dir.path(), &config).unwrap().unwrap();
        for i in 0..10 {
            w.write(0, format!("line {i}\n").as_bytes()).unwrap();
        }
        assert!(!dir.path().join("ctr.log.1").exists());
        assert!(std::fs::metadata(path(dir.path())).unwrap().len() <= 100);
        let none = LogConfig {
            driver: Driver::None,
            ..LogConfig::default()
        };
        let other = tempfile::tempdir().unwrap();
        assert!(LogWriter::open(other.path(), &none).unwrap().is_none());
        assert!(!path(other.path()).exists());
    }
}
