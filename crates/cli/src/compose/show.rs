//! `den compose config`, `ps` and `logs`, and the log stream of an
//! attached `up`.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use den_compose::config;
use den_sandbox::container::logs;
use serde_json::json;

use super::project::Project;
use super::service::Service;
use super::{containers_of, running, service_of};
use crate::containers::{Containers, Record};
use crate::context::Context;
use crate::output::{ago, escape_controls, table};
use crate::template::Format;

/// The names in a top-level section, in file order.
pub fn section_names(p: &Project, section: &str) -> Vec<String> {
    config::names(&p.model, section)
}

pub fn config(p: &Project, services: bool, volumes: bool, quiet: bool) -> anyhow::Result<i32> {
    if quiet {
        return Ok(0);
    }
    if services || volumes {
        let mut out = Vec::new();
        if services {
            out.extend(section_names(p, "services"));
        }
        if volumes {
            out.extend(section_names(p, "volumes"));
        }
        out.iter().for_each(|n| println!("{n}"));
        return Ok(0);
    }
    let mut model = p.model.clone();
    if let den_compose::yaml::Raw::Map(m) = &mut model.value {
        m.retain(|(k, _)| k != "name" && k != "version");
        m.insert(
            0,
            (
                "name".into(),
                den_compose::yaml::Node::new(den_compose::yaml::Raw::Str(p.name.clone())),
            ),
        );
    }
    print!("{}", config::to_yaml(&model));
    Ok(0)
}

/// The project's containers of `services` (all when empty), oldest first.
fn selected(ctx: &Context, p: &Project, services: &[String]) -> anyhow::Result<Vec<Record>> {
    p.check_services(services)?;
    Ok(containers_of(ctx, &p.name)?
        .into_iter()
        .filter(|r| services.is_empty() || services.iter().any(|s| s == service_of(r)))
        .collect())
}

pub fn ps(
    ctx: &Context,
    p: &Project,
    all: bool,
    quiet: bool,
    format: Option<&str>,
    services: &[String],
) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let now = chrono::Utc::now();
    let rows: Vec<(Record, den_sandbox::container::state::State)> = selected(ctx, p, services)?
        .into_iter()
        .map(|r| {
            let s = containers.state(&r.id);
            (r, s)
        })
        .filter(|(_, s)| all || running(s.status))
        .collect();
    if quiet {
        rows.iter().for_each(|(r, _)| println!("{}", r.id));
        return Ok(0);
    }
    let object = |r: &Record, s: &den_sandbox::container::state::State| {
        json!({
                    "ID": r.id, "Name": r.name, "Image": r.image, "Command": r.command.join(" "),
                    "Project": p.name, "Service": service_of(r), "Created": r.created,
                    "State": format!("{:?}", s.status).to_lowercase(),
                    "Status": crate::cmd::ps::status_text(s, now),
                    "ExitCode": s.exit_code.unwrap_or(0), "Labels": r.labels, "Ports": r.ports.join(", "),
        })
    };
    match Format::parse(format)? {
        // One JSON object per line, as docker compose v2 prints them.
        Format::Json => rows.iter().for_each(|(r, s)| println!("{}", object(r, s))),
        Format::Template(t) => {
            let objects: Vec<_> = rows.iter().map(|(r, s)| object(r, s)).collect();
            print!("{}", t.render(&objects, &COMPOSE_PS_FIELDS)?);
        }
        Format::Default => {
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|(r, s)| {
                    vec![
                        r.name.clone(),
                        r.image.clone(),
                        format!("\"{}\"", escape_controls(&r.command.join(" "))),
                        service_of(r).to_owned(),
                        ago(&r.created, now),
                        crate::cmd::ps::status_text(s, now),
                        if running(s.status) {
                            r.ports.join(", ")
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"
                    ],
                    &body
                )
            );
        }
    }
    Ok(0)
}

/// `docker compose ps --format`'s table titles.
const COMPOSE_PS_FIELDS: [(&str, &str); 9] = [
    ("Name", "NAME"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("Service", "SERVICE"),
    ("Created", "CREATED"),
    ("Status", "STATUS"),
    ("Ports", "PORTS"),
    ("ID", "CONTAINER ID"),
    ("Project", "PROJECT"),
];

/// A container's prefix: its name without the project, padded (`web-1  | `).
fn prefix(p: &Project, r: &Record, width: usize) -> String {
    let short = r
        .name
        .strip_prefix(&format!("{}-", p.name))
        .unwrap_or(&r.name);
    format!("{short:width$} | ")
}

fn print_entries(pre: &str, entries: &[logs::Entry], timestamps: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for e in entries {
        let t = if timestamps {
            format!("{} ", e.time)
        } else {
            String::new()
        };
        let line = e.log.strip_suffix('\n').unwrap_or(&e.log);
        writeln!(out, "{pre}{t}{line}")?;
    }
    out.flush()?;
    Ok(())
}

pub fn logs(
    ctx: &Context,
    p: &Project,
    follow: bool,
    tail: Option<&str>,
    timestamps: bool,
    services: &[String],
) -> anyhow::Result<i32> {
    let tail = match tail.filter(|t| *t != "all") {
        None => None,
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| anyhow::anyhow!("invalid --tail `{n}`: a number or all"))?,
        ),
    };
    let records = selected(ctx, p, services)?;
    stream(ctx, p, &records, follow, tail, timestamps, None)?;
    Ok(0)
}

/// When an attached `up` stops following.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    AllExit,
    AnyExits,
}

/// Prints each container's log lines with its prefix; with `follow`,
/// keeps printing new lines until every container has stopped (or
/// `stop` is set).
fn stream(
    ctx: &Context,
    p: &Project,
    records: &[Record],
    follow: bool,
    tail: Option<usize>,
    timestamps: bool,
    stop: Option<(&AtomicBool, Until)>,
) -> anyhow::Result<Option<(String, i32)>> {
    let containers = Containers::open(&ctx.root)?;
    let width = records
        .iter()
        .map(|r| prefix(p, r, 0).len() - 3)
        .max()
        .unwrap_or(0);
    let mut shown: Vec<usize> = Vec::new();
    for r in records {
        let all = logs::read_all(&containers.dir_of(&r.id));
        let skip = tail.map_or(0, |n| all.len().saturating_sub(n));
        print_entries(&prefix(p, r, width), &all[skip..], timestamps)?;
        shown.push(all.len());
    }
    if !follow {
        return Ok(None);
    }
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let mut alive = false;
        let mut first_exit = None;
        for (r, n) in records.iter().zip(shown.iter_mut()) {
            let state = containers.state(&r.id);
            let running_now = running(state.status);
            if !running_now && first_exit.is_none() {
                first_exit = Some((r.name.clone(), state.exit_code.unwrap_or(0)));
            }
            let all = logs::read_all(&containers.dir_of(&r.id));
            let fresh = if all.len() >= *n {
                &all[*n..]
            } else {
                &all[..]
            };
            print_entries(&prefix(p, r, width), fresh, timestamps)?;
            *n = all.len();
            alive |= running_now;
        }
        match stop {
            Some((_, Until::AnyExits)) if first_exit.is_some() => return Ok(first_exit),
            Some((s, _)) if s.load(Ordering::Relaxed) => return Ok(None),
            _ if !alive => return Ok(None),
            _ => {}
        }
    }
}

/// Attached `up`: the services' logs until they all stop or Ctrl-C, which
/// stops the project's containers (a second Ctrl-C kills them).
pub fn attached(
    ctx: &Context,
    p: &Project,
    services: &[Service],
    abort_on_exit: bool,
) -> anyhow::Result<i32> {
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))?;
    let names: Vec<&str> = services
        .iter()
        .flat_map(|s| s.containers.iter().map(|c| c.name.as_str()))
        .collect();
    let records: Vec<Record> = containers_of(ctx, &p.name)?
        .into_iter()
        .filter(|r| names.contains(&r.name.as_str()))
        .collect();
    let mode = match abort_on_exit {
        true => Until::AnyExits,
        false => Until::AllExit,
    };
    let exited = stream(ctx, p, &records, true, None, false, Some((&stop, mode)))?;
    if stop.load(Ordering::Relaxed) || exited.is_some() {
        eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
        let again = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&again))?;
        let wait = services
            .iter()
            .filter_map(|s| s.stop_timeout)
            .max()
            .unwrap_or(10);
        let t = if again.load(Ordering::Relaxed) {
            0
        } else {
            wait
        };
        records
            .iter()
            .for_each(|r| super::progress("Container", &r.name, "Stopping"));
        crate::cmd::lifecycle::stop_all(ctx, &records, Duration::from_secs(t))?;
        records
            .iter()
            .for_each(|r| super::progress("Container", &r.name, "Stopped"));
        if let Some((name, code)) = exited {
            eprintln!("{name} exited with code {code}");
            eprintln!("Aborting on container exit...");
            return Ok(code);
        }
        return Ok(130);
    }
    Ok(0)
}
