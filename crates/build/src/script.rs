//! What a `RUN` with here-documents executes, as BuildKit decides it
//! (`dispatchRun` in `dockerfile2llb/convert.go`):
//!
//! - `RUN <<EOF` alone (the command is the one marker): the body is the
//!   script. A body starting with `#!` is written as an executable file
//!   `/dev/pipes/EOF` and run directly, so its interpreter line chooses the
//!   interpreter; any other body is handed to the SHELL as its command.
//! - Anything else (`RUN python3 <<PY`, several here-documents): the
//!   command and the bodies, each followed by its delimiter, joined by
//!   newlines, are handed to the SHELL, which reads them as shell
//!   here-documents.
//!
//! The builder does not expand variables in `RUN` bodies: the shell does.

use crate::dockerfile::{Command, Heredoc};

/// Where a here-document run directly is placed in the RUN container.
pub const PIPES_DIR: &str = "/dev/pipes";

/// A RUN's argv, and the files it needs under [`PIPES_DIR`] (name, content;
/// mode 0755).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// What the container executes.
    pub argv: Vec<String>,
    /// Files to place under [`PIPES_DIR`].
    pub files: Vec<(String, String)>,
}

/// The argv of a RUN whose command is `command` and here-documents
/// `heredocs`, with `shell` the stage's SHELL.
pub fn script(command: &Command, heredocs: &[Heredoc], shell: &[String]) -> Script {
    let through_shell = |s: String| {
        let mut v = shell.to_vec();
        v.push(s);
        v
    };
    let shell_text = match command {
        Command::Exec(v) => {
            return Script {
                argv: v.clone(),
                files: Vec::new(),
            };
        }
        Command::Shell(s) => s,
    };
    let Some(first) = heredocs.first() else {
        return Script {
            argv: through_shell(shell_text.clone()),
            files: Vec::new(),
        };
    };
    if heredocs.len() == 1 && is_lone_marker(shell_text) {
        if first.content.starts_with("#!") {
            return Script {
                argv: vec![format!("{PIPES_DIR}/{}", first.name)],
                files: vec![(first.name.clone(), first.content.clone())],
            };
        }
        return Script {
            argv: through_shell(first.content.clone()),
            files: Vec::new(),
        };
    }
    let mut full = shell_text.clone();
    for h in heredocs {
        full.push('\n');
        full.push_str(&h.content);
        full.push_str(&h.name);
    }
    Script {
        argv: through_shell(full),
        files: Vec::new(),
    }
}

/// Whether the shell text is one `<<[-]NAME` word (the name maybe quoted).
fn is_lone_marker(text: &str) -> bool {
    let t = text.trim();
    t.starts_with("<<") && !t.contains(char::is_whitespace) && t.len() > 2
}

/// Whether `name` is safe as a file name under [`PIPES_DIR`].
pub fn valid_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, content: &str) -> Heredoc {
        Heredoc {
            name: name.into(),
            content: content.into(),
            expand: true,
        }
    }

    fn sh() -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into()]
    }

    #[test]
    fn lone_heredoc_is_the_shell_command() {
        let s = script(
            &Command::Shell("<<EOF".into()),
            &[doc("EOF", "echo a\necho b\n")],
            &sh(),
        );
        assert_eq!(s.argv, ["/bin/sh", "-c", "echo a\necho b\n"]);
        assert!(s.files.is_empty());
        // `<<-EOF` and a quoted name are lone markers too.
        let s = script(
            &Command::Shell("<<-'EOF'".into()),
            &[doc("EOF", "x\n")],
            &sh(),
        );
        assert_eq!(s.argv, ["/bin/sh", "-c", "x\n"]);
    }

    #[test]
    fn interpreter_line_runs_the_file() {
        let s = script(
            &Command::Shell("<<PY".into()),
            &[doc("PY", "#!/usr/bin/env python3\nprint(1)\n")],
            &sh(),
        );
        assert_eq!(s.argv, ["/dev/pipes/PY"]);
        assert_eq!(
            s.files,
            [(
                "PY".to_owned(),
                "#!/usr/bin/env python3\nprint(1)\n".to_owned()
            )]
        );
    }

    #[test]
    fn other_forms_are_reconstituted_for_the_shell() {
        let s = script(
            &Command::Shell("cat <<A <<-'B' > /out".into()),
            &[doc("A", "line a\n"), doc("B", "line b\n")],
            &sh(),
        );
        assert_eq!(
            s.argv,
            [
                "/bin/sh",
                "-c",
                "cat <<A <<-'B' > /out\nline a\nA\nline b\nB"
            ]
        );
        let s = script(&Command::Shell("echo hi".into()), &[], &sh());
        assert_eq!(s.argv, ["/bin/sh", "-c", "echo hi"]);
    }

    #[test]
    fn file_names() {
        assert!(valid_file_name("EOF"));
        assert!(!valid_file_name("../x") && !valid_file_name("..") && !valid_file_name(""));
    }
}
