//! `den stats`: CPU, memory, network, block I/O and pids of running
//! containers, as `docker stats` shows them. CPU, memory and block I/O come
//! from the container's cgroup (`den_sandbox::cgroup::usage`); a container
//! without one (no resource flags, or no delegated cgroup v2 here) gets
//! `--` there and one line on stderr saying why; its PIDS are then counted
//! from /proc (its init and descendants), NET I/O always is.

use std::collections::HashMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

use den_sandbox::cgroup::Usage;
use den_sandbox::container::state::Status;

use crate::containers::{Containers, Record};
use crate::context::Context;
use crate::output::human_size;
use crate::template::Format;

/// One container's figures at one moment.
struct Sample {
    record: Record,
    init: i32,
    cgroup: Option<Usage>,
    pids: u64,
    net: (u64, u64),
    at: Instant,
}

pub fn run(
    ctx: &Context,
    names: &[String],
    all: bool,
    no_stream: bool,
    format: Option<&str>,
) -> anyhow::Result<i32> {
    let format = Format::parse(format)?;
    let table = matches!(format, Format::Default);
    let containers = Containers::open(&ctx.root)?;
    let records = chosen(&containers, names, all)?;
    let mut explained = Vec::new();
    let by_id = |samples: Vec<Sample>| -> HashMap<String, Sample> {
        samples
            .into_iter()
            .map(|s| (s.record.id.clone(), s))
            .collect()
    };
    let mut before = by_id(sample(&containers, &records, &mut explained));
    let mut first = true;
    loop {
        std::thread::sleep(Duration::from_millis(if first { 500 } else { 1000 }));
        let now = sample(&containers, &records, &mut explained);
        let rows: Vec<Vec<String>> = now
            .iter()
            .map(|s| row(s, before.get(&s.record.id)))
            .collect();
        let mut out = std::io::stdout().lock();
        if !no_stream && table {
            write!(out, "\x1b[2J\x1b[H")?;
        }
        write!(out, "{}", render(&rows, &format)?)?;
        out.flush()?;
        if no_stream {
            return Ok(0);
        }
        before = by_id(now);
        first = false;
    }
}

/// The containers asked for: those named, else the running ones (`-a`: all).
fn chosen(containers: &Containers, names: &[String], all: bool) -> anyhow::Result<Vec<Record>> {
    if !names.is_empty() {
        return names.iter().map(|n| containers.find(n)).collect();
    }
    Ok(containers
        .list()?
        .into_iter()
        .filter(|r| all || containers.state(&r.id).status == Status::Running)
        .collect())
}

fn sample(containers: &Containers, records: &[Record], explained: &mut Vec<String>) -> Vec<Sample> {
    let parents = parent_map();
    records
        .iter()
        .map(|r| {
            let state = containers.state(&r.id);
            let running = state.status == Status::Running;
            let init = if running { state.pid } else { 0 };
            let dir = crate::resources::cgroup_of(&containers.dir_of(&r.id));
            let cgroup = dir.as_deref().and_then(den_sandbox::cgroup::usage);
            if running && cgroup.is_none() && !explained.contains(&r.id) {
                eprintln!("den: {}: no CPU or memory figures: {}", r.name, why_none());
                explained.push(r.id.clone());
            }
            let pids = match &cgroup {
                Some(u) => u.pids,
                None if running => descendants(&parents, init),
                None => 0,
            };
            Sample {
                record: r.clone(),
                init,
                cgroup,
                pids,
                net: if running { net_bytes(init) } else { (0, 0) },
                at: Instant::now(),
            }
        })
        .collect()
}

/// Why a running container has no cgroup.
fn why_none() -> String {
    match crate::resources::hierarchy() {
        Err(e) => format!("it has no cgroup: {e}"),
        Ok(_) => "it has no cgroup of its own: den makes one only for a container started \
                  with --memory, --cpus, --cpu-shares, --cpuset-cpus or --pids-limit"
            .into(),
    }
}

const HEADER: [&str; 8] = [
    "CONTAINER ID",
    "NAME",
    "CPU %",
    "MEM USAGE / LIMIT",
    "MEM %",
    "NET I/O",
    "BLOCK I/O",
    "PIDS",
];

fn row(now: &Sample, before: Option<&Sample>) -> Vec<String> {
    let dash = || "--".to_string();
    let cpu = match (
        &now.cgroup,
        before.and_then(|b| b.cgroup.as_ref().map(|u| (u, b.at))),
    ) {
        (Some(u), Some((b, at))) => {
            let wall = now.at.duration_since(at).as_micros().max(1) as f64;
            let used = u.cpu_usec.saturating_sub(b.cpu_usec) as f64;
            format!("{:.2}%", used / wall * 100.0)
        }
        _ => dash(),
    };
    let (mem, mem_pct) = match &now.cgroup {
        Some(u) => {
            let limit = u.memory_limit.unwrap_or_else(host_memory);
            (
                format!("{} / {}", binary_size(u.memory), binary_size(limit)),
                format!("{:.2}%", u.memory as f64 / limit.max(1) as f64 * 100.0),
            )
        }
        None => (dash(), dash()),
    };
    let block = match &now.cgroup {
        Some(u) => format!(
            "{} / {}",
            human_size(u.read_bytes),
            human_size(u.write_bytes)
        ),
        None => dash(),
    };
    vec![
        now.record.id[..12].to_string(),
        now.record.name.clone(),
        cpu,
        mem,
        mem_pct,
        format!("{} / {}", human_size(now.net.0), human_size(now.net.1)),
        block,
        if now.init == 0 {
            "0".into()
        } else {
            now.pids.to_string()
        },
    ]
}

/// `docker stats --format`'s fields and their table titles.
const FIELDS: [(&str, &str); 9] = [
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
    ("Container", "CONTAINER"),
];

fn render(rows: &[Vec<String>], format: &Format) -> anyhow::Result<String> {
    let objects = || -> Vec<serde_json::Value> {
        rows.iter()
            .map(|r| {
                let mut obj = serde_json::Map::new();
                for ((k, _), v) in FIELDS.iter().zip(r) {
                    obj.insert((*k).into(), v.clone().into());
                }
                obj.insert("Container".into(), r[0].clone().into());
                serde_json::Value::Object(obj)
            })
            .collect()
    };
    Ok(match format {
        Format::Default => crate::output::table(&HEADER, rows),
        Format::Json => objects().iter().map(|o| format!("{o}\n")).collect(),
        Format::Template(t) => t.render(&objects(), &FIELDS)?,
    })
}

/// Docker's memory sizes: binary units, four significant digits
/// ("1.5MiB", "7.629GiB").
fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    let int_digits = (v.max(1.0).log10().floor() as usize) + 1;
    let decimals = 4usize.saturating_sub(int_digits);
    let s = format!("{v:.decimals$}");
    let s = match s.contains('.') {
        true => s.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => s,
    };
    format!("{s}{}", UNITS[unit])
}

/// MemTotal: the limit of a container without memory.max, as Docker shows.
fn host_memory() -> u64 {
    fs_err::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// pid → parent pid, for every process in /proc.
fn parent_map() -> HashMap<i32, i32> {
    let Ok(dir) = fs_err::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parse_ppid(&stat)?))
        })
        .collect()
}

/// Field 4 of /proc/PID/stat (after the command, which may hold spaces).
fn parse_ppid(stat: &str) -> Option<i32> {
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `init` and its descendants: the container's processes.
fn descendants(parents: &HashMap<i32, i32>, init: i32) -> u64 {
    let mut set = vec![init];
    let mut grew = true;
    while grew {
        grew = false;
        for (pid, ppid) in parents {
            if set.contains(ppid) && !set.contains(pid) {
                set.push(*pid);
                grew = true;
            }
        }
    }
    set.len() as u64
}

/// Received and sent bytes of the container's interfaces but loopback.
/// The container decides how many interfaces it has: the read is bounded
/// (1 MiB, some 7,000 interfaces; past it no figures).
fn net_bytes(init: i32) -> (u64, u64) {
    let path = format!("/proc/{init}/net/dev");
    let text = den_atomic::read_bounded(std::path::Path::new(&path), 1 << 20)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    parse_net_dev(&text)
}

fn parse_net_dev(text: &str) -> (u64, u64) {
    text.lines()
        .skip(2)
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.trim() != "lo")
        .map(|(_, fields)| {
            let f: Vec<u64> = fields
                .split_whitespace()
                .map(|v| v.parse().unwrap_or(0))
                .collect();
            (
                f.first().copied().unwrap_or(0),
                f.get(8).copied().unwrap_or(0),
            )
        })
        .fold((0, 0), |(r, t), (a, b)| (r + a, t + b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker_stats() {
        assert_eq!(binary_size(0), "0B");
        assert_eq!(binary_size(1536 * 1024), "1.5MiB");
        assert_eq!(binary_size(8_192_000_000), "7.629GiB");
        assert_eq!(binary_size(64 << 20), "64MiB");
    }

    #[test]
    fn proc_parsers() {
        assert_eq!(parse_ppid("42 (a b) c) S 7 42 42 0"), Some(7));
        let dev = "Inter-|   Receive\n face |bytes packets\n    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 2000 5 0 0 0 0 0 0 300 2 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(dev), (2000, 300));
        let parents = HashMap::from([(10, 1), (11, 10), (12, 11), (13, 1)]);
        assert_eq!(descendants(&parents, 10), 3);
    }
}
