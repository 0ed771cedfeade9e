//! Finding and starting the container's command.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::SetupError;

/// The `PATH` a process gets when its environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Looks `program` up the way a shell would, in the container's `PATH`.
pub fn find(program: &str, env: &[String]) -> Result<PathBuf, SetupError> {
    if program.is_empty() {
        return Err(SetupError::NotFound(
            "no command given: the image has no Entrypoint or Cmd; pass one after the image name"
                .into(),
        ));
    }
    if program.contains('/') {
        return check(Path::new(program)).map(|()| PathBuf::from(program));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let mut denied = None;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(program);
        match check(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e @ SetupError::NotExecutable(_)) => denied = denied.or(Some(e)),
            Err(_) => {}
        }
    }
    Err(denied.unwrap_or_else(|| {
        SetupError::NotFound(format!("{program}: executable file not found in $PATH"))
    }))
}

fn check(path: &Path) -> Result<(), SetupError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(SetupError::NotExecutable(format!(
            "{}: is a directory",
            path.display()
        ))),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Err(SetupError::NotExecutable(format!(
            "{}: permission denied",
            path.display()
        ))),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(
            SetupError::NotExecutable(format!("{}: permission denied", path.display())),
        ),
        Err(_) => Err(SetupError::NotFound(format!(
            "{}: no such file or directory",
            path.display()
        ))),
    }
}

fn cstrings(items: &[String]) -> Result<Vec<CString>, SetupError> {
    items
        .iter()
        .map(|s| CString::new(s.as_str()).map_err(|_| SetupError::NulByte(s.clone())))
        .collect()
}

/// Replaces this process with the command, which starts with every signal
/// at its default and none blocked (as under Docker); returns only on
/// failure.
pub fn exec(program: &Path, args: &[String], env: &[String]) -> SetupError {
    let prog = match CString::new(program.as_os_str().as_encoded_bytes()) {
        Ok(p) => p,
        Err(_) => return SetupError::NotFound(format!("{}: invalid path", program.display())),
    };
    let (args, env) = match (cstrings(args), cstrings(env)) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    crate::sys::reset_signals(crate::sys::KeepSignals::Nothing);
    match nix::unistd::execve(&prog, &args, &env) {
        Err(nix::Error::EACCES) | Err(nix::Error::ENOEXEC) => SetupError::NotExecutable(format!(
            "{}: permission denied or not an executable",
            program.display()
        )),
        Err(nix::Error::ENOENT) => SetupError::NotFound(format!(
            "{}: no such file or directory (or its interpreter is missing)",
            program.display()
        )),
        Err(e) => SetupError::NotExecutable(format!("{}: {e}", program.display())),
    }
}
