//! Cases after compose-go's `override/merge_*_test.go`.

use super::*;
use crate::yaml::parse;

fn merged(a: &str, b: &str) -> Node {
    merge_files(parse("a.yaml", a).unwrap(), parse("b.yaml", b).unwrap())
}

fn strip(n: &Node) -> Node {
    let value = match &n.value {
        Raw::Seq(s) => Raw::Seq(s.iter().map(strip).collect()),
        Raw::Map(m) => Raw::Map(m.iter().map(|(k, v)| (k.clone(), strip(v))).collect()),
        v => v.clone(),
    };
    Node::new(value)
}

/// (base, override, expected), each a compose file.
const CASES: &[(&str, &str, &str)] = &[
    // scalars are overridden, new keys added
    (
        "services: {web: {image: a, tty: true}}",
        "services: {web: {image: b, user: u}}",
        "services: {web: {image: b, tty: true, user: u}}",
    ),
    // command and entrypoint are replaced, whatever their form
    (
        "services: {web: {command: [a, b], entrypoint: x}}",
        "services: {web: {command: c, entrypoint: [y]}}",
        "services: {web: {command: c, entrypoint: [y]}}",
    ),
    (
        "services: {web: {healthcheck: {test: [CMD, a], retries: 3}}}",
        "services: {web: {healthcheck: {test: [CMD, b]}}}",
        "services: {web: {healthcheck: {test: [CMD, b], retries: 3}}}",
    ),
    // environment merges as a mapping across list and map syntax
    (
        "services: {web: {environment: [A=1, B=2, C]}}",
        "services: {web: {environment: {B: '3', D: '4'}}}",
        "services: {web: {environment: {A: '1', B: '3', C: ~, D: '4'}}}",
    ),
    (
        "services: {web: {labels: {a: '1'}}}",
        "services: {web: {labels: [b=2, a=0]}}",
        "services: {web: {labels: {a: '0', b: '2'}}}",
    ),
    (
        "services: {web: {build: {context: ., args: [X=1]}}}",
        "services: {web: {build: {args: {Y: '2'}, target: t}}}",
        "services: {web: {build: {context: ., args: {X: '1', Y: '2'}, target: t}}}",
    ),
    // depends_on and networks merge as mappings
    (
        "services: {web: {depends_on: [db]}}",
        "services: {web: {depends_on: {cache: {condition: service_healthy}}}}",
        "services: {web: {depends_on: {db: ~, cache: {condition: service_healthy}}}}",
    ),
    (
        "services: {web: {networks: [front]}}",
        "services: {web: {networks: {front: {aliases: [w]}, back: ~}}}",
        "services: {web: {networks: {front: {aliases: [w]}, back: ~}}}",
    ),
    // volumes merge by target path, short or long syntax
    (
        "services: {web: {volumes: ['./a:/data', 'logs:/logs:ro', /anon]}}",
        "services: {web: {volumes: ['./b:/data', {type: volume, source: l2, target: /logs}, /other]}}",
        "services: {web: {volumes: ['./b:/data', {type: volume, source: l2, target: /logs}, /anon, /other]}}",
    ),
    // other lists append what they lack
    (
        "services: {web: {ports: ['80:80'], dns: [1.1.1.1], cap_add: [NET_ADMIN]}}",
        "services: {web: {ports: ['80:80', '443:443'], dns: [8.8.8.8], cap_add: [NET_ADMIN, SYS_TIME]}}",
        "services: {web: {ports: ['80:80', '443:443'], dns: [1.1.1.1, 8.8.8.8], cap_add: [NET_ADMIN, SYS_TIME]}}",
    ),
    // top-level sections and new services
    (
        "name: a\nservices: {web: {image: a}}\nvolumes: {db: {}}",
        "name: b\nservices: {db: {image: m}}\nvolumes: {db: {external: true}}",
        "name: b\nservices: {web: {image: a}, db: {image: m}}\nvolumes: {db: {external: true}}",
    ),
];

#[test]
fn merges_by_the_compose_spec_rules() {
    for (a, b, want) in CASES {
        let got = strip(&merged(a, b));
        let want = strip(&parse("want.yaml", want).unwrap());
        assert_eq!(got, want, "\n{a}\n+ {b}");
    }
}

#[test]
fn volume_targets() {
    for (v, want) in [
        ("/anon", "/anon"),
        ("./a:/d", "/d"),
        ("n:/d:ro", "/d"),
        ("{target: /t, source: s}", "/t"),
    ] {
        let n = parse("v.yaml", v).unwrap();
        assert_eq!(volume_target(&n).as_deref(), Some(want), "{v}");
    }
}
