use super::*;

#[test]
fn finds_the_file_in_the_dir_or_a_parent_in_docker_order() {
    let root = tempfile::tempdir().unwrap();
    let deep = root.path().join("a/b/c");
    fs_create(&deep);
    assert!(
        find_compose_file(&deep)
            .unwrap_err()
            .to_string()
            .starts_with("no configuration file provided: not found in ")
    );
    touch(&root.path().join("docker-compose.yml"));
    assert_eq!(
        find_compose_file(&deep).unwrap(),
        root.path().join("docker-compose.yml")
    );
    touch(&root.path().join("a/docker-compose.yaml"));
    assert_eq!(
        find_compose_file(&deep).unwrap(),
        root.path().join("a/docker-compose.yaml")
    );
    touch(&root.path().join("a/compose.yml"));
    assert_eq!(
        find_compose_file(&deep).unwrap(),
        root.path().join("a/compose.yml")
    );
    touch(&root.path().join("a/compose.yaml"));
    assert_eq!(
        find_compose_file(&deep).unwrap(),
        root.path().join("a/compose.yaml")
    );
    // A directory with a compose file's name is not a compose file.
    std::fs::create_dir(deep.join("compose.yaml")).unwrap();
    assert_eq!(
        find_compose_file(&deep).unwrap(),
        root.path().join("a/compose.yaml")
    );
}

fn fs_create(p: &Path) {
    std::fs::create_dir_all(p).unwrap();
}

fn touch(p: &Path) {
    std::fs::write(p, "services: {}\n").unwrap();
}

#[test]
fn name_precedence() {
    let dir = Path::new("/src/My App");
    let src = |flag, env, top| NameSources {
        flag,
        env,
        top_level: top,
        dir,
    };
    let cases = [
        (src(Some("p1"), Some("e1"), Some("n1")), "p1"),
        (src(None, Some("e1"), Some("n1")), "e1"),
        (src(Some(""), None, Some("n1")), "n1"),
        (src(None, None, None), "myapp"),
    ];
    for (s, want) in cases {
        assert_eq!(project_name(&s).unwrap(), want);
    }
}

#[test]
fn normalises_directory_names() {
    for (dir, want) in [
        ("/x/Flask_App", "flask_app"),
        ("/x/--web.v2", "webv2"),
        ("/x/_a-B", "a-b"),
        ("/x/été", "t"),
        ("/x/123", "123"),
    ] {
        let s = NameSources {
            dir: Path::new(dir),
            ..Default::default()
        };
        assert_eq!(project_name(&s).unwrap(), want, "{dir}");
    }
    let s = NameSources {
        dir: Path::new("/x/..."),
        ..Default::default()
    };
    assert_eq!(
        project_name(&s).unwrap_err().to_string(),
        "cannot derive a project name from the directory \"/x/...\": give one with -p NAME or a top-level name:"
    );
}

#[test]
fn refuses_invalid_given_names() {
    let s = NameSources {
        flag: Some("My.App"),
        dir: Path::new("/x"),
        ..Default::default()
    };
    assert_eq!(
        project_name(&s).unwrap_err().to_string(),
        "invalid project name \"My.App\" from -p: it must contain only lowercase letters, digits, dashes and underscores, and start with a letter or digit (try \"myapp\")"
    );
    let s = NameSources {
        top_level: Some("_x"),
        dir: Path::new("/x"),
        ..Default::default()
    };
    assert!(
        project_name(&s)
            .unwrap_err()
            .to_string()
            .starts_with("invalid project name \"_x\" from the top-level name:")
    );
}
