//! Loading a project: which files, which variables, which name, and the
//! checked model (`den_compose` does the work; this supplies the files,
//! the environment and standard input).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use den_compose::yaml::{Node, Raw};
use den_compose::{Error, check, dotenv, load, project};

use super::args::ComposeArgs;

/// A loaded, checked project.
pub struct Project {
    pub name: String,
    /// The directory of the first compose file: relative paths start here.
    pub dir: PathBuf,
    /// The compose files, absolute (`-` for standard input).
    pub files: Vec<PathBuf>,
    /// The first file as messages name it.
    pub file: String,
    pub model: Node,
    /// Interpolation variables: the process environment, then `.env`.
    pub env: Vec<(String, String)>,
}

impl Project {
    /// The enabled services in file order.
    pub fn services(&self) -> Vec<(String, Node)> {
        match self.model.get("services").map(|s| &s.value) {
            Some(Raw::Map(m)) => m.clone(),
            _ => Vec::new(),
        }
    }

    /// A variable as interpolation sees it (process environment first).
    pub fn lookup(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| dotenv::get(&self.env, name).map(str::to_owned))
    }

    /// The service names, checked against the model (for `up SERVICE…`).
    pub fn check_services(&self, names: &[String]) -> anyhow::Result<()> {
        let all = self.services();
        for n in names {
            if !all.iter().any(|(s, _)| s == n) {
                anyhow::bail!(
                    "no such service: {n} (the project's services: {})",
                    all.iter()
                        .map(|(s, _)| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        Ok(())
    }
}

/// Largest standard input read for `-f -`.
const MAX_STDIN: u64 = den_compose::yaml::MAX_FILE_BYTES as u64;

/// Loads the project the flags name; prints the loader's and the
/// checker's warnings on standard error.
pub fn load(args: &ComposeArgs) -> anyhow::Result<Project> {
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    let files = compose_files(args, &cwd)?;
    let stdin_path = cwd.join("-");
    let stdin_text = match files.contains(&stdin_path) {
        true => Some(read_stdin()?),
        false => None,
    };
    let dir = files[0].parent().unwrap_or(&cwd).to_path_buf();
    let env = env_files(args, &dir)?;
    let lookup = |n: &str| {
        std::env::var(n)
            .ok()
            .or_else(|| dotenv::get(&env, n).map(str::to_owned))
    };
    let read = |p: &Path| -> Result<String, Error> {
        match (&stdin_text, p == stdin_path) {
            (Some(t), true) => Ok(t.clone()),
            _ => load::read_file(p),
        }
    };
    let profiles = load::selected_profiles(&args.profile, lookup("COMPOSE_PROFILES").as_deref());
    let loaded = load::load(&load::Inputs {
        files: &files,
        lookup: &lookup,
        read: &read,
        profiles: &profiles,
    })?;
    let file = display(&files[0], &stdin_path);
    let warnings = check::check(&file, &loaded.model)?;
    for w in loaded.warnings.iter().chain(&warnings) {
        eprintln!("den: warning: {w}");
    }
    let top = loaded.model.get("name").and_then(Node::scalar_text);
    let env_name = lookup("COMPOSE_PROJECT_NAME");
    let name = project::project_name(&project::NameSources {
        flag: args.project.as_deref(),
        env: env_name.as_deref(),
        top_level: top.as_deref(),
        dir: &dir,
    })?;
    Ok(Project {
        name,
        dir,
        files,
        file,
        model: loaded.model,
        env,
    })
}

/// `-` is standard input; other names are shown as given.
fn display(p: &Path, stdin_path: &Path) -> String {
    match p == stdin_path {
        true => "-".into(),
        false => p.display().to_string(),
    }
}

/// `-f` files made absolute, or the file found here or in a parent (with
/// its `compose.override.yaml` when there is one, as docker compose does).
fn compose_files(args: &ComposeArgs, cwd: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !args.files.is_empty() {
        return Ok(args.files.iter().map(|f| cwd.join(f)).collect());
    }
    let found = project::find_compose_file(cwd)?;
    let mut out = vec![found.clone()];
    let dir = found.parent().unwrap_or(cwd);
    if let Some(o) = [
        "compose.override.yaml",
        "compose.override.yml",
        "docker-compose.override.yaml",
        "docker-compose.override.yml",
    ]
    .iter()
    .map(|n| dir.join(n))
    .find(|p| p.is_file())
    {
        out.push(o);
    }
    Ok(out)
}

fn read_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_STDIN + 1)
        .read_to_string(&mut text)
        .context("cannot read the compose file from standard input")?;
    if text.len() as u64 > MAX_STDIN {
        anyhow::bail!("the compose file on standard input is larger than {MAX_STDIN} bytes");
    }
    Ok(text)
}

/// `--env-file`s in order, else `.env` in the project directory when it
/// exists. Each file's own references see the process environment and the
/// files before it.
fn env_files(args: &ComposeArgs, dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let files: Vec<PathBuf> = match args.env_file.is_empty() {
        false => args.env_file.clone(),
        true => Some(dir.join(".env"))
            .filter(|p| p.is_file())
            .into_iter()
            .collect(),
    };
    let mut env: Vec<(String, String)> = Vec::new();
    for f in files {
        let text = load::read_file(&f)?;
        let got = {
            let lookup = |n: &str| {
                std::env::var(n)
                    .ok()
                    .or_else(|| dotenv::get(&env, n).map(str::to_owned))
            };
            dotenv::parse(&f.display().to_string(), &text, &lookup)?
        };
        for (k, v) in got {
            match env.iter_mut().find(|(have, _)| *have == k) {
                Some(e) => e.1 = v,
                None => env.push((k, v)),
            }
        }
    }
    Ok(env)
}
