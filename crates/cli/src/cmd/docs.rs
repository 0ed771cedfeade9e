//! `den completion bash|zsh|fish` and `den __internal man DIR`: shell
//! completions and man pages generated from the clap definitions, so they
//! list exactly the commands and flags `den --help` does.

use std::path::Path;

use anyhow::Context as _;
use clap::{Command, CommandFactory};

use crate::args::full_command;

/// The completion script for `shell` on stdout.
/// Written from a buffer: clap_complete panics on a write error, and a
/// reader that stops early (`| head`) is not one.
pub fn completion(shell: clap_complete::Shell) -> anyhow::Result<i32> {
    use std::io::Write as _;
    let mut script = Vec::new();
    let mut cli = with_help_entries(full_command());
    clap_complete::generate(shell, &mut cli, "den", &mut script);
    match std::io::stdout().lock().write_all(&script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing the completion script")?
        }
        _ => Ok(0),
    }
}

/// `cmd` (built) with the subcommands of each command listed under its
/// `help` too, depth first, so `den help compose <TAB>` offers `up`, `down`,
/// …. clap copies the commands under a `help` (names, descriptions) while
/// it builds the command above them, before their deferred builds
/// (`#[command(defer = true)]`) have added their subcommands: the copy of
/// `compose` under `den help` had none. A command's own `help` (`den
/// compose help`) is copied once that command is built: its entries, less
/// its `help`, are what the copy lacked.
fn with_help_entries(cmd: Command) -> Command {
    let cmd = cmd.mut_subcommands(|sub| match sub.get_name() {
        "help" => sub,
        _ => with_help_entries(sub),
    });
    if cmd.find_subcommand("help").is_none() {
        return cmd;
    }
    let entries: Vec<(String, Vec<Command>)> = cmd
        .get_subcommands()
        .filter(|sub| sub.get_name() != "help")
        .map(|sub| (sub.get_name().to_string(), help_entries(sub)))
        .collect();
    cmd.mut_subcommand("help", |help| {
        help.mut_subcommands(
            |entry| match entries.iter().find(|(n, _)| n == entry.get_name()) {
                Some((_, subs)) if !entry.has_subcommands() && !subs.is_empty() => {
                    let mut entry = entry.subcommands(subs.iter().cloned());
                    name_below(&mut entry);
                    entry
                }
                _ => entry,
            },
        )
    })
}

/// The entries of `cmd`'s own `help`, less its `help help`.
fn help_entries(cmd: &Command) -> Vec<Command> {
    cmd.find_subcommand("help")
        .map(|help| {
            help.get_subcommands()
                .filter(|e| e.get_name() != "help")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Names what is below `cmd` after its place (`den help compose up`, not
/// `den compose help up` where the entries were copied from): the
/// completion scripts tell commands apart by these names.
fn name_below(cmd: &mut Command) {
    let at = cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string();
    for sub in cmd.get_subcommands_mut() {
        sub.set_bin_name(format!("{at} {}", sub.get_name()));
        name_below(sub);
    }
}

/// `den.1` and one page per visible subcommand (`den-run.1`,
/// `den-image-ls.1`, …) written into `dir`, which is made if missing.
pub fn man(dir: &Path) -> anyhow::Result<i32> {
    fs_err::create_dir_all(dir)?;
    clap_mangen::generate_to(crate::args::Cli::command(), dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use clap::Command;

    fn names(cmd: &Command) -> Vec<&str> {
        cmd.get_subcommands()
            .map(Command::get_name)
            .filter(|n| *n != "help")
            .collect()
    }

    /// Under every `help`, each command's entry lists the same subcommands
    /// as the command, named after its place there.
    #[test]
    fn every_help_entry_has_its_commands_subcommands() {
        fn walk(cmd: &Command, checked: &mut usize) {
            let Some(help) = cmd.find_subcommand("help") else {
                return;
            };
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let entry = help.find_subcommand(sub.get_name()).expect("an entry");
                assert_eq!(names(entry), names(sub), "{:?}", entry.get_bin_name());
                for e in entry.get_subcommands() {
                    let want = format!("{} {}", entry.get_bin_name().unwrap(), e.get_name());
                    assert_eq!(e.get_bin_name(), Some(want.as_str()));
                }
                *checked += names(sub).len();
                walk(sub, checked);
            }
        }
        let cli = super::with_help_entries(crate::args::full_command());
        let mut checked = 0;
        walk(&cli, &mut checked);
        let compose = cli
            .find_subcommand("help")
            .unwrap()
            .find_subcommand("compose");
        assert_eq!(
            compose.unwrap().get_bin_name(),
            Some("den help compose"),
            "{checked} entries"
        );
        assert!(names(compose.unwrap()).contains(&"up"));
    }
}
