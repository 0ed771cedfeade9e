use std::path::Path;

use super::*;
use crate::yaml::parse;

fn p(yaml: &str) -> Result<Port, String> {
    port(&parse("p.yaml", yaml).unwrap())
}

fn tcp(ip: Option<&str>, published: Option<(u16, u16)>, target: (u16, u16)) -> Port {
    Port {
        host_ip: ip.map(str::to_owned),
        published,
        target,
        protocol: "tcp".into(),
    }
}

#[test]
fn ports_short_and_long() {
    let cases: &[(&str, Port)] = &[
        ("80", tcp(None, None, (80, 80))),
        ("'8080:80'", tcp(None, Some((8080, 8080)), (80, 80))),
        (
            "'127.0.0.1:8080:80'",
            tcp(Some("127.0.0.1"), Some((8080, 8080)), (80, 80)),
        ),
        ("'127.0.0.1::80'", tcp(Some("127.0.0.1"), None, (80, 80))),
        (
            "'[::1]:8080:80'",
            tcp(Some("::1"), Some((8080, 8080)), (80, 80)),
        ),
        (
            "'9090-9091:8080-8081'",
            tcp(None, Some((9090, 9091)), (8080, 8081)),
        ),
        ("'9000-9005:80'", tcp(None, Some((9000, 9005)), (80, 80))),
        ("'3000-3002'", tcp(None, None, (3000, 3002))),
        (
            "{target: 80, published: '8080', host_ip: 0.0.0.0}",
            tcp(Some("0.0.0.0"), Some((8080, 8080)), (80, 80)),
        ),
        ("{target: 80}", tcp(None, None, (80, 80))),
    ];
    for (yaml, want) in cases {
        assert_eq!(p(yaml).as_ref(), Ok(want), "{yaml}");
    }
    let udp = p("'53:53/udp'").unwrap();
    assert_eq!((udp.protocol.as_str(), udp.target), ("udp", (53, 53)));
    assert_eq!(p("{target: 53, protocol: udp}").unwrap().protocol, "udp");
}

#[test]
fn bad_ports() {
    let cases = [
        (
            "'80/sctp'",
            "protocol \"sctp\" is not supported: use tcp or udp",
        ),
        (
            "'70000:80'",
            "port \"70000:80\": \"70000\" is not a port number (1-65535)",
        ),
        (
            "'a:b:c:d'",
            "port \"a:b:c:d\": write [[IP:]HOST:]CONTAINER[/PROTOCOL]",
        ),
        (
            "'9090-9092:8080-8081'",
            "port \"9090-9092:8080-8081\": the host range and the container range differ in length",
        ),
        ("'82-80'", "port \"82-80\": range \"82-80\" runs backwards"),
        ("'0'", "port \"0\": \"0\" is not a port number (1-65535)"),
        (
            "{published: 80}",
            "a long-syntax port needs target: CONTAINER_PORT",
        ),
        ("[1]", "a port must be a string, a number or a mapping"),
    ];
    for (yaml, want) in cases {
        assert_eq!(p(yaml), Err(want.to_owned()), "{yaml}");
    }
}

fn v(yaml: &str) -> Result<Volume, String> {
    volume(&parse("v.yaml", yaml).unwrap(), Path::new("/src/app"))
}

#[test]
fn volumes_short_and_long() {
    let vol = |source, target: &str, read_only| Volume {
        source,
        target: target.into(),
        read_only,
    };
    let cases = [
        ("/data", vol(VolumeSource::Anonymous, "/data", false)),
        (
            "'./site:/usr/share/html:ro'",
            vol(
                VolumeSource::Bind("/src/app/./site".into()),
                "/usr/share/html",
                true,
            ),
        ),
        (
            "'~/x:/x'",
            vol(VolumeSource::Bind("~/x".into()), "/x", false),
        ),
        (
            "'../x:/x'",
            vol(VolumeSource::Bind("/src/app/../x".into()), "/x", false),
        ),
        (
            "'/etc/hosts:/h:ro,z'",
            vol(VolumeSource::Bind("/etc/hosts".into()), "/h", true),
        ),
        (
            "'db:/var/lib/mysql'",
            vol(VolumeSource::Named("db".into()), "/var/lib/mysql", false),
        ),
        (
            "'db:/var/lib/mysql:rw'",
            vol(VolumeSource::Named("db".into()), "/var/lib/mysql", false),
        ),
        (
            "{type: bind, source: ./src, target: /app, read_only: true}",
            vol(VolumeSource::Bind("/src/app/./src".into()), "/app", true),
        ),
        (
            "{type: volume, source: db, target: /d}",
            vol(VolumeSource::Named("db".into()), "/d", false),
        ),
        ("{target: /d}", vol(VolumeSource::Anonymous, "/d", false)),
        (
            "{type: tmpfs, target: /run}",
            vol(VolumeSource::Tmpfs, "/run", false),
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(v(yaml), Ok(want), "{yaml}");
    }
}

#[test]
fn bad_volumes() {
    let cases = [
        (
            "'db:data'",
            "volume \"db:data\": the target \"data\" must be an absolute path",
        ),
        (
            "'a:/b:ro:x'",
            "volume \"a:/b:ro:x\": write SOURCE:TARGET[:MODE] or TARGET",
        ),
        (
            "'a:/b:rx'",
            "volume \"a:/b:rx\": unknown mode \"rx\" (use ro or rw)",
        ),
        (
            "{type: bind, target: /x}",
            "bind volume at \"/x\" needs source: HOST_PATH",
        ),
        (
            "{type: npipe, source: a, target: /x}",
            "volume type \"npipe\" is not supported: use bind, volume or tmpfs",
        ),
        ("{source: a}", "a long-syntax volume needs target: PATH"),
        (
            "3",
            "a volume must be a string (SOURCE:TARGET[:ro]) or a mapping",
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(v(yaml), Err(want.to_owned()), "{yaml}");
    }
}

#[test]
fn durations_like_go() {
    use std::time::Duration as D;
    for (s, want) in [
        ("30s", D::from_secs(30)),
        ("1m30s", D::from_secs(90)),
        ("500ms", D::from_millis(500)),
        ("1.5s", D::from_millis(1500)),
        ("2h", D::from_secs(7200)),
        ("0", D::ZERO),
        ("10us", D::from_micros(10)),
    ] {
        assert_eq!(duration(s), Ok(want), "{s}");
    }
    for s in ["10", "", "1x", "s", "1.2.3s"] {
        assert_eq!(
            duration(s),
            Err(format!(
                "duration {s:?}: write a number with a unit, e.g. 30s, 1m30s or 500ms"
            )),
            "{s}"
        );
    }
}

#[test]
fn healthcheck_test_forms() {
    let t = |y: &str| health_test(&parse("h.yaml", y).unwrap());
    assert_eq!(
        t("curl -f http://localhost"),
        Ok(HealthTest::Shell("curl -f http://localhost".into()))
    );
    assert_eq!(
        t("[CMD-SHELL, 'mysqladmin ping']"),
        Ok(HealthTest::Shell("mysqladmin ping".into()))
    );
    assert_eq!(
        t("[CMD, healthcheck.sh, --connect]"),
        Ok(HealthTest::Exec(vec![
            "healthcheck.sh".into(),
            "--connect".into()
        ]))
    );
    assert_eq!(t("[NONE]"), Ok(HealthTest::None));
    let bad = "healthcheck test must start with CMD (then the command), CMD-SHELL (then one string) or be [NONE]";
    for y in ["[CMD]", "[CMD-SHELL, a, b]", "[RUN, x]", "[]"] {
        assert_eq!(t(y), Err(bad.into()), "{y}");
    }
    assert_eq!(
        t("{a: 1}"),
        Err("healthcheck test must be a string or a list".into())
    );
}

#[test]
fn networks_join_by_priority_with_the_gateway_first() {
    // (priority, gw_priority) per network, in the file's order.
    for (prio, want) in [
        (vec![], vec![]),
        (vec![(0, 0), (0, 0), (0, 0)], vec![0, 1, 2]),
        (vec![(0, 0), (10, 0), (5, 0)], vec![1, 2, 0]),
        (vec![(0, 0), (10, 0), (5, 1)], vec![2, 1, 0]),
        (vec![(0, 1), (0, 1), (0, 0)], vec![0, 1, 2]),
        (vec![(1, 3), (2, 3), (3, 0)], vec![1, 2, 0]),
        (vec![(-1, 0), (0, -5), (0, 0)], vec![2, 1, 0]),
    ] {
        assert_eq!(network_order(&prio), want, "{prio:?}");
    }
}

#[test]
fn a_network_priority_is_an_integer() {
    let n = |y: &str| parse("p.yaml", y).unwrap();
    assert_eq!(network_priority(None), Ok(0));
    assert_eq!(network_priority(Some(&n("-7"))), Ok(-7));
    assert_eq!(network_priority(Some(&n("'12'"))), Ok(12));
    assert_eq!(
        network_priority(Some(&n("high"))),
        Err("must be an integer, not \"high\"".into())
    );
    assert_eq!(
        network_priority(Some(&n("[1]"))),
        Err("must be an integer".into())
    );
}
