//! Descriptors over unix sockets: one message of a fixed tag carrying a
//! fixed number of descriptors (`SCM_RIGHTS`), and short socket paths.
//!
//! The supervisor hands out a container's namespaces this way
//! (`container::nsfds`), and the keeper a spare network namespace
//! (`userns::spare`). A message is taken only whole: the tag as expected,
//! exactly the expected number of descriptors, nothing cut off; anything
//! else is `None`, and whatever came with it is closed. Every descriptor
//! received is close-on-exec.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// The most descriptors one message carries (a container's namespaces).
const MAX_FDS: usize = 8;

/// Sends `tag` with `fds`.
pub fn send(socket: BorrowedFd<'_>, tag: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::other("too many descriptors for one message"));
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(fds));
    let sent = rustix::net::sendmsg(
        socket,
        &[IoSlice::new(tag)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    match sent == tag.len() {
        true => Ok(()),
        false => Err(io::Error::other("short send")),
    }
}

/// One message: `tag` and exactly `count` descriptors, or `None` (end of
/// stream, or anything else).
pub fn recv(socket: BorrowedFd<'_>, tag: &[u8], count: usize) -> io::Result<Option<Vec<OwnedFd>>> {
    let mut data = [0u8; 16];
    // Room for one more than expected: a longer list is refused, not cut.
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS + 1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        socket,
        &mut [IoSliceMut::new(&mut data)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = m {
            fds.extend(received);
        }
    }
    let whole = !msg.flags.contains(ReturnFlags::CTRUNC);
    Ok((whole && &data[..msg.bytes] == tag && fds.len() == count).then_some(fds))
}

/// Runs `f` with a short path for `name` inside `dir`, whatever `dir`'s
/// length (a socket address holds 108 bytes): the directory opened as an
/// `O_PATH` fd and reached as `/proc/self/fd/N/name`.
pub fn short_path<T>(
    dir: &Path,
    name: &str,
    f: impl FnOnce(&Path) -> io::Result<T>,
) -> io::Result<T> {
    let fd = rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("{}: {e}", dir.display())))?;
    let path = PathBuf::from(format!("/proc/self/fd/{}/{name}", fd.as_raw_fd()));
    let out = f(&path);
    drop(fd);
    out
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    #[test]
    fn a_message_is_taken_only_whole() {
        let (a, b) = UnixStream::pair().unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        send(a.as_fd(), b"tag-1", &[file.as_fd(), file.as_fd()]).unwrap();
        let got = recv(b.as_fd(), b"tag-1", 2).unwrap().expect("whole");
        assert_eq!(got.len(), 2);
        send(a.as_fd(), b"tag-1", &[file.as_fd()]).unwrap();
        assert!(recv(b.as_fd(), b"tag-1", 2).unwrap().is_none(), "one short");
        send(a.as_fd(), b"tag-2", &[file.as_fd()]).unwrap();
        assert!(
            recv(b.as_fd(), b"tag-1", 1).unwrap().is_none(),
            "another tag"
        );
        drop(a);
        assert!(
            recv(b.as_fd(), b"tag-1", 1).unwrap().is_none(),
            "end of stream"
        );
    }
}
