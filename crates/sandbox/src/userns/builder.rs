//! The keeper's builder of `--rootfs` trees: a child of the keeper in a
//! mount namespace of its own, a copy of the host's, which builds each tree
//! detached (`container::rootdir::Detached`) and sends it to the
//! keeper, one at a time.
//!
//! It lives while asked: it ends after [`IDLE`] without a request (its
//! copy of the host's mounts holds the host's filesystems), when the
//! keeper goes, and when the host's mounts are no longer those of its copy
//! (the keeper starts another at the next request). It holds only its end
//! of the socket pair and /dev/null.
//!
//! ```text
//! keeper ── lower (framed) ──► builder: same mounts as the keeper's? build
//!        ◄── tree (SCM_RIGHTS), stamp (framed) ──
//! ```

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::spare::{read_framed, write_framed};
use crate::container::rootdir;
use crate::fdpass;

/// How long a builder waits for the next request before it ends.
const IDLE: Duration = Duration::from_secs(2);
/// How long the keeper waits for the rest of a tree its builder sends.
const SENT: Duration = Duration::from_secs(5);
/// What a builder's tree comes with.
const TAG: &[u8] = b"den-tree-1";

/// The keeper's handle on its builder.
pub(super) struct Builder {
    child: Option<crate::sys::ForkedChild>,
    sock: UnixStream,
    /// The directory it is building a tree of.
    asked: Option<PathBuf>,
}

/// A tree from the builder: of `lower`, with its stamp as serialized.
pub(super) struct Built {
    pub lower: PathBuf,
    pub tree: OwnedFd,
    pub stamp: Vec<u8>,
}

impl Builder {
    /// Forks a builder (the keeper is single-threaded).
    pub(super) fn start() -> Option<Builder> {
        let (sock, theirs) = UnixStream::pair().ok()?;
        let keeper = rustix::process::getpid().as_raw_nonzero().get();
        let serve = move || {
            crate::sys::close_fds_except(&[0, 1, 2, theirs.as_raw_fd()]);
            // Not another keeper to `ps` or `pgrep -f`.
            crate::sys::set_cmdline(&["den", "__internal", "rootfs-builder"]);
            match rootdir::Detached::new() {
                Ok(detached) => build_each(&detached, &theirs, keeper),
                Err(_) => 1,
            }
        };
        let (child, sock) = crate::sys::fork_child(sock, serve).ok()?;
        Some(Builder {
            child: Some(child),
            sock,
            asked: None,
        })
    }

    /// What the keeper polls: a tree arrives, or the builder ended.
    pub(super) fn socket(&self) -> &UnixStream {
        &self.sock
    }

    /// The directory it is building a tree of, if any.
    pub(super) fn building(&self) -> Option<&Path> {
        self.asked.as_deref()
    }

    /// Asks for a tree of `lower`.
    pub(super) fn ask(&mut self, lower: &Path) -> io::Result<()> {
        write_framed(&self.sock, lower.as_os_str().as_bytes())?;
        self.asked = Some(lower.to_path_buf());
        Ok(())
    }

    /// The tree asked for, once its socket is readable; `Err`: the builder
    /// ended or sent something else, and is done.
    pub(super) fn collect(&mut self) -> Result<Built, ()> {
        let lower = self.asked.take().ok_or(())?;
        self.sock.set_read_timeout(Some(SENT)).map_err(drop)?;
        let tree = fdpass::recv(self.sock.as_fd(), TAG, 1)
            .ok()
            .flatten()
            .and_then(|mut fds| fds.pop())
            .ok_or(())?;
        let stamp = read_framed(&self.sock).map_err(drop)?;
        Ok(Built { lower, tree, stamp })
    }
}

impl Drop for Builder {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            nix::sys::signal::kill(child.pid(), nix::sys::signal::Signal::SIGKILL).ok();
            child.wait().ok();
        }
    }
}

/// The builder's loop: a tree of each directory asked for, until a request
/// does not come within [`IDLE`], the keeper goes, or the host's mounts
/// are no longer its copy's.
fn build_each(detached: &rootdir::Detached, sock: &UnixStream, keeper: i32) -> i32 {
    if sock.set_read_timeout(Some(IDLE)).is_err() {
        return 1;
    }
    loop {
        let Ok(lower) = read_framed(sock) else {
            return 0;
        };
        if !detached.fresh_against(keeper) {
            return 0;
        }
        let lower = PathBuf::from(OsStr::from_bytes(&lower));
        let Ok(spare) = detached.build(&lower) else {
            return 1;
        };
        let Ok(stamp) = serde_json::to_vec(&spare.stamp) else {
            return 1;
        };
        let sent = fdpass::send(sock.as_fd(), TAG, &[spare.tree.as_fd()])
            .and_then(|()| write_framed(sock, &stamp));
        if sent.is_err() {
            return 1;
        }
    }
}
