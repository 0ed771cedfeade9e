//! `den exec`: a command in a running container, through a fresh
//! `den __internal exec` that joins the container's namespaces.

use std::os::fd::AsFd;
use std::process::Command;

use anyhow::{Context as _, bail};
use den_sandbox::container::join::ExecRequest;
use den_sandbox::container::state::Status;

use crate::args::ExecArgs;
use crate::containers::Containers;
use crate::context::Context;

pub fn run(ctx: &Context, args: &ExecArgs) -> anyhow::Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let r = containers.find(&args.container)?;
    if containers.state(&r.id).status != Status::Running {
        bail!(
            "container {} is not running: start it with `den start {}`",
            args.container,
            args.container
        );
    }
    den_sandbox::container::nsfds::require_served(&containers.dir_of(&r.id), &args.container)?;
    let env = args
        .process
        .env
        .iter()
        .filter_map(|e| match e.split_once('=') {
            Some(_) => Some(e.clone()),
            None => std::env::var(e).ok().map(|v| format!("{e}={v}")),
        });
    let req = ExecRequest {
        args: args.command.clone(),
        env: env.collect(),
        cwd: args.process.workdir.clone(),
        user: args.process.user.clone(),
        terminal: args.terminal.tty,
        // Set on the pty before the command starts; resizes follow later.
        size: match args.terminal.tty {
            true => den_sandbox::pty::window_size(std::io::stdin().as_fd()),
            false => None,
        },
    };
    let exe = std::env::current_exe().context("cannot find den's own binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(&ctx.root)
        .args(["__internal", "exec", &r.id])
        .arg(serde_json::to_string(&req)?);
    crate::launch::attach(cmd, args.terminal.interactive, args.terminal.tty)
}
