//! Shared helpers for the integration tests.
//!
//! The tests drive the built `den` binary as unprivileged users. `tests/run.sh`
//! (run as root) prepares the machine and exports:
//!
//! | variable | meaning |
//! |---|---|
//! | `DEN_BIN` | the den binary, world-readable |
//! | `DEN_TEST_USER_SUB` | a user with subordinate ids (`den-sub`) |
//! | `DEN_TEST_USER_NOSUB` | a user without subordinate ids (`den-nosub`) |
//! | `DEN_TEST_REGISTRY` | plain HTTP registry, `127.0.0.1:PORT` |
//! | `DEN_TEST_REGISTRY_BASIC` | the same images behind HTTP basic auth |
//! | `DEN_TEST_REGISTRY_TOKEN` | the same images behind Bearer token auth (anonymous pull) |
//! | `DEN_TEST_REGISTRY_CREDS` | `USER:PASSWORD` for the two above |
//! | `DEN_TEST_SHARED` | the shared data dir (images/, real-rootfs/, reference/) |
//! | `DEN_TEST_TMP` | a world-traversable dir for per-test sandboxes |
//!
//! Every registry holds `library/{busybox:latest, debian:bookworm-slim,
//! python:3.11-slim, mariadb:10.11, busybox:1.38.0-musl, busybox:1.38.0-glibc,
//! hello-world:latest}`.
//!
//! ```ignore
//! use den_tests::*;
//!
//! #[test]
//! fn pulls_busybox() {
//!     let env = require_env!();
//!     let sb = env.sandbox_sub();
//!     sb.write_registries_conf(&insecure_conf(&[&env.registry]));
//!     sb.den_ok(&["pull", &env.image("busybox:latest")]);
//! }
//! ```

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// PATH given to den and to [`UserSandbox::sh`].
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Default limit for one [`UserSandbox::den`] / [`UserSandbox::sh`] call; a
/// command still running then is killed and reported as exit code 124.
/// Override with `DEN_TEST_TIMEOUT` (seconds) or [`UserSandbox::set_timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// What `tests/run.sh` prepared. Get it with [`require_env!`] (everything,
/// registries included) or [`require_base_env!`] (binary and users only).
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// The den binary (readable and executable by the test users).
    pub bin: PathBuf,
    /// A user with subordinate ids (`den-sub:100000:65536`).
    pub user_sub: String,
    /// A user without subordinate ids.
    pub user_nosub: String,
    /// Plain HTTP registry `127.0.0.1:PORT`. Empty only in an env from
    /// [`TestEnv::get_base`] when the registries are not running.
    pub registry: String,
    /// Registry with HTTP basic auth (`creds`). Empty like `registry`.
    pub registry_basic: String,
    /// Registry with Bearer token auth (anonymous pull, push with `creds`).
    pub registry_token: String,
    /// `USER:PASSWORD` for `registry_basic` and `registry_token`.
    pub creds: String,
    /// The shared data dir, when present (always under CI).
    pub shared: Option<PathBuf>,
    /// World-traversable base dir for sandboxes.
    pub tmp: PathBuf,
}

fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Outside CI: print why the test is skipped and return None. Under CI: panic.
fn missing(what: &str) -> Option<TestEnv> {
    if is_ci() {
        panic!("{what} is not set under CI=true: tests must run via `sudo bash tests/run.sh`");
    }
    eprintln!("skipping: {what} not set; run tests via `sudo bash tests/run.sh`");
    None
}

impl TestEnv {
    /// Everything, registries included. None (test skipped) when not run via
    /// tests/run.sh or when the registries are not up (no shared data); under
    /// `CI=true` that panics instead.
    pub fn get() -> Option<TestEnv> {
        let env = Self::get_base()?;
        if env.registry.is_empty() || env.registry_basic.is_empty() || env.registry_token.is_empty()
        {
            return missing("DEN_TEST_REGISTRY{,_BASIC,_TOKEN} (registries need ../shared)");
        }
        Some(env)
    }

    /// The binary, the users and the tmp dir; registry fields may be empty and
    /// `shared` None. For tests that need no registry.
    pub fn get_base() -> Option<TestEnv> {
        let mut req = Vec::new();
        for name in [
            "DEN_BIN",
            "DEN_TEST_USER_SUB",
            "DEN_TEST_USER_NOSUB",
            "DEN_TEST_TMP",
        ] {
            match var(name) {
                Some(v) => req.push(v),
                None => return missing(name),
            }
        }
        let [bin, user_sub, user_nosub, tmp]: [String; 4] = req.try_into().unwrap();
        if not_root() {
            return missing("root (tests run den as other users via runuser)");
        }
        Some(TestEnv {
            bin: bin.into(),
            user_sub,
            user_nosub,
            registry: var("DEN_TEST_REGISTRY").unwrap_or_default(),
            registry_basic: var("DEN_TEST_REGISTRY_BASIC").unwrap_or_default(),
            registry_token: var("DEN_TEST_REGISTRY_TOKEN").unwrap_or_default(),
            creds: var("DEN_TEST_REGISTRY_CREDS").unwrap_or_else(|| "den:denpass".into()),
            shared: var("DEN_TEST_SHARED").map(PathBuf::from),
            tmp: tmp.into(),
        })
    }

    /// `REGISTRY/library/NAME` on the plain registry, e.g. `image("busybox:latest")`.
    pub fn image(&self, name: &str) -> String {
        format!("{}/library/{}", self.registry, name)
    }

    /// The user name part of `creds`.
    pub fn creds_user(&self) -> &str {
        self.creds.split_once(':').map_or(&*self.creds, |(u, _)| u)
    }

    /// The password part of `creds`.
    pub fn creds_password(&self) -> &str {
        self.creds.split_once(':').map_or("", |(_, p)| p)
    }

    /// registries.toml text marking all three test registries insecure (plain HTTP).
    pub fn insecure_all(&self) -> String {
        insecure_conf(&[&self.registry, &self.registry_basic, &self.registry_token])
    }

    /// A fresh sandbox (home, config and store) for `user`.
    pub fn sandbox(&self, user: &str) -> UserSandbox {
        UserSandbox::new(self, user)
    }

    /// [`TestEnv::sandbox`] for the user with subordinate ids.
    pub fn sandbox_sub(&self) -> UserSandbox {
        self.sandbox(&self.user_sub)
    }

    /// [`TestEnv::sandbox`] for the user without subordinate ids.
    pub fn sandbox_nosub(&self) -> UserSandbox {
        self.sandbox(&self.user_nosub)
    }
}

/// Whether this process is not root (read from /proc/self/status, no libc).
fn not_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().nth(1).map(|e| e != "0"))
        .unwrap_or(true)
}

/// Get the [`TestEnv`] (registries included) or return from the test (skip).
/// Under `CI=true` a missing env panics instead.
#[macro_export]
macro_rules! require_env {
    () => {
        match $crate::TestEnv::get() {
            Some(env) => env,
            None => return,
        }
    };
}

/// Like [`require_env!`] but needs only the binary and the users.
#[macro_export]
macro_rules! require_base_env {
    () => {
        match $crate::TestEnv::get_base() {
            Some(env) => env,
            None => return,
        }
    };
}

/// `require_shared!(env)`: the shared data dir (`&Path`) or return from the
/// test (skip); under `CI=true` its absence panics.
#[macro_export]
macro_rules! require_shared {
    ($env:expr) => {
        match $env.shared.as_deref() {
            Some(p) => p,
            None => {
                if ::std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("DEN_TEST_SHARED not set under CI=true");
                }
                eprintln!("skipping: DEN_TEST_SHARED not set (no ../shared)");
                return;
            }
        }
    };
}

/// uid and primary gid of `user` from /etc/passwd.
pub fn user_ids(user: &str) -> (u32, u32) {
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4 && f[0] == user {
            return (f[2].parse().unwrap(), f[3].parse().unwrap());
        }
    }
    panic!("user {user} does not exist (tests/run.sh creates it)");
}

/// A fresh directory owned by one test user, holding its `home/`
/// (with `home/.config/den/`). den runs there with HOME and the XDG dirs
/// pointing inside, so its store is `home/.local/share/den` unless
/// `DEN_ROOT` is set with [`UserSandbox::set_env`]. Removed on drop
/// (kept when `DEN_TEST_KEEP` is set).
#[derive(Debug)]
pub struct UserSandbox {
    user: String,
    uid: u32,
    gid: u32,
    bin: PathBuf,
    dir: PathBuf,
    home: PathBuf,
    envs: Vec<(String, String)>,
    timeout: Duration,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl UserSandbox {
    fn new(env: &TestEnv, user: &str) -> UserSandbox {
        let (uid, gid) = user_ids(user);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = env
            .tmp
            .join(format!("{user}-{}-{n}-{nanos:x}", std::process::id()));
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let home = dir.join("home");
        let own = |p: &Path, mode: u32| {
            chown(p, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
            fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
        };
        own(&dir, 0o700);
        for d in [
            "home",
            "home/.config",
            "home/.config/den",
            "home/.local",
            "home/.local/share",
        ] {
            let p = dir.join(d);
            fs::create_dir(&p).unwrap();
            own(&p, 0o755);
        }
        own(&home, 0o700);
        let timeout = var("DEN_TEST_TIMEOUT")
            .and_then(|s| s.parse().ok())
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        UserSandbox {
            user: user.to_string(),
            uid,
            gid,
            bin: env.bin.clone(),
            dir,
            home,
            envs: Vec::new(),
            timeout,
        }
    }

    /// The user den runs as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The user's uid.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The user's primary gid.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// The sandbox dir (parent of `home`), owned by the user, mode 0700.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The user's HOME for den (`dir/home`).
    pub fn home(&self) -> PathBuf {
        self.home.clone()
    }

    /// den's store: `DEN_ROOT` when set with [`UserSandbox::set_env`], else
    /// `home/.local/share/den`.
    pub fn root(&self) -> PathBuf {
        match self.envs.iter().rev().find(|(k, _)| k == "DEN_ROOT") {
            Some((_, v)) => PathBuf::from(v),
            None => self.home.join(".local/share/den"),
        }
    }

    /// `home/.config/den`.
    pub fn config_dir(&self) -> PathBuf {
        self.home.join(".config/den")
    }

    /// Add an environment variable for every later command of this sandbox.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.envs.push((key.to_string(), value.to_string()));
    }

    /// Time limit for each later [`den`](Self::den)/[`sh`](Self::sh) call.
    pub fn set_timeout(&mut self, t: Duration) {
        self.timeout = t;
    }

    /// The command line that runs `program args` as the user with the
    /// sandbox's clean environment (cwd = home, stdin null). No time limit:
    /// use it to spawn long-running den processes yourself.
    pub fn command_as_user<S: AsRef<OsStr>>(
        &self,
        envs: &[(&str, &str)],
        program: impl AsRef<OsStr>,
        args: &[S],
    ) -> Command {
        self.build(envs, None, program.as_ref(), args)
    }

    /// `den args` as a [`Command`] (not started), like [`den_env`](Self::den_env)
    /// but without the time limit.
    pub fn den_cmd(&self, envs: &[(&str, &str)], args: &[&str]) -> Command {
        self.build(envs, None, self.bin.as_os_str(), args)
    }

    fn build<S: AsRef<OsStr>>(
        &self,
        envs: &[(&str, &str)],
        timeout: Option<Duration>,
        program: &OsStr,
        args: &[S],
    ) -> Command {
        let home = self.home.to_str().expect("utf-8 sandbox path");
        let mut c = Command::new("runuser");
        c.args(["-u", &self.user, "--", "env", "-i"]);
        c.arg(format!("HOME={home}"));
        c.arg(format!("USER={}", self.user));
        c.arg(format!("LOGNAME={}", self.user));
        c.arg(format!("PATH={PATH}"));
        c.arg(format!("XDG_CONFIG_HOME={home}/.config"));
        c.arg(format!("XDG_DATA_HOME={home}/.local/share"));
        c.arg("LANG=C.UTF-8");
        c.arg("RUST_BACKTRACE=1");
        for (k, v) in &self.envs {
            c.arg(format!("{k}={v}"));
        }
        for (k, v) in envs {
            c.arg(format!("{k}={v}"));
        }
        if let Some(t) = timeout {
            c.args(["timeout", "-k", "10"])
                .arg(format!("{}", t.as_secs().max(1)));
        }
        c.arg(program).args(args);
        c.current_dir(&self.home).stdin(Stdio::null());
        c
    }

    fn run(&self, mut c: Command) -> Output {
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.output().unwrap_or_else(|e| panic!("spawn {c:?}: {e}"))
    }

    /// Run `den args` as the user; stdin null, output captured.
    pub fn den(&self, args: &[&str]) -> Output {
        self.den_env(&[], args)
    }

    /// [`den`](Self::den) with extra environment variables.
    pub fn den_env(&self, envs: &[(&str, &str)], args: &[&str]) -> Output {
        self.run(self.build(envs, Some(self.timeout), self.bin.as_os_str(), args))
    }

    /// Run `den args`, panic unless it exits 0; returns stdout.
    pub fn den_ok(&self, args: &[&str]) -> String {
        self.den_env_ok(&[], args)
    }

    /// [`den_ok`](Self::den_ok) with extra environment variables.
    pub fn den_env_ok(&self, envs: &[(&str, &str)], args: &[&str]) -> String {
        let o = self.den_env(envs, args);
        if !o.status.success() {
            panic!("{}", self.report("expected exit 0", envs, args, &o));
        }
        stdout(&o)
    }

    /// Run `den args`, panic unless it exits with `code`; returns stderr.
    pub fn den_fail(&self, args: &[&str], code: i32) -> String {
        self.den_env_fail(&[], args, code)
    }

    /// [`den_fail`](Self::den_fail) with extra environment variables.
    pub fn den_env_fail(&self, envs: &[(&str, &str)], args: &[&str], code: i32) -> String {
        let o = self.den_env(envs, args);
        if o.status.code() != Some(code) {
            panic!(
                "{}",
                self.report(&format!("expected exit {code}"), envs, args, &o)
            );
        }
        stderr(&o)
    }

    fn report(&self, want: &str, envs: &[(&str, &str)], args: &[&str], o: &Output) -> String {
        let timed_out = if o.status.code() == Some(124) {
            format!(" (124: killed after the {:?} time limit?)", self.timeout)
        } else {
            String::new()
        };
        let envs: String = envs.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        format!(
            "{want}: `{envs}den {}` as {} (home {}) gave {}{timed_out}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            args.join(" "),
            self.user,
            self.home.display(),
            o.status,
            stdout(o),
            stderr(o),
        )
    }

    /// Run `sh -c script` as the user in the same environment (cwd = home).
    pub fn sh(&self, script: &str) -> Output {
        self.run(self.build(&[], Some(self.timeout), OsStr::new("sh"), &["-c", script]))
    }

    /// [`sh`](Self::sh), panic unless it exits 0; returns stdout.
    pub fn sh_ok(&self, script: &str) -> String {
        let o = self.sh(script);
        if !o.status.success() {
            panic!(
                "`sh -c {script:?}` as {} gave {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.user,
                o.status,
                stdout(&o),
                stderr(&o)
            );
        }
        stdout(&o)
    }

    /// Write `home/.config/den/<name>` (owned by the user, mode 0644).
    pub fn write_config(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.config_dir().join(name);
        fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        chown(&p, Some(self.uid), Some(self.gid)).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    /// Write `home/.config/den/registries.toml` (see [`insecure_conf`], [`mirror_conf`]).
    pub fn write_registries_conf(&self, toml: &str) -> PathBuf {
        self.write_config("registries.toml", toml)
    }

    /// Write a file (relative paths are under home; parents created), owned by the user.
    pub fn write_file(&self, path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.home.join(path);
        let mut missing = Vec::new();
        let mut a = p.parent();
        while let Some(d) = a {
            if d.exists() {
                break;
            }
            missing.push(d.to_path_buf());
            a = d.parent();
        }
        for d in missing.iter().rev() {
            fs::create_dir(d).unwrap();
            chown(d, Some(self.uid), Some(self.gid)).unwrap();
        }
        fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        chown(&p, Some(self.uid), Some(self.gid)).unwrap();
        p
    }
}

impl Drop for UserSandbox {
    fn drop(&mut self) {
        if var("DEN_TEST_KEEP").is_some() {
            eprintln!("DEN_TEST_KEEP: kept {}", self.dir.display());
            return;
        }
        // As root: files owned by subordinate ids are removable too. Never
        // cross into a mount that a test may have left behind.
        let _ = Command::new("rm")
            .args(["-rf", "--one-file-system"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .status();
    }
}

/// registries.toml text marking each of `regs` (`HOST:PORT`) insecure (plain HTTP).
pub fn insecure_conf(regs: &[&str]) -> String {
    regs.iter()
        .map(|r| format!("[[registry]]\nlocation = \"{r}\"\ninsecure = true\n"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// registries.toml text making `mirror` (insecure) a mirror of `upstream`
/// (e.g. `mirror_conf("docker.io", &env.registry)`).
pub fn mirror_conf(upstream: &str, mirror: &str) -> String {
    format!(
        "[[registry]]\nlocation = \"{upstream}\"\n[[registry.mirror]]\nlocation = \"{mirror}\"\ninsecure = true\n"
    )
}

/// A den-sub sandbox whose `docker.io` is mirrored by the loopback
/// registry, so tests name images as users write them (`busybox`).
pub fn sandbox(env: &TestEnv) -> UserSandbox {
    let sb = env.sandbox_sub();
    sb.write_registries_conf(&mirror_conf("docker.io", &env.registry));
    sb
}

/// [`sandbox`] for either test user (`sub`: the one with subordinate ids),
/// with busybox already pulled when `busybox` is set.
pub fn mirrored_sandbox(env: &TestEnv, sub: bool, busybox: bool) -> UserSandbox {
    let sb = if sub {
        env.sandbox_sub()
    } else {
        env.sandbox_nosub()
    };
    sb.write_registries_conf(&mirror_conf("docker.io", &env.registry));
    if busybox {
        sb.den_ok(&["pull", "-q", "busybox"]);
    }
    sb
}

/// A loopback TCP port nothing listens on (just now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The output's stdout, lossily decoded.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The output's stderr, lossily decoded.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Polls `f` every 50 ms until it gives a value; past `limit`, fails the
/// test naming `what`.
pub fn retry<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`retry`] for a condition: polls until `check` holds.
pub fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    retry(what, limit, || check().then_some(()))
}

/// `den inspect NAME`'s object (of a container).
pub fn inspect(sb: &UserSandbox, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&sb.den_ok(&["inspect", name])).unwrap();
    v[0].clone()
}

/// `den run -d --name NAME FLAGS… busybox sleep SECS`: a container that
/// stays up for the test (busybox already pulled or mirrored); returns
/// den's output (the id).
pub fn run_sleeper(sb: &UserSandbox, name: &str, flags: &[&str], secs: &str) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(flags);
    args.extend(["busybox", "sleep", secs]);
    sb.den_ok(&args)
}

/// `den image inspect NAME`'s object.
pub fn inspect_image(sb: &UserSandbox, name: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&sb.den_ok(&["image", "inspect", name])).unwrap();
    v[0].clone()
}

/// `url` fetched from inside container `from` (python's urllib, 3 s): the
/// body, or the reason it failed (e.g. `[Errno -2] Name or service not known`).
pub fn fetch_in(sb: &UserSandbox, from: &str, url: &str) -> String {
    let script = "import sys, urllib.request as u\n\
                  try: print(u.urlopen(sys.argv[1], timeout=3).read().decode().strip())\n\
                  except Exception as e: print(getattr(e, 'reason', e))";
    let o = sb.den(&["exec", from, "python3", "-c", script, url]);
    match o.status.success() {
        true => stdout(&o),
        false => stderr(&o),
    }
}

/// The entries of `sb`'s containers directory once no `--rm` deletion is
/// in progress: a `--rm` container's directory leaves the store at its exit
/// (renamed `.rm-<id>`, listed nowhere) and its files are deleted in the
/// background right after (waited for here up to 10 s).
pub fn containers_left(sb: &UserSandbox) -> Vec<String> {
    let dir = sb.root().join("containers");
    let names = || -> Vec<String> {
        fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_for("--rm deletions to end", Duration::from_secs(10), || {
        !names().iter().any(|n| n.starts_with(".rm-"))
    });
    names()
}

/// The den processes of `sb`'s store still running ("PID COMMAND" lines;
/// they carry `--root STORE`), except its user namespace keeper, which
/// outlives containers by design (`latency.rs` tests it).
pub fn den_processes_left(sb: &UserSandbox) -> String {
    let out = Command::new("pgrep")
        .args(["-a", "-u", sb.user(), "-f", sb.root().to_str().unwrap()])
        .output()
        .unwrap();
    stdout(&out)
        .lines()
        .filter(|l| !l.contains(" __internal userns-keeper"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What `ip ARGS` prints in the network namespace of container `ctr`
/// (busybox's `ip`, through `--network container:`).
pub fn ip_in(sb: &UserSandbox, ctr: &str, args: &[&str]) -> String {
    let joined = format!("container:{ctr}");
    let mut argv = vec!["run", "--rm", "--network", joined.as_str(), "busybox", "ip"];
    argv.extend(args);
    sb.den_ok(&argv)
}

/// Asserts that interface `dev` of container `ctr` has address `ip`/24.
pub fn assert_address(sb: &UserSandbox, ctr: &str, dev: &str, ip: &str) {
    let addr = ip_in(sb, ctr, &["-4", "addr", "show", "dev", dev]);
    assert!(
        addr.contains(&format!("inet {ip}/24")),
        "{ctr} {dev}: {addr}"
    );
}

/// Asserts that container `ctr` has one default route, `via GW dev DEV`.
pub fn assert_default_route(sb: &UserSandbox, ctr: &str, gw: &str, dev: &str) {
    let route = ip_in(sb, ctr, &["route"]);
    let defaults: Vec<&str> = route
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("default"))
        .collect();
    assert_eq!(
        defaults,
        [format!("default via {gw} dev {dev}")],
        "{ctr}: {route}"
    );
}

/// Whether network `net`'s infra process has exited: its `infra.json`
/// gone, or the process it names dead.
pub fn infra_gone(sb: &UserSandbox, net: &str) -> bool {
    let path = sb.root().join("networks").join(net).join("infra.json");
    let Ok(bytes) = std::fs::read(&path) else {
        return true;
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let pid = v["pid"].as_i64().unwrap_or(0);
    pid <= 0 || !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The names of the containers `den ps` shows Up, sorted.
pub fn names_up(sb: &UserSandbox) -> Vec<String> {
    let ps = sb.den_ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    let mut up: Vec<String> = ps
        .lines()
        .filter(|l| l.split(' ').nth(1) == Some("Up"))
        .filter_map(|l| l.split(' ').next().map(String::from))
        .collect();
    up.sort_unstable();
    up
}
