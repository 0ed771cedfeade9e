//! Docker's question before every prune: `WARNING! …` then `Are you sure
//! you want to continue? [y/N]`, asked on a terminal; `-f` skips it. Without
//! a terminal on stdin nothing is read and the prune is refused, so a script
//! that forgot `-f` deletes nothing.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::bail;

/// Asks before `what` prune (e.g. "volume"); `warning` is Docker's text.
/// Ok when forced or answered y/yes; otherwise "… prune has been cancelled".
pub fn prune(what: &str, warning: &str, force: bool) -> anyhow::Result<()> {
    if force {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "{what} prune has been cancelled: standard input is not a terminal to ask on; \
             use -f to prune without asking"
        );
    }
    let mut out = std::io::stdout();
    write!(out, "{warning}\nAre you sure you want to continue? [y/N] ")?;
    out.flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if !yes(&answer) {
        bail!("{what} prune has been cancelled");
    }
    Ok(())
}

fn yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_y_or_yes_confirms() {
        for a in ["y\n", "Y", " yes \n", "YES"] {
            assert!(super::yes(a), "{a:?}");
        }
        for a in ["", "\n", "n", "no", "yep", "ja"] {
            assert!(!super::yes(a), "{a:?}");
        }
    }
}
