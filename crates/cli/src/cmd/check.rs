//! `den system check`: one line per rootless prerequisite.
//!
//! Must run on the main thread before any runtime starts: the checks fork.

use den_sandbox::probe::{Check, rootless_checks};

/// Run every check, print them (a table, or a JSON array with `json`), and
/// return the exit code: 0 when everything den needs is there, 1 otherwise.
/// Items den can do without (`required: false`) only warn.
pub fn run(json: bool) -> anyhow::Result<i32> {
    let mut checks = rootless_checks();
    checks.push(pasta_check());
    if json {
        let items: Vec<_> = checks
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "status": status(c),
                    "ok": c.ok,
                    "required": c.required,
                    "detail": c.detail,
                    "fix": c.fix,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else {
        for c in &checks {
            println!("{}", line(c));
        }
    }
    let failed = checks.iter().any(|c| c.required && !c.ok);
    Ok(i32::from(failed))
}

/// `pasta` lives in den-net; den-sandbox stays independent of it.
fn pasta_check() -> Check {
    match den_net::pasta::probe() {
        Ok(version) => Check {
            name: "pasta",
            ok: true,
            detail: format!("pasta {version}"),
            fix: None,
            required: true,
        },
        Err(e) => Check {
            name: "pasta",
            ok: false,
            detail: e.to_string(),
            fix: Some("as root: apt-get install passt".to_owned()),
            required: true,
        },
    }
}

fn status(c: &Check) -> &'static str {
    match (c.ok, c.required) {
        (true, _) => "ok",
        (false, true) => "missing",
        (false, false) => "warn",
    }
}

/// `ok       user namespaces       allowed (max 96365)`
fn line(c: &Check) -> String {
    let mut s = format!("{:<8} {:<21} {}", status(c), c.name, c.detail);
    if let Some(fix) = &c.fix {
        s.push_str(" — fix: ");
        s.push_str(fix);
    }
    s
}
