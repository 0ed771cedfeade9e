//! Finding and probing the `pasta` binary.
//!
//! Debian 12 ships a 2023 pasta that prints `pasta unknown version`, so the
//! version string is informational only: callers probe for the options they
//! need instead of comparing versions.

use std::io;
use std::process::{Command, Stdio};

/// Why pasta cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PastaError {
    #[error("pasta not found on PATH: install the passt package (it provides pasta)")]
    NotFound,
    #[error("cannot run pasta")]
    Spawn(#[source] io::Error),
    #[error("`pasta --version` failed ({status}): {stderr}")]
    Failed { status: String, stderr: String },
}

/// Run `pasta --version` and return the version it reports (the first line,
/// without the leading `pasta `), e.g. `unknown version` on Debian 12.
pub fn probe() -> Result<String, PastaError> {
    let out = Command::new("pasta")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => PastaError::NotFound,
            _ => PastaError::Spawn(e),
        })?;
    if !out.status.success() {
        return Err(PastaError::Failed {
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(parse_version(&String::from_utf8_lossy(&out.stdout)))
}

/// The version from `pasta --version` output.
fn parse_version(stdout: &str) -> String {
    let first = stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let version = first
        .strip_prefix("pasta")
        .map(str::trim_start)
        .unwrap_or(first);
    if version.is_empty() {
        "unknown version".to_owned()
    } else {
        version.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions() {
        let cases = [
            (
                "pasta unknown version\nCopyright Red Hat\n",
                "unknown version",
            ),
            (
                "pasta 2024_03_20.71dd405\nCopyright Red Hat\n",
                "2024_03_20.71dd405",
            ),
            ("\n  pasta 0^20230309.g7c7625d-1\n", "0^20230309.g7c7625d-1"),
            ("passt 2025_01_21\n", "passt 2025_01_21"),
            ("", "unknown version"),
            ("pasta\n", "unknown version"),
        ];
        for (stdout, want) in cases {
            assert_eq!(parse_version(stdout), want, "{stdout:?}");
        }
    }
}
