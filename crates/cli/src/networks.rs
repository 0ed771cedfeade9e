//! User networks (`den network create`): records and address allocation.
//!
//! ```text
//! ROOT/networks/NAME/config.json   name, id, subnet (10.89.N.0/24), created
//!                   /ipam.json     container id -> address, under ROOT/networks.lock
//!                   /infra.json    the running infra process (see sandbox::container::bridge)
//! ROOT/networks/.rm-NAME/          a removed network being deleted (a crash's leftover
//!                                  is deleted by the next `Networks::open`)
//! ROOT/networks.userns.lock        held by an infra starting (the infras share one
//!                                  user namespace: sandbox::container::bridge)
//! ROOT/containers/ID/hosts.base    a member's /etc/hosts without the networks' lines;
//!                   /hosts         written from it and every network's ipam.json
//!                   /network.lock  held by `den network connect|disconnect` while it
//!                                  rewrites the container's spec.json
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::containers::lock_file;
use crate::private::write_atomic;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub name: String,
    pub id: String,
    /// The third octet: the network is 10.89.N.0/24, its gateway 10.89.N.1.
    pub octet: u8,
    pub created: String,
    /// `network create --label`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl NetworkRecord {
    pub fn subnet(&self) -> String {
        format!("10.89.{}.0/24", self.octet)
    }
    pub fn gateway(&self) -> String {
        format!("10.89.{}.1", self.octet)
    }
}

pub use den_sandbox::container::members::{Member, NetworkMembers};
use den_sandbox::container::spec::UserNetwork;

pub struct Networks {
    dir: PathBuf,
}

impl Networks {
    /// Opens the networks directory and deletes what a `network rm` killed
    /// while deleting left (`.rm-<name>`; under the lock, which the remover
    /// holds while it works, so any such directory found is stale).
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        let dir = root.join("networks");
        crate::private::private_dir(&dir)?;
        let n = Self { dir };
        if n.leftovers().next().is_some() {
            let _lock = n.lock()?;
            for gone in n.leftovers() {
                if let Err(e) = fs_err::remove_dir_all(&gone) {
                    crate::log::warn(format_args!("cannot delete {}: {e}", gone.display()));
                }
            }
        }
        Ok(n)
    }

    fn leftovers(&self) -> impl Iterator<Item = PathBuf> {
        fs_err::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".rm-"))
            .map(|e| e.path())
    }

    /// The store this `networks/` belongs to.
    fn root(&self) -> &Path {
        self.dir.parent().unwrap_or(Path::new("."))
    }

    pub fn dir_of(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn lock(&self) -> anyhow::Result<std::fs::File> {
        lock_file(&self.dir.with_extension("lock"))
    }

    pub fn list(&self) -> anyhow::Result<Vec<NetworkRecord>> {
        let mut out = Vec::new();
        for e in fs_err::read_dir(&self.dir)? {
            let e = e?;
            if e.file_name().to_string_lossy().starts_with('.') {
                continue; // being removed
            }
            if let Ok(r) = read_config(&e.path().join("config.json")) {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn get(&self, name: &str) -> anyhow::Result<NetworkRecord> {
        let all = self.list()?;
        all.iter()
            .find(|n| n.name == name)
            .or_else(|| all.iter().find(|n| n.id.starts_with(name)))
            .cloned()
            .with_context(|| {
                format!("no such network: {name} (create it with `den network create {name}`)")
            })
    }

    pub fn create(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> anyhow::Result<NetworkRecord> {
        crate::names::check("network", name)?;
        if ["private", "none", "host", "default", "bridge"].contains(&name) {
            bail!("`{name}` is a built-in network mode, not a name for a user network");
        }
        let _lock = self.lock()?;
        let all = self.list()?;
        if all.iter().any(|n| n.name == name) {
            bail!("network {name} already exists");
        }
        let octet = (1..=254u8).find(|o| all.iter().all(|n| n.octet != *o)).context("no free subnet left in 10.89.0.0/16: remove unused networks with `den network prune`")?;
        let rec = NetworkRecord {
            name: name.into(),
            id: crate::containers::new_id(),
            octet,
            created: chrono::Utc::now().to_rfc3339(),
            labels,
        };
        let dir = self.dir_of(name);
        crate::private::private_dir(&dir)?;
        write_atomic(
            self.root(),
            &dir.join("config.json"),
            &serde_json::to_vec_pretty(&rec)?,
        )?;
        Ok(rec)
    }

    /// The network's members whose containers still exist.
    pub fn members(&self, name: &str) -> BTreeMap<String, Member> {
        let NetworkMembers(mut all) = NetworkMembers::read(&self.dir_of(name));
        let containers = self.dir.with_file_name("containers");
        all.retain(|cid, _| containers.join(cid).exists());
        all
    }

    /// Gives container `id` an address (see [`pick_address`]) and records its names.
    pub fn join(
        &self,
        net: &NetworkRecord,
        id: &str,
        names: Vec<String>,
    ) -> anyhow::Result<Member> {
        let _lock = self.lock()?;
        // Containers removed without den (or by a --rm supervisor) free their address here.
        let mut members = self.members(&net.name);
        // A container's own name (the first) is its alone; aliases may be
        // shared, as Docker shares them (a scaled compose service's name).
        for m in members.values() {
            let theirs = m.names.first();
            if let Some(n) = names
                .iter()
                .enumerate()
                .find(|(i, n)| Some(*n) == theirs || (*i == 0 && m.names.contains(n)))
                .map(|(_, n)| n)
            {
                bail!("the name {n} is already in use on network {}", net.name);
            }
        }
        let dir = self.dir_of(&net.name);
        let used: Vec<&str> = members.values().map(|m| m.ip.as_str()).collect();
        let mut freed = den_sandbox::container::bridge::read_freed(&dir);
        let ip = pick_address(net.octet, &used, &freed)
            .with_context(|| format!("network {} has no free address left", net.name))?;
        if freed.contains(&ip) {
            freed.retain(|f| *f != ip);
            den_sandbox::container::bridge::write_private(
                &dir.join("freed.json"),
                &serde_json::to_vec(&freed)?,
            )?;
        }
        let member = Member { ip, names };
        members.insert(id.to_string(), member.clone());
        write_atomic(
            self.root(),
            &NetworkMembers::path(&dir),
            &NetworkMembers(members).to_json(),
        )?;
        Ok(member)
    }

    /// Writes the /etc/hosts of container `id` and of every member of its
    /// networks `nets` again from the records, under the lock (see
    /// `den_sandbox::container::members::refresh_hosts`).
    pub fn refresh_hosts(
        &self,
        id: &str,
        nets: &[den_sandbox::container::spec::UserNetwork],
    ) -> anyhow::Result<()> {
        let _lock = self.lock()?;
        let mut ids = std::collections::BTreeSet::from([id.to_string()]);
        for n in nets {
            ids.extend(self.members(&n.name).into_keys());
        }
        den_sandbox::container::members::refresh_hosts(&self.dir, ids.iter().map(String::as_str));
        let own = self.dir.with_file_name("containers").join(id).join("hosts");
        if !own.is_file() {
            bail!("cannot write {}: the container's /etc/hosts", own.display());
        }
        Ok(())
    }

    /// Container `id` leaves every network (see
    /// `den_sandbox::container::bridge::leave`).
    pub fn leave_all(&self, id: &str) -> anyhow::Result<()> {
        for n in self.list()? {
            let dir = self.dir_of(&n.name);
            den_sandbox::container::bridge::leave(&dir, id)
                .with_context(|| format!("leave network {}", n.name))?;
        }
        Ok(())
    }

    pub fn remove(&self, name: &str) -> anyhow::Result<()> {
        let _lock = self.lock()?;
        let net = self.get(name)?;
        let members = self.members(&net.name);
        if let Some(id) = members.keys().next() {
            bail!(
                "network {} is in use by container {}: remove it first",
                net.name,
                &id[..12.min(id.len())]
            );
        }
        den_sandbox::container::bridge::stop_infra(&self.dir_of(&net.name));
        // Out of the listing at once; a crash while deleting leaves a
        // `.rm-` directory that the next `Networks::open` deletes.
        let gone = self.dir.join(format!(".rm-{}", net.name));
        fs_err::rename(self.dir_of(&net.name), &gone)?;
        crate::containers::stop_point("network-rm:stopped");
        fs_err::remove_dir_all(&gone)?;
        Ok(())
    }
}

/// What `den network connect|disconnect` asks of `den __internal
/// network-wire` for a running container: its interface on `net` added or
/// removed inside its namespaces (`den_sandbox::container::bridge::{plug,
/// unplug}`).
#[derive(Debug, Serialize, Deserialize)]
pub struct WireRequest {
    pub net: UserNetwork,
    pub op: WireOp,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum WireOp {
    /// `first`: the container's first network, for the refusal of an infra
    /// apart.
    Connect { first: String },
    /// `next_gateway`: the default route if it leaves with the interface.
    Disconnect { next_gateway: Option<String> },
}

/// `den __internal network-wire ID REQUEST`: the container's namespaces
/// from its supervisor (ns.sock), then the request done in them; prints
/// the interface a connect made. A fresh single-threaded process.
pub fn wire_in_container(
    ctx: &crate::context::Context,
    id: &str,
    request: &str,
) -> anyhow::Result<i32> {
    let req: WireRequest = serde_json::from_str(request).context("a bad network-wire request")?;
    let dir = crate::containers::Containers::open(&ctx.root)?.dir_of(id);
    let ns = den_sandbox::container::nsfds::Namespaces::fetch(&dir)?;
    match req.op {
        WireOp::Connect { first } => {
            let eth = den_sandbox::container::bridge::plug(&req.net, id, &ns, &first)?;
            println!("{eth}");
        }
        WireOp::Disconnect { next_gateway } => {
            den_sandbox::container::bridge::unplug(&req.net, id, &ns, next_gateway.as_deref())?;
        }
    }
    Ok(0)
}

/// Runs `den __internal network-wire` for container `id` and waits; its
/// error (one line) is this one's. Returns what it printed.
pub fn wire(ctx: &crate::context::Context, id: &str, req: &WireRequest) -> anyhow::Result<String> {
    let req = serde_json::to_string(req)?;
    let out = crate::in_userns::helper(ctx, &["network-wire", id, &req])?;
    Ok(out.trim().to_string())
}

/// The address for a new member of network 10.89.`octet`.0/24: the lowest
/// never handed out, else the one free longest (`freed` is oldest first),
/// so a removed container's address is not reused while others may still
/// cache its name.
pub fn pick_address(octet: u8, used: &[&str], freed: &[String]) -> Option<String> {
    let free = |ip: &str| !used.contains(&ip);
    (2..=254u8)
        .map(|h| format!("10.89.{octet}.{h}"))
        .find(|ip| free(ip) && !freed.contains(ip))
        .or_else(|| freed.iter().find(|ip| free(ip)).cloned())
}

/// The largest network `config.json` read back (den writes about 200 bytes).
const MAX_CONFIG: u64 = 1 << 20;

/// A network's `config.json`, bounded ([`MAX_CONFIG`]).
fn read_config(path: &Path) -> Result<NetworkRecord, den_atomic::ReadError> {
    den_atomic::read_json(path, MAX_CONFIG)
}

#[cfg(test)]
mod tests {
    use super::pick_address;

    #[test]
    fn an_oversized_config_is_refused_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs_err::File::create(&path)
            .unwrap()
            .set_len(super::MAX_CONFIG + 1)
            .unwrap();
        assert_eq!(
            super::read_config(&path).unwrap_err().to_string(),
            format!(
                "{} is larger than 1048576 bytes, more than den ever writes there: refused (remove the file if den should start it anew)",
                path.display()
            )
        );
    }

    #[test]
    fn addresses_are_reused_oldest_free_first() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(pick_address(3, &[], &[]).as_deref(), Some("10.89.3.2"));
        assert_eq!(
            pick_address(3, &["10.89.3.2"], &s(&["10.89.3.3"])).as_deref(),
            Some("10.89.3.4"),
            "never used before freed"
        );
        let all: Vec<String> = (2..=254).map(|h| format!("10.89.3.{h}")).collect();
        let used: Vec<&str> = all
            .iter()
            .map(String::as_str)
            .filter(|ip| !["10.89.3.9", "10.89.3.5"].contains(ip))
            .collect();
        assert_eq!(
            pick_address(3, &used, &s(&["10.89.3.9", "10.89.3.5"])).as_deref(),
            Some("10.89.3.9"),
            "the one free longest"
        );
        assert_eq!(
            pick_address(3, &all.iter().map(String::as_str).collect::<Vec<_>>(), &[]),
            None
        );
    }
}
