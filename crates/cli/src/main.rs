//! The `den` binary: flags are parsed with clap into the structs of [`args`],
//! each command module turns them into library calls.
//!
//! Exit codes follow Docker: 125 for den's own errors, otherwise the code a
//! command defines (the container's, for `run`).

mod args;
mod cmd;
mod containers;
mod context;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            e.print().ok();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(125)),
        Err(e) => {
            eprintln!("den: {}", chain(&e));
            ExitCode::from(125)
        }
    }
}

/// One line: the error and its causes, each said once.
fn chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let ctx = context::Context::new(cli.root.clone())?;
    match cli.command {
        Command::Run(a) => cmd::run::run(&ctx, &a),
        Command::Pull(a) => cmd::pull::run(&ctx, &a),
        Command::Images(a) => cmd::images::list(&ctx, &a),
        Command::Image(sub) => cmd::images::image_command(&ctx, sub),
        Command::Tag { source, target } => cmd::images::tag(&ctx, &source, &target),
        Command::Rmi(a) => cmd::images::rmi(&ctx, &a),
        Command::Save(a) => cmd::archive::save(&ctx, &a),
        Command::Load(a) => cmd::archive::load(&ctx, &a),
        Command::Push(a) => cmd::push::run(&ctx, &a),
        Command::Login(a) => cmd::login::login(&ctx, &a),
        Command::Logout { registry } => cmd::login::logout(&ctx, &registry),
        Command::System(args::SystemCommand::Check { format }) => {
            cmd::check::run(format.as_deref() == Some("json"))
        }
        Command::System(args::SystemCommand::Df) => cmd::images::df(&ctx),
        Command::Unshare { command } => cmd::unshare::run(&command),
        Command::Internal(sub) => cmd::internal::run(&ctx, sub),
    }
}
