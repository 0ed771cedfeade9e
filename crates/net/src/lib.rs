//! den-net: user-mode networking for rootless containers.
//!
//! den does not implement a network stack: it drives the `pasta` binary (from
//! the passt project, Debian package `passt`) as a child process.
//!
//! - [`ports::PortMapping`] is one published port, parsed from Docker's `-p`
//!   syntax; [`ports::prepare`] refuses privileged or busy host ports and
//!   picks the random ones.
//! - [`pasta::PastaConfig`] says what a container's network namespace gets
//!   (published ports, a DNS forwarder, host loopback or not, IPv6);
//!   [`pasta::PastaConfig::spawn`] starts pasta for a [`pasta::Target`] and
//!   returns a [`pasta::PastaHandle`] once pasta is ready; dropping the handle
//!   ends pasta. The module doc of [`pasta`] says who may start it and why.
//! - [`proxy::Proxy`] is the bounded TCP proxy of user networks' published
//!   ports.
//! - [`host`] reads what pasta copies from the host (the default gateway).
//! - [`NetError`] is every failure, as one line with the fix.
//!
//! Architecture invariant: this crate never enters a namespace itself; pasta
//! joins the container's, and the tests go in with `nsenter`.
//!
//! # User networks (`den network create`, compose): the design
//!
//! Built in `den_sandbox::container::bridge` (published ports there go through
//! a small TCP proxy per container instead of a per-network one).
//!
//! One pasta serves one network namespace and costs about 30 MB (its packet
//! buffers), so user networks cannot be "one pasta per container". Plan,
//! with the kernel facts checked rootless on the test machines:
//! - Each network is a network namespace owned by den's user namespace, held
//!   by a small "infra" process, with a bridge (`den0`, 10.89.N.1/24); each
//!   container's namespace gets a veth into that bridge and its own address.
//!   veth, bridge, `ip_forward` and nftables (masquerade, DNAT) all work
//!   with CAP_NET_ADMIN in the owning user namespace (no `dummy` links).
//! - One pasta attached to the network namespace (by the infra side, with
//!   [`pasta::Target::NetnsFd`]) is its uplink; nftables masquerades the
//!   bridge subnet to pasta's address, so pasta sees one source.
//! - Published ports: this pasta cannot add ports while running, and what
//!   it splices from the host's loopback arrives on the namespace's own
//!   127.0.0.1, out of DNAT's reach; so a den port proxy ([`proxy`]) does
//!   it, as podman's rootlessport: listeners in the host namespace, the
//!   connecting side in the network's namespace, to the container's
//!   address (never its loopback), one process per container.
//! - Names: /etc/hosts entries for every container and alias, rewritten in
//!   the running containers when one joins (or a small DNS server on the
//!   bridge address). Different networks are different namespaces: isolated.

pub mod host;
pub mod pasta;
pub mod ports;
pub mod proxy;

mod error;

pub use error::NetError;
