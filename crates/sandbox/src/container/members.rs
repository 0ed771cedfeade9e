//! A user network's members, `ROOT/networks/NAME/ipam.json`: container id →
//! its address and names. One type for both sides: the CLI writes it when a
//! container joins (under `ROOT/networks.lock`); `bridge::leave` rewrites it,
//! and the network's infra reads it to know whether to linger.

use std::collections::BTreeMap;
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

#[cfg(test)]
mod tests {
    use super::*;

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
