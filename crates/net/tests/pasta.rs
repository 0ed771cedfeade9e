//! pasta for real: published TCP/UDP ports, host loopback closed and opened,
//! the DNS forwarder, and no pasta left behind. Runs without the libtest
//! harness because it re-executes itself as helpers that run inside the
//! namespaces (through `nsenter`; this crate never calls setns itself).
//!
//! The "container" is a process in its own user and network namespace
//! (`unshare -Urn sleep`). Traffic goes only to loopback and to namespaces
//! the test creates: the checks that would send packets to the gateway
//! (host loopback, DNS) run in a network namespace of the test's own
//! (`unshare -Urnm`, a veth with a default route, a fake resolver on its
//! 127.0.0.1:53 named by a bind-mounted /etc/resolv.conf). pasta is started
//! both ways `den_net::pasta` describes: by PID from outside the container's
//! user namespace, and by descriptor from inside the user namespace that owns
//! a network namespace no process is left in (as den's supervisor will).
//!
//! Run it as root and as a user (copy the binary where the user can read
//! it): `runuser -u den-sub -- /tmp/pasta-test`. It needs util-linux
//! (unshare, nsenter, setpriv, mount) and iproute2 (ip). Without pasta or a
//! usable /dev/net/tun it skips, except under CI=true.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use den_net::pasta::{self, PastaConfig, Target};
use den_net::ports::{PortMapping, Proto};

/// The outer namespace's made-up uplink (TEST-NET-2).
const OUTER_ADDR: &str = "198.51.100.2/24";
const OUTER_GW: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// What the fake resolver answers for every name.
const FAKE_ANSWER: Ipv4Addr = Ipv4Addr::new(10, 11, 12, 13);
const TIMEOUT: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let rest: Vec<&str> = args.iter().skip(2).map(String::as_str).collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => serve(&rest),
        Some("probe") => return probe(&rest),
        Some("dns") => return dns_probe(&rest),
        Some("outer") => outer(),
        Some("owner") => owner(&rest),
        _ if args.iter().any(|a| a == "--list") => println!("pasta: test"),
        _ => {
            if let Some(why) = unusable() {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("{why}");
                }
                println!("skipped: {why}");
                return ExitCode::SUCCESS;
            }
            publishes_ports_and_keeps_host_loopback_closed();
            host_loopback_and_dns_in_a_network_of_our_own();
            pasta_dies_with_its_owner();
            refuses_busy_and_privileged_ports();
            println!("test result: ok. 4 passed");
        }
    }
    ExitCode::SUCCESS
}

fn unusable() -> Option<String> {
    if let Err(e) = pasta::probe() {
        return Some(e.to_string());
    }
    let tun = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/net/tun");
    tun.err().map(|e| format!("/dev/net/tun: {e}"))
}

// ---- the scenarios ---------------------------------------------------------

/// `-p 127.0.0.1::8000`, `/udp`, a range and `[::1]::8000` reach a server in
/// the namespace; the host's 127.0.0.1 is not the container's; pasta is
/// gone once its handle is.
fn publishes_ports_and_keeps_host_loopback_closed() {
    let container = Holder::new(&["-Urn"]);
    let range = free_consecutive_ports();
    // Debian 12's pasta drops the answers to UDP from the host's loopback
    // when the container port differs from the host port (see the pasta
    // module doc), so the checked UDP mapping keeps the number.
    let udp = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut ports = Vec::new();
    for spec in [
        "127.0.0.1::8000".to_owned(),
        format!("127.0.0.1:{udp}:{udp}/udp"),
        format!("127.0.0.1:{}-{}:8000-8001", range, range + 1),
    ] {
        ports.extend(PortMapping::parse(&spec).expect("parse"));
    }
    let ipv6 = TcpListener::bind("[::1]:0").is_ok();
    if ipv6 {
        ports.extend(PortMapping::parse("[::1]::8000").expect("parse"));
    }
    let config = PastaConfig {
        ports,
        ..PastaConfig::default()
    };
    let started = Instant::now();
    let handle = config.spawn(&Target::Pid(container.pid())).expect("spawn");
    println!("pasta ready in {:?}", started.elapsed());
    assert!(handle.ports().iter().all(|p| p.host_port != 0));
    for p in handle.ports() {
        println!("published {p}");
    }
    let udp = udp.to_string();
    let _server = container.run_self(&["serve", "8000", "8001", &udp], true);

    let host = |p: &PortMapping| SocketAddr::new(p.host_ip.unwrap(), p.host_port);
    for p in handle.ports() {
        let want = format!("{} {}: hello", p.proto, p.container_port);
        let got = match p.proto {
            Proto::Tcp => tcp_exchange(host(p), "hello").expect("tcp through pasta"),
            Proto::Udp => udp_exchange(host(p), "hello").expect("udp through pasta"),
        };
        assert_eq!(got, want, "{p}");
    }
    println!(
        "tcp, udp, range{} published",
        if ipv6 { ", ipv6" } else { "" }
    );
    drop(handle);

    // Not asserted (a fixed pasta answers): UDP to another container port.
    let config = PastaConfig {
        ports: PortMapping::parse("127.0.0.1::8000/udp").expect("parse"),
        ..PastaConfig::default()
    };
    let handle = config.spawn(&Target::Pid(container.pid())).expect("spawn");
    let p = handle.ports()[0];
    let answered = udp_exchange(host(&p), "hello").is_ok();
    println!("udp {p} from the host's loopback: answered: {answered}");

    // The container's loopback is its own: with -T none the host's
    // 127.0.0.1 listeners do not appear there.
    let host_service = Banner::start("127.0.0.1:0", "host loopback");
    let port = host_service.port.to_string();
    let out = container.run_self(&["probe", "127.0.0.1", &port], false);
    let (code, why) = out.wait_output();
    assert_eq!(code, 1, "host 127.0.0.1:{port} seen inside: {why}");
    let own = container.run_self(&["probe", "127.0.0.1", "8000"], false);
    assert_eq!(own.wait_output(), (0, "tcp 8000: ping".to_owned()));
    println!("host 127.0.0.1:{port} not on the container's 127.0.0.1 ({why})");

    report_memory(handle.pid());
    let pid = handle.pid();
    drop(_server);
    drop(container);
    thread::sleep(Duration::from_millis(300));
    println!(
        "pasta after the namespace's processes exited: {}",
        if gone(pid) {
            "exited by itself"
        } else {
            "still running (Debian 12's does not notice)"
        }
    );
    drop(handle);
    assert!(gone(pid), "pasta {pid} outlived its handle");
    println!("pasta gone with its handle");
}

/// In a network namespace of the test's own (so nothing leaves the machine):
/// the gateway does not lead to the host's loopback by default and does
/// with allow_host_loopback; the DNS forwarder answers.
fn host_loopback_and_dns_in_a_network_of_our_own() {
    let status = Command::new("unshare")
        .args(["-Urnm", "--"])
        .arg(std::env::current_exe().expect("current_exe"))
        .arg("outer")
        .status()
        .expect("unshare");
    assert!(status.success(), "outer namespace checks failed: {status}");
}

/// The test's "host": set up the uplink and resolver, then check.
fn outer() {
    for cmd in [
        "ip link set lo up",
        "ip link add v0 type veth peer name v1",
        &format!("ip addr add {OUTER_ADDR} dev v0"),
        "ip link set v0 up",
        "ip link set v1 up",
        &format!("ip route add default via {OUTER_GW}"),
    ] {
        run(cmd);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").expect("write resolv.conf");
    run(&format!(
        "mount --bind {} /etc/resolv.conf",
        resolv.display()
    ));
    let resolver = UdpSocket::bind("127.0.0.1:53").expect("bind the fake resolver");
    thread::spawn(move || fake_resolver(resolver));
    let host_service = Banner::start("127.0.0.1:0", "host loopback");
    let port = host_service.port.to_string();
    assert_eq!(den_net::host::default_gateway_v4(), Some(OUTER_GW));

    // The default, started from outside the container's user namespace.
    let container = Holder::new(&["-Urn"]);
    let config = PastaConfig {
        ipv6: false,
        ..PastaConfig::default()
    };
    let handle = config.spawn(&Target::Pid(container.pid())).expect("spawn");
    assert_eq!(handle.host_loopback_address(), None);
    let gw = OUTER_GW.to_string();
    let out = container
        .run_self(&["probe", &gw, &port], false)
        .wait_output();
    assert_eq!(out.0, 1, "host loopback reached through {gw}: {out:?}");
    println!(
        "default: host 127.0.0.1:{port} not at the gateway {gw} ({})",
        out.1
    );
    let dns = handle.dns_address().expect("dns address").to_string();
    let out = container.run_self(&["dns", &dns], false).wait_output();
    assert_eq!(out, (0, format!("{FAKE_ANSWER} from {dns}")));
    println!("dns: the resolver answers at {dns}");
    drop(handle);

    // Opened, and started the way den's supervisor would: from the user
    // namespace that owns the network namespace, which a helper created and
    // left (only a descriptor keeps it), handing over that descriptor.
    let helper = Holder::new(&["-n"]);
    let netns = std::fs::File::open(format!("/proc/{}/ns/net", helper.pid())).expect("netns");
    drop(helper);
    let config = PastaConfig {
        allow_host_loopback: true,
        ..config
    };
    let handle = config
        .spawn(&Target::NetnsFd(netns.as_fd()))
        .expect("spawn with a netns descriptor");
    let host_addr = handle.host_loopback_address().expect("host address");
    assert_eq!(host_addr, OUTER_GW);
    let path = format!("/proc/{}/fd/{}", std::process::id(), netns.as_raw_fd());
    let enter = [format!("--net={path}")];
    let out = run_helper(&enter, &["probe", &host_addr.to_string(), &port], false);
    assert_eq!(out.wait_output(), (0, "host loopback".to_owned()));
    println!("allow_host_loopback: host 127.0.0.1:{port} reachable at {host_addr}");
    let out = run_helper(&enter, &["dns", &dns], false).wait_output();
    assert_eq!(out.0, 0, "{out:?}");
}

/// Killing pasta's owner (as if den's supervisor died) kills pasta.
fn pasta_dies_with_its_owner() {
    let container = Holder::new(&["-Urn"]);
    let mut owner = Command::new(std::env::current_exe().expect("current_exe"))
        .args(["owner", &container.pid().to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("owner");
    let mut line = String::new();
    BufReader::new(owner.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("owner's report");
    let pid: u32 = line.trim().parse().expect("pasta pid from the owner");
    assert!(!gone(pid));
    owner.kill().expect("kill the owner");
    owner.wait().ok();
    let deadline = Instant::now() + TIMEOUT;
    while !gone(pid) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(gone(pid), "pasta {pid} outlived its owner");
    println!("pasta died with its owner");
}

/// A busy host port and (for a user) a privileged one are one-line errors
/// before anything starts.
fn refuses_busy_and_privileged_ports() {
    let container = Holder::new(&["-Urn"]);
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let mut cases = vec![(
        format!("127.0.0.1:{port}:80"),
        format!("host port 127.0.0.1:{port}/tcp is already in use"),
    )];
    if !den_net::host::can_bind_privileged_ports() {
        cases.push((
            "127.0.0.1:80:80".to_owned(),
            "net.ipv4.ip_unprivileged_port_start".to_owned(),
        ));
    }
    for (spec, want) in cases {
        let config = PastaConfig {
            ports: PortMapping::parse(&spec).expect("parse"),
            ..PastaConfig::default()
        };
        let err = config
            .spawn(&Target::Pid(container.pid()))
            .expect_err(&spec)
            .to_string();
        assert!(err.contains(&want) && !err.contains('\n'), "{spec}: {err}");
        println!("-p {spec}: {err}");
    }
}

/// The owner: start pasta, report its pid, wait to be killed.
fn owner(args: &[&str]) {
    let pid = args[0].parse().expect("pid");
    let handle = PastaConfig::default()
        .spawn(&Target::Pid(pid))
        .expect("spawn");
    println!("{}", handle.pid());
    std::io::stdout().flush().ok();
    std::mem::forget(handle);
    thread::sleep(Duration::from_secs(60));
}

// ---- helpers run inside the namespaces ------------------------------------

/// TCP and UDP servers on each port: a line `x` gets `tcp PORT: x` back, a
/// datagram `x` gets `udp PORT: x`.
fn serve(ports: &[&str]) {
    for port in ports {
        let port: u16 = port.parse().expect("port");
        let tcp = TcpListener::bind(("::", port)).expect("bind tcp");
        let udp = UdpSocket::bind(("::", port)).expect("bind udp");
        thread::spawn(move || {
            for conn in tcp.incoming().flatten() {
                thread::spawn(move || {
                    let mut line = String::new();
                    let mut conn = BufReader::new(conn);
                    conn.read_line(&mut line).ok();
                    let reply = format!("tcp {port}: {}\n", line.trim());
                    conn.get_mut().write_all(reply.as_bytes()).ok();
                });
            }
        });
        thread::spawn(move || {
            let mut buf = [0; 512];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]);
                let reply = format!("udp {port}: {text}");
                udp.send_to(reply.as_bytes(), from).ok();
            }
        });
    }
    println!("ready");
    std::io::stdout().flush().ok();
    thread::sleep(Duration::from_secs(120));
}

/// Connects to ADDR PORT, sends `ping`, prints the reply line. Exit 0 with a
/// reply, 1 when the connection fails or times out.
fn probe(args: &[&str]) -> ExitCode {
    let addr = SocketAddr::new(
        args[0].parse().expect("addr"),
        args[1].parse().expect("port"),
    );
    match tcp_exchange(addr, "ping") {
        Ok(reply) => {
            println!("{reply}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Asks the resolver at ADDR for an A record; prints `ANSWER from SOURCE`.
fn dns_probe(args: &[&str]) -> ExitCode {
    let server = SocketAddr::new(args[0].parse().expect("addr"), 53);
    let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
    sock.set_read_timeout(Some(TIMEOUT)).ok();
    let mut query = vec![0xd3, 0x17, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["den-test", "example"] {
        query.push(label.len() as u8);
        query.extend(label.as_bytes());
    }
    query.extend([0, 0, 1, 0, 1]);
    sock.send_to(&query, server).expect("send");
    let mut buf = [0; 512];
    match sock.recv_from(&mut buf) {
        Ok((n, from)) if n >= 4 && buf[..2] == query[..2] => {
            let answer = Ipv4Addr::new(buf[n - 4], buf[n - 3], buf[n - 2], buf[n - 1]);
            println!("{answer} from {}", from.ip());
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("no answer from {server}: {other:?}");
            ExitCode::from(1)
        }
    }
}

/// Answers every query with one A record, FAKE_ANSWER.
fn fake_resolver(sock: UdpSocket) {
    let mut buf = [0; 512];
    while let Ok((n, from)) = sock.recv_from(&mut buf) {
        let mut reply = buf[..n].to_vec();
        reply[2] = 0x81;
        reply[3] = 0x80;
        reply[7] = 1; // one answer
        reply.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend(FAKE_ANSWER.octets());
        sock.send_to(&reply, from).ok();
    }
}

// ---- plumbing ---------------------------------------------------------------

/// A process holding new namespaces (`unshare FLAGS sleep`), killed on drop.
struct Holder(Child);

impl Holder {
    fn new(flags: &[&str]) -> Holder {
        let child = Command::new("unshare")
            .args(flags)
            .args(["sleep", "120"])
            .spawn()
            .expect("unshare");
        let holder = Holder(child);
        // unshare execs sleep once the namespaces exist.
        let deadline = Instant::now() + TIMEOUT;
        while !std::fs::read_link(format!("/proc/{}/exe", holder.pid()))
            .is_ok_and(|e| e.ends_with("sleep"))
        {
            assert!(Instant::now() < deadline, "unshare {flags:?} did not start");
            thread::sleep(Duration::from_millis(5));
        }
        holder
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Runs this test binary with `args` in the holder's namespaces; with
    /// `wait_ready`, until it prints `ready`.
    fn run_self(&self, args: &[&str], wait_ready: bool) -> Helper {
        let pid = self.pid().to_string();
        let mut enter = vec!["-n".to_owned(), "-t".to_owned(), pid];
        if !same_ns("user", self.pid()) {
            enter.push("-U".to_owned());
        }
        run_helper(&enter, args, wait_ready)
    }
}

/// Runs this test binary with `args` under `nsenter ENTER`.
fn run_helper(enter: &[String], args: &[&str], wait_ready: bool) -> Helper {
    let mut child = Command::new("nsenter")
        .arg("--preserve-credentials")
        .args(enter)
        .arg(std::env::current_exe().expect("current_exe"))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("nsenter");
    if wait_ready {
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.as_mut().unwrap());
        out.read_line(&mut line).expect("read");
        assert_eq!(line, "ready\n", "helper {args:?}");
    }
    Helper(child)
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// A helper started in the namespaces; killed on drop.
struct Helper(Child);

impl Helper {
    fn wait_output(mut self) -> (i32, String) {
        let mut out = String::new();
        self.0.stdout.take().unwrap().read_to_string(&mut out).ok();
        let status = self.0.wait().expect("wait");
        (status.code().unwrap_or(-1), out.trim().to_owned())
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// A TCP listener on the host that answers every client's line with a
/// fixed one.
struct Banner {
    port: u16,
}

impl Banner {
    fn start(addr: &str, text: &'static str) -> Banner {
        let listener = TcpListener::bind(addr).expect("bind");
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                // Read the client's line first: closing with unread data
                // would send a reset that can overtake the answer.
                let mut conn = BufReader::new(conn);
                conn.read_line(&mut String::new()).ok();
                conn.get_mut()
                    .write_all(format!("{text}\n").as_bytes())
                    .ok();
            }
        });
        Banner { port }
    }
}

fn tcp_exchange(addr: SocketAddr, text: &str) -> std::io::Result<String> {
    let mut conn = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    conn.set_read_timeout(Some(TIMEOUT))?;
    conn.write_all(format!("{text}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line)?;
    if line.is_empty() {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim().to_owned())
}

fn udp_exchange(addr: SocketAddr, text: &str) -> std::io::Result<String> {
    let local: SocketAddr = match addr.ip() {
        IpAddr::V4(_) => (Ipv4Addr::LOCALHOST, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::LOCALHOST, 0).into(),
    };
    let sock = UdpSocket::bind(local)?;
    sock.set_read_timeout(Some(Duration::from_millis(300)))?;
    let mut buf = [0; 512];
    // pasta binds its UDP sockets before it is ready, but the first
    // datagram of a flow may race the namespace side: retry a few times.
    for _ in 0..5 {
        sock.send_to(text.as_bytes(), addr)?;
        if let Ok(n) = sock.recv(&mut buf) {
            return Ok(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    Err(std::io::ErrorKind::TimedOut.into())
}

/// A host port p with p+1 free too, for the range mapping.
fn free_consecutive_ports() -> u16 {
    for _ in 0..50 {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < u16::MAX && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two consecutive free ports");
}

fn same_ns(kind: &str, pid: u32) -> bool {
    let ino = |p: String| std::fs::read_link(p).ok();
    ino(format!("/proc/self/ns/{kind}")) == ino(format!("/proc/{pid}/ns/{kind}"))
}

/// Gone: no such process, or a zombie nobody reaped yet.
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn report_memory(pid: u32) {
    let path = format!("/proc/{pid}/smaps_rollup");
    let Ok(text) = std::fs::read_to_string(Path::new(&path)) else {
        return;
    };
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map_or("?".to_owned(), |v| v.trim().to_owned())
    };
    println!("pasta {pid}: Rss {}, Pss {}", field("Rss:"), field("Pss:"));
}

fn run(cmd: &str) {
    let mut words = cmd.split_whitespace();
    let status = Command::new(words.next().unwrap())
        .args(words)
        .status()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(status.success(), "{cmd}: {status}");
}
