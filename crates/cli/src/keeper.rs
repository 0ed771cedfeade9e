//! The den root's user namespace keeper (`den_sandbox::userns::keeper`):
//! which containers share its namespace, and starting it when none runs.
//!
//! It is an optimisation, never a condition: whatever stops a keeper from
//! starting, or a container from joining it, the container gets a user
//! namespace of its own as before.

use std::process::Command;

use anyhow::Context as _;
use den_sandbox::container::spec::{ContainerSpec, Network, Userns};
use den_sandbox::idmap::IdMapping;
use den_sandbox::userns::keeper::{self, Keeper};

use crate::context::Context;

/// The den root's keeper, whose namespace the container of `spec` joins:
/// one with the default subordinate mapping that makes its own namespaces
/// (not on user networks, whose infras have theirs, nor in another
/// container's). Starts the keeper unless it runs.
pub fn for_container(ctx: &Context, spec: &ContainerSpec, mapping: &IdMapping) -> Option<Keeper> {
    let own_namespaces = matches!(
        spec.network,
        Network::None | Network::Host | Network::Private(_)
    );
    let shares = spec.userns == Userns::Default
        && own_namespaces
        && matches!(mapping, IdMapping::Subordinate { .. });
    if !shares {
        return None;
    }
    if let Some(k) = Keeper::find(&ctx.root, mapping) {
        return Some(k);
    }
    match start(ctx, mapping) {
        Ok(()) => Keeper::find(&ctx.root, mapping),
        Err(e) => {
            crate::log::debug(format_args!(
                "no shared user namespace: {}",
                crate::chain(&e)
            ));
            None
        }
    }
}

/// Starts the keeper under `ROOT/userns.lock` (so two starts make one), once
/// it is sure none runs.
fn start(ctx: &Context, mapping: &IdMapping) -> anyhow::Result<()> {
    let _lock = crate::containers::lock_file(&ctx.root.join(keeper::LOCK))?;
    if Keeper::find(&ctx.root, mapping).is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find den's own binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(&ctx.root)
        .args(["__internal", "userns-keeper"])
        .env_remove("DEN_TRACE");
    crate::launch::background_forked(cmd, "ready", "the user namespace keeper")
}
