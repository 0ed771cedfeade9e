use super::*;
use crate::dockerfile::parse;

const MULTI: &str = "ARG BASE=alpine\nARG SRC=build\n\
    FROM $BASE AS base\n\
    FROM base AS deps\n\
    FROM busybox AS assets\n\
    FROM deps AS build\n\
    COPY --from=assets /a /a\n\
    RUN --mount=type=bind,from=tools,target=/t make\n\
    FROM scratch AS unused\n\
    FROM alpine AS tools\n\
    FROM base AS final\n\
    COPY --from=$SRC /out /out\n\
    COPY --from=nginx:1 /etc/nginx /etc/nginx\n\
    COPY --from=2 /a /b\n";

fn graph(text: &str, build_args: &[(&str, &str)]) -> (Dockerfile, Result<StageGraph, Error>) {
    let df = parse("Dockerfile", text).unwrap();
    let given = build_args
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let args = meta_args(&df, &given).unwrap();
    let g = StageGraph::new(&df, &args);
    (df, g)
}

#[test]
fn multi_stage_dependencies() {
    let (df, g) = graph(MULTI, &[]);
    let g = g.unwrap();
    let image = |s: &str| Ref::Image(s.to_owned());
    assert_eq!(
        g.bases,
        [
            image("alpine"),
            Ref::Stage(0),
            image("busybox"),
            Ref::Stage(1),
            Ref::Scratch,
            image("alpine"),
            Ref::Stage(0),
        ]
    );
    let deps: Vec<Vec<usize>> = g.deps.iter().map(|d| d.iter().copied().collect()).collect();
    assert_eq!(
        deps,
        [
            vec![],
            vec![0],
            vec![],
            vec![1, 2, 5],
            vec![],
            vec![],
            vec![0, 2, 3]
        ]
    );
    assert_eq!(g.images[6], BTreeSet::from(["nginx:1".to_owned()]));

    let last = StageGraph::target(&df, None).unwrap();
    assert_eq!(last, 6);
    assert_eq!(
        g.needed(last),
        [0, 1, 2, 3, 5, 6],
        "the unused stage is not built"
    );
    assert_eq!(
        g.waves(last),
        [vec![0, 2, 5], vec![1], vec![3], vec![6]],
        "independent stages share a wave"
    );
    let assets = StageGraph::target(&df, Some("ASSETS")).unwrap();
    assert_eq!(g.needed(assets), [2]);
    assert_eq!(g.waves(assets), [vec![2]]);
    let build = StageGraph::target(&df, Some("build")).unwrap();
    assert_eq!(g.waves(build), [vec![0, 2, 5], vec![1], vec![3]]);
}

#[test]
fn meta_args_expand_from() {
    let (_, g) = graph(MULTI, &[("BASE", "debian:12"), ("NOT_DECLARED", "x")]);
    assert_eq!(g.unwrap().bases[0], Ref::Image("debian:12".into()));
    let df = parse("Dockerfile", "ARG A=x\nARG B=${A}y\nARG C\nFROM $B\n").unwrap();
    let args = meta_args(&df, &BTreeMap::new()).unwrap();
    assert_eq!(args.get("B").map(String::as_str), Some("xy"));
    assert!(
        !args.contains_key("C"),
        "an ARG without default or value is unset"
    );
    let (_, g) = graph(MULTI, &[("SRC", "assets")]);
    assert_eq!(
        g.unwrap().deps[6],
        BTreeSet::from([0, 2]),
        "--from follows the build arg"
    );
}

#[test]
fn refusals() {
    let (df, _) = graph(MULTI, &[]);
    assert_eq!(
        StageGraph::target(&df, Some("nope"))
            .unwrap_err()
            .to_string(),
        "Dockerfile: target stage \"nope\" could not be found"
    );
    let cases = [
        (
            "FROM a AS x\nCOPY --from=y / /\nFROM a AS y\nCOPY --from=x / /\n",
            "Dockerfile:1: circular dependency detected on stage: x",
        ),
        (
            "FROM a\nFROM b\nCOPY --from=1 / /\n",
            "Dockerfile:3: COPY --from=1: stage index 1 is not an earlier stage (this is stage 1)",
        ),
        (
            "FROM a AS x\nRUN --mount=from=x,target=/m true\n",
            "Dockerfile:2: RUN --mount from=x: a stage cannot copy from itself",
        ),
        (
            "FROM a\nCOPY --from=${X:?need-X} / /\n",
            "Dockerfile:2: X: need-X",
        ),
    ];
    for (text, want) in cases {
        if want.contains("need-X") {
            let (_, g) = graph(text, &[]);
            assert_eq!(g.unwrap_err().to_string(), want, "{text:?}");
        } else {
            let e = parse("Dockerfile", text).unwrap_err();
            assert_eq!(e.to_string(), want, "parse reports it: {text:?}");
        }
    }
}
