//! `den info` (the store, the user namespace mode, what the kernel and the
//! host offer, the counts) and `den version` (den's and its components'
//! versions), each as `Key: value` lines, JSON or a Go template.

use den_sandbox::container::state::Status;
use den_sandbox::idmap::IdMapping;
use den_sandbox::probe::{Check, rootless_checks};
use serde_json::{Value, json};

use crate::containers::Containers;
use crate::context::Context;
use crate::networks::Networks;
use crate::template::Format;
use crate::volumes::Volumes;

/// What the host gives den: read once for `info` and `version`.
struct Host {
    kernel: String,
    pasta: String,
    landlock: Option<u32>,
    landlock_detail: String,
    cgroup: String,
}

fn host() -> Host {
    let checks = rootless_checks();
    let detail = |name: &str| {
        checks
            .iter()
            .find(|c: &&Check| c.name == name)
            .map(|c| c.detail.clone())
            .unwrap_or_default()
    };
    let landlock_detail = detail("landlock");
    Host {
        kernel: fs_err::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        pasta: den_net::pasta::probe().unwrap_or_else(|e| format!("not usable: {e}")),
        landlock: landlock_detail
            .strip_prefix("ABI ")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok()),
        landlock_detail,
        cgroup: detail("cgroup v2 delegation"),
    }
}

/// "subordinate ids 100000-165535" or "single id (no subordinate ids)".
fn userns_mode() -> String {
    match IdMapping::detect() {
        IdMapping::Subordinate { sub_uid, .. } => format!(
            "subordinate ids {}-{}",
            sub_uid.start,
            u64::from(sub_uid.start) + u64::from(sub_uid.count) - 1
        ),
        IdMapping::Single { .. } => "single id (no subordinate ids)".into(),
        other => format!("{other:?}"),
    }
}

/// The process that keeps the user namespace containers share
/// (`den_sandbox::userns::keeper`), if one runs for this store.
fn userns_keeper(ctx: &Context) -> String {
    let mapping = IdMapping::detect();
    if !matches!(mapping, IdMapping::Subordinate { .. }) {
        return "none (each container has a user namespace of its own)".into();
    }
    match den_sandbox::userns::keeper::Keeper::find(&ctx.root, &mapping) {
        Some(k) => format!("pid {}", k.pid()),
        None => "none running (the next container starts it)".into(),
    }
}

pub fn info(ctx: &Context, format: Option<&str>) -> anyhow::Result<i32> {
    let format = Format::parse(format)?;
    let containers = Containers::open(&ctx.root)?;
    let records = containers.list()?;
    let running = records
        .iter()
        .filter(|r| {
            matches!(
                containers.state(&r.id).status,
                Status::Running | Status::Restarting
            )
        })
        .count();
    let h = host();
    let fields = [
        ("ServerVersion", json!(env!("CARGO_PKG_VERSION"))),
        ("DenRootDir", json!(ctx.root)),
        ("Containers", json!(records.len())),
        ("ContainersRunning", json!(running)),
        ("ContainersStopped", json!(records.len() - running)),
        ("Images", json!(ctx.store()?.images()?.len())),
        ("Volumes", json!(Volumes::open(&ctx.root)?.list()?.len())),
        ("Networks", json!(Networks::open(&ctx.root)?.list()?.len())),
        ("UserNamespace", json!(userns_mode())),
        ("UserNamespaceKeeper", json!(userns_keeper(ctx))),
        ("KernelVersion", json!(h.kernel)),
        ("OperatingSystem", json!(std::env::consts::OS)),
        ("Architecture", json!(std::env::consts::ARCH)),
        ("LandlockABI", json!(h.landlock)),
        ("Landlock", json!(h.landlock_detail)),
        ("Pasta", json!(h.pasta)),
        ("Cgroup", json!(h.cgroup)),
    ];
    print(&fields, format)
}

pub fn version(format: Option<&str>) -> anyhow::Result<i32> {
    let format = Format::parse(format)?;
    let h = host();
    let fields = [
        ("Version", json!(env!("CARGO_PKG_VERSION"))),
        ("Os", json!(std::env::consts::OS)),
        ("Arch", json!(std::env::consts::ARCH)),
        ("Kernel", json!(h.kernel)),
        ("Pasta", json!(h.pasta)),
        ("LandlockABI", json!(h.landlock)),
    ];
    print(&fields, format)
}

/// `Key: value` lines in `fields`' order, the JSON object, or the
/// template once.
fn print(fields: &[(&str, Value)], format: Format) -> anyhow::Result<i32> {
    let object = || {
        Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    };
    match format {
        Format::Default => {
            for (k, val) in fields {
                let shown = match val {
                    Value::String(s) => crate::output::escape_controls(s),
                    Value::Null => "none".into(),
                    other => other.to_string(),
                };
                println!("{k}: {shown}");
            }
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&object())?),
        Format::Template(t) => println!("{}", t.execute(&object())?),
    }
    Ok(0)
}
