use std::collections::BTreeMap;

use super::*;

/// In-memory files for the loader.
fn fs(files: &[(&str, &str)]) -> BTreeMap<PathBuf, String> {
    files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
        .collect()
}

fn run(
    files: &BTreeMap<PathBuf, String>,
    names: &[&str],
    profiles: &[&str],
) -> Result<Loaded, Error> {
    let read = |p: &Path| {
        files.get(p).cloned().ok_or_else(|| Error::Read {
            path: p.display().to_string(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
    };
    let lookup = |n: &str| match n {
        "TAG" => Some("3.11".to_owned()),
        _ => None,
    };
    let files: Vec<PathBuf> = names.iter().map(PathBuf::from).collect();
    let profiles: Vec<String> = profiles.iter().map(|p| (*p).to_owned()).collect();
    load(&Inputs {
        files: &files,
        lookup: &lookup,
        read: &read,
        profiles: &profiles,
    })
}

fn text(n: Option<&Node>) -> Option<String> {
    n.and_then(Node::scalar_text)
}

fn service<'a>(l: &'a Loaded, name: &str) -> &'a Node {
    l.model
        .get("services")
        .and_then(|s| s.get(name))
        .unwrap_or_else(|| panic!("no service {name}"))
}

#[test]
fn interpolates_values_not_keys_and_warns_once() {
    let f = fs(&[(
        "/p/compose.yaml",
        "services:\n  web:\n    image: py:${TAG}\n    environment:\n      $KEEP: ${NOPE}\n      B: ${NOPE}x\n",
    )]);
    let l = run(&f, &["/p/compose.yaml"], &[]).unwrap();
    let web = service(&l, "web");
    assert_eq!(text(web.get("image")).as_deref(), Some("py:3.11"));
    assert_eq!(
        text(web.get("environment").unwrap().get("$KEEP")).as_deref(),
        Some("")
    );
    assert_eq!(
        l.warnings,
        ["The \"NOPE\" variable is not set. Defaulting to a blank string."]
    );
}

#[test]
fn interpolation_errors_name_file_line_and_key() {
    let f = fs(&[(
        "/p/c.yaml",
        "services:\n  web:\n    image: ${IMG:?set IMG to the image}\n    ports:\n      - \"$ 80\"\n",
    )]);
    let err = run(&f, &["/p/c.yaml"], &[]).unwrap_err().to_string();
    assert_eq!(
        err,
        "/p/c.yaml:3 (services.web.image): required variable IMG is missing a value: set IMG to the image"
    );
    let f = fs(&[(
        "/p/c.yaml",
        "services:\n  web:\n    image: a\n    ports:\n      - \"$ 80\"\n",
    )]);
    let err = run(&f, &["/p/c.yaml"], &[]).unwrap_err().to_string();
    assert_eq!(
        err,
        "/p/c.yaml:5 (services.web.ports.[0]): Invalid template: \"$ 80\" (write $$ for a literal $)"
    );
}

#[test]
fn merges_files_in_order_and_drops_extensions() {
    let f = fs(&[
        (
            "/p/a.yaml",
            "x-common: &c {tty: true}\nservices:\n  web:\n    <<: *c\n    image: a\n    x-note: hi\n",
        ),
        (
            "/p/b.yaml",
            "services:\n  web:\n    image: b\n  db:\n    image: m\n",
        ),
    ]);
    let l = run(&f, &["/p/a.yaml", "/p/b.yaml"], &[]).unwrap();
    assert!(l.model.get("x-common").is_none());
    let web = service(&l, "web");
    assert_eq!(text(web.get("image")).as_deref(), Some("b"));
    assert_eq!(web.get("tty").unwrap().value, Raw::Bool(true));
    assert!(web.get("x-note").is_none());
    assert_eq!(text(service(&l, "db").get("image")).as_deref(), Some("m"));
}

#[test]
fn extends_in_the_same_file_and_another() {
    let f = fs(&[
        (
            "/p/compose.yaml",
            "services:\n  base:\n    image: a\n    environment: [A=1]\n  web:\n    extends: base\n    environment: {B: '2'}\n  job:\n    extends: {service: common, file: lib/common.yaml}\n    command: run\n",
        ),
        (
            "/p/lib/common.yaml",
            "services:\n  root:\n    image: r\n    build: ./ctx\n    volumes: ['./data:/data']\n  common:\n    extends: root\n    image: c\n",
        ),
    ]);
    let l = run(&f, &["/p/compose.yaml"], &[]).unwrap();
    let web = service(&l, "web");
    assert_eq!(text(web.get("image")).as_deref(), Some("a"));
    assert!(web.get("extends").is_none());
    let env = web.get("environment").unwrap();
    assert_eq!(text(env.get("A")).as_deref(), Some("1"));
    assert_eq!(text(env.get("B")).as_deref(), Some("2"));
    let job = service(&l, "job");
    assert_eq!(text(job.get("image")).as_deref(), Some("c"));
    assert_eq!(text(job.get("command")).as_deref(), Some("run"));
    assert_eq!(text(job.get("build")).as_deref(), Some("/p/lib/./ctx"));
    let Raw::Seq(v) = &job.get("volumes").unwrap().value else {
        panic!()
    };
    assert_eq!(v[0].as_str(), Some("/p/lib/./data:/data"));
}

#[test]
fn extends_errors() {
    let cases = [
        (
            "services:\n  web:\n    extends: nope\n",
            "/p/c.yaml:3 (services.web.extends): extends names service \"nope\", which /p/c.yaml does not define",
        ),
        (
            "services:\n  a:\n    extends: b\n  b:\n    extends: a\n",
            "/p/c.yaml:5 (services.b.extends): extends loops back to service \"a\" in /p/c.yaml",
        ),
        (
            "services:\n  a:\n    extends: [x]\n",
            "/p/c.yaml:3 (services.a.extends): extends needs a service name: extends: NAME or extends: {service: NAME, file: FILE}",
        ),
    ];
    for (t, want) in cases {
        let f = fs(&[("/p/c.yaml", t)]);
        assert_eq!(run(&f, &["/p/c.yaml"], &[]).unwrap_err().to_string(), want);
    }
}

#[test]
fn include_adds_resources_and_refuses_conflicts() {
    let f = fs(&[
        (
            "/p/compose.yaml",
            "include:\n  - db/compose.yaml\nservices:\n  web:\n    image: w\n",
        ),
        (
            "/p/db/compose.yaml",
            "services:\n  db:\n    image: m\nvolumes:\n  data: {}\n",
        ),
    ]);
    let l = run(&f, &["/p/compose.yaml"], &[]).unwrap();
    assert!(l.model.get("include").is_none());
    assert_eq!(text(service(&l, "db").get("image")).as_deref(), Some("m"));
    assert!(l.model.get("volumes").unwrap().get("data").is_some());
    let f = fs(&[
        (
            "/p/compose.yaml",
            "include:\n  - path: db.yaml\nservices:\n  db:\n    image: w\n",
        ),
        ("/p/db.yaml", "services:\n  db:\n    image: m\n"),
    ]);
    assert_eq!(
        run(&f, &["/p/compose.yaml"], &[]).unwrap_err().to_string(),
        "/p/compose.yaml:2 (services.db): this resource is also defined by an included file: rename one of them"
    );
}

#[test]
fn profiles_select_services() {
    let f = fs(&[(
        "/p/c.yaml",
        "services:\n  web: {image: w}\n  debug: {image: d, profiles: [dev]}\n  mig: {image: m, profiles: [ops, dev]}\n",
    )]);
    let names = |l: &Loaded| match &l.model.get("services").unwrap().value {
        Raw::Map(m) => m.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        _ => panic!(),
    };
    let l = run(&f, &["/p/c.yaml"], &[]).unwrap();
    assert_eq!(names(&l), ["web"]);
    assert_eq!(l.disabled, ["debug", "mig"]);
    assert_eq!(
        names(&run(&f, &["/p/c.yaml"], &["ops"]).unwrap()),
        ["web", "mig"]
    );
    assert_eq!(
        names(&run(&f, &["/p/c.yaml"], &["*"]).unwrap()),
        ["web", "debug", "mig"]
    );
}

#[test]
fn profile_selection_sources() {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    assert_eq!(selected_profiles(&s(&["a"]), Some("b,c")), s(&["a"]));
    assert_eq!(selected_profiles(&[], Some("b, c,,")), s(&["b", "c"]));
    assert!(selected_profiles(&[], None).is_empty());
}

#[test]
fn a_non_mapping_file_is_refused() {
    let f = fs(&[("/p/c.yaml", "- a\n")]);
    assert_eq!(
        run(&f, &["/p/c.yaml"], &[]).unwrap_err().to_string(),
        "/p/c.yaml:1: a compose file must be a mapping (services: …)"
    );
}

#[test]
fn read_file_names_the_path_and_bounds_the_size() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("compose.yaml");
    assert_eq!(
        read_file(&p).unwrap_err().to_string(),
        format!(
            "cannot read {}: No such file or directory (os error 2)",
            p.display()
        )
    );
    std::fs::write(&p, "services: {}\n").unwrap();
    assert_eq!(read_file(&p).unwrap(), "services: {}\n");
    std::fs::write(&p, vec![b'#'; yaml::MAX_FILE_BYTES + 1]).unwrap();
    assert_eq!(
        read_file(&p).unwrap_err().to_string(),
        format!(
            "cannot read {}: larger than the 4194304 bytes den reads",
            p.display()
        )
    );
}
