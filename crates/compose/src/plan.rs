//! The planner: in which order services start and stop, what the
//! project's resources are called and labelled, and which services an `up`
//! must (re)create.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::check::depends_on;
use crate::yaml::{Node, Raw};

/// Service keys left out of the config hash (docker compose's
/// `ServiceHash`): changing them alone never recreates a container.
const UNHASHED: &[&str] = &["build", "pull_policy", "scale", "depends_on", "profiles"];

/// The services in start order: each level holds every service whose
/// dependencies are all in earlier levels (start a level at once). Reverse
/// it for `down`. Dependencies on services not in `services` are skipped.
/// `services` must be free of cycles ([`crate::check::check`]).
pub fn levels(file: &str, services: &[(String, Node)]) -> Vec<Vec<String>> {
    let deps: Vec<Vec<String>> = services
        .iter()
        .map(|(n, s)| {
            depends_on(file, n, s)
                .unwrap_or_default()
                .into_iter()
                .map(|d| d.service)
                .filter(|d| services.iter().any(|(n, _)| n == d))
                .collect()
        })
        .collect();
    let mut placed: Vec<String> = Vec::new();
    let mut out = Vec::new();
    while placed.len() < services.len() {
        let level: Vec<String> = services
            .iter()
            .zip(&deps)
            .filter(|((n, _), d)| !placed.contains(n) && d.iter().all(|d| placed.contains(d)))
            .map(|((n, _), _)| n.clone())
            .collect();
        if level.is_empty() {
            break; // a cycle: check() refuses these before planning
        }
        placed.extend(level.iter().cloned());
        out.push(level);
    }
    out
}

/// The default network of a project.
pub fn network_name(project: &str) -> String {
    format!("{project}_default")
}

/// The container of replica `n` (from 1) of a service.
pub fn container_name(project: &str, service: &str, n: u32) -> String {
    format!("{project}-{service}-{n}")
}

/// The den volume for the top-level volume `key` with definition `def`:
/// its `name:` when given (and always for `external`), else
/// `PROJECT_KEY`.
pub fn volume_name(project: &str, key: &str, def: Option<&Node>) -> String {
    let named = def.and_then(|d| d.get("name")).and_then(Node::scalar_text);
    let external = def
        .and_then(|d| d.get("external"))
        .is_some_and(|e| e.value == Raw::Bool(true));
    match (named, external) {
        (Some(n), _) => n,
        (None, true) => key.to_owned(),
        (None, false) => format!("{project}_{key}"),
    }
}

/// Docker's `com.docker.compose.*` labels for a service's container.
pub fn container_labels(
    project: &str,
    service: &str,
    n: u32,
    config_hash: &str,
    working_dir: &str,
    config_files: &[String],
) -> BTreeMap<String, String> {
    let l = |k: &str| format!("com.docker.compose.{k}");
    BTreeMap::from([
        (l("project"), project.to_owned()),
        (l("service"), service.to_owned()),
        (l("container-number"), n.to_string()),
        (l("oneoff"), "False".to_owned()),
        (l("config-hash"), config_hash.to_owned()),
        (l("project.working_dir"), working_dir.to_owned()),
        (l("project.config_files"), config_files.join(",")),
    ])
}

/// The service's config hash: sha256 (hex) of the canonical JSON (keys
/// sorted) of its definition without build, pull_policy, scale,
/// deploy.replicas, depends_on and profiles.
pub fn config_hash(service: &Node) -> String {
    let mut s = service.clone();
    if let Raw::Map(m) = &mut s.value {
        m.retain(|(k, _)| !UNHASHED.contains(&k.as_str()));
        for (k, v) in m.iter_mut() {
            if let ("deploy", Raw::Map(d)) = (k.as_str(), &mut v.value) {
                d.retain(|(k, _)| k != "replicas");
            }
        }
    }
    let mut json = String::new();
    canonical_json(&s, &mut json);
    Sha256::digest(json.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn canonical_json(n: &Node, out: &mut String) {
    match &n.value {
        Raw::Null => out.push_str("null"),
        Raw::Bool(b) => out.push_str(&b.to_string()),
        Raw::Int(i) => out.push_str(&i.to_string()),
        Raw::Float(f) => out.push_str(&serde_json::Value::from(*f).to_string()),
        Raw::Str(s) => out.push_str(&serde_json::Value::from(s.as_str()).to_string()),
        Raw::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        Raw::Map(m) => {
            let mut sorted: Vec<&(String, Node)> = m.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::from(k.as_str()).to_string());
                out.push(':');
                canonical_json(v, out);
            }
            out.push('}');
        }
    }
}

/// What a service's running container carries (from its labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// `com.docker.compose.config-hash`.
    pub config_hash: String,
    /// The digest of the image the container was made from.
    pub image_digest: String,
}

/// What `up` does with a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// No container yet: create it.
    Create,
    /// Changed (or shares namespaces with a changed service): recreate.
    Recreate,
    /// Unchanged: leave it running.
    Keep,
}

/// The action for each service, in `services` order. `wanted` gives each
/// service's new config hash and image digest; `running` what its current
/// container carries. A changed service also recreates the services that
/// join its namespaces (`network_mode: service:NAME`), transitively.
pub fn decide(
    services: &[(String, Node)],
    wanted: &BTreeMap<String, Running>,
    running: &BTreeMap<String, Running>,
) -> Vec<(String, Action)> {
    let mut actions: Vec<(String, Action)> = services
        .iter()
        .map(|(n, _)| {
            let a = match (running.get(n), wanted.get(n)) {
                (None, _) => Action::Create,
                (Some(r), Some(w)) if r == w => Action::Keep,
                _ => Action::Recreate,
            };
            (n.clone(), a)
        })
        .collect();
    loop {
        let changed: Vec<String> = actions
            .iter()
            .filter(|(_, a)| *a != Action::Keep)
            .map(|(n, _)| n.clone())
            .collect();
        let mut more = false;
        for ((_, svc), (_, a)) in services.iter().zip(actions.iter_mut()) {
            let joins = svc
                .get("network_mode")
                .and_then(Node::as_str)
                .and_then(|m| m.strip_prefix("service:"));
            if *a == Action::Keep && joins.is_some_and(|j| changed.iter().any(|c| c == j)) {
                *a = Action::Recreate;
                more = true;
            }
        }
        if !more {
            return actions;
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
