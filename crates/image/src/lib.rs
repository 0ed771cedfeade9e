//! den-image: everything about images, nothing about running them.
//!
//! - [`reference`] names images the way Docker does (`python:3.12-slim` is
//!   `docker.io/library/python:3.12-slim`).
//! - [`registries::RegistriesConf`] says which registries are plain HTTP and
//!   which mirrors serve them; [`auth::AuthStore`] finds credentials.
//! - [`registry::Client`] speaks the OCI distribution protocol.
//! - [`store::Store`] is the content-addressed store on disk: blobs, unpacked
//!   layers, image records (its module doc has the on-disk spec).
//! - [`pull::pull`] ties them together; [`unpack`] turns a layer tar into a
//!   directory overlayfs can use, refusing anything that would escape it.
//! - [`archive`] reads and writes OCI layouts and docker-archive tars
//!   (`den save`/`den load`); [`push`] uploads an image.
//!
//! Architecture invariant: this crate never runs code from an image and never
//! enters namespaces itself; unpacking runs inside the user namespace because
//! the `cli` calls it from a process that `sandbox` set up.

pub mod archive;
pub mod auth;
pub mod digest;
pub mod manifest;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registries;
pub mod registry;
pub mod store;
pub mod unpack;
