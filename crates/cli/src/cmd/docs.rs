//! `den completion bash|zsh|fish` and `den __internal man DIR`: shell
//! completions and man pages generated from the clap definitions, so they
//! list exactly the commands and flags `den --help` does.

use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory;

use crate::args::full_command;

/// The completion script for `shell` on stdout.
/// Written from a buffer: clap_complete panics on a write error, and a
/// reader that stops early (`| head`) is not one.
pub fn completion(shell: clap_complete::Shell) -> anyhow::Result<i32> {
    use std::io::Write as _;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut full_command(), "den", &mut script);
    match std::io::stdout().lock().write_all(&script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing the completion script")?
        }
        _ => Ok(0),
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
