//! Table tests: the examples of Docker's "Format command and log output"
//! page and of `docker ps`/`docker images`/`docker inspect`'s references,
//! with the outputs those pages show.

use serde_json::{Value, json};

use super::*;

fn container() -> Value {
    json!({
        "Name": "/Fervent_Hopper",
        "Args": ["-c", "sleep 9"],
        "Image": "sha256:77af4d6b9913",
        "State": {"Status": "running", "Running": true, "Pid": 42, "Health": null},
        "Config": {"Env": ["PATH=/usr/bin", "A=1"], "Labels": {"com.example": "x", "b": "y"}},
        "NetworkSettings": {"IPAddress": "10.88.0.2", "Networks": {
            "front": {"IPAddress": "10.89.0.2"}, "back": {"IPAddress": "10.90.0.3"}}},
        "Mounts": [{"Source": "/a", "Destination": "/data"}, {"Source": "/b", "Destination": "/srv"}],
    })
}

fn one(t: &str) -> String {
    GoFormat::parse(t).unwrap().execute(&container()).unwrap()
}

fn err(t: &str) -> String {
    match GoFormat::parse(t).and_then(|g| g.execute(&container())) {
        Ok(s) => panic!("{t} rendered {s:?}"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn docker_documented_functions() {
    for (t, want) in [
        (r#"{{join .Args " , "}}"#, "-c , sleep 9"),
        (
            "{{json .Mounts}}",
            r#"[{"Destination":"/data","Source":"/a"},{"Destination":"/srv","Source":"/b"}]"#,
        ),
        ("{{lower .Name}}", "/fervent_hopper"),
        ("{{upper .Name}}", "/FERVENT_HOPPER"),
        (r#"{{split .Image ":"}}"#, "[sha256 77af4d6b9913]"),
        ("{{title .State.Status}}", "Running"),
        ("{{truncate .Image 6}}", "sha256"),
        ("{{pad .State.Status 2 1}}|", "  running |"),
        ("{{len .Config.Env}}", "2"),
        (r#"{{index .Config.Labels "com.example"}}"#, "x"),
        (r#"{{index .Config.Labels "missing"}}"#, ""),
        ("{{index .Args 1}}", "sleep 9"),
        (
            "{{range .NetworkSettings.Networks}}{{println .IPAddress}}{{end}}",
            "10.90.0.3\n10.89.0.2\n",
        ),
        (
            "{{.State.Status}} {{.State.Pid}} {{.State.Running}}",
            "running 42 true",
        ),
        ("{{.Config.Env}}", "[PATH=/usr/bin A=1]"),
        ("{{.Config.Labels}}", "map[b:y com.example:x]"),
        ("{{.Config.Labels.nope}}", "<no value>"),
        ("{{.NetworkSettings.IPAddress}}", "10.88.0.2"),
        (
            "{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}",
            "/a:/data /b:/srv ",
        ),
        (
            "{{range $i, $m := .Mounts}}{{$i}}={{$m.Destination}};{{end}}",
            "0=/data;1=/srv;",
        ),
        (
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}",
            "b=y,com.example=x,",
        ),
        ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
        (
            "{{if eq .State.Status \"exited\"}}x{{else if .State.Pid}}pid{{end}}",
            "pid",
        ),
        ("{{with .State.Health}}h{{else}}none{{end}}", "none"),
        ("{{.Name | upper | printf \"%q\"}}", "\"/FERVENT_HOPPER\""),
        (
            "{{printf \"%-6s|%4d\" .State.Status .State.Pid}}",
            "running|  42",
        ),
        ("{{(index .Mounts 1).Source}}", "/b"),
        (
            "{{$n := .Name}}{{range .Args}}{{$n}}{{end}}",
            "/Fervent_Hopper/Fervent_Hopper",
        ),
        ("{{- .State.Pid }}  {{- \" \" -}}  x", "42 x"),
        (
            "{{range .Args}}{{if eq . \"-c\"}}{{continue}}{{end}}{{.}}{{end}}",
            "sleep 9",
        ),
        (
            "{{and .State.Running .State.Pid}} {{or .State.Health \"no\"}} {{not .State.Running}}",
            "42 no false",
        ),
        ("{{len .Name | lt 3}}", "true"),
        ("{{/* a comment */}}ok", "ok"),
    ] {
        assert_eq!(one(t), want, "{t}");
    }
}

#[test]
fn errors_name_what_is_wrong() {
    let e = err("{{.Nope}}");
    assert!(e.contains("can't evaluate field Nope"), "{e}");
    assert!(e.contains(".State"), "{e}");
    assert!(err("{{.State.Nope}}").contains("can't evaluate field Nope: the fields here are"));
    assert!(err("{{.Name").contains("unclosed action"));
    assert!(err("{{if .Name}}x").contains("without {{end}}"));
    assert!(err("{{nofunc .Name}}").contains("function \"nofunc\" not defined"));
    assert!(err("{{end}}").contains("unexpected {{end}}"));
    assert!(err("{{len .State.Pid}}").contains("len of 42"));
}

#[test]
fn table_prefix_prints_docker_headers_aligned_like_tabwriter() {
    let rows = [
        json!({"ID": "a87ecb4f327c", "Image": "busybox", "Names": "web"}),
        json!({"ID": "01946d9d34d8", "Image": "docker.io/library/python:3.11-slim", "Names": "x"}),
    ];
    let h = [
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Names", "NAMES"),
    ];
    let f = GoFormat::parse("table {{.ID}}\\t{{.Image}}\\t{{.Names}}").unwrap();
    assert_eq!(
        f.render(&rows, &h).unwrap(),
        "CONTAINER ID   IMAGE                                NAMES\n\
         a87ecb4f327c   busybox                              web\n\
         01946d9d34d8   docker.io/library/python:3.11-slim   x\n"
    );
    // A short column is ten wide; functions pass header titles through.
    let f = GoFormat::parse("table {{lower .Names}}\t{{.ID}}").unwrap();
    assert_eq!(
        f.render(&rows[..1], &h).unwrap(),
        "NAMES     CONTAINER ID\nweb       a87ecb4f327c\n"
    );
    // No rows: the header alone; without `table`, nothing.
    assert_eq!(f.render(&[], &h).unwrap(), "NAMES     CONTAINER ID\n");
    let plain = GoFormat::parse("{{.ID}}: {{.Names}}").unwrap();
    assert_eq!(
        plain.render(&rows, &h).unwrap(),
        "a87ecb4f327c: web\n01946d9d34d8: x\n"
    );
    assert_eq!(plain.render(&[], &h).unwrap(), "");
}

#[test]
fn label_method_and_control_characters() {
    let row = json!({"Labels": "a=1,com.x=two", "Names": "n\u{1b}[2J"});
    let f = GoFormat::parse(r#"{{.Label "com.x"}}|{{.Label "none"}}|{{.Names}}"#).unwrap();
    assert_eq!(f.execute(&row).unwrap(), "two||n\\x1b[2J");
    let j = GoFormat::parse("{{json .}}").unwrap();
    assert!(!j.execute(&row).unwrap().contains('\u{1b}'));
}

#[test]
fn table_and_json_keep_their_meaning() {
    assert!(matches!(Format::parse(None).unwrap(), Format::Default));
    assert!(matches!(
        Format::parse(Some("table")).unwrap(),
        Format::Default
    ));
    assert!(matches!(Format::parse(Some("json")).unwrap(), Format::Json));
    assert!(matches!(
        Format::parse(Some("{{.ID}}")).unwrap(),
        Format::Template(_)
    ));
}
