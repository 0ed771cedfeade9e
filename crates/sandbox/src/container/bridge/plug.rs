//! Plugging a container into a user network and out of it: its veth pair
//! (`eth0`, `eth1`, … in the container's network namespace, the port
//! `vID` on the network's bridge), the port's guard (nftables rules that
//! hold a container to its own MAC and address), and the interface and
//! default route changes of `den network connect` and `disconnect` on a
//! running container ([`plug`], [`unplug`]). The infra whose bridge the
//! ports join, and the user namespace it shares with the containers, are
//! the parent module's.

use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags};

use super::{Infra, already_exists, fail, ip, ip_in, nft};
use crate::container::SetupError;
use crate::container::nsfds::{Kind, Namespaces};
use crate::container::spec::UserNetwork;

/// A container's namespace on its user networks, wired to each bridge
/// (eth0 to the first, eth1 to the second, …).
pub(in crate::container) fn attach(
    nets: &[UserNetwork],
    id: &str,
    infras: &[Infra],
) -> Result<OwnedFd, SetupError> {
    crate::container::netns::with_netns_helper(|helper| {
        let fd = rustix::fs::open(
            format!("/proc/{helper}/ns/net"),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fail("open the container's network namespace")(e.into()))?;
        for (n, (net, infra)) in nets.iter().zip(infras).enumerate() {
            wire(net, &format!("eth{n}"), id, infra.pid, helper, n == 0)?;
        }
        Ok(fd)
    })
}

/// A network's veth: `eth` in the container's namespace (that of process
/// `ctr`), its port on the network's bridge guarded; with `default_route`,
/// the network's gateway is the container's default route.
fn wire(
    net: &UserNetwork,
    eth: &str,
    id: &str,
    infra: i32,
    ctr: i32,
    default_route: bool,
) -> Result<(), SetupError> {
    let (infra_ns, ctr_ns) = (
        format!("/proc/{infra}/ns/net"),
        format!("/proc/{ctr}/ns/net"),
    );
    let veth = port_name(id);
    let mac = mac_of(&net.ip)?;
    let ctr_pid = ctr.to_string();
    let add = [
        "link", "add", &veth, "type", "veth", "peer", "name", eth, "address", &mac, "netns",
        &ctr_pid,
    ];
    if let Err(e) = ip(Some(&infra_ns), &add) {
        if !already_exists(&e) {
            return Err(e);
        }
        // The port of this container's previous run: the kernel frees a
        // network namespace (and its veth ends) asynchronously, and the last
        // run's supervisor may still hold it during a quick restart. The
        // name is this container's own, so the port can be no other.
        ip(Some(&infra_ns), &["link", "del", &veth])?;
        ip(Some(&infra_ns), &add)?;
    }
    // The guard is in place before the port joins the bridge.
    nft(Some(&infra_ns), &port_guard(&veth, &mac, &net.ip))?;
    ip(
        Some(&infra_ns),
        &["link", "set", &veth, "master", "den0", "up"],
    )?;
    let addr = format!("{}/24", net.ip);
    ip(Some(&ctr_ns), &["addr", "add", &addr, "dev", eth])?;
    ip(Some(&ctr_ns), &["link", "set", eth, "up"])?;
    if default_route {
        ip(Some(&ctr_ns), &["link", "set", "lo", "up"])?;
        ip(
            Some(&ctr_ns),
            &["route", "add", "default", "via", &net.gateway],
        )?;
    }
    Ok(())
}

/// `den network connect` of a running container: wires its network
/// namespace (from its supervisor's handles, never `/proc/PID/ns` of a
/// container process) to `net`'s bridge on the next free `ethN`; that
/// network's gateway becomes the default route only when the container has
/// none. Returns the interface's name. Enters the container's user and
/// network namespaces: call it in a single-threaded process made for it.
pub fn plug(
    net: &UserNetwork,
    id: &str,
    ns: &Namespaces,
    first: &str,
) -> Result<String, SetupError> {
    let infra = Infra::read(&net.dir).ok_or_else(|| SetupError::NoInfra(net.name.clone()))?;
    same_userns(&infra, ns, first, &net.name)?;
    ns.join(Kind::User)?;
    ns.join(Kind::Net)?;
    let eth = free_eth(&ip_in(None, &["-o", "link", "show"])?);
    let default_route = ip_in(None, &["-4", "route", "show", "default"])?
        .trim()
        .is_empty();
    let me = std::process::id() as i32;
    if let Err(e) = wire(net, &eth, id, infra.pid, me, default_route) {
        // Half made: the port goes, and its peer with it.
        let infra_ns = format!("/proc/{}/ns/net", infra.pid);
        ip(Some(&infra_ns), &["link", "del", &port_name(id)]).ok();
        nft(Some(&infra_ns), &port_unguard(&port_name(id))).ok();
        return Err(e);
    }
    Ok(eth)
}

/// `den network disconnect` of a running container: removes its interface
/// on `net` (the one with its address there) and that port's guard. When
/// the default route went with it, `next_gateway` (the gateway of the
/// first network the container stays on) is the default route now, as
/// Docker moves it to a remaining network. Single-threaded, as [`plug`].
pub fn unplug(
    net: &UserNetwork,
    id: &str,
    ns: &Namespaces,
    next_gateway: Option<&str>,
) -> Result<(), SetupError> {
    ns.join(Kind::User)?;
    ns.join(Kind::Net)?;
    if let Some(eth) = dev_with_address(&ip_in(None, &["-o", "-4", "addr", "show"])?, &net.ip) {
        ip(None, &["link", "del", "dev", &eth])?;
    }
    if let Some(infra) = Infra::read(&net.dir) {
        let infra_ns = format!("/proc/{}/ns/net", infra.pid);
        nft(Some(&infra_ns), &port_unguard(&port_name(id))).ok();
    }
    let routeless = ip_in(None, &["-4", "route", "show", "default"])?
        .trim()
        .is_empty();
    if let (true, Some(gw)) = (routeless, next_gateway) {
        ip(None, &["route", "add", "default", "via", gw])?;
    }
    Ok(())
}

/// The container (its user namespace, `ns`) and `net`'s infra must share
/// one user namespace, or no veth can join them: an infra an older den
/// started has one of its own (the refusal `shared_infras` gives).
fn same_userns(infra: &Infra, ns: &Namespaces, first: &str, net: &str) -> Result<(), SetupError> {
    use std::os::unix::fs::MetadataExt;
    let ours = std::fs::File::from(
        ns.get(Kind::User)
            .try_clone_to_owned()
            .map_err(fail("keep the container's user namespace"))?,
    )
    .metadata()
    .map(|m| (m.dev(), m.ino()))
    .map_err(fail("read the container's user namespace"))?;
    match infra.userns_id() == Some(ours) {
        true => Ok(()),
        false => Err(SetupError::InfraApart {
            first: first.to_string(),
            other: net.to_string(),
        }),
    }
}

/// The lowest `ethN` not among the interfaces `ip -o link show` listed.
fn free_eth(links: &str) -> String {
    let names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|n| n.trim_end_matches(':'))
        .map(|n| n.split('@').next().unwrap_or(n))
        .collect();
    (0..)
        .map(|n| format!("eth{n}"))
        .find(|e| !names.contains(&e.as_str()))
        .expect("a free name")
}

/// The interface that has address `ip` in `ip -o -4 addr show`'s output.
fn dev_with_address(addrs: &str, ip: &str) -> Option<String> {
    addrs.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let addr = f.get(3)?.split('/').next()?;
        (f.get(2) == Some(&"inet") && addr == ip).then(|| f[1].to_string())
    })
}

/// Removes a port's guard (see `port_guard`): its map entry, then its chain.
fn port_unguard(veth: &str) -> String {
    format!(
        "delete element bridge den ports {{ \"{veth}\" }}\n\
         delete chain bridge den g_{veth}\n"
    )
}

/// The container's port on a network's bridge: the same name in each
/// network's namespace, one port per network.
fn port_name(id: &str) -> String {
    format!("v{}", &id[..12.min(id.len())])
}

/// The guard of a container's bridge port `veth`: frames from it must carry
/// the container's own MAC (as Ethernet source and ARP sender), its own
/// address (as IPv4 source and ARP sender) and be IPv4 or ARP at all; all
/// else is dropped before the bridge learns or forwards it. So a container
/// with NET_RAW (or NET_ADMIN) can neither answer ARP for another
/// container's address nor send as it. Re-adding the guard of a port (a
/// restart) replaces it.
fn port_guard(veth: &str, mac: &str, ip: &str) -> String {
    format!(
        "add chain bridge den g_{veth}\n\
         flush chain bridge den g_{veth}\n\
         add rule bridge den g_{veth} ether saddr != {mac} drop\n\
         add rule bridge den g_{veth} ether type != {{ ip, arp }} drop\n\
         add rule bridge den g_{veth} arp saddr ether != {mac} drop\n\
         add rule bridge den g_{veth} arp saddr ip != {ip} drop\n\
         add rule bridge den g_{veth} ip saddr != {ip} drop\n\
         add element bridge den ports {{ \"{veth}\" : jump g_{veth} }}\n"
    )
}

/// The container's MAC on its network: locally administered, from its
/// address (as Docker does), so it is the same on every start.
fn mac_of(ip: &str) -> Result<String, SetupError> {
    let ip: std::net::Ipv4Addr = ip
        .parse()
        .map_err(|_| SetupError::BadAddress(ip.to_string()))?;
    let [a, b, c, d] = ip.octets();
    Ok(format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_interface_is_the_lowest_free_eth() {
        let links = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue\\    link/loopback 00:00\n\
                     2: eth0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500\\    link/ether 02:42\n\
                     3: eth2@if9: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500\\    link/ether 02:42\n";
        assert_eq!(free_eth(links), "eth1");
        assert_eq!(free_eth("1: lo: <LOOPBACK>\n"), "eth0");
        assert_eq!(
            free_eth("1: lo: <LOOPBACK>\n2: eth0@if3: <UP>\n3: eth1@if4: <UP>\n"),
            "eth2"
        );
    }

    #[test]
    fn the_interface_is_found_by_its_address_exactly() {
        let addrs = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
                     2: eth0    inet 10.89.1.2/24 brd 10.89.1.255 scope global eth0\\       valid_lft forever\n\
                     3: eth1    inet 10.89.2.22/24 brd 10.89.2.255 scope global eth1\\       valid_lft forever\n";
        assert_eq!(
            dev_with_address(addrs, "10.89.2.22").as_deref(),
            Some("eth1")
        );
        assert_eq!(
            dev_with_address(addrs, "10.89.1.2").as_deref(),
            Some("eth0")
        );
        assert_eq!(
            dev_with_address(addrs, "10.89.2.2"),
            None,
            "not a prefix match"
        );
        assert_eq!(dev_with_address("", "10.89.1.2"), None);
    }

    #[test]
    fn a_guard_is_removed_map_entry_first() {
        assert_eq!(
            port_unguard("vabc"),
            "delete element bridge den ports { \"vabc\" }\ndelete chain bridge den g_vabc\n"
        );
    }
}
