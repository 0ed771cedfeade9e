use super::*;

fn s(v: &str) -> Raw {
    Raw::Str(v.into())
}

#[test]
fn keeps_lines_types_and_order() {
    let text = "services:\n  web:\n    image: \"py:3\"\n    ports: [80, '81']\n    tty: true\n    x: ~\n  db: {}\n";
    let n = parse("compose.yaml", text).unwrap();
    let web = n.get("services").unwrap().get("web").unwrap();
    assert_eq!(web.line, 3);
    assert_eq!(web.get("image").unwrap().line, 3);
    assert_eq!(web.get("image").unwrap().value, s("py:3"));
    let Raw::Seq(ports) = &web.get("ports").unwrap().value else {
        panic!()
    };
    assert_eq!(
        ports.iter().map(|p| p.value.clone()).collect::<Vec<_>>(),
        [Raw::Int(80), s("81")]
    );
    assert_eq!(ports[0].line, 4);
    assert_eq!(web.get("tty").unwrap().value, Raw::Bool(true));
    assert_eq!(web.get("x").unwrap().value, Raw::Null);
    let Raw::Map(services) = &n.get("services").unwrap().value else {
        panic!()
    };
    assert_eq!(
        services.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["web", "db"]
    );
}

#[test]
fn anchors_and_merge_keys() {
    let text =
        "x-base: &base\n  image: a\n  tty: true\nservices:\n  web:\n    <<: *base\n    image: b\n";
    let n = parse("c.yaml", text).unwrap();
    let web = n.get("services").unwrap().get("web").unwrap();
    assert_eq!(web.get("image").unwrap().value, s("b"));
    assert_eq!(web.get("tty").unwrap().value, Raw::Bool(true));
}

#[test]
fn empty_file_is_an_empty_mapping() {
    assert_eq!(parse("c.yaml", "").unwrap().value, Raw::Map(vec![]));
}

#[test]
fn errors_name_the_file_and_line() {
    let err = parse("c.yaml", "services:\n  web:\n    image: a\n   bad: [\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("c.yaml: "), "{err}");
    assert!(err.contains("line 4") || err.contains("4:"), "{err}");
    let err = parse("c.yaml", "a: 1\na: 2\n").unwrap_err().to_string();
    assert_eq!(err, "c.yaml: line 2 column 1: duplicate mapping key: a");
}
