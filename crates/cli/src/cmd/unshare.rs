//! `den unshare CMD`: run a host command inside den's user namespace.
//!
//! There the user is root and the subordinate ids are mapped, so e.g.
//! `den unshare rm -rf DIR` can remove files that a container created as
//! other ids. Only the user namespace is entered: the command sees the host's
//! filesystem and network. `DEN_USERNS=single` maps only the user's own id.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::Context;
use den_sandbox::idmap::IdMapping;
use den_sandbox::userns::enter_user_namespace;

/// Enter the user namespace and exec `cmd` (default: `$SHELL`, else
/// `/bin/sh`). Returns only on failure: 127 when the command is not found,
/// 126 when it cannot be executed. Must run before any thread is started.
pub fn run(cmd: &[String]) -> anyhow::Result<i32> {
    let default_shell;
    let (program, args) = match cmd.split_first() {
        Some((program, args)) => (program.as_str(), args),
        None => {
            default_shell = std::env::var("SHELL")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "/bin/sh".to_owned());
            (default_shell.as_str(), &[][..])
        }
    };
    let map = IdMapping::detect();
    enter_user_namespace(&map).context("cannot enter den's user namespace")?;
    let err = Command::new(program).args(args).exec();
    let code = exec_failure_code(program, &err);
    match code {
        127 => eprintln!("den unshare: {program}: command not found"),
        _ => eprintln!("den unshare: {program}: {err}"),
    }
    Ok(code)
}

/// The shell's convention: 127 when the command does not exist, 126 when it
/// exists but cannot be executed. A PATH search reports EACCES if any
/// directory on PATH is unreadable, even when the command is nowhere, so a
/// bare name counts as missing unless some PATH entry actually has it.
fn exec_failure_code(program: &str, err: &io::Error) -> i32 {
    if err.kind() == io::ErrorKind::NotFound {
        return 127;
    }
    if program.contains('/') {
        return 126;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    match std::env::split_paths(&path).any(|dir| dir.join(program).exists()) {
        true => 126,
        false => 127,
    }
}
