//! Which compose file, and which project name.

use std::path::{Path, PathBuf};

use crate::Error;

/// The file names docker compose looks for, in its order.
pub const FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The compose file in `start` or its nearest parent that has one, by
/// [`FILE_NAMES`] order within a directory.
pub fn find_compose_file(start: &Path) -> Result<PathBuf, Error> {
    for dir in start.ancestors() {
        if let Some(found) = FILE_NAMES.iter().map(|n| dir.join(n)).find(|p| p.is_file()) {
            return Ok(found);
        }
    }
    Err(Error::Project {
        message: format!(
            "no configuration file provided: not found in {} or its parents (looked for {}); name one with -f FILE",
            start.display(),
            FILE_NAMES.join(", ")
        ),
    })
}

/// Where a project name may come from, in precedence order.
#[derive(Debug, Clone)]
pub struct NameSources<'a> {
    /// `-p NAME`.
    pub flag: Option<&'a str>,
    /// `COMPOSE_PROJECT_NAME` (process environment, then `.env`).
    pub env: Option<&'a str>,
    /// The top-level `name:` of the (merged) model.
    pub top_level: Option<&'a str>,
    /// The directory of the first compose file (or the working directory).
    pub dir: &'a Path,
}

impl Default for NameSources<'_> {
    fn default() -> Self {
        NameSources {
            flag: None,
            env: None,
            top_level: None,
            dir: Path::new("."),
        }
    }
}

/// The project name as docker compose decides it: `-p`, then
/// `COMPOSE_PROJECT_NAME`, then `name:` — each must already be a valid name
/// — else the directory's base name, normalised.
pub fn project_name(src: &NameSources<'_>) -> Result<String, Error> {
    for (given, what) in [
        (src.flag, "-p"),
        (src.env, "COMPOSE_PROJECT_NAME"),
        (src.top_level, "the top-level name:"),
    ] {
        if let Some(name) = given.filter(|n| !n.is_empty()) {
            return check_name(name, what);
        }
    }
    let base = src
        .dir
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = normalize(&base);
    match name.is_empty() {
        true => Err(Error::Project {
            message: format!(
                "cannot derive a project name from the directory {:?}: give one with -p NAME or a top-level name:",
                src.dir.display().to_string()
            ),
        }),
        false => Ok(name),
    }
}

/// docker compose's `NormalizeProjectName`: lower case, keep only
/// `[a-z0-9_-]`, and drop leading characters until a letter or digit.
pub fn normalize(name: &str) -> String {
    let kept: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
        .collect();
    kept.trim_start_matches(['_', '-']).to_owned()
}

/// A valid project name: `^[a-z0-9][a-z0-9_-]*$`.
fn check_name(name: &str, what: &str) -> Result<String, Error> {
    let b = name.as_bytes();
    let ok = b[0].is_ascii_lowercase() || b[0].is_ascii_digit();
    let ok = ok
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-'));
    match ok {
        true => Ok(name.to_owned()),
        false => Err(Error::Project {
            message: format!(
                "invalid project name {name:?} from {what}: it must contain only lowercase letters, digits, dashes and underscores, and start with a letter or digit (try {:?})",
                normalize(name)
            ),
        }),
    }
}

#[cfg(test)]
#[path = "project_tests.rs"]
mod tests;
