//! `den attach`: the user's terminal joined to a running `-t` container's
//! (the session itself is [`crate::terminal::session`]).

use std::io::IsTerminal;

use anyhow::{Context as _, bail};

use crate::containers::Containers;
use crate::context::Context;
use crate::terminal::{
    DEFAULT_DETACH_KEYS, NOT_A_TTY, Outcome, has_terminal, parse_detach_keys, session,
};

/// `den attach [--detach-keys KEYS] CONTAINER`.
pub fn attach(ctx: &Context, name: &str, detach_keys: Option<&str>) -> anyhow::Result<i32> {
    let keys = match detach_keys {
        Some(k) => parse_detach_keys(k)?,
        None => DEFAULT_DETACH_KEYS.to_vec(),
    };
    let containers = Containers::open(&ctx.root)?;
    let r = containers.find(name)?;
    let dir = containers.dir_of(&r.id);
    let state = containers.state(&r.id);
    if !matches!(
        state.status,
        den_sandbox::container::state::Status::Running
            | den_sandbox::container::state::Status::Restarting
    ) {
        bail!(
            "cannot attach to container {name}: it is not running; start it with `den start -ai {name}`"
        );
    }
    if !has_terminal(&dir) {
        bail!(
            "cannot attach to container {name}: it has no terminal (run it with -t); follow its output with `den logs -f {name}`"
        );
    }
    if !std::io::stdin().is_terminal() {
        eprintln!("den: {NOT_A_TTY}");
        return Ok(1);
    }
    let stream = den_sandbox::container::pty::connect(&dir).with_context(|| {
        format!("cannot attach to container {name}: its supervisor does not answer")
    })?;
    Ok(match session(stream, true, keys, &dir)? {
        Outcome::Exited(code) => code,
        Outcome::Detached => 0,
        Outcome::Lost => containers.state(&r.id).exit_code.unwrap_or(125),
    })
}
