//! Validation of the loaded raw model before typing: unknown keys (with a
//! did-you-mean), keys den cannot honour (a warning each), and the
//! `depends_on` graph (unknown services, bad conditions, cycles). Each
//! error names file, line and key.

use crate::Error;
use crate::load::invalid;
use crate::yaml::{Node, Raw};

/// Top-level keys of the compose specification.
const TOP_KEYS: &[&str] = &[
    "version", "name", "include", "services", "networks", "volumes", "secrets", "configs", "models",
];

/// Service keys den honours.
const SERVICE_KEYS: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "expose",
    "volumes",
    "depends_on",
    "healthcheck",
    "restart",
    "networks",
    "network_mode",
    "container_name",
    "hostname",
    "working_dir",
    "user",
    "init",
    "tty",
    "stdin_open",
    "stop_signal",
    "stop_grace_period",
    "labels",
    "read_only",
    "tmpfs",
    "cap_add",
    "cap_drop",
    "security_opt",
    "extra_hosts",
    "dns",
    "pull_policy",
    "profiles",
    "scale",
    "deploy",
    // Resource limits: den run's --memory, --cpus, … (refused where no
    // delegated cgroup v2 subtree has the controller) and --ulimit.
    "mem_limit",
    "memswap_limit",
    "cpus",
    "cpu_shares",
    "cpuset",
    "pids_limit",
    "ulimits",
];

/// Service keys of the compose specification that den does not honour:
/// accepted with a warning.
const SERVICE_KEYS_IGNORED: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "cgroup",
    "cgroup_parent",
    "configs",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "credential_spec",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns_opt",
    "dns_search",
    "domainname",
    "driver_opts",
    "external_links",
    "gpus",
    "group_add",
    "ipc",
    "isolation",
    "label_file",
    "links",
    "logging",
    "mac_address",
    "mem_reservation",
    "mem_swappiness",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "platform",
    "post_start",
    "pre_stop",
    "privileged",
    "provider",
    "runtime",
    "secrets",
    "shm_size",
    "storage_opt",
    "sysctls",
    "use_api_socket",
    "userns_mode",
    "uts",
    "volumes_from",
];

/// `deploy` keys den honours (the rest warn).
const DEPLOY_KEYS: &[&str] = &["replicas"];

/// The `depends_on` conditions.
const CONDITIONS: &[&str] = &[
    "service_started",
    "service_healthy",
    "service_completed_successfully",
];

/// One dependency edge of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The service depended on.
    pub service: String,
    /// `service_started` (the default), `service_healthy` or
    /// `service_completed_successfully`.
    pub condition: String,
    /// Restart this service when the dependency is updated.
    pub restart: bool,
    /// A missing optional dependency is skipped with a warning.
    pub required: bool,
}

/// Checks `model` (from file `file`, for messages); returns the warnings.
pub fn check(file: &str, model: &Node) -> Result<Vec<String>, Error> {
    let mut warnings = Vec::new();
    let Raw::Map(top) = &model.value else {
        return Err(invalid(
            file,
            model.line,
            "",
            "a compose file must be a mapping (services: …)",
        ));
    };
    for (k, v) in top {
        known(file, v.line, k, k, TOP_KEYS, &[])?;
    }
    let services = match model.get("services") {
        None
        | Some(Node {
            value: Raw::Null, ..
        }) => Vec::new(),
        Some(Node {
            value: Raw::Map(m), ..
        }) => m.clone(),
        Some(n) => {
            return Err(invalid(
                file,
                n.line,
                "services",
                &format!(
                    "services must be a mapping of service names to definitions, not {}",
                    n.kind()
                ),
            ));
        }
    };
    for (name, svc) in &services {
        let at = format!("services.{name}");
        let Raw::Map(keys) = &svc.value else {
            return Err(invalid(
                file,
                svc.line,
                &at,
                &format!("a service must be a mapping, not {}", svc.kind()),
            ));
        };
        for (k, v) in keys {
            let key = format!("{at}.{k}");
            if known(file, v.line, k, &key, SERVICE_KEYS, SERVICE_KEYS_IGNORED)? {
                warnings.push(format!("{key} is not supported by den and is ignored"));
            }
        }
        if let Some(Node {
            value: Raw::Map(d), ..
        }) = svc.get("deploy")
        {
            for (k, _) in d.iter().filter(|(k, _)| !DEPLOY_KEYS.contains(&k.as_str())) {
                warnings.push(format!(
                    "{at}.deploy.{k} is not supported by den and is ignored"
                ));
            }
        }
        if let Some(target) = joined_service(svc)
            && !services.iter().any(|(n, _)| n == target)
        {
            let line = svc.get("network_mode").map_or(svc.line, |n| n.line);
            return Err(invalid(
                file,
                line,
                &format!("{at}.network_mode"),
                &format!("service {name:?} joins the network of undefined service {target:?}"),
            ));
        }
        for dep in depends_on(file, name, svc)? {
            if !services.iter().any(|(n, _)| *n == dep.service) {
                let line = svc.get("depends_on").map_or(svc.line, |n| n.line);
                match dep.required {
                    true => {
                        return Err(invalid(
                            file,
                            line,
                            &format!("{at}.depends_on"),
                            &format!(
                                "service {name:?} depends on undefined service {:?}",
                                dep.service
                            ),
                        ));
                    }
                    false => warnings.push(format!(
                        "{at}.depends_on: optional service {:?} is not defined and is skipped",
                        dep.service
                    )),
                }
            }
        }
    }
    if let Some(cycle) = find_cycle(file, &services)? {
        return Err(invalid(
            file,
            0,
            "depends_on",
            &format!("dependency cycle: {}", cycle.join(" -> ")),
        ));
    }
    Ok(warnings)
}

/// True when `key` is one of `ignored`; an error with a did-you-mean when
/// it is in neither list.
fn known(
    file: &str,
    line: usize,
    key: &str,
    path: &str,
    keys: &[&str],
    ignored: &[&str],
) -> Result<bool, Error> {
    if keys.contains(&key) || key.starts_with("x-") {
        return Ok(false);
    }
    if ignored.contains(&key) {
        return Ok(true);
    }
    let hint = keys
        .iter()
        .chain(ignored)
        .map(|k| (distance(k, key), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!(" (did you mean {k:?}?)"))
        .unwrap_or_default();
    Err(invalid(
        file,
        line,
        path,
        &format!("unknown key {key:?}{hint}"),
    ))
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// A service's `depends_on` in either syntax.
/// The service whose network `svc` joins (`network_mode: service:NAME`).
pub fn joined_service(svc: &Node) -> Option<&str> {
    svc.get("network_mode")?.as_str()?.strip_prefix("service:")
}

/// A service's dependencies: its `depends_on:`, and the service whose
/// network it joins (`network_mode: service:NAME`), which must run first,
/// as compose-go adds it.
pub fn depends_on(file: &str, name: &str, svc: &Node) -> Result<Vec<Dependency>, Error> {
    let mut deps = listed_depends_on(file, name, svc)?;
    if let Some(target) = joined_service(svc)
        && !deps.iter().any(|d| d.service == target)
    {
        deps.push(Dependency {
            service: target.to_owned(),
            condition: CONDITIONS[0].into(),
            restart: true,
            required: true,
        });
    }
    Ok(deps)
}

fn listed_depends_on(file: &str, name: &str, svc: &Node) -> Result<Vec<Dependency>, Error> {
    let key = format!("services.{name}.depends_on");
    let Some(d) = svc.get("depends_on") else {
        return Ok(Vec::new());
    };
    let dep = |service: String| Dependency {
        service,
        condition: CONDITIONS[0].into(),
        restart: false,
        required: true,
    };
    match &d.value {
        Raw::Null => Ok(Vec::new()),
        Raw::Seq(items) => items
            .iter()
            .map(|i| {
                i.as_str().map(|s| dep(s.to_owned())).ok_or_else(|| {
                    invalid(
                        file,
                        i.line,
                        &key,
                        &format!(
                            "a depends_on entry must be a service name, not {}",
                            i.kind()
                        ),
                    )
                })
            })
            .collect(),
        Raw::Map(m) => m
            .iter()
            .map(|(s, opts)| {
                let mut out = dep(s.clone());
                let key = format!("{key}.{s}");
                if let Some(c) = opts.get("condition") {
                    match c.as_str().filter(|c| CONDITIONS.contains(c)) {
                        Some(c) => out.condition = c.to_owned(),
                        None => {
                            return Err(invalid(
                                file,
                                c.line,
                                &format!("{key}.condition"),
                                &format!("condition must be one of {}", CONDITIONS.join(", ")),
                            ));
                        }
                    }
                }
                for (flag, slot) in [
                    ("restart", &mut out.restart),
                    ("required", &mut out.required),
                ] {
                    match opts.get(flag).map(|n| &n.value) {
                        None => {}
                        Some(Raw::Bool(b)) => *slot = *b,
                        Some(_) => {
                            return Err(invalid(
                                file,
                                opts.line,
                                &format!("{key}.{flag}"),
                                &format!("{flag} must be true or false"),
                            ));
                        }
                    }
                }
                Ok(out)
            })
            .collect(),
        _ => Err(invalid(
            file,
            d.line,
            &key,
            &format!("depends_on must be a list or a mapping, not {}", d.kind()),
        )),
    }
}

/// A dependency cycle as `a -> b -> a`, if any (depth-first, in file order).
fn find_cycle(file: &str, services: &[(String, Node)]) -> Result<Option<Vec<String>>, Error> {
    let mut edges = Vec::new();
    for (name, svc) in services {
        edges.push(
            depends_on(file, name, svc)?
                .into_iter()
                .map(|d| d.service)
                .collect::<Vec<_>>(),
        );
    }
    let index = |n: &str| services.iter().position(|(s, _)| s == n);
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut state = vec![0u8; services.len()];
    let mut stack = Vec::new();
    fn visit(
        i: usize,
        edges: &[Vec<String>],
        index: &dyn Fn(&str) -> Option<usize>,
        state: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[i] = 1;
        stack.push(i);
        for d in edges[i].iter().filter_map(|d| index(d)) {
            if state[d] == 1 {
                let from = stack.iter().position(|s| *s == d).unwrap_or(0);
                let mut c = stack[from..].to_vec();
                c.push(d);
                return Some(c);
            }
            if state[d] == 0
                && let Some(c) = visit(d, edges, index, state, stack)
            {
                return Some(c);
            }
        }
        stack.pop();
        state[i] = 2;
        None
    }
    for i in 0..services.len() {
        if state[i] == 0
            && let Some(c) = visit(i, &edges, &index, &mut state, &mut stack)
        {
            return Ok(Some(c.into_iter().map(|i| services[i].0.clone()).collect()));
        }
    }
    Ok(None)
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
