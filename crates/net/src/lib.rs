//! den-net: user-mode networking for rootless containers.
//!
//! den does not implement a network stack: it drives the `pasta` binary (from
//! the passt project, Debian package `passt`) as a child process. [`pasta`]
//! finds and probes it; [`pasta::PastaError`] turns failures into advice.

pub mod pasta;
