//! What a container is made of, as the `cli` decided it: validated, plain
//! data, handed to the container process as JSON.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub id: String,
    pub rootfs: Rootfs,
    /// `--read-only`: the root is remounted read-only after set-up.
    pub read_only: bool,
    /// Mounts in the order they are made; targets are container paths.
    pub mounts: Vec<Mount>,
    pub hostname: String,
    pub process: Process,
    pub network: Network,
    pub security: Security,
    /// `--init`: a minimal init is PID 1 and runs the command as its child.
    pub init: bool,
    /// Where compiled seccomp filters are cached.
    pub cache_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Rootfs {
    /// An image: read-only layers (top first, relative to `layers_dir`) and
    /// the container's own upper and work directories.
    Overlay {
        layers_dir: PathBuf,
        lowers: Vec<String>,
        upper: PathBuf,
        work: PathBuf,
        merged: PathBuf,
    },
    /// `--rootfs DIR`: any directory as the single read-only lower layer; the
    /// writable upper lives on a tmpfs of the container (gone when it exits).
    Directory {
        lower: PathBuf,
        merged: PathBuf,
        scratch: PathBuf,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Mount {
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    Tmpfs {
        target: String,
        options: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Process {
    pub args: Vec<String>,
    /// `KEY=VALUE`, image first, then the user's.
    pub env: Vec<String>,
    pub cwd: String,
    /// `uid[:gid]` or `name[:group]`, resolved against the container's
    /// /etc/passwd and /etc/group; empty means root.
    pub user: String,
    /// stdin/stdout/stderr are a terminal (the pty slave).
    pub terminal: bool,
    /// Extra fds passed on (`--preserve-fds N`): 3..3+N stay open.
    pub preserve_fds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// A new, empty network namespace (loopback only).
    None,
    /// The host's network namespace.
    Host,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Security {
    /// Capabilities kept (names like `CAP_CHOWN`).
    pub capabilities: Vec<String>,
    pub seccomp: bool,
    pub landlock: bool,
    /// `--privileged`: no masked paths, /sys writable where the kernel allows.
    pub privileged: bool,
}
