//! `den run`'s resource flags: `--ulimit` (setrlimit in the container,
//! works everywhere) and `--memory`, `--memory-swap`, `--cpus`,
//! `--cpu-shares`, `--cpuset-cpus`, `--pids-limit` (a cgroup v2 child per
//! container, see `den_sandbox::cgroup`). Where no delegated cgroup v2
//! subtree has the controllers, `den run` refuses before anything is made:
//! a limit is never silently ignored.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use den_sandbox::cgroup::{CPU_PERIOD, Hierarchy, Limits, Plan, Unavailable};
use den_sandbox::container::rlimit::Ulimit;

use crate::args::ResourceFlags;

/// The kernel's cgroup v2 mount.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// What the resource flags asked for, checked against the host.
#[derive(Debug, Default)]
pub struct Resources {
    pub ulimits: Vec<Ulimit>,
    /// The hierarchy the limits go to (only when limits were asked for).
    cgroup: Option<(Hierarchy, Limits)>,
}

impl Resources {
    pub fn from_flags(f: &ResourceFlags) -> anyhow::Result<Self> {
        let ulimits = f
            .ulimit
            .iter()
            .map(|u| Ulimit::parse(u).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<_>>()?;
        let limits = limits(f)?;
        if limits.is_empty() {
            return Ok(Self {
                ulimits,
                cgroup: None,
            });
        }
        let hierarchy = hierarchy()
            .and_then(|h| h.check(&limits.controllers()).map(|()| h))
            .map_err(|e| refusal(f, &limits, &e))?;
        Ok(Self {
            ulimits,
            cgroup: Some((hierarchy, limits)),
        })
    }

    /// The cgroup container `id` gets, for its spec.
    pub fn plan(&self, id: &str) -> Option<Plan> {
        self.cgroup.as_ref().map(|(h, limits)| Plan {
            dir: h.child_dir(id),
            kernel: h.kernel,
            limits: limits.clone(),
        })
    }
}

/// The cgroup hierarchy of this host; `DEN_CGROUP_ROOT` names a prepared
/// directory tree instead (a test seam: there limits are written, not
/// enforced).
pub fn hierarchy() -> Result<Hierarchy, Unavailable> {
    let own = fs_err::read_to_string("/proc/self/cgroup").unwrap_or_default();
    match std::env::var_os("DEN_CGROUP_ROOT") {
        Some(root) => Hierarchy::prepared(Path::new(&root), &own),
        None => Hierarchy::locate(Path::new(CGROUP_ROOT), &own),
    }
}

/// One line: the flags given, the controllers they need, why not and the fix.
fn refusal(f: &ResourceFlags, limits: &Limits, e: &Unavailable) -> anyhow::Error {
    let flags: Vec<&str> = [
        (f.memory.is_some(), "--memory"),
        (f.memory_swap.is_some(), "--memory-swap"),
        (f.cpus.is_some(), "--cpus"),
        (f.cpu_shares.is_some(), "--cpu-shares"),
        (f.cpuset_cpus.is_some(), "--cpuset-cpus"),
        (f.pids_limit.is_some(), "--pids-limit"),
    ]
    .into_iter()
    .filter_map(|(given, name)| given.then_some(name))
    .collect();
    anyhow::anyhow!(
        "cannot apply {} without a delegated cgroup v2 subtree with the {} controller{}: {e}",
        flags.join(", "),
        limits.controllers().join(", "),
        if limits.controllers().len() > 1 {
            "s"
        } else {
            ""
        },
    )
}

fn limits(f: &ResourceFlags) -> anyhow::Result<Limits> {
    let memory = f
        .memory
        .as_deref()
        .map(|m| bytes(m, "--memory"))
        .transpose()?;
    if let Some(m) = memory
        && m < 6 << 20
    {
        bail!("--memory {m}: the smallest memory limit is 6m (6 MiB)");
    }
    let memory_swap = match f.memory_swap.as_deref() {
        None => None,
        Some("-1") => Some(None),
        Some(s) => {
            let total = bytes(s, "--memory-swap")?;
            let Some(m) = memory else {
                bail!("--memory-swap needs --memory: it is memory plus swap (-1: unlimited swap)");
            };
            if total < m {
                bail!("--memory-swap {s} is smaller than --memory: it is memory plus swap");
            }
            Some(Some(total))
        }
    };
    if memory_swap.is_some() && memory.is_none() {
        bail!("--memory-swap needs --memory: it is memory plus swap (-1: unlimited swap)");
    }
    let cpu_shares = match f.cpu_shares {
        None | Some(0) => None, // 0: the default weight, as in Docker
        Some(s @ 2..=262_144) => Some(s),
        Some(s) => bail!("--cpu-shares {s}: use a value from 2 to 262144 (default 1024)"),
    };
    let pids = match f.pids_limit {
        None => None,
        Some(0 | -1) => Some(None),
        Some(n) if n > 0 => Some(Some(n as u64)),
        Some(n) => bail!("--pids-limit {n}: use a positive number, or -1 for no limit"),
    };
    Ok(Limits {
        memory,
        memory_swap,
        cpu_quota: f.cpus.as_deref().map(cpu_quota).transpose()?,
        cpu_shares,
        cpuset_cpus: f.cpuset_cpus.as_deref().map(cpuset).transpose()?,
        pids,
    })
}

/// Docker's sizes: a number with an optional b, k, m, g, t or p (binary
/// units, any case, an optional trailing b: `512m`, `1GB`).
pub fn bytes(s: &str, flag: &str) -> anyhow::Result<u64> {
    let lower = s.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &lower[digits.len()..];
    let shift = match unit.trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => bail!("{flag} {s}: unknown unit; use a number with b, k, m, g, t or p (e.g. 512m)"),
    };
    let n: f64 = digits
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .with_context(|| format!("{flag} {s}: not a size; use e.g. 512m or 1g"))?;
    let v = n * (1u64 << shift) as f64;
    if v >= u64::MAX as f64 {
        bail!("{flag} {s}: too large");
    }
    Ok(v as u64)
}

/// `--cpus N`: cpu.max's quota for a 100 ms period; at least 0.01 and at
/// most the CPUs this machine has (Docker's range).
fn cpu_quota(s: &str) -> anyhow::Result<u64> {
    let have = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n: f64 = s
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .with_context(|| format!("--cpus {s}: not a number; use e.g. 1.5"))?;
    if !(0.01..=have as f64).contains(&n) {
        bail!(
            "--cpus {s}: the range is from 0.01 to {have}.00, as there are only {have} CPUs available"
        );
    }
    Ok((n * CPU_PERIOD as f64).round() as u64)
}

/// `--cpuset-cpus`: a list of CPU numbers and ranges (`0-2,4`).
fn cpuset(s: &str) -> anyhow::Result<String> {
    let item_ok = |item: &str| {
        let (a, b) = item.split_once('-').unwrap_or((item, item));
        matches!((a.parse::<u32>(), b.parse::<u32>()), (Ok(a), Ok(b)) if a <= b)
    };
    if s.is_empty() || !s.split(',').all(item_ok) {
        bail!("--cpuset-cpus {s}: use CPU numbers and ranges, e.g. 0-2,4");
    }
    Ok(s.into())
}

/// A container's cgroup directory, from its spec (`None`: it has none).
pub fn cgroup_of(container_dir: &Path) -> Option<PathBuf> {
    let spec = den_sandbox::container::spec::ContainerSpec::read(&container_dir.join("spec.json"));
    spec.ok()?.cgroup.map(|p| p.dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_sizes() {
        for (s, want) in [
            ("512m", 512 << 20),
            ("1g", 1 << 30),
            ("1GB", 1 << 30),
            ("100", 100),
            ("64k", 64 << 10),
            ("1.5m", 3 << 19),
        ] {
            assert_eq!(bytes(s, "--memory").unwrap(), want, "{s}");
        }
        let e = bytes("12x", "--memory").unwrap_err().to_string();
        assert_eq!(
            e,
            "--memory 12x: unknown unit; use a number with b, k, m, g, t or p (e.g. 512m)"
        );
        assert!(bytes("m", "--memory").is_err());
    }

    #[test]
    fn flags_to_limits() {
        let f = ResourceFlags {
            memory: Some("64m".into()),
            memory_swap: Some("-1".into()),
            cpus: Some("0.5".into()),
            cpu_shares: Some(512),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some(-1),
            ulimit: vec![],
        };
        let l = limits(&f).unwrap();
        assert_eq!(l.memory, Some(64 << 20));
        assert_eq!(l.memory_swap, Some(None));
        assert_eq!(l.cpu_quota, Some(50_000));
        assert_eq!(l.pids, Some(None));
        let bad = |f: ResourceFlags, want: &str| {
            let e = limits(&f).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}");
        };
        bad(
            ResourceFlags {
                memory_swap: Some("1g".into()),
                ..Default::default()
            },
            "--memory-swap needs --memory",
        );
        bad(
            ResourceFlags {
                memory: Some("1m".into()),
                ..Default::default()
            },
            "--memory 1048576: the smallest memory limit is 6m",
        );
        bad(
            ResourceFlags {
                cpus: Some("100000".into()),
                ..Default::default()
            },
            "--cpus 100000: the range is from 0.01 to",
        );
        bad(
            ResourceFlags {
                cpuset_cpus: Some("2-1".into()),
                ..Default::default()
            },
            "--cpuset-cpus 2-1: use CPU numbers",
        );
        bad(
            ResourceFlags {
                pids_limit: Some(-5),
                ..Default::default()
            },
            "--pids-limit -5: use a positive number",
        );
    }
}
