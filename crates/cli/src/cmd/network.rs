//! `den network create|ls|inspect|rm|prune|exists`.

use serde_json::json;

use anyhow::bail;
use den_sandbox::container::spec::{ContainerSpec, Network, UserNetwork};
use den_sandbox::container::state::Status;

use crate::args::NetworkCommand;
use crate::containers::{Containers, Record};
use crate::context::Context;
use crate::filters::Filters;
use crate::networks::{NetworkRecord, Networks, WireOp, WireRequest};
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
        NetworkCommand::Connect {
            aliases,
            network,
            container,
        } => connect(ctx, &networks, &network, &container, &aliases)?,
        NetworkCommand::Disconnect {
            force,
            network,
            container,
        } => disconnect(ctx, &networks, &network, &container, force)?,
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

/// A container's spec, read and written back under its `network.lock`
/// (two connects of one container do not lose each other's network).
struct Held {
    record: Record,
    path: std::path::PathBuf,
    spec: ContainerSpec,
    /// Its supervisor lives (running, or waiting to restart it).
    live: bool,
    running: bool,
    _lock: std::fs::File,
}

impl Held {
    fn open(ctx: &Context, name: &str) -> anyhow::Result<Self> {
        let containers = Containers::open(&ctx.root)?;
        let record = containers.find(name)?;
        let dir = containers.dir_of(&record.id);
        let lock = crate::containers::lock_file(&dir.join("network.lock"))?;
        let path = dir.join("spec.json");
        let spec = ContainerSpec::read(&path)?;
        let status = containers.state(&record.id).status;
        Ok(Self {
            record,
            path,
            spec,
            live: matches!(status, Status::Running | Status::Restarting),
            running: status == Status::Running,
            _lock: lock,
        })
    }

    fn save(&self, ctx: &Context) -> anyhow::Result<()> {
        crate::private::write_atomic(
            &ctx.root,
            &self.path,
            &serde_json::to_vec_pretty(&self.spec)?,
        )
    }
}

/// The user networks of a container that may join another, or the
/// refusal (Docker's words for host).
fn connectable<'a>(
    network: &'a mut Network,
    name: &str,
) -> anyhow::Result<&'a mut Vec<UserNetwork>> {
    match network {
        Network::User(nets) => Ok(nets),
        Network::Host => {
            bail!("container cannot be disconnected from host network or connected to host network")
        }
        Network::None => bail!(
            "container {name} has no network (--network none): it cannot be connected to one; create it with --network NET"
        ),
        Network::Container(c) => bail!(
            "container {name} shares the network namespace of container {}: it cannot be connected to a network of its own",
            c.name
        ),
        Network::Private(_) => bail!(
            "container {name} is on den's private network, in a user namespace of its own: it cannot be connected to a user network; create it with --network NET"
        ),
    }
}

/// `den network connect [--alias A]... NET CONTAINER`: a running container
/// gets an interface on the network now; a created or stopped one has the
/// network recorded in its spec and joins it at its next start. Either way
/// it has its address at once, and every member's /etc/hosts is rewritten.
fn connect(
    ctx: &Context,
    networks: &Networks,
    net: &str,
    name: &str,
    aliases: &[String],
) -> anyhow::Result<()> {
    let rec = networks.get(net)?;
    let mut held = Held::open(ctx, name)?;
    let ctr = held.record.name.clone();
    let id = held.record.id.clone();
    let nets = connectable(&mut held.spec.network, &ctr)?;
    if nets.iter().any(|u| u.name == rec.name) {
        bail!(
            "endpoint with name {ctr} already exists in network {}",
            rec.name
        );
    }
    let first = nets.first().map(|u| u.name.clone()).unwrap_or_default();
    let names = member_names(&ctr, aliases);
    let me = match held.live {
        // Its infra started if it does not run: the interface (now, or at
        // the supervisor's next restart) needs it.
        true => crate::prepare::join(ctx, &rec, &id, names.clone())?,
        false => networks.join(&rec, &id, names.clone())?,
    };
    let new = UserNetwork {
        name: rec.name.clone(),
        dir: networks.dir_of(&rec.name),
        ip: me.ip,
        gateway: rec.gateway(),
        ports: Vec::new(),
        aliases: names,
    };
    let leave = |new: &UserNetwork| den_sandbox::container::bridge::leave(&new.dir, &id).ok();
    if held.running {
        let req = WireRequest {
            net: new.clone(),
            op: WireOp::Connect { first },
        };
        if let Err(e) = crate::networks::wire(ctx, &id, &req) {
            leave(&new);
            return Err(e);
        }
    }
    nets.push(new);
    let nets = nets.clone();
    held.save(ctx)?;
    networks.refresh_hosts(&id, &nets)
}

/// The container's names on a network: its own, then `--alias`es, once each.
fn member_names(name: &str, aliases: &[String]) -> Vec<String> {
    let mut names = vec![name.to_string()];
    for a in aliases {
        if !names.contains(a) {
            names.push(a.clone());
        }
    }
    names
}

/// `den network disconnect [-f] NET CONTAINER`: a running container's
/// interface on the network goes (the default route, if it held it, moves
/// to the first network the container stays on, as Docker moves it), its
/// address is freed and every member's /etc/hosts rewritten; a stopped
/// one's record goes. `-f`: the records go even when the interface cannot
/// be removed.
fn disconnect(
    ctx: &Context,
    networks: &Networks,
    net: &str,
    name: &str,
    force: bool,
) -> anyhow::Result<()> {
    let rec = networks.get(net)?;
    let mut held = Held::open(ctx, name)?;
    let ctr = held.record.name.clone();
    let id = held.record.id.clone();
    let not_connected =
        || anyhow::anyhow!("container {ctr} is not connected to network {}", rec.name);
    let Network::User(nets) = &mut held.spec.network else {
        return Err(not_connected());
    };
    let Some(at) = nets.iter().position(|u| u.name == rec.name) else {
        return Err(not_connected());
    };
    if nets.len() == 1 {
        bail!(
            "container {ctr} is on no other network than {}: den keeps a container on at least one of its networks; connect it to another first, or remove the container",
            rec.name
        );
    }
    let gone = nets.remove(at);
    // The first network's proxy serves the published ports: at the next
    // start, the network that is first then.
    if at == 0 {
        nets[0].ports = gone.ports.clone();
    }
    let nets = nets.clone();
    if held.running {
        let req = WireRequest {
            net: gone.clone(),
            op: WireOp::Disconnect {
                next_gateway: nets.first().map(|u| u.gateway.clone()),
            },
        };
        match crate::networks::wire(ctx, &id, &req) {
            Ok(_) => {}
            Err(e) if force => crate::log::warn(format_args!("{e}")),
            Err(e) => return Err(e),
        }
    }
    held.save(ctx)?;
    den_sandbox::container::bridge::leave(&gone.dir, &id)
        .map_err(|e| anyhow::anyhow!("cannot leave network {}: {e}", rec.name))?;
    networks.refresh_hosts(&id, &nets)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::args::{Cli, Command, NetworkCommand};

    fn parse(argv: &[&str]) -> Result<NetworkCommand, String> {
        let cli = Cli::try_parse_from(argv).map_err(|e| e.kind().to_string())?;
        match cli.command {
            Command::Network(n) => Ok(n),
            _ => Err("not a network command".into()),
        }
    }

    #[test]
    fn connect_and_disconnect_flags() {
        let Ok(NetworkCommand::Connect {
            aliases,
            network,
            container,
        }) = parse(&[
            "den",
            "network",
            "connect",
            "--alias",
            "a",
            "--alias=b",
            "n",
            "c",
        ])
        else {
            panic!("not a connect");
        };
        assert_eq!(
            (aliases, network, container),
            (vec!["a".into(), "b".into()], "n".into(), "c".into())
        );
        let Ok(NetworkCommand::Disconnect {
            force,
            network,
            container,
        }) = parse(&["den", "network", "disconnect", "-f", "n", "c"])
        else {
            panic!("not a disconnect");
        };
        assert_eq!((force, network, container), (true, "n".into(), "c".into()));
        let Ok(NetworkCommand::Disconnect { force, .. }) =
            parse(&["den", "network", "disconnect", "n", "c"])
        else {
            panic!("not a disconnect");
        };
        assert!(!force);
        for missing in [
            &["den", "network", "connect", "n"][..],
            &["den", "network", "disconnect", "n"],
            &["den", "network", "connect", "--alias", "a", "n"],
        ] {
            assert_eq!(
                parse(missing).unwrap_err(),
                "one or more required arguments were not provided",
                "{missing:?}"
            );
        }
    }

    #[test]
    fn a_members_names_are_its_own_then_each_alias_once() {
        assert_eq!(
            super::member_names("web", &["w".into(), "web".into(), "w".into(), "x".into()]),
            ["web", "w", "x"]
        );
        assert_eq!(super::member_names("web", &[]), ["web"]);
    }
}
