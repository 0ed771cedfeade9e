//! `den login` / `den logout`: credentials in den's auth file (mode 0600).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context as _, bail};
use den_image::auth::Credentials;
use den_image::registry::Client;

use crate::args::LoginArgs;
use crate::context::Context;

fn registry_key(input: Option<&str>) -> String {
    match input.map(|r| {
        r.trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
    }) {
        None | Some("index.docker.io" | "registry-1.docker.io" | "docker.io") => "docker.io".into(),
        Some(r) => r.to_string(),
    }
}

pub fn login(ctx: &Context, args: &LoginArgs) -> anyhow::Result<i32> {
    let registry = registry_key(args.registry.as_deref());
    let username = match &args.username {
        Some(u) => u.clone(),
        None => prompt("Username: ", true)?,
    };
    let password = match (&args.password, args.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are exclusive: use one"),
        (Some(p), false) => p.clone(),
        (None, true) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => prompt("Password: ", false)?,
    };
    if username.is_empty() || password.is_empty() {
        bail!("username and password must not be empty");
    }
    let creds = Credentials { username, password };
    let conf = ctx.registries()?;
    let endpoint = conf
        .endpoints(&registry, args.tls_verify)
        .pop()
        .expect("the registry itself is always an endpoint");
    let client = Client::new(ctx.auth(), Some(creds.clone()));
    crate::registry::runtime()?
        .block_on(client.check_login(&endpoint))
        .with_context(|| format!("logging in to {registry}"))?;
    ctx.auth().store(&registry, &creds)?;
    println!("Login Succeeded!");
    Ok(0)
}

pub fn logout(ctx: &Context, registry: &str) -> anyhow::Result<i32> {
    let registry = registry_key(Some(registry));
    if !ctx.auth().remove(&registry)? {
        bail!("not logged in to {registry}");
    }
    println!("Removed login credentials for {registry}");
    Ok(0)
}

/// Asks on the terminal; refuses when there is none (scripts pass -u/-p).
/// Asks on the terminal; a password is read with echo off (and echo is
/// restored even when reading fails).
fn prompt(label: &str, echo: bool) -> anyhow::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("no terminal to ask for credentials: pass --username and --password-stdin");
    }
    eprint!("{label}");
    std::io::stderr().flush().ok();
    let saved = if echo { None } else { tcgetattr(&stdin).ok() };
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet).ok();
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = &saved {
        tcsetattr(&stdin, SetArg::TCSANOW, t).ok();
        eprintln!();
    }
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
