//! Published ports: Docker's `-p` syntax, the unprivileged-port limit, and
//! choosing free host ports.
//!
//! [`PortMapping::parse`] turns one `-p` value into one mapping per port
//! (ranges are expanded; [`crate::pasta`] merges them back into pasta ranges).
//! A host port of 0 means "any free port": [`prepare`] binds each host port
//! once before pasta starts, which both picks the random ones (so den can
//! report them) and turns "already in use" into a clear error instead of a
//! pasta failure.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::str::FromStr;

use crate::NetError;

/// The sysctl that sets the lowest port an unprivileged user may bind.
pub const UNPRIVILEGED_PORT_START: &str = "/proc/sys/net/ipv4/ip_unprivileged_port_start";

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One published port: `host_ip:host_port` on the host reaches
/// `container_port` in the container. Serialized as a struct (a container
/// spec carries it to the supervisor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PortMapping {
    /// The host address to listen on; `None` is every address.
    pub host_ip: Option<IpAddr>,
    /// 0 until [`PortMapping::resolve_random`] or [`prepare`] picks one.
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

/// `0.0.0.0:8080->80/tcp`, `[::1]:8080->80/udp`: what `den port` shows.
impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = self.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let host = SocketAddr::new(ip, self.host_port);
        write!(f, "{host}->{}/{}", self.container_port, self.proto)
    }
}

impl PortMapping {
    /// Parses Docker's `-p [IP:][HOSTPORT:]CTRPORT[/tcp|/udp]`, where either
    /// port may be a range `A-B` (a host range needs a container range of
    /// the same length), an empty or absent HOSTPORT means a random one, and
    /// an IPv6 IP is written in brackets: `[::1]:8080:80`.
    pub fn parse(spec: &str) -> Result<Vec<PortMapping>, NetError> {
        let bad = |problem: String| NetError::Publish {
            spec: spec.to_owned(),
            problem,
        };
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((rest, "tcp")) => (rest, Proto::Tcp),
            Some((rest, "udp")) => (rest, Proto::Udp),
            Some((_, other)) => {
                return Err(bad(format!("unknown protocol {other:?}: use tcp or udp")));
            }
            None => (spec, Proto::Tcp),
        };
        let (ip, host, container) = split_parts(rest);
        let host_ip = match ip {
            None | Some("") => None,
            Some(ip) => {
                let bare = ip
                    .strip_prefix('[')
                    .and_then(|i| i.strip_suffix(']'))
                    .unwrap_or(ip);
                Some(
                    IpAddr::from_str(bare)
                        .map_err(|_| bad(format!("{ip:?} is not an IP address")))?,
                )
            }
        };
        let (c_first, c_last) = parse_range(container, false).map_err(bad)?;
        let count = c_last - c_first + 1;
        let host_first = match host {
            None | Some("") => None,
            Some(host) => {
                let (h_first, h_last) = parse_range(host, true).map_err(bad)?;
                if h_last - h_first + 1 != count {
                    return Err(bad(format!(
                        "host ports {host:?} and container ports {container:?} differ in \
                         number: give ranges of the same length"
                    )));
                }
                if h_first == 0 && count > 1 {
                    return Err(bad(format!(
                        "host port {host:?}: a range cannot start at 0"
                    )));
                }
                Some(h_first)
            }
        };
        Ok((0..count)
            .map(|i| PortMapping {
                host_ip,
                host_port: host_first.map_or(0, |h| (h + i) as u16),
                container_port: (c_first + i) as u16,
                proto,
            })
            .collect())
    }

    /// One key of an image's `ExposedPorts`: only `PORT` or `PORT/tcp|udp`,
    /// published on a random host port of every address. An image must not
    /// choose the host's address or port (`127.0.0.1:18082:80/tcp` is what
    /// `-p` accepts, not what an image may ask for), so anything else is
    /// refused here and the caller ignores it with a warning.
    pub fn from_exposed(key: &str) -> Result<PortMapping, String> {
        let (port, proto) = match key.split_once('/') {
            None => (key, Proto::Tcp),
            Some((port, "tcp")) => (port, Proto::Tcp),
            Some((port, "udp")) => (port, Proto::Udp),
            Some((_, other)) => return Err(format!("protocol {other:?} is not tcp or udp")),
        };
        let container_port = match port.parse::<u16>() {
            Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => return Err("an image may only expose PORT or PORT/PROTO".into()),
        };
        Ok(PortMapping {
            host_ip: None,
            host_port: 0,
            container_port,
            proto,
        })
    }

    /// Refuses a host port below `unprivileged_start` (the value of
    /// `net.ipv4.ip_unprivileged_port_start`), naming the sysctl.
    pub fn check_privileged(&self, unprivileged_start: u16) -> Result<(), NetError> {
        if self.host_port != 0 && self.host_port < unprivileged_start {
            return Err(NetError::PrivilegedPort {
                port: self.host_port,
                proto: self.proto,
                start: unprivileged_start,
            });
        }
        Ok(())
    }

    /// Picks a free host port (binding port 0) if none was given.
    pub fn resolve_random(&mut self) -> Result<(), NetError> {
        if self.host_port == 0 {
            self.host_port = self.bind()?.port();
        }
        Ok(())
    }

    fn bind_addr(&self) -> SocketAddr {
        let ip = self.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        SocketAddr::new(ip, self.host_port)
    }

    /// Binds the host address, as pasta will; the socket holds the port
    /// until it is dropped.
    fn bind(&self) -> Result<Bound, NetError> {
        let addr = self.bind_addr();
        let bound = match self.proto {
            Proto::Tcp => TcpListener::bind(addr).map(Bound::Tcp),
            Proto::Udp => UdpSocket::bind(addr).map(Bound::Udp),
        };
        bound.map_err(|source| match source.kind() {
            io::ErrorKind::AddrInUse => NetError::PortInUse {
                addr,
                proto: self.proto,
            },
            _ => NetError::Bind {
                addr,
                proto: self.proto,
                source,
            },
        })
    }
}

enum Bound {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl Bound {
    fn port(&self) -> u16 {
        match self {
            Bound::Tcp(s) => s.local_addr(),
            Bound::Udp(s) => s.local_addr(),
        }
        .map_or(0, |a| a.port())
    }
}

/// Makes `mappings` ready for pasta: refuses privileged host ports the
/// process cannot bind, checks that every given host port is free, and picks
/// free ports for the random ones. All sockets stay bound until the end, so
/// random ports are distinct and a port published twice is caught.
pub fn prepare(mappings: &mut [PortMapping]) -> Result<(), NetError> {
    if !crate::host::can_bind_privileged_ports() {
        let start = unprivileged_port_start(Path::new(UNPRIVILEGED_PORT_START))?;
        for m in mappings.iter() {
            m.check_privileged(start)?;
        }
    }
    let mut held = Vec::with_capacity(mappings.len());
    for m in mappings.iter_mut() {
        let bound = m.bind()?;
        m.host_port = bound.port();
        held.push(bound);
    }
    Ok(())
}

/// Reads `net.ipv4.ip_unprivileged_port_start` (1024 when the file is absent,
/// as on kernels before 4.11).
pub fn unprivileged_port_start(path: &Path) -> Result<u16, NetError> {
    match fs_err::read_to_string(path) {
        Ok(text) => text.trim().parse().map_err(|_| NetError::Io {
            what: "parsing",
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidData, format!("{:?}", text.trim())),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(1024),
        Err(source) => Err(NetError::Io {
            what: "reading",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Docker's split: the last part is the container port, the one before it
/// the host port, everything before that the IP (so an unbracketed IPv6
/// address still works when both ports are given).
fn split_parts(s: &str) -> (Option<&str>, Option<&str>, &str) {
    if let Some(after) = s.strip_prefix('[')
        && let Some((ip, rest)) = after.split_once(']')
    {
        let rest = rest.strip_prefix(':').unwrap_or(rest);
        let (host, container) = rest.split_once(':').unwrap_or(("", rest));
        return (Some(&s[..ip.len() + 2]), Some(host), container);
    }
    let mut parts = s.rsplitn(3, ':');
    let container = parts.next().unwrap_or("");
    let host = parts.next();
    let ip = parts.next();
    (ip, host, container)
}

/// `80` or `8000-8002` as an inclusive range; host ports may be 0 (random).
fn parse_range(s: &str, host: bool) -> Result<(u32, u32), String> {
    let what = if host { "host" } else { "container" };
    let port = |p: &str| -> Result<u32, String> {
        match p.parse::<u16>() {
            Ok(0) if !host => Err(format!("container port {p:?} must be 1-65535")),
            Ok(n) => Ok(u32::from(n)),
            Err(_) if p.is_empty() => Err(format!("missing {what} port")),
            Err(_) => Err(format!("{what} port {p:?} is not a number 1-65535")),
        }
    };
    match s.split_once('-') {
        None => port(s).map(|p| (p, p)),
        Some((a, b)) => {
            let (first, last) = (port(a)?, port(b)?);
            if first > last {
                return Err(format!("{what} port range {s:?} ends before it starts"));
            }
            Ok((first, last))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn m(ip: Option<&str>, host: u16, ctr: u16, proto: Proto) -> PortMapping {
        PortMapping {
            host_ip: ip.map(|i| i.parse().unwrap()),
            host_port: host,
            container_port: ctr,
            proto,
        }
    }

    #[test]
    fn parses_docker_syntax() {
        use Proto::{Tcp, Udp};
        let cases: &[(&str, &[PortMapping])] = &[
            ("80", &[m(None, 0, 80, Tcp)]),
            ("80/udp", &[m(None, 0, 80, Udp)]),
            ("8080:80", &[m(None, 8080, 80, Tcp)]),
            ("8080:80/tcp", &[m(None, 8080, 80, Tcp)]),
            ("127.0.0.1:8080:80", &[m(Some("127.0.0.1"), 8080, 80, Tcp)]),
            ("127.0.0.1::80/udp", &[m(Some("127.0.0.1"), 0, 80, Udp)]),
            (":8080:80", &[m(None, 8080, 80, Tcp)]),
            ("0:80", &[m(None, 0, 80, Tcp)]),
            ("[::1]:8080:80", &[m(Some("::1"), 8080, 80, Tcp)]),
            ("[::1]::80", &[m(Some("::1"), 0, 80, Tcp)]),
            ("::1:8080:80", &[m(Some("::1"), 8080, 80, Tcp)]),
            (
                "8000-8002:9000-9002",
                &[
                    m(None, 8000, 9000, Tcp),
                    m(None, 8001, 9001, Tcp),
                    m(None, 8002, 9002, Tcp),
                ],
            ),
            (
                "10.0.0.1:8000-8001:9000-9001/udp",
                &[
                    m(Some("10.0.0.1"), 8000, 9000, Udp),
                    m(Some("10.0.0.1"), 8001, 9001, Udp),
                ],
            ),
            ("9000-9001", &[m(None, 0, 9000, Tcp), m(None, 0, 9001, Tcp)]),
            ("65535:65535", &[m(None, 65535, 65535, Tcp)]),
        ];
        for (spec, want) in cases {
            match PortMapping::parse(spec) {
                Ok(got) => assert_eq!(&got, want, "{spec}"),
                Err(e) => panic!("{spec}: {e}"),
            }
        }
    }

    #[test]
    fn errors_name_the_bad_part() {
        let cases = [
            ("", "invalid -p \"\": missing container port"),
            ("80/sctp", "unknown protocol \"sctp\": use tcp or udp"),
            ("8o:80", "host port \"8o\" is not a number 1-65535"),
            ("80:http", "container port \"http\" is not a number 1-65535"),
            ("80:0", "container port \"0\" must be 1-65535"),
            ("70000:80", "host port \"70000\" is not a number 1-65535"),
            ("localhost:80:80", "\"localhost\" is not an IP address"),
            ("[::1:80:80", "\"[::1\" is not an IP address"),
            (
                "8000-8002:9000",
                "host ports \"8000-8002\" and container ports \"9000\" differ in number",
            ),
            (
                "9002-9000",
                "container port range \"9002-9000\" ends before it starts",
            ),
            ("0-2:80-82", "host port \"0-2\": a range cannot start at 0"),
            ("8080:", "missing container port"),
        ];
        for (spec, want) in cases {
            let e = PortMapping::parse(spec).expect_err(spec).to_string();
            assert!(e.contains(want), "{spec}: {e}");
            assert!(!e.contains('\n'), "{spec}: {e}");
        }
    }

    #[test]
    fn image_exposed_ports_are_port_and_proto_only() {
        let tcp = |p| Ok(m(None, 0, p, Proto::Tcp));
        assert_eq!(PortMapping::from_exposed("80"), tcp(80));
        assert_eq!(PortMapping::from_exposed("80/tcp"), tcp(80));
        assert_eq!(
            PortMapping::from_exposed("53/udp"),
            Ok(m(None, 0, 53, Proto::Udp))
        );
        for bad in [
            "127.0.0.1:18082:80/tcp",
            "18082:80",
            "8000-8010/tcp",
            "0/tcp",
            "+80",
            "80/sctp",
            "",
            "99999",
        ] {
            assert!(PortMapping::from_exposed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn displays_like_docker() {
        let cases = [
            (m(None, 8080, 80, Proto::Tcp), "0.0.0.0:8080->80/tcp"),
            (
                m(Some("127.0.0.1"), 53, 53, Proto::Udp),
                "127.0.0.1:53->53/udp",
            ),
            (m(Some("::1"), 8080, 80, Proto::Tcp), "[::1]:8080->80/tcp"),
        ];
        for (mapping, want) in cases {
            assert_eq!(mapping.to_string(), want);
        }
    }

    #[test]
    fn privileged_ports() {
        let cases = [
            (80, 1024, false),
            (1023, 1024, false),
            (1024, 1024, true),
            (0, 1024, true),
            (80, 0, true),
            (22, 80, false),
        ];
        for (port, start, ok) in cases {
            let got = m(None, port, 80, Proto::Tcp).check_privileged(start);
            assert_eq!(got.is_ok(), ok, "{port} vs {start}: {got:?}");
            if let Err(e) = got {
                assert!(
                    e.to_string()
                        .contains("net.ipv4.ip_unprivileged_port_start")
                );
            }
        }
    }

    #[test]
    fn reads_the_sysctl() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("start");
        fs_err::write(&file, "80\n").unwrap();
        assert_eq!(unprivileged_port_start(&file).unwrap(), 80);
        assert_eq!(
            unprivileged_port_start(&dir.path().join("absent")).unwrap(),
            1024
        );
        fs_err::write(&file, "many\n").unwrap();
        let e = unprivileged_port_start(&file).unwrap_err().to_string();
        assert!(e.contains("start") && e.contains("many"), "{e}");
    }

    #[test]
    fn random_ports_are_distinct_and_busy_ports_refused() {
        let lo = Some("127.0.0.1");
        let mut ms = [
            m(lo, 0, 80, Proto::Tcp),
            m(lo, 0, 81, Proto::Tcp),
            m(lo, 0, 80, Proto::Udp),
        ];
        // Not through prepare(): it would refuse nothing here, but the test
        // must not depend on the sysctl of the machine it runs on.
        let held: Vec<_> = ms
            .iter_mut()
            .map(|m| {
                let b = m.bind().unwrap();
                m.host_port = b.port();
                b
            })
            .collect();
        assert!(ms.iter().all(|m| m.host_port != 0));
        assert_ne!(ms[0].host_port, ms[1].host_port);
        let busy = m(lo, ms[0].host_port, 80, Proto::Tcp).bind();
        match busy {
            Err(NetError::PortInUse { addr, proto }) => {
                assert_eq!(addr.port(), ms[0].host_port);
                assert_eq!(proto, Proto::Tcp);
            }
            other => panic!("expected PortInUse, got {:?}", other.err()),
        }
        drop(held);
        let mut one = m(Some("::1"), 0, 80, Proto::Tcp);
        if one.resolve_random().is_ok() {
            assert_ne!(one.host_port, 0);
            assert_eq!(one.host_ip, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        }
    }
}
