//! `den healthcheck run CTR`: asks the container's supervisor to probe now.
//! The flags, the image's HEALTHCHECK and what `den ps`/`den inspect` show
//! are in `crate::health`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use den_sandbox::container::health;
use den_sandbox::container::state::{Status, now_rfc3339};
use den_sandbox::container::{control, spec::ContainerSpec};

use crate::containers::Containers;
use crate::context::Context;

/// `den healthcheck run CTR`: asks the supervisor to probe now and waits
/// for that probe's result: exit 0 when it passed; else prints the
/// container's health status and exits 1 (as podman does).
pub fn run_now(ctx: &Context, name: &str) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let r = containers.find(name)?;
    let dir = containers.dir_of(&r.id);
    let spec = ContainerSpec::read(&dir.join("spec.json"))
        .with_context(|| format!("container {name} has an unreadable spec.json"))?;
    let Some(check) = spec.health else {
        bail!(
            "container {name} has no health check: give --health-cmd to den run, or use an image with a HEALTHCHECK"
        );
    };
    if containers.state(&r.id).status != Status::Running {
        bail!("container {name} is not running: start it with `den start {name}`");
    }
    let asked = now_rfc3339();
    control::request_health(&dir)
        .with_context(|| format!("asking container {name}'s supervisor"))?;
    // A probe running now finishes first (within its timeout), then ours.
    let limit = Instant::now() + 2 * check.timeout + Duration::from_secs(5);
    while Instant::now() < limit {
        if let Some(h) = health::read(&dir)
            && let Some(p) = h.log.iter().rev().find(|p| p.start >= asked)
        {
            if p.exit_code == 0 {
                return Ok(0);
            }
            println!("{}", h.status.as_str());
            return Ok(1);
        }
        if containers.state(&r.id).status != Status::Running {
            bail!("container {name} stopped before its health check ran");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("container {name}'s health check gave no result in time: see `den inspect {name}`")
}
