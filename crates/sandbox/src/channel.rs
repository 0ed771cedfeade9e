//! One typed channel from a child process to its parent: the way every den
//! child reports (the container process, `den exec`'s child, the network
//! namespace helper, the probes, and the background supervisor and network
//! infra to the `den` command that started them).
//!
//! A message is a 4-byte little-endian length and that many bytes of JSON
//! (serde), at most [`MAX_MESSAGE`]. The pipe is close-on-exec, so a child
//! that execs closes it: the parent then reads end-of-file, which is the
//! "it worked" of a child that reports only failures.
//!
//! ```text
//!   parent                                  child (forked or spawned)
//!   channel() -> (Sender, Receiver)
//!   fork_reporting ------------------------> gets the Sender
//!   recv() ... blocks                        step 1, step 2, ...
//!          <-------------------------------- send(Msg)     (or exec: EOF)
//!   Ok(Some(msg)) / Ok(None) = EOF before any byte /
//!   Err(Truncated) = the child died inside a message
//! ```

use std::fs::File;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::sys;

/// The largest message a receiver accepts (and a sender sends).
pub const MAX_MESSAGE: usize = 64 << 10;

/// Why a message could not be sent or received.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("cannot create the report pipe")]
    Pipe(#[source] io::Error),
    #[error("cannot write to the report pipe")]
    Write(#[source] io::Error),
    #[error("cannot read from the report pipe")]
    Read(#[source] io::Error),
    #[error("a report of {len} bytes is larger than the limit of {MAX_MESSAGE}")]
    TooLarge { len: usize },
    #[error("the reporting process ended in the middle of a report ({got} of {want} bytes)")]
    Truncated { got: usize, want: usize },
    #[error("the reporting process ended without a report")]
    Closed,
    #[error("cannot encode the report")]
    Encode(#[source] serde_json::Error),
    #[error("the report is not valid")]
    Decode(#[source] serde_json::Error),
    #[error(transparent)]
    Fork(#[from] sys::ForkError),
}

/// The sending end (the child's).
#[derive(Debug)]
pub struct Sender<T> {
    file: File,
    _msg: PhantomData<fn(T)>,
}

/// The receiving end (the parent's).
#[derive(Debug)]
pub struct Receiver<T> {
    file: File,
    _msg: PhantomData<fn() -> T>,
}

/// A close-on-exec pipe carrying messages of type `T`.
pub fn channel<T: Serialize + DeserializeOwned>() -> Result<(Sender<T>, Receiver<T>), ChannelError>
{
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| ChannelError::Pipe(e.into()))?;
    Ok((Sender::from_fd(w), Receiver::from_fd(r)))
}

impl<T: Serialize> Sender<T> {
    /// A sender on an inherited descriptor (stdout of a spawned den).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self {
            file: File::from(fd),
            _msg: PhantomData,
        }
    }

    /// A second sender on the same pipe (for a child of the child, whose
    /// exec must close it too).
    pub fn try_clone(&self) -> Result<Self, ChannelError> {
        Ok(Self {
            file: self.file.try_clone().map_err(ChannelError::Pipe)?,
            _msg: PhantomData,
        })
    }

    /// Sends one message (one write for messages up to PIPE_BUF).
    pub fn send(&mut self, msg: &T) -> Result<(), ChannelError> {
        let body = serde_json::to_vec(msg).map_err(ChannelError::Encode)?;
        if body.len() > MAX_MESSAGE {
            return Err(ChannelError::TooLarge { len: body.len() });
        }
        let mut frame = (body.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&body);
        self.file.write_all(&frame).map_err(ChannelError::Write)
    }
}

impl<T: DeserializeOwned> Receiver<T> {
    /// A receiver on an inherited descriptor (a spawned den's stdout).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self {
            file: File::from(fd),
            _msg: PhantomData,
        }
    }

    /// The next message; `None` at end-of-file before its first byte (every
    /// sender closed: the child exec'd or exited).
    pub fn recv(&mut self) -> Result<Option<T>, ChannelError> {
        let mut len = [0u8; 4];
        match read_full(&mut self.file, &mut len)? {
            0 => return Ok(None),
            4 => {}
            got => return Err(ChannelError::Truncated { got, want: 4 }),
        }
        let want = u32::from_le_bytes(len) as usize;
        if want > MAX_MESSAGE {
            return Err(ChannelError::TooLarge { len: want });
        }
        let mut body = vec![0u8; want];
        match read_full(&mut self.file, &mut body)? {
            got if got == want => {}
            got => return Err(ChannelError::Truncated { got, want }),
        }
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(ChannelError::Decode)
    }
}

/// For a parent that polls the pipe (the supervisor's event loop) before
/// calling [`Receiver::recv`].
impl<T> AsFd for Receiver<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl<T: DeserializeOwned> Receiver<T> {
    /// The next message, which must come: end-of-file is
    /// [`ChannelError::Closed`].
    pub fn recv_some(&mut self) -> Result<T, ChannelError> {
        self.recv()?.ok_or(ChannelError::Closed)
    }
}

/// Reads until `buf` is full or end-of-file; returns the bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> Result<usize, ChannelError> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ChannelError::Read(e)),
        }
    }
    Ok(got)
}

/// Forks a child that gets the sending end of a new channel; the parent
/// keeps the receiving end (and `parent_only`, see [`sys::fork_child`]).
/// With `new_pid_ns` the child is PID 1 of a new pid namespace.
pub(crate) fn fork_reporting<T, P>(
    new_pid_ns: bool,
    parent_only: P,
    child: impl FnOnce(Sender<T>) -> i32,
) -> Result<(sys::ForkedChild, Receiver<T>, P), ChannelError>
where
    T: Serialize + DeserializeOwned,
{
    let (tx, rx) = channel::<T>()?;
    let (child, (rx, parent_only)) =
        sys::fork_child_in(new_pid_ns, (rx, parent_only), move || child(tx))?;
    Ok((child, rx, parent_only))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    enum Msg {
        Step { name: String, errno: Option<i32> },
        Done,
    }

    #[test]
    fn round_trip_then_eof() {
        let (mut tx, mut rx) = channel::<Msg>().unwrap();
        let step = Msg::Step {
            name: "mount /proc".into(),
            errno: Some(13),
        };
        tx.send(&step).unwrap();
        tx.send(&Msg::Done).unwrap();
        drop(tx);
        assert_eq!(rx.recv().unwrap(), Some(step));
        assert_eq!(rx.recv().unwrap(), Some(Msg::Done));
        assert!(rx.recv().unwrap().is_none());
    }

    #[test]
    fn oversize_refused_on_both_sides() {
        let (mut tx, mut rx) = channel::<Msg>().unwrap();
        let big = Msg::Step {
            name: "x".repeat(MAX_MESSAGE),
            errno: None,
        };
        let err = tx.send(&big).unwrap_err();
        assert!(matches!(err, ChannelError::TooLarge { len } if len > MAX_MESSAGE));
        // A hostile sender announcing more than the limit: refused before
        // anything is allocated.
        tx.file
            .write_all(&((MAX_MESSAGE + 1) as u32).to_le_bytes())
            .unwrap();
        let err = rx.recv().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "a report of {} bytes is larger than the limit of {MAX_MESSAGE}",
                MAX_MESSAGE + 1
            )
        );
    }

    #[test]
    fn child_dying_mid_message_is_a_clear_error() {
        // Only the length and half of the body: what a child killed
        // between two writes leaves.
        let (mut rx, ()) = {
            let (tx, rx) = channel::<Msg>().unwrap();
            let mut f = tx.file;
            f.write_all(&10u32.to_le_bytes()).unwrap();
            f.write_all(b"{\"Ste").unwrap();
            (rx, ())
        };
        let err = rx.recv().unwrap_err();
        assert_eq!(
            err.to_string(),
            "the reporting process ended in the middle of a report (5 of 10 bytes)"
        );
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let (tx, mut rx) = channel::<Msg>().unwrap();
        let mut f = tx.file;
        f.write_all(&3u32.to_le_bytes()).unwrap();
        f.write_all(b"abc").unwrap();
        drop(f);
        assert!(matches!(rx.recv(), Err(ChannelError::Decode(_))));
    }
}
