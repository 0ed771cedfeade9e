use std::collections::BTreeMap;

use super::*;
use crate::yaml::parse;

fn services(text: &str) -> Vec<(String, Node)> {
    let n = parse("c.yaml", text).unwrap();
    match n.get("services").unwrap().value.clone() {
        Raw::Map(m) => m,
        _ => panic!(),
    }
}

#[test]
fn levels_start_everything_ready_at_once() {
    let s = services(
        "services:\n  web: {depends_on: [db, cache]}\n  db: {}\n  mig: {depends_on: {db: {condition: service_healthy}}}\n  cache: {}\n  proxy: {depends_on: [web, ghost]}\n",
    );
    assert_eq!(
        levels("c.yaml", &s),
        [vec!["db", "cache"], vec!["web", "mig"], vec!["proxy"]]
    );
    assert!(levels("c.yaml", &[]).is_empty());
}

#[test]
fn resource_names_and_labels() {
    assert_eq!(network_name("app"), "app_default");
    assert_eq!(container_name("app", "web", 2), "app-web-2");
    let v = parse(
        "v.yaml",
        "{a: {}, b: {name: shared}, c: {external: true}, d: ~}",
    )
    .unwrap();
    assert_eq!(volume_name("app", "a", v.get("a")), "app_a");
    assert_eq!(volume_name("app", "b", v.get("b")), "shared");
    assert_eq!(volume_name("app", "c", v.get("c")), "c");
    assert_eq!(volume_name("app", "d", v.get("d")), "app_d");
    let l = container_labels(
        "app",
        "web",
        1,
        "abc",
        "/src",
        &["/src/compose.yaml".into()],
    );
    assert_eq!(l["com.docker.compose.project"], "app");
    assert_eq!(l["com.docker.compose.service"], "web");
    assert_eq!(l["com.docker.compose.container-number"], "1");
    assert_eq!(l["com.docker.compose.oneoff"], "False");
    assert_eq!(l["com.docker.compose.config-hash"], "abc");
    assert_eq!(
        l["com.docker.compose.project.config_files"],
        "/src/compose.yaml"
    );
}

#[test]
fn config_hash_ignores_only_docker_s_unhashed_keys() {
    let base = "{image: a, environment: {A: '1'}, deploy: {replicas: 1}}";
    let h = |t: &str| config_hash(&parse("s.yaml", t).unwrap());
    let h0 = h(base);
    assert_eq!(h0.len(), 64);
    // Key order and the unhashed keys do not change it.
    for same in [
        "{environment: {A: '1'}, image: a, deploy: {replicas: 1}}",
        "{image: a, environment: {A: '1'}, deploy: {replicas: 3}, build: ., pull_policy: always, scale: 2, depends_on: [db], profiles: [p]}",
        "{image: a, environment: {A: '1'}, deploy: {}}",
    ] {
        assert_eq!(h(same), h0, "{same}");
    }
    for changed in [
        "{image: a, environment: {A: '2'}, deploy: {replicas: 1}}",
        "{image: b, environment: {A: '1'}, deploy: {replicas: 1}}",
        "{image: a, environment: {A: '1'}, deploy: {replicas: 1}, tty: true}",
        "{image: a, environment: {A: 1}, deploy: {replicas: 1}}",
    ] {
        assert_ne!(h(changed), h0, "{changed}");
    }
}

#[test]
fn recreate_decisions() {
    let s = services(
        "services:\n  db: {}\n  web: {}\n  side: {network_mode: 'service:web'}\n  side2: {network_mode: 'service:side'}\n  new: {}\n",
    );
    let r = |h: &str, d: &str| Running {
        config_hash: h.into(),
        image_digest: d.into(),
    };
    let running = BTreeMap::from([
        ("db".to_owned(), r("h1", "d1")),
        ("web".to_owned(), r("h2", "d2")),
        ("side".to_owned(), r("h3", "d3")),
        ("side2".to_owned(), r("h4", "d4")),
    ]);
    let mut wanted = running.clone();
    wanted.insert("new".into(), r("h5", "d5"));
    let got = decide(&s, &wanted, &running);
    let keep: Vec<_> = got.iter().map(|(_, a)| *a).collect();
    assert_eq!(
        keep,
        [
            Action::Keep,
            Action::Keep,
            Action::Keep,
            Action::Keep,
            Action::Create
        ]
    );
    // A changed environment (hash) recreates web and what joins its namespaces.
    wanted.insert("web".into(), r("h2b", "d2"));
    let got: Vec<_> = decide(&s, &wanted, &running)
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert_eq!(
        got,
        [
            Action::Keep,
            Action::Recreate,
            Action::Recreate,
            Action::Recreate,
            Action::Create
        ]
    );
    // A new image digest alone recreates too.
    wanted.insert("web".into(), r("h2", "d2"));
    wanted.insert("db".into(), r("h1", "new"));
    let got: Vec<_> = decide(&s, &wanted, &running)
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert_eq!(
        got,
        [
            Action::Recreate,
            Action::Keep,
            Action::Keep,
            Action::Keep,
            Action::Create
        ]
    );
}
