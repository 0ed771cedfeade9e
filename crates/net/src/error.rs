//! The crate's error: one line that names the thing and says what to do.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::pasta::PastaError;
use crate::ports::Proto;

/// Why networking could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A `-p` value that does not parse; `problem` names the bad part.
    #[error("invalid -p {spec:?}: {problem}")]
    Publish { spec: String, problem: String },

    #[error(
        "host port {port}/{proto} is below net.ipv4.ip_unprivileged_port_start ({start}): \
         publish a host port of {start} or above, or as root run \
         `sysctl net.ipv4.ip_unprivileged_port_start={port}`"
    )]
    PrivilegedPort { port: u16, proto: Proto, start: u16 },

    #[error(
        "host port {addr}/{proto} is already in use: choose another host port, \
         or stop what listens there"
    )]
    PortInUse { addr: SocketAddr, proto: Proto },

    #[error("cannot bind host port {addr}/{proto}: {source}")]
    Bind {
        addr: SocketAddr,
        proto: Proto,
        source: io::Error,
    },

    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    #[error(transparent)]
    Pasta(#[from] PastaError),

    #[error(
        "this pasta has no {option} option, which den needs: install a newer \
         passt package"
    )]
    Unsupported { option: String },

    #[error(
        "/dev/net/tun is not usable ({source}): as root, chmod 0666 /dev/net/tun \
         (the usual mode on desktop distributions), or modprobe tun if it is missing"
    )]
    Tun { source: io::Error },

    #[error(
        "setpriv not found on PATH: install util-linux (den starts pasta through \
         it so that pasta dies with its owner)"
    )]
    NoSetpriv,

    /// pasta exited before it was ready; `message` is its own error line.
    #[error("pasta exited ({status}): {message}{}", advice(message))]
    PastaExited { status: String, message: String },

    #[error("pasta was not ready after {secs} s (its log: {log})")]
    PastaTimeout { secs: u64, log: String },
}

/// A hint for the pasta errors a user can fix, appended to the message.
fn advice(message: &str) -> &'static str {
    const HINTS: [(&str, &str); 4] = [
        (
            "External interface not usable",
            " (the host has no network interface with a default route: \
             run the container with --network none)",
        ),
        (
            "Failed to open tun",
            " (as root: chmod 0666 /dev/net/tun, or modprobe tun)",
        ),
        (
            "Failed to bind any port",
            " (the host port is in use or below net.ipv4.ip_unprivileged_port_start)",
        ),
        (
            "Couldn't open",
            " (the container's namespaces are gone or not accessible to this user)",
        ),
    ];
    HINTS
        .iter()
        .find(|(needle, _)| message.contains(needle))
        .map_or("", |(_, hint)| hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasta_errors_get_advice() {
        let cases = [
            (
                "External interface not usable",
                "pasta exited (exit status: 1): External interface not usable (the host has no \
                 network interface with a default route: run the container with --network none)",
            ),
            (
                "Failed to bind any port for '-t 127.0.0.1/80:80', exiting",
                "pasta exited (exit status: 1): Failed to bind any port for '-t 127.0.0.1/80:80', \
                 exiting (the host port is in use or below net.ipv4.ip_unprivileged_port_start)",
            ),
            (
                "something new",
                "pasta exited (exit status: 1): something new",
            ),
        ];
        for (message, want) in cases {
            let e = NetError::PastaExited {
                status: "exit status: 1".into(),
                message: message.into(),
            };
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn privileged_port_names_the_sysctl() {
        let e = NetError::PrivilegedPort {
            port: 80,
            proto: Proto::Tcp,
            start: 1024,
        };
        assert_eq!(
            e.to_string(),
            "host port 80/tcp is below net.ipv4.ip_unprivileged_port_start (1024): publish a \
             host port of 1024 or above, or as root run \
             `sysctl net.ipv4.ip_unprivileged_port_start=80`"
        );
    }
}
