//! One module per `den` command group; each turns parsed flags into library
//! calls. Architecture invariant: command modules never import each other;
//! what several share lives outside `cmd` in a module named for what it
//! does (`registry`, `launch`, `prepare`, `terminal`, …). The test below
//! keeps it so.

pub mod archive;
pub mod attach;
pub mod build;
pub mod builder;
pub mod check;
pub mod commit;
pub mod cp;
pub mod docs;
pub mod exec;
pub mod health;
pub mod history;
pub mod images;
pub mod info;
pub mod internal;
pub mod lifecycle;
pub mod login;
pub mod network;
pub mod ps;
pub mod pull;
pub mod push;
pub mod run;
pub mod stats;
pub mod unshare;
pub mod volumes;

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The command modules declared above.
    fn command_modules(mod_rs: &str) -> Vec<String> {
        mod_rs
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub mod "))
            .map(|m| m.trim_end_matches(';').to_string())
            .collect()
    }

    /// Each way `file` (at `depth` below `cmd/`) reaches another command
    /// module: `crate::cmd`, `super::OTHER` from a command's own file, or
    /// `super::super` from a command's submodule.
    fn cross_imports(text: &str, depth: usize, commands: &[String]) -> Vec<String> {
        let mut found = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("crate::cmd") || code.contains("super::super") {
                found.push(format!("{}: {}", n + 1, line.trim()));
                continue;
            }
            if depth > 0 {
                continue;
            }
            for (i, _) in code.match_indices("super::") {
                let rest = &code[i + "super::".len()..];
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
                    None => vec![rest],
                };
                let hit = names.iter().any(|n| {
                    let n = n.trim();
                    let end = n
                        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .unwrap_or(n.len());
                    commands.iter().any(|c| c == &n[..end])
                });
                if hit {
                    found.push(format!("{}: {}", n + 1, line.trim()));
                }
            }
        }
        found
    }

    fn walk(dir: &Path, depth: usize, commands: &[String], out: &mut Vec<String>) {
        for entry in fs_err::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, depth + 1, commands, out);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("cmd/mod.rs") {
                let text = fs_err::read_to_string(&path).unwrap();
                for hit in cross_imports(&text, depth, commands) {
                    out.push(format!("{}:{hit}", path.display()));
                }
            }
        }
    }

    #[test]
    fn commands_never_import_each_other() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cmd");
        let commands = command_modules(&fs_err::read_to_string(dir.join("mod.rs")).unwrap());
        assert!(
            commands.len() > 10,
            "found the command modules: {commands:?}"
        );
        let mut found = Vec::new();
        walk(&dir, 0, &commands, &mut found);
        assert!(
            found.is_empty(),
            "command modules import each other; move what they share out of cmd/:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn the_check_sees_every_form() {
        let commands = vec!["images".to_string(), "run".to_string()];
        let bad = [
            "use super::images::resolve;",
            "let x = super::run::prepare(a);",
            "use super::{attach, images};",
            "crate::cmd::images::resolve(s)",
        ];
        for b in bad {
            assert_eq!(cross_imports(b, 0, &commands).len(), 1, "{b}");
        }
        assert_eq!(
            cross_imports("use super::super::images;", 1, &commands).len(),
            1
        );
        for ok in [
            "use super::*;",
            "use super::reclaimable;",
            "// super::images",
        ] {
            assert!(cross_imports(ok, 0, &commands).is_empty(), "{ok}");
        }
        assert!(cross_imports("use super::commit;", 1, &commands).is_empty());
    }
}
