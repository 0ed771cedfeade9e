//! A fake registry for tests that need a registry to misbehave: the python3
//! script `fake_registry.py` serves one scenario on two loopback servers, A
//! (`127.0.0.1`, the registry) and B (`127.0.0.2`, "another host": a token
//! realm or an upload location), and logs every request it gets.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = include_str!("fake_registry.py");

pub struct FakeRegistry {
    child: Child,
    _dir: tempfile::TempDir,
    log: PathBuf,
    /// `127.0.0.1:PORT`, the registry.
    pub a: String,
    /// `127.0.0.2:PORT`, the other host.
    pub b: String,
}

impl FakeRegistry {
    /// Starts `scenario` (`bigblob`, `bigmanifest`, `realm`, `push`: see the script).
    pub fn start(scenario: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("requests.log");
        let mut child = Command::new("python3")
            .args(["-c", SCRIPT, scenario])
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the fake registry's ports");
        let ports: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(ports.len(), 2, "fake registry said: {line:?}");
        Self {
            a: format!("127.0.0.1:{}", ports[0]),
            b: format!("127.0.0.2:{}", ports[1]),
            child,
            _dir: dir,
            log,
        }
    }

    /// The one image every scenario serves (or takes, for `push`).
    pub fn image(&self) -> String {
        format!("{}/t/img:1", self.a)
    }

    /// The requests so far, one JSON object each.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("log line is JSON"))
            .collect()
    }

    /// Waits (up to 10 s) for a log line that `pred` accepts.
    pub fn wait_for(&self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let start = Instant::now();
        loop {
            if let Some(r) = self.requests().into_iter().find(|r| pred(r)) {
                return r;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{:?}",
                self.requests()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
