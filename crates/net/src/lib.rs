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
//! - [`host`] reads what pasta copies from the host (the default gateway).
//! - [`NetError`] is every failure, as one line with the fix.
//!
//! # Design notes: user networks (`den network create`, compose)
//!
//! One pasta serves one network namespace, so "one pasta per container"
//! cannot give containers a shared network, and costs one pasta each. Plan:
//! each user network is one network namespace owned by den's user namespace
//! and held by a small "infra" process (with the network's lock and state
//! under the store). Inside it a bridge (`den0`, e.g. 10.89.N.1/24) and one
//! pasta attached once, with `--config-net` on a tap and the bridge routed and
//! masqueraded to it, so that outbound traffic and published ports go through
//! that single pasta. Each container's network namespace gets a veth pair,
//! one end on the bridge, with its own address; creating veths and bridges
//! needs only CAP_NET_ADMIN in the owning user namespace, which den's userns
//! root has (checked here: veth and bridge creation work rootless, the
//! `dummy` link type is absent). Names resolve through /etc/hosts entries
//! den writes for every container and alias (a tiny DNS server only if
//! containers join after others start); two networks are two namespaces, so
//! they cannot reach each other. Published ports of a container on a user
//! network go to the shared pasta as `-t HOSTPORT:CTRIP:CTRPORT`-style
//! forwards, which Debian 12's pasta lacks, so the infra process forwards
//! them itself (or a per-network socket splice), reloaded on `den run -p`.

pub mod host;
pub mod pasta;
pub mod ports;

mod error;

pub use error::NetError;
