//! A user network's members, `ROOT/networks/NAME/ipam.json`: container id →
//! its address and names. One type for both sides: the CLI writes it when a
//! container joins (under `ROOT/networks.lock`); `bridge::leave` rewrites it,
//! and the network's infra reads it to know whether to linger.
//!
//! A member's /etc/hosts is derived from them ([`refresh_hosts`]): its
//! `hosts.base` (localhost, its hostname, `--add-host`, written once by
//! `den run`) and, for every network it is on, every live member's address
//! and names there. Whoever changes an `ipam.json` (a join, a leave)
//! regenerates the hosts of the members it touched while it still holds
//! `ROOT/networks.lock`, so the last writer always writes from the whole
//! record and two containers joining at once both learn each other.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The most of `ipam.json` den reads (254 members fit in a few KiB).
const MAX_FILE: u64 = 4 << 20;

/// A container's place on a network: its address, its names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub ip: String,
    pub names: Vec<String>,
}

/// The members of one network, by container id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NetworkMembers(pub BTreeMap<String, Member>);

impl NetworkMembers {
    /// Where a network whose directory is `net_dir` keeps them.
    pub fn path(net_dir: &Path) -> PathBuf {
        net_dir.join("ipam.json")
    }

    /// The members recorded for `net_dir`; none when the file is missing,
    /// larger than 4 MiB or not valid.
    pub fn read(net_dir: &Path) -> Self {
        den_atomic::read_bounded(&Self::path(net_dir), MAX_FILE)
            .map(|bytes| Self::parse(&bytes))
            .unwrap_or_default()
    }

    fn parse(bytes: &[u8]) -> Self {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    /// The file's content.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("members serialize")
    }
}

/// The part of a container's /etc/hosts no network decides, in its directory.
pub const HOSTS_BASE: &str = "hosts.base";

/// The most of a `hosts.base` (or an older den's `hosts`) den reads.
const HOSTS_MAX: u64 = 1 << 20;

/// Every user network's members, by network name, from the networks
/// directory `networks` (directories being removed, `.rm-*`, left out).
pub fn all_members(networks: &Path) -> BTreeMap<String, NetworkMembers> {
    let Ok(dir) = std::fs::read_dir(networks) else {
        return BTreeMap::new();
    };
    dir.flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| e.path().join("config.json").is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, NetworkMembers::read(&e.path()))
        })
        .collect()
}

/// Container `id`'s /etc/hosts: `base`, then for each network it is on (by
/// name), each member that `live` accepts, with its names on that network.
/// Pure, so the rule is tested without a store.
pub fn hosts_text(
    base: &str,
    id: &str,
    all: &BTreeMap<String, NetworkMembers>,
    live: impl Fn(&str) -> bool,
) -> String {
    let mut text = base.to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let mut seen = std::collections::BTreeSet::new();
    for NetworkMembers(members) in all.values().filter(|m| m.0.contains_key(id)) {
        for (cid, m) in members {
            let line = format!("{}\t{}\n", m.ip, m.names.join(" "));
            if (cid == id || live(cid)) && seen.insert(line.clone()) {
                text.push_str(&line);
            }
        }
    }
    text
}

/// Rewrites the /etc/hosts of each container in `ids` from the records
/// (see the module doc). The caller holds `ROOT/networks.lock`. A
/// container without a `hosts.base` is still being made (it writes its
/// own afterwards), unless an older den made it: then its `hosts` lines
/// outside den's 10.89.0.0/16 are its base. Rewritten in place: the
/// running container has the file's inode bind-mounted.
pub fn refresh_hosts<'a>(networks: &Path, ids: impl IntoIterator<Item = &'a str>) {
    let containers = networks.with_file_name("containers");
    let all = all_members(networks);
    for id in ids {
        let dir = containers.join(id);
        let Some(base) = hosts_base(&dir) else {
            continue;
        };
        let text = hosts_text(&base, id, &all, |c| containers.join(c).exists());
        write_in_place(&dir.join("hosts"), text.as_bytes()).ok();
    }
}

fn hosts_base(dir: &Path) -> Option<String> {
    let read = |name: &str| {
        den_atomic::read_bounded(&dir.join(name), HOSTS_MAX)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    if let Some(base) = read(HOSTS_BASE) {
        return Some(base);
    }
    let old = read("hosts")?;
    Some(
        old.lines()
            .filter(|l| !l.starts_with("10.89."))
            .map(|l| format!("{l}\n"))
            .collect(),
    )
}

/// Writes `bytes` over the file at `path` (made 0644 if missing: the
/// container's users read it), never following a symlink, keeping its inode.
fn write_in_place(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let f = std::fs::File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Ok(());
    }
    f.write_all_at(bytes, 0)?;
    f.set_len(bytes.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_list_every_network_of_the_container_and_only_those() {
        let m = |ip: &str, names: &[&str]| Member {
            ip: ip.into(),
            names: names.iter().map(|n| n.to_string()).collect(),
        };
        let all = BTreeMap::from([
            (
                "back".to_string(),
                NetworkMembers(BTreeMap::from([
                    ("db".to_string(), m("10.89.2.2", &["db"])),
                    ("web".to_string(), m("10.89.2.3", &["web", "app"])),
                    ("gone".to_string(), m("10.89.2.4", &["old"])),
                ])),
            ),
            (
                "front".to_string(),
                NetworkMembers(BTreeMap::from([
                    ("proxy".to_string(), m("10.89.1.2", &["proxy"])),
                    ("web".to_string(), m("10.89.1.3", &["web"])),
                ])),
            ),
        ]);
        let live = |c: &str| c != "gone";
        assert_eq!(
            hosts_text("127.0.0.1\tlocalhost", "web", &all, live),
            "127.0.0.1\tlocalhost\n10.89.2.2\tdb\n10.89.2.3\tweb app\n\
             10.89.1.2\tproxy\n10.89.1.3\tweb\n"
        );
        assert_eq!(
            hosts_text("", "proxy", &all, live),
            "10.89.1.2\tproxy\n10.89.1.3\tweb\n",
            "proxy is not on back: no db"
        );
    }

    #[test]
    fn reads_what_it_writes_and_tolerates_garbage() {
        let m = NetworkMembers(BTreeMap::from([(
            "abc".to_string(),
            Member {
                ip: "10.89.1.2".into(),
                names: vec!["web".into()],
            },
        )]));
        let json = m.to_json();
        assert_eq!(
            String::from_utf8_lossy(&json),
            "{\n  \"abc\": {\n    \"ip\": \"10.89.1.2\",\n    \"names\": [\n      \"web\"\n    ]\n  }\n}"
        );
        assert_eq!(NetworkMembers::parse(&json), m);
        assert_eq!(NetworkMembers::parse(b"[1]"), NetworkMembers::default());
    }
}
