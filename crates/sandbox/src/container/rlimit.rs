//! `--ulimit NAME=SOFT[:HARD]`: Docker's resource-limit names, parsed in
//! the CLI (pure) and applied with setrlimit by the container process
//! before it drops privileges.
//!
//! Raising a hard limit takes CAP_SYS_RESOURCE in the host's user
//! namespace, which a rootless container never has: a limit above the hard
//! limit the user has is refused with the kernel's EPERM, and the error
//! says which limit and what the user has.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use serde::{Deserialize, Serialize};

/// Docker's names, in its order, and the resource each sets.
const NAMES: [(&str, Resource); 15] = [
    ("core", Resource::Core),
    ("cpu", Resource::Cpu),
    ("data", Resource::Data),
    ("fsize", Resource::Fsize),
    ("locks", Resource::Locks),
    ("memlock", Resource::Memlock),
    ("msgqueue", Resource::Msgqueue),
    ("nice", Resource::Nice),
    ("nofile", Resource::Nofile),
    ("nproc", Resource::Nproc),
    ("rss", Resource::Rss),
    ("rtprio", Resource::Rtprio),
    ("rttime", Resource::Rttime),
    ("sigpending", Resource::Sigpending),
    ("stack", Resource::Stack),
];

/// One `--ulimit`: `None` is unlimited (`unlimited` or `-1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// Why a `--ulimit` could not be set in the container.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot set --ulimit {limit}: your hard limit for {name} is {have}, and only root can raise it \
     (lower the value, or raise the hard limit in /etc/security/limits.conf)"
)]
pub struct UlimitError {
    limit: String,
    name: String,
    have: String,
    #[source]
    errno: std::io::Error,
}

fn resource(name: &str) -> Option<Resource> {
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

fn parse_value(s: &str) -> Result<Option<u64>, String> {
    match s {
        "unlimited" | "-1" => Ok(None),
        _ => s
            .parse()
            .map(Some)
            .map_err(|_| format!("{s:?} is not a number, unlimited or -1")),
    }
}

fn show(v: Option<u64>) -> String {
    v.map_or_else(|| "unlimited".into(), |n| n.to_string())
}

impl Ulimit {
    /// `NAME=SOFT[:HARD]`, as Docker reads it (HARD defaults to SOFT).
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: String| format!("bad --ulimit {s:?}: {why}");
        let (name, values) = s
            .split_once('=')
            .ok_or_else(|| bad("expected NAME=SOFT[:HARD], e.g. nofile=1024:2048".into()))?;
        if resource(name).is_none() {
            let names: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
            return Err(bad(format!(
                "unknown name; use one of {}",
                names.join(", ")
            )));
        }
        let (soft, hard) = match values.split_once(':') {
            Some((soft, hard)) => (parse_value(soft), parse_value(hard)),
            None => (parse_value(values), parse_value(values)),
        };
        let (soft, hard) = (soft.map_err(bad)?, hard.map_err(bad)?);
        let above = match (soft, hard) {
            (None, Some(_)) => true,
            (Some(s), Some(h)) => s > h,
            _ => false,
        };
        if above {
            return Err(bad("the soft limit is above the hard limit".into()));
        }
        Ok(Self {
            name: name.into(),
            soft,
            hard,
        })
    }

    /// `NAME=SOFT:HARD` as the user would write it.
    pub fn to_flag(&self) -> String {
        format!("{}={}:{}", self.name, show(self.soft), show(self.hard))
    }
}

/// Sets each limit on the calling process (the container's init, before
/// its exec; children inherit them).
pub fn apply(limits: &[Ulimit]) -> Result<(), UlimitError> {
    for limit in limits {
        let Some(res) = resource(&limit.name) else {
            continue; // parse() admitted only known names
        };
        let want = Rlimit {
            current: limit.soft,
            maximum: limit.hard,
        };
        setrlimit(res, want).map_err(|e| UlimitError {
            limit: limit.to_flag(),
            name: limit.name.clone(),
            have: show(getrlimit(res).maximum),
            errno: e.into(),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_forms() {
        let ok = |s: &str, soft, hard| {
            let u = Ulimit::parse(s).unwrap();
            assert_eq!((u.soft, u.hard), (soft, hard), "{s}");
        };
        ok("nofile=512:1024", Some(512), Some(1024));
        ok("nproc=64", Some(64), Some(64));
        ok("core=unlimited", None, None);
        ok("core=-1:-1", None, None);
        ok("stack=8192:unlimited", Some(8192), None);
        let err = |s: &str, want: &str| {
            let e = Ulimit::parse(s).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        };
        err("nofile", "expected NAME=SOFT[:HARD]");
        err("files=3", "unknown name; use one of core, cpu,");
        err("nofile=2048:1024", "the soft limit is above the hard limit");
        err(
            "nofile=unlimited:10",
            "the soft limit is above the hard limit",
        );
        err("nofile=ten", "\"ten\" is not a number");
    }
}
