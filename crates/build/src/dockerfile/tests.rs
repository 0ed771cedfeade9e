//! Table-driven tests of the model, `parse` errors and `check` problems.

use super::*;

fn parse_ok(text: &str) -> Dockerfile {
    parse("Dockerfile", text).unwrap_or_else(|e| panic!("{e}"))
}

fn kinds(text: &str) -> Vec<(usize, Kind)> {
    parse_ok(text).stages[0]
        .instructions
        .iter()
        .map(|i| (i.line, i.kind.clone()))
        .collect()
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: s(k),
        value: s(v),
    }
}

#[test]
fn reference_flask_app() {
    let text = "FROM python:3.11-slim\nWORKDIR /app\nCOPY requirements.txt .\n\
                RUN pip install -r requirements.txt\nCOPY . .\nEXPOSE 5000\n\
                CMD [\"flask\", \"run\", \"--host=0.0.0.0\"]\n";
    let d = parse_ok(text);
    assert_eq!(d.stages.len(), 1);
    let st = &d.stages[0];
    assert_eq!(
        (st.base.as_str(), st.line, st.name.as_ref()),
        ("python:3.11-slim", 1, None)
    );
    let copy = |src: &str| {
        Kind::Copy(Copy {
            sources: vec![Source::Path(s(src))],
            dest: s("."),
            from: None,
            chown: None,
            chmod: None,
            link: false,
            checksum: None,
        })
    };
    let want = vec![
        (2, Kind::Workdir(s("/app"))),
        (3, copy("requirements.txt")),
        (
            4,
            Kind::Run(Run {
                command: Command::Shell(s("pip install -r requirements.txt")),
                heredocs: vec![],
                mounts: vec![],
                network: Network::Default,
            }),
        ),
        (5, copy(".")),
        (6, Kind::Expose(vec![s("5000")])),
        (
            7,
            Kind::Cmd(Command::Exec(vec![
                s("flask"),
                s("run"),
                s("--host=0.0.0.0"),
            ])),
        ),
    ];
    assert_eq!(kinds(text), want);
    assert_eq!(
        st.instructions[2].text,
        "RUN pip install -r requirements.txt"
    );
}

#[test]
fn stages_args_and_platform() {
    let d = parse_ok(
        "# syntax=docker/dockerfile:1\nARG BASE=alpine V\nFROM --platform=$BUILDPLATFORM ${BASE} AS Build\n\
         ARG V\nRUN make\nFROM scratch\nCOPY --from=build --chown=1:2 --chmod=0644 --link /out /\n",
    );
    assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(
        d.global_args,
        [
            ArgDef {
                name: s("BASE"),
                default: Some(s("alpine"))
            },
            ArgDef {
                name: s("V"),
                default: None
            },
        ]
    );
    let b = &d.stages[0];
    assert_eq!(
        b.name.as_deref(),
        Some("build"),
        "stage names are lower-cased"
    );
    assert_eq!(b.base, "${BASE}");
    assert_eq!(b.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(b.line, 3);
    assert_eq!(
        b.instructions[0].kind,
        Kind::Arg(vec![ArgDef {
            name: s("V"),
            default: None
        }])
    );
    let Kind::Copy(c) = &d.stages[1].instructions[0].kind else {
        panic!("not a COPY")
    };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("1:2"));
    assert_eq!(c.chmod.as_deref(), Some("0644"));
    assert!(c.link);
    assert_eq!(d.stage("BUILD").map(|s| s.index), Some(0));
}

#[test]
fn every_instruction() {
    let text = "FROM a\n\
        ENV A=1 B=\"x y\" C=$A\n\
        ENV OLD value with spaces\n\
        LABEL \"com.x\"=\"v 1\" k=v\n\
        MAINTAINER Jane <j@x>\n\
        USER app:app\n\
        VOLUME [\"/data\", \"/logs\"]\n\
        VOLUME /a /b\n\
        STOPSIGNAL SIGTERM\n\
        SHELL [\"/bin/bash\", \"-c\"]\n\
        ENTRYPOINT exec app\n\
        EXPOSE 80/tcp 53/udp\n\
        HEALTHCHECK --interval=5s --timeout=1m30s --start-period=2s --start-interval=100ms --retries=3 CMD curl -f x\n\
        HEALTHCHECK NONE\n\
        ONBUILD RUN echo hi\n\
        ADD --checksum=sha256:abc https://x/y.tgz /y\n";
    let got = kinds(text);
    let hc = |test, i, t, sp, si, r| {
        Kind::Healthcheck(Healthcheck {
            test,
            interval: i,
            timeout: t,
            start_period: sp,
            start_interval: si,
            retries: r,
        })
    };
    let ms = Duration::from_millis;
    let want = vec![
        (
            2,
            Kind::Env(vec![kv("A", "1"), kv("B", "\"x y\""), kv("C", "$A")]),
        ),
        (3, Kind::Env(vec![kv("OLD", "value with spaces")])),
        (
            4,
            Kind::Label(vec![kv("\"com.x\"", "\"v 1\""), kv("k", "v")]),
        ),
        (5, Kind::Maintainer(s("Jane <j@x>"))),
        (6, Kind::User(s("app:app"))),
        (7, Kind::Volume(vec![s("/data"), s("/logs")])),
        (8, Kind::Volume(vec![s("/a"), s("/b")])),
        (9, Kind::StopSignal(s("SIGTERM"))),
        (10, Kind::Shell(vec![s("/bin/bash"), s("-c")])),
        (11, Kind::Entrypoint(Command::Shell(s("exec app")))),
        (12, Kind::Expose(vec![s("80/tcp"), s("53/udp")])),
        (
            13,
            hc(
                Some(Command::Shell(s("curl -f x"))),
                Some(ms(5000)),
                Some(ms(90_000)),
                Some(ms(2000)),
                Some(ms(100)),
                Some(3),
            ),
        ),
        (14, hc(None, None, None, None, None, None)),
        (
            15,
            Kind::Onbuild(Box::new(Instruction {
                line: 15,
                text: s("RUN echo hi"),
                kind: Kind::Run(Run {
                    command: Command::Shell(s("echo hi")),
                    heredocs: vec![],
                    mounts: vec![],
                    network: Network::Default,
                }),
            })),
        ),
        (
            16,
            Kind::Add(Copy {
                sources: vec![Source::Path(s("https://x/y.tgz"))],
                dest: s("/y"),
                from: None,
                chown: None,
                chmod: None,
                link: false,
                checksum: Some(s("sha256:abc")),
            }),
        ),
    ];
    assert_eq!(got, want);
}

#[test]
fn run_flags_and_forms() {
    let got = kinds(
        "FROM a\nRUN --mount=type=cache,target=/root/.cache --mount=type=bind,from=b,target=/b \
         --network=none pip install x\nRUN [\"echo\", \"a b\"]\nrun [\"not json'] \n",
    );
    let Kind::Run(r) = &got[0].1 else { panic!() };
    assert_eq!(r.mounts.len(), 2);
    assert_eq!(r.mounts[0].kind, MountKind::Cache);
    assert_eq!(r.mounts[1].from.as_deref(), Some("b"));
    assert_eq!(r.network, Network::None);
    assert_eq!(r.command, Command::Shell(s("pip install x")));
    let Kind::Run(r) = &got[1].1 else { panic!() };
    assert_eq!(r.command, Command::Exec(vec![s("echo"), s("a b")]));
    let Kind::Run(r) = &got[2].1 else { panic!() };
    assert_eq!(
        r.command,
        Command::Shell(s("[\"not json']")),
        "JSON that does not parse is shell form, as in Docker"
    );
}

#[test]
fn continuations_comments_and_lines() {
    let d = parse_ok(
        "FROM a\n\n# comment\nRUN apt-get update \\\n    # inside\n    && apt-get install -y \\\n\n      curl\nUSER x\n",
    );
    let i = &d.stages[0].instructions;
    assert_eq!(i[0].line, 4);
    assert_eq!(
        i[0].kind,
        Kind::Run(Run {
            command: Command::Shell(s("apt-get update     && apt-get install -y       curl")),
            heredocs: vec![],
            mounts: vec![],
            network: Network::Default,
        })
    );
    assert_eq!(i[1].line, 9);
}

#[test]
fn escape_directive() {
    let d =
        parse_ok("# escape=`\nFROM mcr/windows\nRUN dir C:\\ `\n  && echo done\nWORKDIR C:\\app\n");
    assert_eq!(d.escape, '`');
    let i = &d.stages[0].instructions;
    let Kind::Run(r) = &i[0].kind else { panic!() };
    assert_eq!(r.command, Command::Shell(s("dir C:\\   && echo done")));
    assert_eq!(i[1].kind, Kind::Workdir(s("C:\\app")));
    assert_eq!(i[1].line, 5);
}

#[test]
fn heredocs() {
    let d = parse_ok(
        "FROM a\nRUN <<EOF\nset -e\necho $HOME\nEOF\nRUN python3 <<PY > /out\nprint(1)\nPY\n\
         RUN cat <<A <<-'B' \\\n  && true\nline a\nA\n\t\tline b\n\tB\n\
         COPY <<one.txt <<\"two.txt\" /dest/\nfirst\none.txt\nsecond $X\ntwo.txt\nUSER x\n",
    );
    let i = &d.stages[0].instructions;
    let h = |name: &str, content: &str, expand| Heredoc {
        name: s(name),
        content: s(content),
        expand,
    };
    let run = |k: &Kind| match k {
        Kind::Run(r) => r.clone(),
        other => panic!("{other:?}"),
    };
    let r = run(&i[0].kind);
    assert_eq!(r.command, Command::Shell(s("<<EOF")));
    assert_eq!(r.heredocs, [h("EOF", "set -e\necho $HOME\n", true)]);
    let r = run(&i[1].kind);
    assert_eq!(r.command, Command::Shell(s("python3 <<PY > /out")));
    assert_eq!(r.heredocs, [h("PY", "print(1)\n", true)]);
    assert_eq!(i[1].line, 6);
    let r = run(&i[2].kind);
    assert_eq!(r.command, Command::Shell(s("cat <<A <<-'B'   && true")));
    assert_eq!(
        r.heredocs,
        [h("A", "line a\n", true), h("B", "line b\n", false)]
    );
    assert_eq!(i[3].line, 15);
    let Kind::Copy(c) = &i[3].kind else { panic!() };
    assert_eq!(
        c.sources,
        [
            Source::Heredoc(h("one.txt", "first\n", true)),
            Source::Heredoc(h("two.txt", "second $X\n", false)),
        ]
    );
    assert_eq!(c.dest, "/dest/");
    assert_eq!((i[4].line, &i[4].kind), (20, &Kind::User(s("x"))));
}

#[test]
fn parse_errors_name_file_and_line() {
    let cases = [
        (
            "FROM a\nRUN x\nFOO bar\n",
            "app.Dockerfile:3: unknown instruction 'FOO': expected one of ADD, ARG, CMD, COPY, \
             ENTRYPOINT, ENV, EXPOSE, FROM, HEALTHCHECK, LABEL, MAINTAINER, ONBUILD, RUN, SHELL, \
             STOPSIGNAL, USER, VOLUME, WORKDIR",
        ),
        ("RUN x\n", "app.Dockerfile:1: expected FROM"),
        (
            "# just a comment\n",
            "app.Dockerfile: expected at least one FROM instruction",
        ),
        (
            "FROM a\nRUN <<EOF\necho\n",
            "app.Dockerfile:2: expected the end of here-document EOF, but the file ended",
        ),
        (
            "FROM a\nCOPY onlyone\n",
            "app.Dockerfile:2: COPY instruction requires at least two arguments",
        ),
        (
            "FROM a\nSHELL sh -c\n",
            "app.Dockerfile:2: expected a JSON array, e.g. [\"/bin/sh\", \"-c\"]",
        ),
        (
            "FROM a AS x\nFROM b AS x\n",
            "app.Dockerfile:2: duplicate stage name 'x'",
        ),
        (
            "FROM a\nRUN --mount=type=cache x\n",
            "app.Dockerfile:2: --mount=type=cache needs target=PATH",
        ),
        (
            "FROM a\nENV\n",
            "app.Dockerfile:2: ENV instruction requires at least one argument",
        ),
        (
            "FROM a\nWORKDIR\n",
            "app.Dockerfile:2: WORKDIR instruction requires exactly one argument",
        ),
        (
            "FROM a\nRUN\n",
            "app.Dockerfile:2: RUN instruction requires at least one argument",
        ),
        (
            "FROM a\nRUN --network=none\n",
            "app.Dockerfile:2: RUN instruction requires at least one argument",
        ),
        (
            "FROM a\nONBUILD\n",
            "app.Dockerfile:2: ONBUILD instruction requires an instruction after it",
        ),
        (
            "FROM a\nHEALTHCHECK --interval=1s\n",
            "app.Dockerfile:2: expected CMD or NONE",
        ),
        (
            "FROM a\nENV A\n",
            "app.Dockerfile:2: ENV must have two arguments (NAME=VALUE)",
        ),
        (
            "FROM a\nLABEL =x\n",
            "app.Dockerfile:2: LABEL names can not be blank",
        ),
        (
            "FROM a\nENV a=b c\n",
            "app.Dockerfile:2: syntax error - can't find = in \"c\". Must be of the form: name=value",
        ),
        (
            "FROM --platform busybox\n",
            "app.Dockerfile:1: --platform needs a value (--platform=…)",
        ),
        (
            "FROM a\nSTOPSIGNAL SIGNOPE\n",
            "app.Dockerfile:2: invalid signal \"SIGNOPE\" in STOPSIGNAL: use a name like SIGTERM or a number 1-64",
        ),
        (
            "FROM a\nEXPOSE 80 \"8080/tcp\" $P 99999\n",
            "app.Dockerfile:2: invalid port \"99999\" in EXPOSE: a port is a number from 1 to 65535",
        ),
    ];
    for (text, want) in cases {
        let e = parse("app.Dockerfile", text).unwrap_err();
        assert_eq!(e.to_string(), want, "{text:?}");
    }
}

#[test]
fn check_lists_every_problem() {
    let text = "FROM a AS 1st\n\
        FROM a AS build\n\
        RUN --bogus --network=bridge make\n\
        COPY --from=biuld /x /y\n\
        COPY --from=5 /x /y\n\
        ADD --from=build /x /y\n\
        ENV novalue\n\
        HEALTHCHECK --interval=1us CMD true\n\
        ONBUILD FROM x\n\
        FROM later AS first\n\
        FROM a AS later\n\
        COPY --from=nginx:1 /x /y\n\
        COPY --from=0 /x /y\n";
    let got: Vec<String> = check(text)
        .iter()
        .map(|p| p.display("Dockerfile").to_string())
        .collect();
    let want = [
        "Dockerfile:1: invalid name for build stage: \"1st\", name can't start with a number or contain symbols",
        "Dockerfile:3: unknown flag: --bogus (RUN takes --mount, --network, --security)",
        "Dockerfile:3: unsupported network mode \"bridge\": use default, none or host",
        "Dockerfile:4: warning: COPY --from=biuld: no stage is named \"biuld\"; it will be pulled as an image (write biuld:latest if that is meant)",
        "Dockerfile:5: COPY --from=5: stage index 5 is not an earlier stage (this is stage 1)",
        "Dockerfile:6: unknown flag: --from (ADD takes --chown, --chmod, --link, --checksum, --keep-git-dir)",
        "Dockerfile:7: ENV must have two arguments (NAME=VALUE)",
        "Dockerfile:8: --interval \"1us\" cannot be less than 1ms",
        "Dockerfile:9: FROM isn't allowed as an ONBUILD trigger",
        "Dockerfile:10: FROM later: that stage comes later in the file; a stage can only build on an earlier one",
    ];
    assert_eq!(got, want);
    assert!(
        check("FROM a AS b\nRUN --mount=type=cache,target=/c x\nFROM b\nCOPY --from=b / /\n")
            .is_empty()
    );
}

#[test]
fn check_reports_several_syntax_errors() {
    let got = check("FROM a\nFOO x\nRUN ok\nBAR \\\n  y\nCOPY a\n");
    let lines: Vec<usize> = got.iter().map(|p| p.line).collect();
    assert_eq!(lines, [2, 4, 6], "{got:?}");
    assert!(
        got[2]
            .message
            .contains("COPY instruction requires at least two arguments")
    );
}

#[test]
fn self_and_circular_references() {
    let got = check("FROM a AS x\nCOPY --from=x / /\n");
    assert_eq!(
        got[0].message,
        "COPY --from=x: a stage cannot copy from itself"
    );
    let got = check("FROM a AS x\nCOPY --from=y / /\nFROM a AS y\nCOPY --from=x / /\n");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].message, "circular dependency detected on stage: x");
}

#[test]
fn onbuild_triggers_from_an_image() {
    let triggers = vec![s("COPY . /app"), s("RUN make -C /app")];
    let got = parse_triggers("base:1", &triggers).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].line, got[0].text.as_str()), (1, "COPY . /app"));
    assert_eq!((got[1].line, got[1].text.as_str()), (2, "RUN make -C /app"));
    let e = parse_triggers("base:1", &[s("RUN ok"), s("NOPE x")]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("base:1 (ONBUILD):2: unknown instruction 'NOPE'"),
        "{e}"
    );
    let e = parse_triggers("base:1", &[s("FROM x")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "base:1 (ONBUILD):1: FROM isn't allowed as an ONBUILD trigger"
    );
    assert!(parse_triggers("base:1", &[]).unwrap().is_empty());
    for (t, msg) in [
        (
            "ONBUILD RUN x",
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
        ),
        (
            "MAINTAINER me",
            "MAINTAINER isn't allowed as an ONBUILD trigger",
        ),
        (
            "RUN a\nRUN b",
            "an ONBUILD trigger must be exactly one instruction",
        ),
    ] {
        let e = parse_triggers("base:1", &[s(t)]).unwrap_err();
        assert_eq!(e.to_string(), format!("base:1 (ONBUILD):1: {msg}"), "{t}");
    }
}

#[test]
fn onbuild_onbuild_is_refused() {
    for (text, msg) in [
        (
            "FROM a\nONBUILD ONBUILD RUN x\n",
            "ONBUILD ONBUILD is not allowed",
        ),
        (
            "FROM a\nONBUILD MAINTAINER me\n",
            "MAINTAINER isn't allowed as an ONBUILD trigger",
        ),
    ] {
        let got = check(text);
        let got: Vec<_> = got.iter().map(|p| (p.line, p.message.as_str())).collect();
        assert_eq!(got, [(2, msg)], "{text}");
    }
}

#[test]
fn escape_directive_only_in_the_header() {
    let cases = [
        ("# escape=`\nFROM a\n", '`'),
        ("# syntax=x\n#ESCAPE = `\nFROM a\n", '`'),
        ("# a comment\n# escape=`\nFROM a\n", '\\'),
        ("\n# escape=`\nFROM a\n", '\\'),
        ("FROM a\n# escape=`\n", '\\'),
        ("# escape=\\\nFROM a\n", '\\'),
    ];
    for (text, want) in cases {
        assert_eq!(convert::escape_directive(text), want, "{text:?}");
        assert_eq!(parse_ok(text).escape, want, "the parser agrees: {text:?}");
    }
}

#[test]
fn which_instructions_expand() {
    let d =
        parse_ok("FROM a\nRUN echo $A\nCMD $A\nENV A=$B\nWORKDIR $A\nCOPY $A /\nSHELL [\"sh\"]\n");
    let got: Vec<bool> = d.stages[0]
        .instructions
        .iter()
        .map(|i| i.kind.expands_variables())
        .collect();
    assert_eq!(got, [false, false, true, true, true, false]);
}
