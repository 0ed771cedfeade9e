//! Facts about the host that decide how pasta is run: the default IPv4
//! gateway (the address the container sees for the host when host loopback
//! is allowed) and whether this process may bind privileged ports.
//! Parsers take text; the readers around them only open the /proc files.

use std::net::Ipv4Addr;

/// `CAP_NET_BIND_SERVICE`, as numbered in `CapEff` of /proc/PID/status.
const CAP_NET_BIND_SERVICE: u32 = 10;

/// The IPv4 gateway of the host's default route, as pasta copies it into the
/// container; `None` without a default route.
pub fn default_gateway_v4() -> Option<Ipv4Addr> {
    let routes = fs_err::read_to_string("/proc/net/route").ok()?;
    parse_default_gateway_v4(&routes)
}

/// Whether this process binds ports below the unprivileged limit in the
/// host's network namespace: `CAP_NET_BIND_SERVICE` in the initial user
/// namespace (pasta keeps that capability when it has it). Root inside a
/// user namespace has the capability only for namespaces it owns.
pub fn can_bind_privileged_ports() -> bool {
    let uid_map = fs_err::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let status = fs_err::read_to_string("/proc/self/status").unwrap_or_default();
    is_initial_user_namespace(&uid_map) && has_effective_cap(&status, CAP_NET_BIND_SERVICE)
}

/// The default route with the lowest metric from /proc/net/route, whose
/// addresses are the kernel's native-endian u32 printed in hex.
fn parse_default_gateway_v4(routes: &str) -> Option<Ipv4Addr> {
    const RTF_UP: u32 = 0x1;
    const RTF_GATEWAY: u32 = 0x2;
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    routes
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (dest, gw, flags, metric, mask) = (
                hex(f.get(1)?)?,
                hex(f.get(2)?)?,
                hex(f.get(3)?)?,
                f.get(6)?.parse::<u32>().ok()?,
                hex(f.get(7)?)?,
            );
            let default = dest == 0 && mask == 0 && flags & (RTF_UP | RTF_GATEWAY) == 3;
            default.then(|| (metric, Ipv4Addr::from(gw.to_ne_bytes())))
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, gw)| gw)
}

/// The initial user namespace maps all 2^32-1 ids onto themselves.
fn is_initial_user_namespace(uid_map: &str) -> bool {
    let fields: Vec<&str> = uid_map.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

fn has_effective_cap(status: &str, cap: u32) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << cap) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";

    #[test]
    fn default_gateway() {
        let le = cfg!(target_endian = "little");
        // 192.0.2.1 as the kernel prints it on this machine's byte order.
        let gw1 = if le { "010200C0" } else { "C0000201" };
        let gw2 = if le { "FE00A8C0" } else { "C0A800FE" };
        let cases = [
            (
                format!(
                    "{HEADER}eth0\t00000000\t{gw1}\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                     eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
                ),
                Some(Ipv4Addr::new(192, 0, 2, 1)),
            ),
            (
                format!(
                    "{HEADER}wlan0\t00000000\t{gw1}\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
                     eth0\t00000000\t{gw2}\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
                ),
                Some(Ipv4Addr::new(192, 168, 0, 254)),
            ),
            (
                format!("{HEADER}eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"),
                None,
            ),
            // A default route that is down does not count.
            (
                format!("{HEADER}eth0\t00000000\t{gw1}\t0002\t0\t0\t0\t00000000\t0\t0\t0\n"),
                None,
            ),
            (String::new(), None),
        ];
        for (routes, want) in cases {
            assert_eq!(parse_default_gateway_v4(&routes), want, "{routes}");
        }
    }

    #[test]
    fn privileges() {
        let init = "         0          0 4294967295\n";
        let userns = "         0       1003          1\n";
        assert!(is_initial_user_namespace(init));
        assert!(!is_initial_user_namespace(userns));
        assert!(!is_initial_user_namespace(""));
        let root = "Name:\tx\nCapEff:\t000001ffffffffff\n";
        let user = "Name:\tx\nCapEff:\t0000000000000000\n";
        let bind_only = "CapEff:\t0000000000000400\n";
        assert!(has_effective_cap(root, CAP_NET_BIND_SERVICE));
        assert!(!has_effective_cap(user, CAP_NET_BIND_SERVICE));
        assert!(has_effective_cap(bind_only, CAP_NET_BIND_SERVICE));
        assert!(!has_effective_cap("", CAP_NET_BIND_SERVICE));
    }
}
