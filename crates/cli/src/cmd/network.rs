//! `den network create|ls|inspect|rm|prune|exists`.

use serde_json::json;

use crate::args::NetworkCommand;
use crate::context::Context;
use crate::filters::Filters;
use crate::networks::{NetworkRecord, Networks};
use crate::output::table;
use crate::template::Format;

pub fn run(ctx: &Context, cmd: NetworkCommand) -> anyhow::Result<i32> {
    let networks = Networks::open(&ctx.root)?;
    match cmd {
        NetworkCommand::Create { name, labels } => {
            let labels = crate::run_flags::parse_labels(&labels.labels, &labels.label_file)?;
            let rec = networks.create(&name, labels)?;
            println!("{}", rec.id);
        }
        NetworkCommand::Exists { name } => {
            return Ok(
                if networks
                    .list()?
                    .iter()
                    .any(|n| n.name == name || n.id == name)
                {
                    0
                } else {
                    1
                },
            );
        }
        NetworkCommand::Ls {
            quiet,
            filter,
            format,
        } => {
            let all = filtered(&networks, &filter)?;
            let format = Format::parse(format.as_deref())?;
            if quiet {
                all.iter().for_each(|n| println!("{}", n.name));
            } else if let Format::Template(t) = format {
                let rows: Vec<_> = all.iter().map(ls_row).collect();
                print!("{}", t.render(&rows, &NETWORK_FIELDS)?);
            } else if let Format::Json = format {
                let rows: Vec<_> = all.iter().map(ls_row).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|n| {
                        vec![
                            n.id[..12].to_string(),
                            n.name.clone(),
                            "bridge".into(),
                            n.subnet(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table(&["NETWORK ID", "NAME", "DRIVER", "SUBNET"], &rows)
                );
            }
        }
        NetworkCommand::Inspect { names, format } => {
            let mut out = Vec::new();
            for n in names {
                let rec = networks.get(&n)?;
                let members = networks.members(&rec.name);
                let containers: serde_json::Map<String, serde_json::Value> = members.iter().map(|(id, m)| (id.clone(), json!({"Name": m.names.first(), "IPv4Address": format!("{}/24", m.ip), "Aliases": m.names}))).collect();
                out.push(json!({"Name": rec.name, "Id": rec.id, "Created": rec.created, "Driver": "bridge", "Labels": rec.labels, "IPAM": {"Config": [{"Subnet": rec.subnet(), "Gateway": rec.gateway()}]}, "Containers": containers}));
            }
            crate::template::print_inspect(&out, format.as_deref())?;
        }
        NetworkCommand::Rm { force, names } => {
            for n in names {
                // -f: Docker's "do not error if the network does not exist".
                if force && networks.get(&n).is_err() {
                    continue;
                }
                networks.remove(&n)?;
                println!("{n}");
            }
        }
        NetworkCommand::Prune { force } => prune(&networks, force)?,
    }
    Ok(0)
}

/// `docker network ls --format`'s fields and their table titles.
const NETWORK_FIELDS: [(&str, &str); 8] = [
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

/// One network as `docker network ls --format` sees it.
fn ls_row(n: &crate::networks::NetworkRecord) -> serde_json::Value {
    json!({
        "ID": n.id[..12], "Name": n.name, "Driver": "bridge", "Scope": "local",
        "IPv6": "false", "Internal": "false", "Labels": n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","), "CreatedAt": n.created,
        "Subnet": n.subnet(),
    })
}

const NETWORK_FILTERS: &[&str] = &["name", "id", "driver", "label"];

/// `den network ls --filter` (how filters combine: `crate::filters`).
fn filtered(networks: &Networks, given: &[String]) -> anyhow::Result<Vec<NetworkRecord>> {
    let f = Filters::parse(given, NETWORK_FILTERS, "network ls")?;
    Ok(networks
        .list()?
        .into_iter()
        .filter(|n| {
            f.any("name", |v| n.name.contains(v))
                && f.any("id", |v| n.id.starts_with(v))
                && f.any("driver", |d| d == "bridge")
                && f.labels_match(&n.labels)
        })
        .collect())
}

/// `den network prune`: every network without members.
pub fn prune(networks: &Networks, force: bool) -> anyhow::Result<()> {
    crate::confirm::prune(
        "network",
        "WARNING! This will remove all custom networks not used by at least one container.",
        force,
    )?;
    let mut removed = Vec::new();
    for n in networks.list()? {
        if networks.members(&n.name).is_empty() {
            networks.remove(&n.name)?;
            removed.push(n.name);
        }
    }
    if !removed.is_empty() {
        println!("Deleted Networks:");
        removed.iter().for_each(|n| println!("{n}"));
    }
    Ok(())
}
