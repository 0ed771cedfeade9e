use super::*;
use crate::yaml::parse;

fn run(text: &str) -> Result<Vec<String>, String> {
    check("c.yaml", &parse("c.yaml", text).unwrap()).map_err(|e| e.to_string())
}

#[test]
fn refusals_name_file_line_and_key() {
    let cases = [
        (
            "servces: {}\n",
            "c.yaml:1 (servces): unknown key \"servces\" (did you mean \"services\"?)",
        ),
        (
            "services:\n  web:\n    imgae: a\n",
            "c.yaml:3 (services.web.imgae): unknown key \"imgae\" (did you mean \"image\"?)",
        ),
        (
            "services:\n  web:\n    frobnicate: 1\n",
            "c.yaml:3 (services.web.frobnicate): unknown key \"frobnicate\"",
        ),
        (
            "services: [a]\n",
            "c.yaml:1 (services): services must be a mapping of service names to definitions, not a list",
        ),
        (
            "services:\n  web: a\n",
            "c.yaml:2 (services.web): a service must be a mapping, not a string",
        ),
        (
            "services:\n  web:\n    depends_on: [db]\n",
            "c.yaml:3 (services.web.depends_on): service \"web\" depends on undefined service \"db\"",
        ),
        (
            "services:\n  web:\n    network_mode: service:db\n",
            "c.yaml:3 (services.web.network_mode): service \"web\" joins the network of undefined service \"db\"",
        ),
        (
            "services:\n  a:\n    network_mode: service:b\n  b:\n    depends_on: [a]\n",
            "c.yaml (depends_on): dependency cycle: a -> b -> a",
        ),
        (
            "services:\n  web:\n    depends_on: {db: {condition: healthy}}\n  db: {}\n",
            "c.yaml:3 (services.web.depends_on.db.condition): condition must be one of service_started, service_healthy, service_completed_successfully",
        ),
        (
            "services:\n  web:\n    depends_on: 3\n",
            "c.yaml:3 (services.web.depends_on): depends_on must be a list or a mapping, not an integer",
        ),
        (
            "services:\n  a: {depends_on: [b]}\n  b: {depends_on: [c]}\n  c: {depends_on: [a]}\n",
            "c.yaml (depends_on): dependency cycle: a -> b -> c -> a",
        ),
        (
            "services:\n  a: {depends_on: [a]}\n",
            "c.yaml (depends_on): dependency cycle: a -> a",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(run(text), Err(want.to_owned()), "{text}");
    }
}

#[test]
fn warnings_for_keys_den_does_not_honour() {
    let text = "x-any: 1\nservices:\n  web:\n    image: a\n    privileged: true\n    deploy: {replicas: 2, resources: {limits: {cpus: '1'}}}\n    depends_on: {cache: {condition: service_started, required: false}}\n";
    assert_eq!(
        run(text).unwrap(),
        [
            "services.web.privileged is not supported by den and is ignored",
            "services.web.deploy.resources is not supported by den and is ignored",
            "services.web.depends_on: optional service \"cache\" is not defined and is skipped",
        ]
    );
}

#[test]
fn depends_on_both_syntaxes() {
    let n = parse("c.yaml", "depends_on: [a, b]\n").unwrap();
    let d = depends_on("c.yaml", "s", &n).unwrap();
    assert_eq!(
        d.iter()
            .map(|d| (d.service.as_str(), d.condition.as_str(), d.required))
            .collect::<Vec<_>>(),
        [
            ("a", "service_started", true),
            ("b", "service_started", true)
        ]
    );
    let n = parse("c.yaml", "depends_on: {db: {condition: service_healthy, restart: true}, mig: {condition: service_completed_successfully}}\n").unwrap();
    let d = depends_on("c.yaml", "s", &n).unwrap();
    assert_eq!(
        d[0],
        Dependency {
            service: "db".into(),
            condition: "service_healthy".into(),
            restart: true,
            required: true
        }
    );
    assert_eq!(d[1].condition, "service_completed_successfully");
}

#[test]
fn edit_distance() {
    for (a, b, d) in [
        ("image", "imgae", 2),
        ("ports", "port", 1),
        ("", "ab", 2),
        ("same", "same", 0),
    ] {
        assert_eq!(distance(a, b), d, "{a} {b}");
    }
}

#[test]
fn joining_a_services_network_depends_on_it() {
    let f = parse(
        "c.yaml",
        "services:\n  web:\n    network_mode: service:db\n    depends_on: [cache]\n  db: {}\n  cache: {}\n",
    )
    .unwrap();
    let web = f.get("services").unwrap().get("web").unwrap();
    let deps: Vec<String> = depends_on("c.yaml", "web", web)
        .unwrap()
        .into_iter()
        .map(|d| d.service)
        .collect();
    assert_eq!(deps, ["cache", "db"]);
}
