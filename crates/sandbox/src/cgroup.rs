//! Resource limits through cgroup v2: a small writer of den's own.
//!
//! Theory of operation. den finds its own cgroup (the `0::PATH` line of
//! `/proc/self/cgroup`) beneath a cgroup v2 root and puts each container in
//! a child of that cgroup's parent, `den-<id>`, beside it (den's own cgroup
//! holds processes, so by the "no internal processes" rule it cannot have
//! children with controllers; its parent can). That parent must be
//! delegated to the user: writable, with the controllers the limits need
//! in its `cgroup.subtree_control` (den enables those listed in its
//! `cgroup.controllers` when they are not yet). The supervisor creates the
//! child, writes the limits, moves the container's init into it before the
//! init may exec, and removes the child when the container is done.
//!
//! The root is a parameter ([`Hierarchy::locate`] takes it), so tests run
//! this against a prepared directory tree ([`Hierarchy::prepared`]): there
//! the files are plain files, and removing a child removes them first.
//! Where no delegated cgroup v2 subtree exists (a v1 or hybrid host, no
//! delegation), [`Unavailable`] says why and how to fix it: a limit is
//! never silently ignored.

use std::path::{Path, PathBuf};

use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, statfs};
use nix::unistd::{AccessFlags, access};
use serde::{Deserialize, Serialize};

/// The advice shown with every [`Unavailable`].
pub const FIX: &str = "boot with systemd.unified_cgroup_hierarchy=1 and delegate a cgroup to \
     your user (systemd: user@.service with Delegate=yes), or run without resource limits; \
     `den system check` shows the cgroup state";

/// `--memory`, `--cpus`, …: what the CLI decided, in cgroup v2 units.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// memory.max, bytes.
    pub memory: Option<u64>,
    /// `--memory-swap`: memory plus swap, bytes; `Some(None)` is unlimited
    /// (-1). Without it, swap is as large as `memory` (Docker's default).
    pub memory_swap: Option<Option<u64>>,
    /// `--cpus`: cpu.max quota per 100 ms period, microseconds.
    pub cpu_quota: Option<u64>,
    /// `--cpu-shares` (2..=262144), written as cpu.weight.
    pub cpu_shares: Option<u64>,
    /// `--cpuset-cpus`, e.g. `0-1,3`.
    pub cpuset_cpus: Option<String>,
    /// `--pids-limit`; `Some(None)` is unlimited (0 or -1).
    pub pids: Option<Option<u64>>,
}

/// The cpu.max period den uses (Docker's).
pub const CPU_PERIOD: u64 = 100_000;

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The controllers these limits need, each once.
    pub fn controllers(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.memory.is_some() || self.memory_swap.is_some() {
            out.push("memory");
        }
        if self.cpu_quota.is_some() || self.cpu_shares.is_some() {
            out.push("cpu");
        }
        if self.cpuset_cpus.is_some() {
            out.push("cpuset");
        }
        if self.pids.is_some() {
            out.push("pids");
        }
        out
    }

    /// The interface files to write, and their contents, in order.
    pub fn files(&self) -> Vec<(&'static str, String)> {
        let max = |v: Option<u64>| v.map_or_else(|| "max".to_string(), |n| n.to_string());
        let mut out = Vec::new();
        if let Some(m) = self.memory {
            out.push(("memory.max", m.to_string()));
            let swap = match self.memory_swap {
                None => Some(m),
                Some(None) => None,
                Some(Some(total)) => Some(total.saturating_sub(m)),
            };
            out.push(("memory.swap.max", max(swap)));
        }
        if let Some(q) = self.cpu_quota {
            out.push(("cpu.max", format!("{q} {CPU_PERIOD}")));
        }
        if let Some(s) = self.cpu_shares {
            out.push(("cpu.weight", shares_to_weight(s).to_string()));
        }
        if let Some(c) = &self.cpuset_cpus {
            out.push(("cpuset.cpus", c.clone()));
        }
        if let Some(p) = self.pids {
            out.push(("pids.max", max(p)));
        }
        out
    }
}

/// Docker's (runc's) conversion of cgroup v1 cpu shares [2, 262144] to a
/// cgroup v2 weight [1, 10000]: 1024 shares become weight 39.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// Why limits cannot be applied here: one line with the fix.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{why}; {FIX}")]
pub struct Unavailable {
    pub why: String,
}

fn unavailable(why: impl Into<String>) -> Unavailable {
    Unavailable { why: why.into() }
}

/// A cgroup operation that failed on a hierarchy that looked usable.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} {}", path.display())]
pub struct CgroupError {
    what: &'static str,
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError {
    let path = path.to_path_buf();
    move |source| CgroupError { what, path, source }
}

/// Where this process may create cgroups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// The directory containers' cgroups are created in.
    pub base: PathBuf,
    /// A real cgroup2 filesystem (false: a prepared tree of plain files).
    pub kernel: bool,
}

/// The `0::PATH` line of `/proc/self/cgroup`.
pub fn own_cgroup(proc_self_cgroup: &str) -> Option<&str> {
    proc_self_cgroup.lines().find_map(|l| l.strip_prefix("0::"))
}

fn read_words(path: &Path) -> Vec<String> {
    fs_err::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

impl Hierarchy {
    /// The kernel's hierarchy mounted at `root` (normally /sys/fs/cgroup).
    pub fn locate(root: &Path, proc_self_cgroup: &str) -> Result<Self, Unavailable> {
        let is_v2 = |p: &Path| statfs(p).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC);
        if !is_v2(root) {
            let kind = match is_v2(&root.join("unified")) {
                true => "a hybrid v1/v2 hierarchy whose v2 part has no controllers for users",
                false => "not a cgroup v2 hierarchy",
            };
            return Err(unavailable(format!("{} is {kind}", root.display())));
        }
        Self::find(root, proc_self_cgroup, true)
    }

    /// A prepared directory tree at `root` standing for the hierarchy (tests).
    pub fn prepared(root: &Path, proc_self_cgroup: &str) -> Result<Self, Unavailable> {
        Self::find(root, proc_self_cgroup, false)
    }

    fn find(root: &Path, proc_self_cgroup: &str, kernel: bool) -> Result<Self, Unavailable> {
        let own = own_cgroup(proc_self_cgroup)
            .ok_or_else(|| unavailable("/proc/self/cgroup has no cgroup v2 (0::) line"))?;
        let own = Path::new(own.trim_start_matches('/'));
        let base = match own.parent() {
            Some(p) => root.join(p),
            None => root.to_path_buf(), // den runs in the root cgroup
        };
        let writable = ["", "cgroup.procs", "cgroup.subtree_control"]
            .iter()
            .all(|f| access(&base.join(f), AccessFlags::W_OK).is_ok());
        if !writable {
            return Err(unavailable(format!(
                "the cgroup {} is not delegated to this user (not writable)",
                base.display()
            )));
        }
        Ok(Self { base, kernel })
    }

    /// Checks that `needed` controllers are enabled for children of
    /// `base`, enabling those the parent offers.
    pub fn check(&self, needed: &[&str]) -> Result<(), Unavailable> {
        let enabled = read_words(&self.base.join("cgroup.subtree_control"));
        let offered = read_words(&self.base.join("cgroup.controllers"));
        for c in needed {
            if enabled.iter().any(|e| e == c) {
                continue;
            }
            if !offered.iter().any(|o| o == c) {
                return Err(unavailable(format!(
                    "the {c} controller is not delegated to {} (its cgroup.controllers: {})",
                    self.base.display(),
                    match offered.is_empty() {
                        true => "none".into(),
                        false => offered.join(" "),
                    }
                )));
            }
            self.enable(c)?;
        }
        Ok(())
    }

    fn enable(&self, controller: &str) -> Result<(), Unavailable> {
        let path = self.base.join("cgroup.subtree_control");
        let mut line = format!("+{controller}");
        if !self.kernel {
            // A plain file keeps the whole list, as the kernel shows it.
            let mut words = read_words(&path);
            words.push(controller.into());
            line = words.join(" ");
        }
        fs_err::write(&path, line).map_err(|e| {
            unavailable(format!(
                "cannot enable the {controller} controller in {}: {e}",
                path.display()
            ))
        })
    }

    /// Where container `id`'s cgroup is.
    pub fn child_dir(&self, id: &str) -> PathBuf {
        self.base.join(format!("den-{id}"))
    }
}

/// A container's cgroup: created with its limits, removed on drop.
#[derive(Debug)]
pub struct Child {
    dir: PathBuf,
    kernel: bool,
}

/// What the supervisor needs to make a container's cgroup (in the spec).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub dir: PathBuf,
    pub kernel: bool,
    pub limits: Limits,
}

impl Child {
    /// Creates the cgroup (replacing one a crashed supervisor left) and
    /// writes the limits.
    pub fn create(plan: &Plan) -> Result<Self, CgroupError> {
        if plan.dir.exists() {
            remove_dir(&plan.dir, plan.kernel)
                .map_err(io_err("remove the stale cgroup", &plan.dir))?;
        }
        fs_err::create_dir(&plan.dir).map_err(io_err("create the cgroup", &plan.dir))?;
        let child = Self {
            dir: plan.dir.clone(),
            kernel: plan.kernel,
        };
        for (file, value) in plan.limits.files() {
            let path = plan.dir.join(file);
            fs_err::write(&path, value).map_err(io_err("write the limit", &path))?;
        }
        Ok(child)
    }

    /// Moves process `pid` (with its future children) into the cgroup.
    pub fn add(&self, pid: i32) -> Result<(), CgroupError> {
        let path = self.dir.join("cgroup.procs");
        fs_err::write(&path, pid.to_string()).map_err(io_err("move the container into", &path))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Err(e) = remove_dir(&self.dir, self.kernel) {
            eprintln!("den: warning: could not remove the cgroup: {e}");
        }
    }
}

/// Removes a cgroup directory: a prepared tree's files first; the kernel's
/// only once the container's last processes are gone (EBUSY until then).
fn remove_dir(dir: &Path, kernel: bool) -> std::io::Result<()> {
    if !kernel {
        for entry in fs_err::read_dir(dir)? {
            fs_err::remove_file(entry?.path())?;
        }
        return fs_err::remove_dir(dir);
    }
    let mut tries = 0;
    loop {
        match fs_err::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// What `den stats` reads from a container's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// cpu.stat usage_usec.
    pub cpu_usec: u64,
    pub memory: u64,
    /// memory.max; `None`: no limit.
    pub memory_limit: Option<u64>,
    pub pids: u64,
    /// io.stat rbytes and wbytes, summed over devices.
    pub read_bytes: u64,
    pub write_bytes: u64,
}

fn read_number(path: &Path) -> Option<u64> {
    fs_err::read_to_string(path).ok()?.trim().parse().ok()
}

/// The `key value` lines of cpu.stat-like files: the value of `key`.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// io.stat: `MAJ:MIN rbytes=N wbytes=N …` per device, summed.
fn io_bytes(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0, 0);
    for field in text.split_whitespace() {
        if let Some(n) = field.strip_prefix("rbytes=") {
            r += n.parse::<u64>().unwrap_or(0);
        } else if let Some(n) = field.strip_prefix("wbytes=") {
            w += n.parse::<u64>().unwrap_or(0);
        }
    }
    (r, w)
}

/// The usage of the cgroup at `dir`, or `None` when it does not exist.
pub fn usage(dir: &Path) -> Option<Usage> {
    if !dir.is_dir() {
        return None;
    }
    let text = |f: &str| fs_err::read_to_string(dir.join(f)).unwrap_or_default();
    let (read_bytes, write_bytes) = io_bytes(&text("io.stat"));
    Some(Usage {
        cpu_usec: keyed(&text("cpu.stat"), "usage_usec").unwrap_or(0),
        memory: read_number(&dir.join("memory.current")).unwrap_or(0),
        memory_limit: read_number(&dir.join("memory.max")),
        pids: read_number(&dir.join("pids.current")).unwrap_or(0),
        read_bytes,
        write_bytes,
    })
}

#[cfg(test)]
#[path = "cgroup_tests.rs"]
mod tests;
