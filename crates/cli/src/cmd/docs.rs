//! `den completion bash|zsh|fish` and `den __internal man DIR`: shell
//! completions and man pages generated from the clap definitions, so they
//! list exactly the commands and flags `den --help` does.

use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory;

use crate::args::Cli;

/// The completion script for `shell` on stdout.
pub fn completion(shell: clap_complete::Shell) -> anyhow::Result<i32> {
    clap_complete::generate(shell, &mut Cli::command(), "den", &mut std::io::stdout());
    Ok(0)
}

/// `den.1` and one page per visible subcommand (`den-run.1`,
/// `den-image-ls.1`, …) written into `dir`, which is made if missing.
pub fn man(dir: &Path) -> anyhow::Result<i32> {
    fs_err::create_dir_all(dir)?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    Ok(0)
}
