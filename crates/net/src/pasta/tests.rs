use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use super::*;
use crate::ports::{PortMapping, Proto};

#[test]
fn versions() {
    let cases = [
        (
            "pasta unknown version\nCopyright Red Hat\n",
            "unknown version",
        ),
        (
            "pasta 2024_03_20.71dd405\nCopyright Red Hat\n",
            "2024_03_20.71dd405",
        ),
        ("\n  pasta 0^20230309.g7c7625d-1\n", "0^20230309.g7c7625d-1"),
        ("passt 2025_01_21\n", "passt 2025_01_21"),
        ("", "unknown version"),
        ("pasta\n", "unknown version"),
    ];
    for (stdout, want) in cases {
        assert_eq!(parse_version(stdout), want, "{stdout:?}");
    }
}

/// Debian 12's `pasta --help` as it arrives on stderr, with the syslog
/// complaints it prints when there is no syslog.
const HELP_2023: &str = include_str!("testdata/help-debian12.txt");

#[test]
fn capabilities_from_help() {
    let caps = Capabilities::parse(HELP_2023);
    for yes in [
        "-f",
        "--foreground",
        "--runas",
        "--help",
        "-I",
        "--dns-forward",
        "--no-map-gw",
        "-4",
        "-t",
        "--tcp-ports",
        "--netns-only",
    ] {
        assert!(caps.supports(yes), "{yes}");
    }
    for no in [
        "--map-host-loopback",
        "--map-guest-addr",
        "PATH",
        "SPEC",
        "-t 22-80:32-90",
        "--",
        "-",
    ] {
        assert!(!caps.supports(no), "{no}");
    }
    let argv: Vec<OsString> = ["-f", "--no-map-gw", "x", "--map-host-loopback", "-u"]
        .map(OsString::from)
        .into();
    assert_eq!(caps.first_unsupported(&argv), Some("--map-host-loopback"));
    assert_eq!(caps.first_unsupported(&argv[..3]), None);
}

fn tcp(ip: Option<&str>, host: u16, ctr: u16) -> PortMapping {
    PortMapping {
        host_ip: ip.map(|i| i.parse().unwrap()),
        host_port: host,
        container_port: ctr,
        proto: Proto::Tcp,
    }
}

fn udp(ip: Option<&str>, host: u16, ctr: u16) -> PortMapping {
    PortMapping {
        proto: Proto::Udp,
        ..tcp(ip, host, ctr)
    }
}

#[test]
fn port_specs_merge_runs() {
    let lo = Some("127.0.0.1");
    let cases: Vec<(Vec<PortMapping>, Vec<&str>, Vec<&str>)> = vec![
        (vec![], vec!["none"], vec!["none"]),
        (
            vec![tcp(lo, 8080, 80)],
            vec!["127.0.0.1/8080:80"],
            vec!["none"],
        ),
        (
            vec![
                tcp(None, 8000, 9000),
                tcp(None, 8001, 9001),
                tcp(None, 8002, 9002),
            ],
            vec!["8000-8002:9000-9002"],
            vec!["none"],
        ),
        // Not consecutive on one side, or a different address: no merge.
        (
            vec![
                tcp(None, 8000, 9000),
                tcp(None, 8001, 9005),
                tcp(lo, 8002, 9006),
            ],
            vec!["8000:9000", "8001:9005", "127.0.0.1/8002:9006"],
            vec!["none"],
        ),
        (
            vec![
                tcp(Some("::1"), 8080, 80),
                udp(None, 5353, 53),
                udp(None, 5354, 54),
            ],
            vec!["::1/8080:80"],
            vec!["5353-5354:53-54"],
        ),
        (
            vec![tcp(None, 65535, 65535)],
            vec!["65535:65535"],
            vec!["none"],
        ),
    ];
    for (ports, want_t, want_u) in cases {
        assert_eq!(port_specs(&ports, Proto::Tcp), want_t, "{ports:?}");
        assert_eq!(port_specs(&ports, Proto::Udp), want_u, "{ports:?}");
    }
}

fn strings(args: Vec<OsString>) -> Vec<String> {
    args.into_iter().map(|a| a.into_string().unwrap()).collect()
}

#[test]
fn args_for_configs_and_targets() {
    let fd_file = std::fs::File::open("/dev/null").unwrap();
    let fd = fd_file.as_fd();
    let fd_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let common = "--config-net -I eth0";
    let cases: Vec<(PastaConfig, Target, String)> = vec![
        (
            PastaConfig::default(),
            Target::Pid(42),
            format!(
                "{common} --no-map-gw --dns-forward 169.254.1.1 -t none -u none \
                 -T none -U none 42"
            ),
        ),
        (
            PastaConfig {
                ports: vec![tcp(Some("127.0.0.1"), 18080, 8000), udp(None, 18081, 8001)],
                dns_forward: None,
                allow_host_loopback: true,
                ipv6: false,
                ..PastaConfig::default()
            },
            Target::NetnsFd(fd),
            format!(
                "{common} -4 -t 127.0.0.1/18080:8000 -u 18081:8001 -T none -U none \
                 --netns {fd_path} --netns-only"
            ),
        ),
        (
            PastaConfig {
                interface: "den0".into(),
                dns_forward: Some(Ipv4Addr::new(10, 0, 2, 3)),
                ..PastaConfig::default()
            },
            Target::NetnsPath {
                netns: Path::new("/run/user/1000/den/netns/n1"),
                userns: Some(Path::new("/proc/7/ns/user")),
            },
            "--config-net -I den0 --no-map-gw --dns-forward 10.0.2.3 -t none -u none \
             -T none -U none --netns /run/user/1000/den/netns/n1 --userns /proc/7/ns/user"
                .to_owned(),
        ),
        (
            PastaConfig::default(),
            Target::NetnsPath {
                netns: Path::new("/run/netns/x"),
                userns: None,
            },
            format!(
                "{common} --no-map-gw --dns-forward 169.254.1.1 -t none -u none \
                 -T none -U none --netns /run/netns/x --netns-only"
            ),
        ),
    ];
    for (config, target, want) in cases {
        let got = strings(config.args(&target)).join(" ");
        assert_eq!(got, want.split_whitespace().collect::<Vec<_>>().join(" "));
    }
}

#[test]
fn every_option_den_uses_exists_in_debian_12s_pasta() {
    let caps = Capabilities::parse(HELP_2023);
    let mut files = Files::new(Path::new("/run/x")).args();
    files.extend(["--runas", "0:0"].map(OsString::from));
    let configs = [
        PastaConfig::default(),
        PastaConfig {
            allow_host_loopback: true,
            ipv6: false,
            ports: vec![tcp(None, 1, 2)],
            ..PastaConfig::default()
        },
    ];
    for config in configs {
        let mut argv = files.clone();
        argv.extend(config.args(&Target::Pid(1)));
        assert_eq!(caps.first_unsupported(&argv), None, "{argv:?}");
    }
}

#[test]
fn reported_addresses() {
    let config = PastaConfig::default();
    assert_eq!(config.dns_address(), Some(DEFAULT_DNS_FORWARD));
    assert_eq!(config.host_loopback_address(), None);
    let open = PastaConfig {
        allow_host_loopback: true,
        dns_forward: None,
        ..config
    };
    assert_eq!(open.dns_address(), None);
    // The host's gateway, if it has a default route.
    assert_eq!(
        open.host_loopback_address(),
        crate::host::default_gateway_v4()
    );
}

#[test]
fn failure_messages() {
    let cases = [
        (
            "pasta unknown version: /usr/bin/passt.avx2 (1)\n\
             0.4241: ERROR:   Failed to bind any port for '-t 127.0.0.1/18095:8000', exiting\n",
            "",
            "Failed to bind any port for '-t 127.0.0.1/18095:8000', exiting",
        ),
        (
            "0.1: WARNING: No external routable interface for IPv6\n\
             0.2: ERROR:   External interface not usable\n",
            "External interface not usable\n",
            "External interface not usable",
        ),
        (
            "",
            "Failed to send 51 bytes to syslog\nPID file open: Permission denied\n\
             Failed to send 7 bytes to syslog\n",
            "PID file open: Permission denied",
        ),
        ("", "", "no error message"),
    ];
    for (log, stderr, want) in cases {
        assert_eq!(failure_message(log, stderr), want);
    }
}

#[test]
fn ipv6_host_address_needs_ipv6() {
    let config = PastaConfig {
        ipv6: false,
        ports: vec![tcp(Some("::1"), 0, 80)],
        ..PastaConfig::default()
    };
    let e = config.with_host_ports().unwrap_err().to_string();
    assert_eq!(
        e,
        "invalid -p \"[::1]:0->80/tcp\": an IPv6 host address needs IPv6 in the container"
    );
}
