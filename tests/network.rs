//! `--network private` (den's default), as the unprivileged test users:
//! published ports (tcp, udp, -P), outbound access and DNS, the host's
//! loopback closed by default and opened with host-gateway, cleanup.
//! Traffic goes only to loopback, the container's own namespace, and
//! Debian's package mirror (apt-get update).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use sha2::Digest as _;

use den_tests::{
    UserSandbox, assert_address, assert_default_route, free_port, inspect, ip_in, mirrored_sandbox,
    require_env, require_shared, retry, sandbox, stdout, wait_for,
};

/// How long a published service may take to answer.
const UP: Duration = Duration::from_secs(20);

/// `GET /` over HTTP/1.0 on a loopback port: the whole answer once it is a
/// 200.
fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.contains("200 OK").then_some(out)
}

#[test]
fn published_tcp_udp_and_all_exposed_ports() {
    let env = require_env!();
    let sb = sandbox(&env);
    let port = free_port();
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{port}:8000"),
        "python:3.11-slim",
        "python3",
        "-m",
        "http.server",
        "8000",
    ]);
    let body = retry("the http server", UP, || http_get(port));
    assert!(body.contains("Directory listing"), "{body}");
    assert_eq!(
        sb.den_ok(&["port", "web"]).trim(),
        format!("8000/tcp -> 127.0.0.1:{port}")
    );
    assert!(
        sb.den_ok(&["ps"])
            .contains(&format!("127.0.0.1:{port}->8000/tcp"))
    );
    let ports = &serde_json::from_str::<serde_json::Value>(&sb.den_ok(&["inspect", "web"]))
        .unwrap()[0]["NetworkSettings"]["Ports"];
    assert_eq!(ports["8000/tcp"][0]["HostPort"], port.to_string());
    // The same port twice is refused with one line, nothing started.
    let err = sb.den_fail(
        &[
            "run",
            "--rm",
            "-p",
            &format!("127.0.0.1:{port}:80"),
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("in use"), "{err}");
    sb.den_ok(&["rm", "-f", "web"]);
    // UDP echo (same port number inside and out: see den_net::pasta on this pasta's UDP).
    let uport = free_port();
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',{uport}))\nwhile True:\n d,a=s.recvfrom(100)\n s.sendto(b'echo:'+d,a)\n"
    );
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "udp",
        "-p",
        &format!("127.0.0.1:{uport}:{uport}/udp"),
        "python:3.11-slim",
        "python3",
        "-c",
        &script,
    ]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let reply = retry("the udp echo", UP, || {
        sock.send_to(b"ping", ("127.0.0.1", uport)).ok()?;
        let mut buf = [0u8; 64];
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    });
    assert_eq!(reply, "echo:ping");
    sb.den_ok(&["rm", "-f", "udp"]);
    // -P publishes what the image EXPOSEs (mariadb: 3306/tcp) on a random port.
    sb.den_ok(&[
        "run",
        "-d",
        "-P",
        "--name",
        "db",
        "--entrypoint",
        "sleep",
        "mariadb:10.11",
        "100",
    ]);
    let shown = sb.den_ok(&["port", "db", "3306"]);
    assert!(shown.trim().starts_with("0.0.0.0:"), "{shown}");
    sb.den_ok(&["rm", "-f", "db"]);
}

/// A container made by the den before typed specs (ports in `-p` syntax,
/// the health check as the argv it ran) still starts, publishes its port,
/// stops and is removed.
#[test]
fn a_container_with_an_older_spec_still_starts() {
    let env = require_env!();
    let sb = sandbox(&env);
    let port = free_port();
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "old",
        "-p",
        &format!("127.0.0.1:{port}:8000"),
        "--cap-add",
        "NET_ADMIN",
        "--health-cmd",
        "true",
        "python:3.11-slim",
        "python3",
        "-m",
        "http.server",
        "8000",
    ]);
    sb.den_ok(&["stop", "old"]);
    let inspect = || {
        serde_json::from_str::<serde_json::Value>(&sb.den_ok(&["inspect", "old"])).unwrap()[0]
            .clone()
    };
    let id = inspect()["Id"].as_str().unwrap().to_owned();
    let path = sb.root().join("containers").join(&id).join("spec.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    // This den writes typed values; rewrite them as the older den did.
    let net = &mut spec["network"]["Private"];
    assert!(net["ports"][0].is_object(), "{net}");
    net["ports"] = serde_json::json!([format!("127.0.0.1:{port}:8000/tcp")]);
    assert_eq!(spec["health"]["test"], serde_json::json!({"shell": "true"}));
    spec["health"]["test"] = serde_json::json!(["/bin/sh", "-c", "true"]);
    assert!(
        spec["security"]["capabilities"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("CAP_NET_ADMIN")),
        "{spec}"
    );
    // In place: the owner and mode (0600) stay.
    std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
    sb.den_ok(&["start", "old"]);
    let body = retry("the http server of the old container", UP, || {
        http_get(port)
    });
    assert!(body.contains("Directory listing"), "{body}");
    let v = inspect();
    assert_eq!(v["State"]["Status"], "running", "{v}");
    assert_eq!(
        v["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "/bin/sh", "-c", "true"])
    );
    assert!(
        v["HostConfig"]["CapAdd"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("CAP_NET_ADMIN")),
        "{v}"
    );
    let out = sb.den_ok(&["exec", "old", "grep", "CapEff", "/proc/1/status"]);
    // CAP_NET_ADMIN is bit 12: kept from the old spec's names.
    let eff = u64::from_str_radix(out.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_ne!(eff & (1 << 12), 0, "{out}");
    sb.den_ok(&["stop", "old"]);
    sb.den_ok(&["rm", "old"]);
    assert_eq!(sb.den_ok(&["ps", "-aq"]), "");
}

/// An OCI layout in the user's home: the shared busybox's layers under a
/// config whose ExposedPorts are `keys`, named `exposing:1`.
fn exposing_busybox(sb: &UserSandbox, oci: &std::path::Path, keys: &[&str]) -> String {
    let read = |d: &str| std::fs::read(oci.join("blobs/sha256").join(&d[7..])).unwrap();
    let json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap();
    let index = json(&std::fs::read(oci.join("index.json")).unwrap());
    let desc = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "busybox:latest")
        .unwrap();
    let mut manifest = json(&read(desc["digest"].as_str().unwrap()));
    let mut config = json(&read(manifest["config"]["digest"].as_str().unwrap()));
    let exposed: serde_json::Map<_, _> = keys
        .iter()
        .map(|k| (k.to_string(), serde_json::json!({})))
        .collect();
    config["config"]["ExposedPorts"] = exposed.into();
    let put = |bytes: &[u8]| {
        let d = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
        sb.write_file(format!("exposing/blobs/sha256/{}", &d[7..]), bytes);
        (d, bytes.len())
    };
    for l in manifest["layers"].as_array().unwrap() {
        put(&read(l["digest"].as_str().unwrap()));
    }
    let (d, n) = put(&serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = d.into();
    manifest["config"]["size"] = n.into();
    let (d, n) = put(&serde_json::to_vec(&manifest).unwrap());
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": n,
        "annotations": {"org.opencontainers.image.ref.name": "exposing:1"}}]});
    sb.write_file("exposing/oci-layout", r#"{"imageLayoutVersion":"1.0.0"}"#);
    sb.write_file("exposing/index.json", serde_json::to_vec(&index).unwrap());
    sb.home().join("exposing").to_str().unwrap().to_string()
}

/// `-P` takes only `PORT[/PROTO]` from an image: a key that names a host
/// address and port is ignored with a warning, the others are published on
/// random ports of every address.
#[test]
fn publish_all_takes_only_port_and_proto_from_the_image() {
    let env = require_env!();
    let shared = require_shared!(env);
    let sb = sandbox(&env);
    let hostile = "127.0.0.1:18082:80/tcp";
    let layout = exposing_busybox(&sb, &shared.join("images/oci"), &[hostile, "8000/tcp"]);
    sb.den_ok(&["load", "-i", &layout]);
    let out = sb.den(&[
        "run",
        "-d",
        "-P",
        "--name",
        "exp",
        "exposing:1",
        "sleep",
        "100",
    ]);
    assert!(out.status.success(), "{}", den_tests::stderr(&out));
    assert_eq!(
        den_tests::stderr(&out).trim(),
        format!(
            "den: warning: -P ignores the image's exposed port \"{hostile}\": \
             an image may only expose PORT or PORT/PROTO"
        )
    );
    let shown = sb.den_ok(&["port", "exp"]);
    assert_eq!(shown.lines().count(), 1, "{shown}");
    assert!(shown.starts_with("8000/tcp -> 0.0.0.0:"), "{shown}");
    assert!(!shown.contains("18082"), "{shown}");
    sb.den_ok(&["rm", "-f", "exp"]);
}

#[test]
fn privileged_host_port_is_refused_with_the_sysctl() {
    let env = require_env!();
    let sb = sandbox(&env);
    let err = sb.den_fail(&["run", "--rm", "-p", "80:80", "busybox", "true"], 125);
    assert!(err.contains("ip_unprivileged_port_start"), "{err}");
    let err = sb.den_fail(&["run", "--rm", "-p", "abc", "busybox", "true"], 125);
    assert_eq!(err.lines().count(), 1, "{err}");
    let err = sb.den_fail(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-p",
            "8080:80",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("private network"), "{err}");
}

#[test]
fn outbound_dns_and_apt_get_update() {
    let env = require_env!();
    let sb = sandbox(&env);
    let out = sb.den(&[
        "run",
        "--rm",
        "debian:bookworm-slim",
        "sh",
        "-c",
        "cat /etc/resolv.conf; getent hosts deb.debian.org && apt-get update -q 2>&1 | tail -3",
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", den_tests::stderr(&out));
    assert!(text.contains("nameserver 169.254.1.1"), "{text}");
    assert!(text.contains("Reading package lists"), "{text}");
}

#[test]
fn host_loopback_is_closed_by_default_and_opened_by_host_gateway() {
    let env = require_env!();
    let sb = sandbox(&env);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let _ = (&s).write_all(b"host secret\n");
        }
    });
    // The gateway address is where pasta would map the host's loopback.
    let probe = |host: &str| {
        format!(
            "import socket,sys\ntry:\n s=socket.create_connection(('{host}',{port}),timeout=2); print(s.recv(64).decode().strip())\nexcept OSError as e:\n print('refused', e)\n"
        )
    };
    let gw = "[l.split()[2] for l in open('/proc/net/route') if l.split()[1]=='00000000'][0]";
    let default_gw = format!(
        "import socket,struct\ngw={gw}\nip=socket.inet_ntoa(struct.pack('<I',int(gw,16)))\n"
    ) + &probe("127.0.0.1").replace("'127.0.0.1'", "ip");
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "python:3.11-slim",
        "python3",
        "-c",
        &default_gw,
    ]);
    assert!(
        out.contains("refused"),
        "the gateway must not lead to the host's loopback: {out}"
    );
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "python:3.11-slim",
        "python3",
        "-c",
        &probe("127.0.0.1"),
    ]);
    assert!(
        out.contains("refused"),
        "the container's own loopback is its own: {out}"
    );
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "--add-host",
        "host.containers.internal:host-gateway",
        "python:3.11-slim",
        "python3",
        "-c",
        &probe("host.containers.internal"),
    ]);
    assert_eq!(out.trim(), "host secret", "opted in");
}

#[test]
fn network_helpers_are_gone_after_rm() {
    let env = require_env!();
    let sb = sandbox(&env);
    den_tests::run_sleeper(&sb, "n1", &[], "100");
    let id = serde_json::from_str::<serde_json::Value>(&sb.den_ok(&["inspect", "n1"])).unwrap()[0]
        ["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(sb.root().join("containers").join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    let supervisor = state["supervisor_pid"].as_i64().unwrap();
    let children =
        std::fs::read_to_string(format!("/proc/{supervisor}/task/{supervisor}/children")).unwrap();
    let pasta: Vec<String> = children
        .split_whitespace()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim().starts_with("pas") || c.trim() == "setpriv")
        })
        .map(String::from)
        .collect();
    assert_eq!(
        pasta.len(),
        1,
        "one pasta per container, owned by its supervisor: {children}"
    );
    sb.den_ok(&["rm", "-f", "n1"]);
    wait_for("pasta to end after rm", Duration::from_secs(5), || {
        !std::path::Path::new(&format!("/proc/{}", pasta[0])).exists()
    });
    let out = sb.den_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "cat",
        "/proc/net/dev",
    ]);
    assert!(
        !out.contains("eth0"),
        "--network none has only loopback: {out}"
    );
}

/// `--network none` is a namespace with a working loopback, as in Docker:
/// `lo` up with 127.0.0.1, so a service in the container reaches another
/// one over it (a new network namespace starts with `lo` down); ICMP
/// "ping sockets" are open to the container's groups, as on den's other
/// networks (the kernel's default, `1 0`, reads `65534 65534` inside).
#[test]
fn none_has_its_loopback_up() {
    let env = require_env!();
    for sub in [true, false] {
        let sb = mirrored_sandbox(&env, sub, true);
        let out = sb.den_ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "ip -o link show lo; ip -o -4 addr show lo; \
             httpd -p 127.0.0.1:7777 -h /etc && wget -qO- http://127.0.0.1:7777/hostname; \
             cat /etc/hostname /proc/sys/net/ipv4/ping_group_range",
        ]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "sub={sub}: {out}");
        assert!(
            lines[0].contains("<LOOPBACK,UP,LOWER_UP>"),
            "sub={sub}: lo is up: {out}"
        );
        assert!(lines[1].contains("inet 127.0.0.1/8"), "sub={sub}: {out}");
        assert_eq!(
            lines[2], lines[3],
            "sub={sub}: served over 127.0.0.1: {out}"
        );
        let top = if sub { "65535" } else { "0" };
        assert_eq!(lines[4], format!("0\t{top}"), "sub={sub}: {out}");
    }
}

/// `den network inspect NET`'s answer (an array of one object).
fn network_inspect(sb: &UserSandbox, net: &str) -> serde_json::Value {
    serde_json::from_str(&sb.den_ok(&["network", "inspect", net])).unwrap()
}

/// Asserts that network `net` has `n` members.
fn assert_members(sb: &UserSandbox, net: &str, n: usize) {
    let v = network_inspect(sb, net);
    assert_eq!(v[0]["Containers"].as_object().unwrap().len(), n, "{v}");
}

/// Container `ctr`'s networks, as `den inspect` shows them.
fn networks_of(sb: &UserSandbox, ctr: &str) -> serde_json::Value {
    inspect(sb, ctr)["NetworkSettings"]["Networks"].clone()
}

fn network_ip(sb: &UserSandbox, network: &str, name: &str) -> String {
    network_inspect(sb, network)[0]["Containers"]
        .as_object()
        .unwrap()
        .values()
        .find(|c| c["Aliases"].as_array().unwrap().iter().any(|a| a == name))
        .unwrap()["IPv4Address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

/// User networks: names and aliases, own addresses (both on port 80),
/// published ports, isolation between networks, outbound DNS, one shared
/// helper, nothing left after rm.
#[test]
fn user_networks_connect_by_name_and_stay_apart() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&["network", "create", "front"]);
    sb.den_ok(&["network", "create", "back"]);
    let err = sb.den_fail(&["network", "create", "front"], 125);
    assert!(err.contains("already exists"), "{err}");
    let port = free_port();
    let py = "python:3.11-slim";
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "a",
        "--network",
        "front",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        py,
        "python3",
        "-m",
        "http.server",
        "80",
    ]);
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "b",
        "--network",
        "front",
        "--network-alias",
        "bee",
        py,
        "python3",
        "-m",
        "http.server",
        "80",
    ]);
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "c",
        "--network",
        "back",
        py,
        "python3",
        "-m",
        "http.server",
        "80",
    ]);
    let (ip_a, ip_b) = (network_ip(&sb, "front", "a"), network_ip(&sb, "front", "b"));
    assert_ne!(ip_a, ip_b, "each container has its own address");
    let fetch = |url: &str| {
        format!("import urllib.request as u\nprint(u.urlopen('{url}', timeout=5).status)")
    };
    let status = retry("b by name from a", UP, || {
        let out = sb.den(&["exec", "a", "python3", "-c", &fetch("http://bee/")]);
        out.status.success().then(|| stdout(&out))
    });
    assert_eq!(status.trim(), "200");
    assert_eq!(
        sb.den_ok(&["exec", "b", "python3", "-c", &fetch("http://a:80/")])
            .trim(),
        "200"
    );
    // Published from a user network.
    let body = retry("a through its published port", UP, || http_get(port));
    assert!(body.contains("Directory listing"));
    // Another network reaches neither the names nor the addresses; the
    // refusal happens in den's own namespaces (nothing leaves the machine).
    let probe = format!(
        "import socket\ns=socket.socket(); s.settimeout(3)\ntry:\n s.connect(('{ip_b}',80)); print('reached')\nexcept OSError as e: print('refused')\n"
    );
    assert_eq!(
        sb.den_ok(&["exec", "c", "python3", "-c", &probe]).trim(),
        "refused"
    );
    assert!(
        !sb.den(&["exec", "c", "getent", "hosts", "bee"])
            .status
            .success()
    );
    // Outbound DNS through the network's one pasta.
    assert!(
        sb.den(&["exec", "a", "getent", "hosts", "deb.debian.org"])
            .status
            .success()
    );
    let err = sb.den_fail(&["network", "rm", "front"], 125);
    assert!(err.contains("in use"), "{err}");
    // A removed member leaves the others' /etc/hosts.
    sb.den_ok(&["rm", "-f", "b"]);
    assert!(
        !sb.den_ok(&["exec", "a", "cat", "/etc/hosts"])
            .contains("bee")
    );
    sb.den_ok(&["rm", "-f", "a", "c"]);
    sb.den_ok(&["network", "rm", "front", "back"]);
    assert_eq!(sb.den_ok(&["network", "ls", "-q"]).trim(), "");
    let t = Instant::now();
    loop {
        let left = den_tests::den_processes_left(&sb);
        if left.is_empty() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "network helpers left: {left}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A line from a published port of a user network: the reply, or what the
/// client saw instead (`EOF` when the proxy closed it unanswered, `reset`).
fn ask_published(port: u16) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return "refused".into();
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"hello\n").ok();
    s.shutdown(std::net::Shutdown::Write).ok();
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) if out.is_empty() => "EOF".into(),
        Ok(_) => String::from_utf8_lossy(&out).trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => "reset".into(),
        Err(e) => format!("error: {e}"),
    }
}

/// Two services in one container, one on loopback only and one on every
/// address, each answering with the client's address. Only the second is
/// reachable through its published port, and it sees the network's
/// gateway, never 127.0.0.1.
#[test]
fn user_network_ports_reach_the_container_address_not_its_loopback() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&["network", "create", "pub"]);
    let (lo, all) = (free_port(), free_port());
    let server = "import socket,threading\n\
        def serve(addr):\n s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(addr); s.listen(8)\n while True:\n  c,a=s.accept(); c.recv(64); c.sendall(('from '+a[0]+'\\n').encode()); c.close()\n\
        threading.Thread(target=serve,args=(('127.0.0.1',7001),)).start()\n\
        serve(('0.0.0.0',7002))\n";
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "svc",
        "--network",
        "pub",
        "-p",
        &format!("127.0.0.1:{lo}:7001"),
        "-p",
        &format!("127.0.0.1:{all}:7002"),
        "python:3.11-slim",
        "python3",
        "-c",
        server,
    ]);
    let gateway = network_ip(&sb, "pub", "svc")
        .rsplit_once('.')
        .map(|(net, _)| format!("{net}.1"))
        .unwrap();
    let reply = retry("the service on every address", UP, || {
        let r = ask_published(all);
        r.starts_with("from").then_some(r)
    });
    assert_eq!(reply, format!("from {gateway}"));
    // The loopback-only service: the proxy's connection to the container's
    // address is refused, and the client's connection is closed unanswered.
    assert_eq!(ask_published(lo), "EOF");
    // From inside, the loopback service does answer (so the refusal above
    // is the proxy's target, not a dead service).
    let inside = "import socket\ns=socket.create_connection(('127.0.0.1',7001)); s.sendall(b'x'); print(s.recv(64).decode().strip())";
    assert_eq!(
        sb.den_ok(&["exec", "svc", "python3", "-c", inside]).trim(),
        "from 127.0.0.1"
    );
    sb.den_ok(&["rm", "-f", "svc"]);
    sb.den_ok(&["network", "rm", "pub"]);
}

/// The proxy of published ports: a client holding hundreds of idle
/// connections does not keep a new client out, and the proxy process has no
/// capabilities, no new privileges and a seccomp filter.
#[test]
fn user_network_proxy_is_bounded_and_confined() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&["network", "create", "busy"]);
    let port = free_port();
    let server = "import socket,threading\n\
        def one(c):\n while True:\n  d=c.recv(64)\n  if not d: c.close(); return\n  c.sendall(b'echo:'+d)\n\
        s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(('0.0.0.0',7003)); s.listen(1024)\n\
        while True:\n c,a=s.accept(); threading.Thread(target=one,args=(c,),daemon=True).start()\n";
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "echo",
        "--network",
        "busy",
        "-p",
        &format!("127.0.0.1:{port}:7003"),
        "python:3.11-slim",
        "python3",
        "-c",
        server,
    ]);
    retry("the echo service", UP, || {
        (ask_published(port) == "echo:hello").then_some(())
    });
    let idle: Vec<TcpStream> = (0..600)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(idle.len() > 500, "{} idle connections", idle.len());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(ask_published(port), "echo:hello", "a new client is served");
    drop(idle);
    // The proxy: one of the supervisor's children.
    let id = serde_json::from_str::<serde_json::Value>(&sb.den_ok(&["inspect", "echo"])).unwrap()
        [0]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(sb.root().join("containers").join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    let (sup, ctr) = (
        state["supervisor_pid"].as_i64().unwrap(),
        state["pid"].as_i64().unwrap(),
    );
    let children = std::fs::read_to_string(format!("/proc/{sup}/task/{sup}/children")).unwrap();
    // Not the container, nor the guard (a fork that stays in the
    // supervisor's namespaces): the proxy runs in the network's namespace.
    let netns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    let own = netns(&sup.to_string());
    let proxy: Vec<&str> = children
        .split_whitespace()
        .filter(|p| *p != ctr.to_string() && netns(p) != own)
        .collect();
    assert_eq!(proxy.len(), 1, "{children}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", proxy[0])).unwrap();
    for want in [
        "CapEff:\t0000000000000000",
        "CapPrm:\t0000000000000000",
        "CapBnd:\t0000000000000000",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
    ] {
        assert!(status.lines().any(|l| l == want), "{want} in\n{status}");
    }
    sb.den_ok(&["rm", "-f", "echo"]);
    sb.den_ok(&["network", "rm", "busy"]);
}

/// Sends raw frames from inside a container (needs NET_RAW): ARP requests
/// for the gateway telling `arp_ip`, and UDP datagrams to `udp_to` (ip,
/// mac, port) from `udp_from`, each payload naming its case.
const RAW_SENDER: &str = r#"
import socket,struct,sys
arp_ip,gw,to_ip,to_mac,to_port,udp_from,tag=sys.argv[1:8]
s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)
s.bind(('eth0',0))
me=s.getsockname()[4]
a=socket.inet_aton
arp=struct.pack('!HHBBH6s4s6s4s',1,0x0800,6,4,1,me,a(arp_ip),b'\0'*6,a(gw))
s.send(b'\xff'*6+me+b'\x08\x06'+arp)
def csum(h):
    t=sum(struct.unpack('!10H',h)); t=(t>>16)+(t&0xffff); t+=t>>16
    return (~t)&0xffff
data=tag.encode()
udp=struct.pack('!HHHH',40000,int(to_port),8+len(data),0)+data
ip=struct.pack('!BBHHHBBH4s4s',0x45,0,20+len(udp),1,0,64,17,0,a(udp_from),a(to_ip))
ip=ip[:10]+struct.pack('!H',csum(ip))+ip[12:]
s.send(bytes.fromhex(to_mac.replace(':',''))+me+b'\x08\x00'+ip+udp)
print('sent',tag)
"#;

fn infra_neigh(sb: &UserSandbox, network: &str, ip: &str) -> String {
    let infra: serde_json::Value = serde_json::from_slice(
        &std::fs::read(sb.root().join("networks").join(network).join("infra.json")).unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net=/proc/{}/ns/net", infra["pid"]))
        .args(["ip", "neigh", "show", ip])
        .output()
        .unwrap();
    stdout(&out)
}

/// A container with NET_RAW can send only as itself on a user network: a
/// forged ARP (another container's address with its own MAC) does not
/// reach the gateway's neighbour table and a datagram with another
/// container's source address is not delivered, while the same frames with
/// its own address are. Without `--cap-add` it has no raw sockets at all.
#[test]
fn user_network_ports_drop_spoofed_arp_and_ip() {
    let env = require_env!();
    let sb = sandbox(&env);
    let py = "python:3.11-slim";
    let err = sb.den_fail(
        &[
            "run",
            "--rm",
            py,
            "python3",
            "-c",
            "import socket\nsocket.socket(socket.AF_PACKET,socket.SOCK_RAW)",
        ],
        1,
    );
    assert!(
        err.contains("PermissionError: [Errno 1] Operation not permitted"),
        "NET_RAW is not in the default set: {err}"
    );
    // ping works without it: ping sockets are open to the container's groups.
    let ping = "import socket\nsocket.socket(socket.AF_INET,socket.SOCK_DGRAM,socket.IPPROTO_ICMP)\nprint(open('/proc/sys/net/ipv4/ping_group_range').read().split())";
    assert_eq!(
        sb.den_ok(&["run", "--rm", py, "python3", "-c", ping])
            .trim(),
        "['0', '65535']"
    );
    sb.den_ok(&["network", "create", "lan"]);
    let recv = "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('0.0.0.0',9999))\nwhile True:\n d,a=s.recvfrom(64); print(a[0],d.decode(),flush=True)\n";
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "victim",
        "--network",
        "lan",
        py,
        "sleep",
        "300",
    ]);
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "recv",
        "--network",
        "lan",
        py,
        "python3",
        "-c",
        recv,
    ]);
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "evil",
        "--network",
        "lan",
        "--cap-add",
        "NET_RAW",
        py,
        "sleep",
        "300",
    ]);
    let ip = |n| network_ip(&sb, "lan", n);
    let (victim, recv_ip, evil) = (ip("victim"), ip("recv"), ip("evil"));
    let gw = format!("{}.1", victim.rsplit_once('.').unwrap().0);
    // SIOCGIFHWADDR (the container's /sys shows another namespace's links).
    let hwaddr = "import socket,fcntl,struct\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nprint(fcntl.ioctl(s.fileno(),0x8927,struct.pack('256s',b'eth0'))[18:24].hex(':'))";
    let mac = |n| {
        sb.den_ok(&["exec", n, "python3", "-c", hwaddr])
            .trim()
            .to_string()
    };
    let (recv_mac, evil_mac) = (mac("recv"), mac("evil"));
    let send = |arp_ip: &str, from: &str, tag: &str| {
        sb.den_ok(&[
            "exec", "evil", "python3", "-c", RAW_SENDER, arp_ip, &gw, &recv_ip, &recv_mac, "9999",
            from, tag,
        ])
    };
    send(&victim, &victim, "spoofed");
    send(&evil, &evil, "honest");
    // The honest frames arrive (the sender works), the forged ones do not.
    let logs = retry("the honest datagram", UP, || {
        let l = sb.den_ok(&["logs", "recv"]);
        l.contains("honest").then_some(l)
    });
    assert_eq!(logs.trim(), format!("{evil} honest"));
    let honest = infra_neigh(&sb, "lan", &evil);
    assert!(
        honest.contains(&evil_mac),
        "the gateway learnt the honest ARP: {honest}"
    );
    let forged = infra_neigh(&sb, "lan", &victim);
    assert!(
        !forged.contains(&evil_mac),
        "the gateway took the forged ARP: {forged}"
    );
    sb.den_ok(&["rm", "-f", "victim", "recv", "evil"]);
    sb.den_ok(&["network", "rm", "lan"]);
}

/// A `--rm` container that exits by itself leaves its network as `den rm`
/// does: its name leaves the other members' /etc/hosts, and its address is
/// not handed to the next container while a never-used one is free.
#[test]
fn rm_container_leaves_the_network_and_its_address_rests() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&["network", "create", "rest"]);
    den_tests::run_sleeper(&sb, "stay", &["--network", "rest"], "300");
    den_tests::run_sleeper(&sb, "leaver", &["--rm", "--network", "rest"], "3");
    let gone_ip = network_ip(&sb, "rest", "leaver");
    assert!(
        sb.den_ok(&["exec", "stay", "cat", "/etc/hosts"])
            .contains("leaver")
    );
    retry("the --rm container gone", UP, || {
        (!sb.den_ok(&["ps", "-a"]).contains("leaver")).then_some(())
    });
    let hosts = sb.den_ok(&["exec", "stay", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("leaver"), "{hosts}");
    assert!(!hosts.contains(&format!("{gone_ip}\t")), "{hosts}");
    den_tests::run_sleeper(&sb, "next", &["--network", "rest"], "300");
    assert_ne!(
        network_ip(&sb, "rest", "next"),
        gone_ip,
        "a freed address rests"
    );
    sb.den_ok(&["rm", "-f", "stay", "next"]);
    sb.den_ok(&["network", "rm", "rest"]);
}

/// A member that grows its own /etc/hosts (a 1 GiB sparse file) does not
/// make a removal on its network read it: `den rm` of another member is
/// quick, and every member's file is written again from den's records.
#[test]
fn a_huge_etc_hosts_is_not_read_on_removal() {
    let env = require_env!();
    let sb = sandbox(&env);
    sb.den_ok(&["network", "create", "hog"]);
    for n in ["big", "small", "goner"] {
        den_tests::run_sleeper(&sb, n, &["--network", "hog"], "300");
    }
    sb.den_ok(&["exec", "big", "truncate", "-s", "1G", "/etc/hosts"]);
    let t = Instant::now();
    sb.den_ok(&["rm", "-f", "goner"]);
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "rm took {:?}",
        t.elapsed()
    );
    assert!(
        !sb.den_ok(&["exec", "small", "cat", "/etc/hosts"])
            .contains("goner")
    );
    // Written again from den's records (never read): small, and the
    // names are right.
    let hosts = sb.den_ok(&["exec", "big", "cat", "/etc/hosts"]);
    assert!(hosts.len() < 4096, "{} bytes", hosts.len());
    assert!(
        hosts.contains("\tsmall\n") && !hosts.contains("goner"),
        "{hosts}"
    );
    sb.den_ok(&["rm", "-f", "big", "small"]);
    sb.den_ok(&["network", "rm", "hog"]);
}

/// What a client gets when the name does not resolve.
const NO_NAME: &str = "[Errno -2] Name or service not known";
/// What a client gets when an infra refuses the address.
const REFUSED: &str = "[Errno 111] Connection refused";

/// What container `from` gets for `http://HOST/hostname` (a container
/// [`serve`]s its /etc): the answering container's hostname, or the
/// client's error.
fn hostname_via(sb: &UserSandbox, from: &str, host: &str) -> String {
    den_tests::fetch_in(sb, from, &format!("http://{host}/hostname"))
        .trim()
        .to_string()
}

/// Asserts that container `from` gets `want` for `http://HOST/hostname`.
fn assert_fetch(sb: &UserSandbox, from: &str, host: &str, want: &str) {
    assert_eq!(
        hostname_via(sb, from, host),
        want,
        "http://{host}/hostname from {from}"
    );
}

/// Waits (up to [`UP`]) until container `from` gets `want` for
/// `http://HOST/hostname`: names and routes may take a moment after a
/// start or a connect.
fn await_fetch(sb: &UserSandbox, from: &str, host: &str, want: &str) {
    let got = retry(&format!("{want} at {host} from {from}"), UP, || {
        let out = hostname_via(sb, from, host);
        if out != want {
            eprintln!("not yet: {out}");
        }
        (out == want).then_some(out)
    });
    assert_eq!(got, want);
}

/// Python serving the container's /etc on port 80, detached.
fn serve(sb: &UserSandbox, name: &str, networks: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name, "--hostname", name];
    for n in networks {
        args.extend(["--network", n]);
    }
    let py = [
        "python:3.11-slim",
        "python3",
        "-m",
        "http.server",
        "80",
        "-d",
        "/etc",
    ];
    args.extend(py);
    sb.den_ok(&args);
}

/// A container on two user networks (`--network na --network
/// name=nb,alias=bee`): eth0 on the first with the default route, eth1 on
/// the second; it reaches a member of each by name and address and each
/// reaches it by its names there; a container on only one network neither
/// resolves nor reaches one on only the other (the infras share a user
/// namespace, the networks stay apart); `network rm` is refused while it
/// is on one; after all stop and the infras exit, all start again
/// ([`start_after_the_infras_exited`]); `rm` takes it off both.
fn container_on_two_networks(sub: bool) {
    let env = require_env!();
    let sb = mirrored_sandbox(&env, sub, true);
    sb.den_ok(&["network", "create", "na"]);
    sb.den_ok(&["network", "create", "nb"]);
    serve(&sb, "onlya", &["na"]);
    serve(&sb, "onlyb", &["nb"]);
    serve(&sb, "both", &["na", "name=nb,alias=bee"]);
    let nets = networks_of(&sb, "both");
    let (ip_a, ip_b) = (
        nets["na"]["IPAddress"].as_str().unwrap().to_string(),
        nets["nb"]["IPAddress"].as_str().unwrap().to_string(),
    );
    assert_eq!(nets["na"]["Aliases"], serde_json::json!(["both"]));
    assert_eq!(nets["nb"]["Aliases"], serde_json::json!(["both", "bee"]));
    let gw_a = nets["na"]["Gateway"].as_str().unwrap().to_string();
    assert!(ip_a.starts_with(gw_a.trim_end_matches('1')), "{nets}");
    assert_address(&sb, "both", "eth0", &ip_a);
    assert_address(&sb, "both", "eth1", &ip_b);
    assert_default_route(&sb, "both", &gw_a, "eth0");
    // Each network lists it, with its names there.
    for (net, ip) in [("na", &ip_a), ("nb", &ip_b)] {
        assert_eq!(network_ip(&sb, net, "both"), *ip);
    }
    let onlyb_ip = network_ip(&sb, "nb", "onlyb");
    // `run -d` returns once each container started, not once its server
    // listens: each of the three servers waited for, then fetched once.
    await_fetch(&sb, "both", "onlya", "onlya");
    await_fetch(&sb, "both", "onlyb", "onlyb");
    await_fetch(&sb, "onlya", "both", "both");
    assert_fetch(&sb, "both", &onlyb_ip, "onlyb");
    assert_fetch(&sb, "onlyb", "bee", "both");
    // Apart: no name, and the address is refused by na's infra.
    assert_fetch(&sb, "onlya", "onlyb", NO_NAME);
    assert_fetch(&sb, "onlya", &onlyb_ip, REFUSED);
    let hosts_a = sb.den_ok(&["exec", "onlya", "cat", "/etc/hosts"]);
    assert!(
        !hosts_a.contains(&ip_b) && !hosts_a.contains("bee"),
        "{hosts_a}"
    );
    let err = sb.den_fail(&["network", "rm", "nb"], 125);
    assert!(err.contains("network nb is in use by container"), "{err}");
    start_after_the_infras_exited(&sb);
    sb.den_ok(&["rm", "-f", "both"]);
    assert_members(&sb, "na", 1);
    assert_members(&sb, "nb", 1);
    let hosts_b = sb.den_ok(&["exec", "onlyb", "cat", "/etc/hosts"]);
    assert!(!hosts_b.contains("bee"), "{hosts_b}");
    sb.den_ok(&["rm", "-f", "onlya", "onlyb"]);
    sb.den_ok(&["network", "rm", "na", "nb"]);
}

/// Containers on user networks start again (`den start`, `den restart`)
/// after every member stopped and both networks' infras exited: the
/// infras come up again, names resolve and `den ps` shows them Up.
/// `network rm` is refused while a stopped container is on the network.
fn start_after_the_infras_exited(sb: &UserSandbox) {
    sb.den_ok(&["stop", "-t", "0", "both", "onlya", "onlyb"]);
    let err = sb.den_fail(&["network", "rm", "nb"], 125);
    assert!(err.contains("network nb is in use by container"), "{err}");
    for net in ["na", "nb"] {
        wait_for(
            &format!("network {net}'s infra to exit"),
            Duration::from_secs(40),
            || den_tests::infra_gone(sb, net),
        );
    }
    assert_eq!(sb.den_ok(&["start", "both", "onlya"]).trim(), "both\nonlya");
    assert_eq!(sb.den_ok(&["restart", "onlyb"]).trim(), "onlyb");
    await_fetch(sb, "both", "onlya", "onlya");
    await_fetch(sb, "both", "onlyb", "onlyb");
    await_fetch(sb, "onlyb", "bee", "both");
    assert_eq!(den_tests::names_up(sb), ["both", "onlya", "onlyb"]);
}

#[test]
fn container_on_two_networks_sub() {
    container_on_two_networks(true);
}

#[test]
fn container_on_two_networks_nosub() {
    container_on_two_networks(false);
}

/// `--network` values den refuses, each with what to do instead.
#[test]
fn bad_network_combinations_are_refused() {
    let env = require_env!();
    let sb = mirrored_sandbox(&env, true, false);
    sb.den_ok(&["network", "create", "nc"]);
    for (args, want) in [
        (
            vec!["--network", "nc", "--network", "host"],
            "den: --network host cannot be combined with another --network: only user networks can be joined together",
        ),
        (
            vec!["--network", "nc", "--network", "nc"],
            "den: --network nc: the same network is given twice",
        ),
        (
            vec!["--network", "name=nc,ip=10.89.9.9"],
            "den: invalid --network `name=nc,ip=10.89.9.9`: `ip=10.89.9.9` is not supported; use NAME or name=NAME,alias=ALIAS",
        ),
    ] {
        let mut argv = vec!["run", "--rm"];
        argv.extend(args);
        argv.extend(["busybox", "true"]);
        let err = sb.den_fail(&argv, 125);
        assert_eq!(err.trim(), want);
    }
    sb.den_ok(&["network", "rm", "nc"]);
}

/// A network whose running infra an older den started (its own user
/// namespace, stood in for by a process of the user in a new user
/// namespace, recorded as the infra) cannot be joined together with
/// another network: one line saying what to do, and nothing is left.
#[test]
fn an_older_dens_infra_is_refused_with_another_network() {
    let env = require_env!();
    let sb = mirrored_sandbox(&env, true, true);
    sb.den_ok(&["network", "create", "nnew"]);
    sb.den_ok(&["network", "create", "nold"]);
    // This den's infra of nnew runs first (so it does not join the stand-in's).
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "first",
        "--network",
        "nnew",
        "busybox",
        "sleep",
        "120",
    ]);
    let infra = sb.root().join("networks/nold/infra.json");
    let pid = sb.sh_ok(&format!(
        "setsid unshare --user sleep 120 </dev/null >/dev/null 2>&1 & pid=$!\n\
         while [ \"$(readlink /proc/$pid/ns/user)\" = \"$(readlink /proc/self/ns/user)\" ]; do sleep 0.05; done\n\
         printf '{{\"pid\":%d,\"start\":%s}}' $pid $(cut -d' ' -f22 /proc/$pid/stat) > {}\n\
         echo $pid",
        infra.display()
    ));
    let err = sb.den_fail(
        &[
            "run",
            "--rm",
            "--name",
            "two",
            "--network",
            "nnew",
            "--network",
            "nold",
            "busybox",
            "true",
        ],
        125,
    );
    assert_eq!(
        err.trim(),
        "den: networks nnew and nold cannot both be joined: network nold's infra process was started by an older den in a user namespace of its own; stop the containers on network nold (its infra exits a few seconds later) and start this container again"
    );
    assert_members(&sb, "nnew", 1);
    assert_members(&sb, "nold", 0);
    assert_eq!(
        sb.den_ok(&["ps", "-a", "--format", "{{.Names}}"]).trim(),
        "first"
    );
    sb.den_ok(&["rm", "-f", "first"]);
    std::process::Command::new("kill")
        .arg(pid.trim())
        .status()
        .unwrap();
    std::fs::remove_file(&infra).ok();
    sb.den_ok(&["network", "rm", "nnew", "nold"]);
}

/// `den network connect` of a running container: eth1 on the new network
/// at once, it reaches that network's member by name and address and is
/// reached by its name and `--alias`; inspect, network inspect and `ps
/// --filter network=` show it. `den network disconnect`: the interface,
/// the names and the way through are gone (the exact failures), and the
/// network can be removed once nobody is on it.
fn connect_a_running_container(sub: bool) {
    let env = require_env!();
    let sb = mirrored_sandbox(&env, sub, true);
    sb.den_ok(&["network", "create", "cx"]);
    sb.den_ok(&["network", "create", "cy"]);
    serve(&sb, "web", &["cx"]);
    serve(&sb, "peer", &["cy"]);
    let peer_ip = network_ip(&sb, "cy", "peer");
    assert_eq!(
        sb.den_ok(&["network", "connect", "--alias", "wa", "cy", "web"]),
        ""
    );
    let nets = networks_of(&sb, "web");
    let web_ip = nets["cy"]["IPAddress"].as_str().unwrap().to_string();
    assert_eq!(nets["cy"]["Aliases"], serde_json::json!(["web", "wa"]));
    assert_eq!(network_ip(&sb, "cy", "wa"), web_ip);
    assert_address(&sb, "web", "eth1", &web_ip);
    // The default route stays on eth0.
    let gw_x = nets["cx"]["Gateway"].as_str().unwrap();
    assert_default_route(&sb, "web", gw_x, "eth0");
    assert_eq!(
        sb.den_ok(&["ps", "--filter", "network=cy", "--format", "{{.Names}}"])
            .lines()
            .collect::<std::collections::BTreeSet<_>>(),
        ["peer", "web"].into()
    );
    await_fetch(&sb, "web", "peer", "peer");
    await_fetch(&sb, "web", &peer_ip, "peer");
    assert_fetch(&sb, "peer", "web", "web");
    assert_fetch(&sb, "peer", "wa", "web");
    assert_eq!(sb.den_ok(&["network", "disconnect", "cy", "web"]), "");
    assert_fetch(&sb, "web", "peer", NO_NAME);
    assert_fetch(&sb, "peer", "wa", NO_NAME);
    // No interface on cy: the default route leads to cx's infra, which
    // refuses other den networks.
    assert_fetch(&sb, "web", &peer_ip, REFUSED);
    let links = ip_in(&sb, "web", &["-o", "link"]);
    assert!(!links.contains("eth1"), "{links}");
    assert!(networks_of(&sb, "web")["cy"].is_null());
    assert_members(&sb, "cy", 1);
    sb.den_ok(&["rm", "-f", "peer"]);
    assert_eq!(sb.den_ok(&["network", "rm", "cy"]).trim(), "cy");
    sb.den_ok(&["rm", "-f", "web"]);
    sb.den_ok(&["network", "rm", "cx"]);
}

#[test]
fn connect_a_running_container_sub() {
    connect_a_running_container(true);
}

#[test]
fn connect_a_running_container_nosub() {
    connect_a_running_container(false);
}

/// A created container connected to a second network has it from its
/// first start: eth1 with its address there. Disconnecting the network
/// of its default route (eth0) while it runs moves the default route to
/// the network it stays on, as Docker does; its next start has that
/// network as eth0.
fn connect_a_stopped_container(sub: bool) {
    let env = require_env!();
    let sb = mirrored_sandbox(&env, sub, true);
    sb.den_ok(&["network", "create", "sx"]);
    sb.den_ok(&["network", "create", "sy"]);
    sb.den_ok(&[
        "create",
        "--name",
        "later",
        "--network",
        "sx",
        "busybox",
        "sleep",
        "300",
    ]);
    sb.den_ok(&["network", "connect", "sy", "later"]);
    let nets = networks_of(&sb, "later");
    let ip_y = nets["sy"]["IPAddress"].as_str().unwrap().to_string();
    let gw_y = nets["sy"]["Gateway"].as_str().unwrap().to_string();
    assert_eq!(network_ip(&sb, "sy", "later"), ip_y);
    sb.den_ok(&["start", "later"]);
    assert_address(&sb, "later", "eth1", &ip_y);
    sb.den_ok(&["network", "disconnect", "sx", "later"]);
    assert_default_route(&sb, "later", &gw_y, "eth1");
    sb.den_ok(&["restart", "-t", "0", "later"]);
    assert_address(&sb, "later", "eth0", &ip_y);
    sb.den_ok(&["rm", "-f", "later"]);
    sb.den_ok(&["network", "rm", "sx", "sy"]);
}

#[test]
fn connect_a_stopped_container_sub() {
    connect_a_stopped_container(true);
}

#[test]
fn connect_a_stopped_container_nosub() {
    connect_a_stopped_container(false);
}

/// Each refusal of `den network connect|disconnect`, one line, exit 125,
/// Docker's words where Docker has them; nothing changes.
#[test]
fn connect_and_disconnect_refusals() {
    let env = require_env!();
    let sb = mirrored_sandbox(&env, true, true);
    sb.den_ok(&["network", "create", "rx"]);
    sb.den_ok(&["network", "create", "ry"]);
    sb.den_ok(&[
        "create",
        "--name",
        "onx",
        "--network",
        "rx",
        "busybox",
        "true",
    ]);
    for (name, net) in [
        ("onhost", "host"),
        ("onnone", "none"),
        ("onpriv", "private"),
    ] {
        sb.den_ok(&[
            "create",
            "--name",
            name,
            "--network",
            net,
            "busybox",
            "true",
        ]);
    }
    sb.den_ok(&["run", "-d", "--name", "shared", "busybox", "sleep", "300"]);
    sb.den_ok(&[
        "create",
        "--name",
        "joiner",
        "--network",
        "container:shared",
        "busybox",
        "true",
    ]);
    for (args, want) in [
        (
            vec!["connect", "rx", "onx"],
            "den: endpoint with name onx already exists in network rx",
        ),
        (
            vec!["connect", "nosuch", "onx"],
            "den: no such network: nosuch (create it with `den network create nosuch`)",
        ),
        (
            vec!["connect", "ry", "nobody"],
            "den: no such container: nobody",
        ),
        (
            vec!["connect", "ry", "onhost"],
            "den: container cannot be disconnected from host network or connected to host network",
        ),
        (
            vec!["connect", "ry", "onnone"],
            "den: container onnone has no network (--network none): it cannot be connected to one; create it with --network NET",
        ),
        (
            vec!["connect", "ry", "joiner"],
            "den: container joiner shares the network namespace of container shared: it cannot be connected to a network of its own",
        ),
        (
            vec!["connect", "ry", "onpriv"],
            "den: container onpriv is on den's private network, in a user namespace of its own: it cannot be connected to a user network; create it with --network NET",
        ),
        (
            vec!["disconnect", "ry", "onx"],
            "den: container onx is not connected to network ry",
        ),
        (
            vec!["disconnect", "ry", "onhost"],
            "den: container onhost is not connected to network ry",
        ),
        (
            vec!["disconnect", "rx", "onx"],
            "den: container onx is on no other network than rx: den keeps a container on at least one of its networks; connect it to another first, or remove the container",
        ),
    ] {
        let mut argv = vec!["network"];
        argv.extend(&args);
        assert_eq!(sb.den_fail(&argv, 125).trim(), want, "{args:?}");
    }
    assert_eq!(
        networks_of(&sb, "onx")
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["rx"]
    );
    assert_members(&sb, "ry", 0);
    sb.den_ok(&[
        "rm", "-f", "onx", "onhost", "onnone", "onpriv", "joiner", "shared",
    ]);
    sb.den_ok(&["network", "rm", "rx", "ry"]);
}

/// A network connected while the container runs is still there after a
/// restart by its restart policy (the supervisor wires what `spec.json`
/// names at each start, not what it read first): the second run has eth1
/// with the same address.
fn connected_network_survives_a_policy_restart(sub: bool) {
    let env = require_env!();
    let sb = mirrored_sandbox(&env, sub, true);
    sb.den_ok(&["network", "create", "qx"]);
    sb.den_ok(&["network", "create", "qy"]);
    // The first run waits for /go and fails; the second one stays up. It
    // fails a second after /go: the `den exec` that made /go must end
    // first, or the container's end kills it (137), as Docker's does.
    let script = "if [ -e /ran ]; then exec sleep 300; fi; touch /ran; \
                  while [ ! -e /go ]; do sleep 0.1; done; sleep 1; exit 3";
    sb.den_ok(&[
        "run",
        "-d",
        "--name",
        "flap",
        "--restart",
        "on-failure",
        "--network",
        "qx",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    sb.den_ok(&["network", "connect", "qy", "flap"]);
    let ip_y = network_ip(&sb, "qy", "flap");
    sb.den_ok(&["exec", "flap", "touch", "/go"]);
    wait_for("flap's policy restart", Duration::from_secs(20), || {
        inspect(&sb, "flap")["RestartCount"].as_u64() == Some(1)
            && inspect(&sb, "flap")["State"]["Status"] == "running"
    });
    assert_address(&sb, "flap", "eth1", &ip_y);
    sb.den_ok(&["rm", "-f", "flap"]);
    sb.den_ok(&["network", "rm", "qx", "qy"]);
}

#[test]
fn connected_network_survives_a_policy_restart_sub() {
    connected_network_survives_a_policy_restart(true);
}

#[test]
fn connected_network_survives_a_policy_restart_nosub() {
    connected_network_survives_a_policy_restart(false);
}

/// A restart whose last run's network namespace still lives (the kernel
/// frees one asynchronously, and the old supervisor may hold it for a
/// moment): its veth end on the network's bridge still has the
/// container's port name. Here the test itself holds the old namespace,
/// so the port stays; the start replaces it instead of failing with
/// `RTNETLINK answers: File exists` (seen once in
/// `connect_a_stopped_container_nosub`).
fn restart_while_the_old_port_lingers(sub: bool) {
    let env = require_env!();
    let sb = mirrored_sandbox(&env, sub, true);
    sb.den_ok(&["network", "create", "lg"]);
    den_tests::run_sleeper(&sb, "linger", &["--network", "lg"], "300");
    let pid = sb.den_ok(&["inspect", "-f", "{{.State.Pid}}", "linger"]);
    let held = std::fs::File::open(format!("/proc/{}/ns/net", pid.trim())).unwrap();
    sb.den_ok(&["restart", "-t", "0", "linger"]);
    let ip = network_ip(&sb, "lg", "linger");
    assert_address(&sb, "linger", "eth0", &ip);
    drop(held);
    sb.den_ok(&["rm", "-f", "linger"]);
    sb.den_ok(&["network", "rm", "lg"]);
}

#[test]
fn restart_while_the_old_port_lingers_sub() {
    restart_while_the_old_port_lingers(true);
}

#[test]
fn restart_while_the_old_port_lingers_nosub() {
    restart_while_the_old_port_lingers(false);
}
