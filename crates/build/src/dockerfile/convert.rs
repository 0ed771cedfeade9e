//! `parse-dockerfile`'s syntax tree → den's model, collecting problems.

use std::collections::BTreeMap;

use parse_dockerfile as pd;

use super::text::{Lines, join_continuations, logical_line};
use super::{
    ArgDef, Command, Copy, Dockerfile, Healthcheck, Heredoc, Instruction, KeyValue, Kind, Problem,
    Run, Source, Stage, flags, heredoc,
};
use crate::words::split_raw;

const INSTRUCTIONS: &str = "ADD, ARG, CMD, COPY, ENTRYPOINT, ENV, EXPOSE, FROM, HEALTHCHECK, \
     LABEL, MAINTAINER, ONBUILD, RUN, SHELL, STOPSIGNAL, USER, VOLUME, WORKDIR";

/// Parses and converts; the model is `None` when the text does not parse.
pub(super) fn analyse(file: &str, text: &str) -> (Option<Dockerfile>, Vec<Problem>) {
    let escape = escape_directive(text);
    let pre = match heredoc::prepass(text, escape) {
        Ok(p) => p,
        Err(p) => return (None, vec![p]),
    };
    let parsed = match pd::parse(&pre.masked) {
        Ok(d) => d,
        Err(e) => return (None, syntax_problems(&pre.masked, e, escape)),
    };
    let mut cx = Cx {
        file,
        text,
        lines: Lines::new(text),
        escape,
        heredocs: pre.heredocs,
        problems: Vec::new(),
    };
    let dockerfile = cx.dockerfile(&parsed);
    let mut problems = cx.problems;
    problems.extend(crate::graph::problems(&dockerfile));
    problems.sort_by_key(|p| p.line);
    (Some(dockerfile), problems)
}

/// `# escape=` among the parser directives: the leading `# key=value`
/// lines, which end at the first other line (a plain comment, a blank
/// line, an instruction).
pub(super) fn escape_directive(text: &str) -> char {
    for line in text.lines() {
        let Some((key, value)) = line
            .trim()
            .strip_prefix('#')
            .and_then(|rest| rest.split_once('='))
        else {
            break;
        };
        let key = key.trim();
        if key.contains(char::is_whitespace) || key.is_empty() {
            break;
        }
        if key.eq_ignore_ascii_case("escape") {
            return if value.trim() == "`" { '`' } else { '\\' };
        }
    }
    '\\'
}

/// The parser stops at its first error; to report more, the failing
/// instruction is blanked out and the text parsed again (a few times).
fn syntax_problems(masked: &str, first: pd::Error, escape: char) -> Vec<Problem> {
    let mut text = masked.to_owned();
    let mut problems = Vec::new();
    let mut err = first;
    for _ in 0..20 {
        let line = err.line();
        let mut message = format!("{err:#}");
        if message == "unknown instruction ''" {
            message = "ONBUILD instruction requires an instruction after it".into();
        } else if message.starts_with("unknown instruction") {
            message = format!("{message}: expected one of {INSTRUCTIONS}");
        } else if message == "expected JSON array" {
            message = "expected a JSON array, e.g. [\"/bin/sh\", \"-c\"]".into();
        }
        let stop = line == 0 || message.starts_with("expected FROM");
        if !stop || problems.is_empty() {
            problems.push(Problem::error(line, message));
        }
        if stop {
            break;
        }
        let start = Lines::new(&text).start(line);
        let end = start + logical_line(&text, start, escape).len();
        let mut bytes = text.into_bytes();
        bytes[start..end]
            .iter_mut()
            .filter(|b| **b != b'\n')
            .for_each(|b| *b = b' ');
        text = String::from_utf8(bytes).unwrap_or_default();
        match pd::parse(&text) {
            Err(e) if e.line() > line => err = e,
            _ => break,
        }
    }
    problems
}

struct Cx<'t> {
    file: &'t str,
    text: &'t str,
    lines: Lines,
    escape: char,
    heredocs: BTreeMap<usize, Vec<Heredoc>>,
    problems: Vec<Problem>,
}

/// A flag as written: name, value.
type Flag = (String, Option<String>);

impl Cx<'_> {
    fn problem(&mut self, line: usize, message: impl Into<String>) {
        self.problems.push(Problem::error(line, message));
    }

    fn line_of(&self, span: &pd::Span) -> usize {
        self.lines.line(span.start)
    }

    /// A word as written (escapes and quotes kept), or its JSON value.
    fn word(&self, s: &pd::UnescapedString<'_>) -> String {
        if self.text[..s.span.start].ends_with('"') {
            return s.value.to_string();
        }
        join_continuations(&self.text[s.span.clone()], self.escape)
    }

    fn dockerfile(&mut self, parsed: &pd::Dockerfile<'_>) -> Dockerfile {
        let d = &parsed.parser_directives;
        let mut global_args = Vec::new();
        for a in parsed.global_args() {
            let line = self.line_of(&a.arg.span);
            global_args.extend(self.arg_defs(line, &a.arguments));
        }
        let stages = parsed
            .stages()
            .enumerate()
            .map(|(index, s)| self.stage(index, s.from, s.instructions))
            .collect();
        Dockerfile {
            file: self.file.to_owned(),
            syntax: d.syntax.as_ref().map(|s| s.value.value.to_owned()),
            escape: self.escape,
            global_args,
            stages,
        }
    }

    fn stage(
        &mut self,
        index: usize,
        from: &pd::FromInstruction<'_>,
        instructions: &[pd::Instruction<'_>],
    ) -> Stage {
        let line = self.line_of(&from.from.span);
        let flags = self.flags(line, "FROM", &from.options, &["platform"]);
        for (name, v) in &flags {
            self.needs_value(line, name, v.clone());
        }
        let name = from.as_.as_ref().map(|(_, n)| n.value.to_ascii_lowercase());
        if let Some(n) = &name
            && !valid_stage_name(n)
        {
            self.problem(
                line,
                format!(
                    "invalid name for build stage: {n:?}, name can't start with a number or contain symbols"
                ),
            );
        }
        Stage {
            index,
            name,
            base: self.word(&from.image),
            platform: value(&flags, "platform"),
            line,
            instructions: instructions
                .iter()
                .filter_map(|i| self.instruction(i))
                .collect(),
        }
    }

    fn instruction(&mut self, i: &pd::Instruction<'_>) -> Option<Instruction> {
        let start = keyword_span(i)?.start;
        let line = self.lines.line(start);
        let text = join_continuations(logical_line(self.text, start, self.escape), self.escape);
        let kind = self.kind(line, i)?;
        Some(Instruction { line, text, kind })
    }

    fn kind(&mut self, line: usize, i: &pd::Instruction<'_>) -> Option<Kind> {
        use pd::Instruction as I;
        Some(match i {
            I::Run(r) => Kind::Run(self.run(line, r)),
            I::Copy(c) => Kind::Copy(self.copy(line, "COPY", &c.options, &c.src, &c.dest)),
            I::Add(a) => Kind::Add(self.copy(line, "ADD", &a.options, &a.src, &a.dest)),
            I::Workdir(w) => Kind::Workdir(self.word(&w.arguments)),
            I::Env(e) => Kind::Env(self.name_vals(line, "ENV", &e.arguments)),
            I::Label(l) => Kind::Label(self.name_vals(line, "LABEL", &l.arguments)),
            I::Arg(a) => Kind::Arg(self.arg_defs(line, &a.arguments)),
            I::Expose(e) => Kind::Expose(self.expose(line, &e.arguments)),
            I::Cmd(c) => Kind::Cmd(self.command(&c.arguments)),
            I::Entrypoint(e) => Kind::Entrypoint(self.command(&e.arguments)),
            I::User(u) => Kind::User(self.word(&u.arguments)),
            I::Volume(v) => Kind::Volume(match &v.arguments {
                pd::JsonOrStringArray::Json(a) => {
                    a.value.iter().map(|w| w.value.to_string()).collect()
                }
                pd::JsonOrStringArray::String(a) => a.iter().map(|w| self.word(w)).collect(),
            }),
            I::Stopsignal(s) => {
                let sig = self.word(&s.arguments);
                if !sig.contains('$')
                    && let Err(e) = flags::signal(&sig)
                {
                    self.problem(line, e);
                }
                Kind::StopSignal(sig)
            }
            I::Healthcheck(h) => Kind::Healthcheck(self.healthcheck(line, h)),
            I::Shell(s) => Kind::Shell(s.arguments.iter().map(|w| w.value.to_string()).collect()),
            I::Maintainer(m) => Kind::Maintainer(self.word(&m.name)),
            I::Onbuild(o) => Kind::Onbuild(Box::new(self.onbuild(line, &o.instruction)?)),
            I::From(_) => {
                self.problem(line, "FROM is not allowed here");
                return None;
            }
            _ => {
                self.problem(line, "instruction not supported by den");
                return None;
            }
        })
    }

    /// `EXPOSE` words; those without variables are checked now.
    fn expose(&mut self, line: usize, args: &[pd::UnescapedString<'_>]) -> Vec<String> {
        let words: Vec<String> = args.iter().map(|w| self.word(w)).collect();
        for w in &words {
            let Ok(port) = crate::words::expand(w, &Default::default()) else {
                continue;
            };
            if !w.contains('$')
                && let Err(e) = flags::port(&port)
            {
                self.problem(line, e);
            }
        }
        words
    }

    fn onbuild(&mut self, line: usize, inner: &pd::Instruction<'_>) -> Option<Instruction> {
        match inner {
            pd::Instruction::From(_) => {
                self.problem(line, "FROM isn't allowed as an ONBUILD trigger");
                None
            }
            pd::Instruction::Maintainer(_) => {
                self.problem(line, "MAINTAINER isn't allowed as an ONBUILD trigger");
                None
            }
            _ => self.instruction(inner),
        }
    }

    fn command(&self, c: &pd::Command<'_>) -> Command {
        match c {
            pd::Command::Exec(args) => {
                Command::Exec(args.value.iter().map(|a| a.value.to_string()).collect())
            }
            pd::Command::Shell(s) => {
                Command::Shell(join_continuations(&self.text[s.span.clone()], self.escape))
            }
            _ => Command::Shell(String::new()),
        }
    }

    /// Validates flags against `allowed` (a trailing `*` allows repeats).
    fn flags(
        &mut self,
        line: usize,
        instr: &str,
        given: &[pd::Flag<'_>],
        allowed: &[&str],
    ) -> Vec<Flag> {
        let mut out: Vec<Flag> = Vec::new();
        for f in given {
            let name = f.name.value.to_string();
            let repeat = allowed.contains(&format!("{name}*").as_str());
            if !repeat && !allowed.contains(&name.as_str()) {
                let known: Vec<String> = allowed
                    .iter()
                    .map(|a| format!("--{}", a.trim_end_matches('*')))
                    .collect();
                let hint = if known.is_empty() {
                    format!("{instr} takes no flags")
                } else {
                    format!("{instr} takes {}", known.join(", "))
                };
                self.problem(line, format!("unknown flag: --{name} ({hint})"));
                continue;
            }
            if !repeat && out.iter().any(|(n, _)| *n == name) {
                self.problem(line, format!("duplicate flag specified: --{name}"));
                continue;
            }
            out.push((name, f.value.as_ref().map(|v| v.value.to_string())));
        }
        out
    }

    fn run(&mut self, line: usize, r: &pd::RunInstruction<'_>) -> Run {
        let flags = self.flags(line, "RUN", &r.options, &["mount*", "network", "security"]);
        let mut run = Run {
            command: self.command(&r.arguments),
            heredocs: self.heredocs_at(line),
            mounts: Vec::new(),
            network: Default::default(),
        };
        if run.command == Command::Shell(String::new()) && run.heredocs.is_empty() {
            self.problem(line, "RUN instruction requires at least one argument");
        }
        for (name, v) in flags {
            let Some(v) = self.needs_value(line, &name, v) else {
                continue;
            };
            let result = match name.as_str() {
                "mount" => flags::mount(&v).map(|m| run.mounts.push(m)),
                "network" => flags::network(&v).map(|n| run.network = n),
                _ if v == "sandbox" => Ok(()),
                _ => Err(format!(
                    "--security={v} is not supported by den: RUN steps always run sandboxed"
                )),
            };
            if let Err(e) = result {
                self.problem(line, e);
            }
        }
        run
    }

    fn heredocs_at(&mut self, line: usize) -> Vec<Heredoc> {
        self.heredocs
            .remove(&self.lines.start(line))
            .unwrap_or_default()
    }

    fn needs_value(&mut self, line: usize, name: &str, v: Option<String>) -> Option<String> {
        if v.is_none() {
            self.problem(line, format!("--{name} needs a value (--{name}=…)"));
        }
        v
    }

    fn copy(
        &mut self,
        line: usize,
        instr: &str,
        options: &[pd::Flag<'_>],
        src: &[pd::Source<'_>],
        dest: &pd::UnescapedString<'_>,
    ) -> Copy {
        let allowed: &[&str] = if instr == "ADD" {
            &["chown", "chmod", "link", "checksum", "keep-git-dir"]
        } else {
            &["from", "chown", "chmod", "link"]
        };
        let flags = self.flags(line, instr, options, allowed);
        for (name, v) in &flags {
            if name != "link" && name != "keep-git-dir" && v.is_none() {
                self.problem(line, format!("--{name} needs a value (--{name}=…)"));
            }
        }
        let link = match flags.iter().find(|(n, _)| n == "link") {
            None => false,
            Some((_, v)) => match v.as_deref() {
                None | Some("true") => true,
                Some("false") => false,
                Some(other) => {
                    self.problem(
                        line,
                        format!("invalid value for --link: {other:?} (use true or false)"),
                    );
                    false
                }
            },
        };
        let mut docs = self.heredocs_at(line).into_iter();
        let sources = src
            .iter()
            .filter_map(|s| match s {
                pd::Source::Path(p) if self.text[p.span.clone()].starts_with("<<") => {
                    docs.next().map(Source::Heredoc)
                }
                pd::Source::Path(p) => Some(Source::Path(self.word(p))),
                _ => None,
            })
            .collect();
        Copy {
            sources,
            dest: self.word(dest),
            from: value(&flags, "from"),
            chown: value(&flags, "chown"),
            chmod: value(&flags, "chmod"),
            link,
            checksum: value(&flags, "checksum"),
        }
    }

    fn healthcheck(&mut self, line: usize, h: &pd::HealthcheckInstruction<'_>) -> Healthcheck {
        let allowed = [
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ];
        let flags = self.flags(line, "HEALTHCHECK", &h.options, &allowed);
        let mut hc = Healthcheck {
            test: match &h.arguments {
                pd::HealthcheckArguments::Cmd { arguments, .. } => Some(self.command(arguments)),
                _ => None,
            },
            interval: None,
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: None,
        };
        for (name, v) in flags {
            let Some(v) = self.needs_value(line, &name, v) else {
                continue;
            };
            let result = match name.as_str() {
                "retries" => match v.parse::<u32>() {
                    Ok(n) => {
                        hc.retries = Some(n);
                        Ok(())
                    }
                    Err(_) => Err(format!(
                        "--retries must be a number of at least 0, not {v:?}"
                    )),
                },
                "interval" => flags::interval(&name, &v).map(|d| hc.interval = Some(d)),
                "timeout" => flags::interval(&name, &v).map(|d| hc.timeout = Some(d)),
                "start-period" => flags::interval(&name, &v).map(|d| hc.start_period = Some(d)),
                _ => flags::interval(&name, &v).map(|d| hc.start_interval = Some(d)),
            };
            if let Err(e) = result {
                self.problem(line, e);
            }
        }
        hc
    }

    /// `ARG a b=c`: BuildKit's `parseNameOrNameVal`.
    fn arg_defs(&mut self, line: usize, args: &pd::UnescapedString<'_>) -> Vec<ArgDef> {
        let raw = self.word(args);
        let words = split_raw(&raw, self.escape);
        if words.is_empty() {
            self.problem(line, "ARG requires at least one argument");
        }
        words
            .into_iter()
            .map(|w| match w.split_once('=') {
                Some((n, v)) => ArgDef {
                    name: n.to_owned(),
                    default: Some(v.to_owned()),
                },
                None => ArgDef {
                    name: w,
                    default: None,
                },
            })
            .collect()
    }

    /// `ENV`/`LABEL`: BuildKit's `parseNameVal` (new `k=v …` form, or the
    /// old `k value` form when the first word has no `=`).
    fn name_vals(
        &mut self,
        line: usize,
        instr: &str,
        args: &pd::UnescapedString<'_>,
    ) -> Vec<KeyValue> {
        let raw = self.word(args);
        match name_vals(&raw, instr, self.escape) {
            Ok(kv) => kv,
            Err(e) => {
                self.problem(line, e);
                Vec::new()
            }
        }
    }
}

pub(super) fn name_vals(raw: &str, instr: &str, escape: char) -> Result<Vec<KeyValue>, String> {
    let words = split_raw(raw, escape);
    let Some(first) = words.first() else {
        return Err(format!("{instr} requires at least one argument"));
    };
    if !first.contains('=') {
        let mut parts = raw.trim().splitn(2, char::is_whitespace);
        let key = parts.next().unwrap_or_default();
        let Some(value) = parts.next() else {
            return Err(format!("{instr} must have two arguments (NAME=VALUE)"));
        };
        return Ok(vec![KeyValue {
            key: key.to_owned(),
            value: value.trim_start().to_owned(),
        }]);
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(format!("{instr} names can not be blank")),
            Some((k, v)) => Ok(KeyValue {
                key: k.to_owned(),
                value: v.to_owned(),
            }),
            None => Err(format!(
                "syntax error - can't find = in {w:?}. Must be of the form: name=value"
            )),
        })
        .collect()
}

fn value(flags: &[Flag], name: &str) -> Option<String> {
    flags
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.clone())
}

/// BuildKit's stage name rule: `^[a-z][a-z0-9-_\.]*$`.
fn valid_stage_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

fn keyword_span(i: &pd::Instruction<'_>) -> Option<pd::Span> {
    use pd::Instruction as I;
    Some(
        match i {
            I::Add(x) => &x.add,
            I::Arg(x) => &x.arg,
            I::Cmd(x) => &x.cmd,
            I::Copy(x) => &x.copy,
            I::Entrypoint(x) => &x.entrypoint,
            I::Env(x) => &x.env,
            I::Expose(x) => &x.expose,
            I::From(x) => &x.from,
            I::Healthcheck(x) => &x.healthcheck,
            I::Label(x) => &x.label,
            I::Maintainer(x) => &x.maintainer,
            I::Onbuild(x) => &x.onbuild,
            I::Run(x) => &x.run,
            I::Shell(x) => &x.shell,
            I::Stopsignal(x) => &x.stopsignal,
            I::User(x) => &x.user,
            I::Volume(x) => &x.volume,
            I::Workdir(x) => &x.workdir,
            _ => return None,
        }
        .span
        .clone(),
    )
}
