//! Capabilities of the container process: den's default set (Docker's without NET_RAW), the
//! `--cap-add`/`--cap-drop`/`--privileged` arithmetic, and applying the result.
//!
//! [`CapPolicy::from_flags`] turns the flags into the set to keep;
//! [`CapPolicy::apply_bounding`] and [`CapPolicy::set_process_caps`] enforce it.
//! All capabilities here are those of the container's user namespace: even
//! "all" grants nothing over the host.
//!
//! # Order of the security steps
//!
//! `crate::container::security` is the one place that applies them, and its
//! module doc gives the order and why. For this module: the bounding set
//! goes after Landlock and seccomp and before the switch to the container
//! user (it needs CAP_SETPCAP, which the switch to a non-root user loses);
//! the process capabilities go after the switch.
//!
//! # What the process ends up with (Docker's behaviour)
//!
//! - uid 0: bounding = permitted = effective = kept set. The bounding set is
//!   what matters: on exec a root process gets its bounding set as permitted.
//! - any other uid: bounding = kept set, everything else empty. setuid to a
//!   non-zero uid clears permitted and effective (PR_SET_KEEPCAPS is left off
//!   on purpose), and exec gives a non-root process no capabilities unless
//!   the file has file capabilities (bounded by the bounding set) or ambient
//!   capabilities are set, which Docker does not do.
//! - inheritable and ambient: always empty. Docker stopped setting
//!   inheritable capabilities after CVE-2022-24769 (with inheritable caps, an
//!   exec of a file with inheritable file capabilities gains them).

use std::collections::BTreeSet;

use caps::{CapSet, CapsHashSet};

pub use caps::Capability;

/// den's default capabilities: Docker's without CAP_NET_RAW, as podman
/// (raw sockets let a container forge ARP and IP frames; ping works
/// through ping sockets instead: see the README's security section).
/// `--cap-add NET_RAW` gives it back.
pub const DEFAULT: [Capability; 13] = without(DOCKER_DEFAULT, Capability::CAP_NET_RAW);

/// `all` without `gone`, in the same order. Compile-time only: a `gone`
/// that is not in `all` fails the build (index out of bounds).
const fn without(all: [Capability; 14], gone: Capability) -> [Capability; 13] {
    let mut out = [Capability::CAP_CHOWN; 13];
    let (mut i, mut j) = (0, 0);
    while i < all.len() {
        if all[i] as u8 != gone as u8 {
            out[j] = all[i];
            j += 1;
        }
        i += 1;
    }
    out
}

/// Docker's default capabilities, in Docker's order.
pub const DOCKER_DEFAULT: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// Why a capability flag was refused or a capability set could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum CapError {
    #[error(
        "unknown capability {name:?}: use a name from capabilities(7) such as NET_ADMIN or CAP_NET_ADMIN, or ALL"
    )]
    Unknown { name: String },
    #[error("cannot drop {cap} from the bounding set (init needs CAP_SETPCAP for this step)")]
    DropBounding {
        cap: Capability,
        #[source]
        source: caps::errors::CapsError,
    },
    #[error("cannot set the {set} capabilities to [{caps}]")]
    SetProcess {
        set: &'static str,
        caps: String,
        #[source]
        source: caps::errors::CapsError,
    },
    #[error("cannot clear the ambient capabilities")]
    ClearAmbient(#[source] caps::errors::CapsError),
}

/// One `--cap-add`/`--cap-drop` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapArg {
    /// `ALL`: every capability.
    All,
    One(Capability),
}

/// Parse a capability name as Docker does: any case, with or without the
/// `CAP_` prefix, or `ALL`.
pub fn parse_cap(name: &str) -> Result<CapArg, CapError> {
    let upper = name.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(CapArg::All);
    }
    let canonical = match upper.starts_with("CAP_") {
        true => upper,
        false => format!("CAP_{upper}"),
    };
    canonical
        .parse::<Capability>()
        .map(CapArg::One)
        .map_err(|_| CapError::Unknown {
            name: name.to_owned(),
        })
}

/// The capabilities a container keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapPolicy {
    pub keep: CapsHashSet,
}

impl CapPolicy {
    /// Docker's default set.
    pub fn docker_default() -> Self {
        CapPolicy {
            keep: DOCKER_DEFAULT.into_iter().collect(),
        }
    }

    /// Docker's rules (moby `TweakCapabilities`): `privileged` keeps every
    /// capability; `--cap-add ALL` keeps all but the dropped ones; `--cap-drop
    /// ALL` keeps only the added ones; otherwise the default set minus the
    /// dropped plus the added (a capability both dropped and added is kept).
    pub fn from_flags(add: &[String], drop: &[String], privileged: bool) -> Result<Self, CapError> {
        let add = parse_all(add)?;
        let drop = parse_all(drop)?;
        if privileged {
            return Ok(CapPolicy { keep: caps::all() });
        }
        let named = |args: &[CapArg]| -> CapsHashSet {
            args.iter()
                .filter_map(|a| match a {
                    CapArg::One(c) => Some(*c),
                    CapArg::All => None,
                })
                .collect()
        };
        let (add_set, drop_set) = (named(&add), named(&drop));
        let keep = if add.contains(&CapArg::All) {
            caps::all().difference(&drop_set).copied().collect()
        } else if drop.contains(&CapArg::All) {
            add_set
        } else {
            let base: CapsHashSet = DEFAULT.into_iter().collect();
            let kept = base.difference(&drop_set).copied();
            kept.chain(add_set).collect()
        };
        Ok(CapPolicy { keep })
    }

    /// Exactly these capabilities (a spec's, already decided).
    pub fn keeping(caps: &[Capability]) -> Self {
        CapPolicy {
            keep: caps.iter().copied().collect(),
        }
    }

    /// The kept capabilities in kernel order (for a spec).
    pub fn sorted(&self) -> Vec<Capability> {
        sorted(&self.keep)
    }

    /// The kept capabilities as sorted names (for messages and cache keys).
    pub fn names(&self) -> Vec<String> {
        sorted_names(&self.keep)
    }

    /// Step 1: drop every capability not kept from the bounding set, so that
    /// no later exec can gain it. Call before changing to the container user.
    pub fn apply_bounding(&self) -> Result<(), CapError> {
        for cap in supported() {
            if self.keep.contains(&cap) {
                continue;
            }
            // A capability already gone needs no drop; a failed read is
            // answered by trying the drop, which reports the real error.
            if caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(true) {
                caps::drop(None, CapSet::Bounding, cap)
                    .map_err(|source| CapError::DropBounding { cap, source })?;
            }
        }
        Ok(())
    }

    /// Step 3: after setuid/setgid, set the process capabilities: the kept
    /// set as effective and permitted for uid 0, nothing for other users;
    /// inheritable and ambient always empty (see the module doc).
    ///
    /// Effective goes first: the kernel refuses an effective set larger than
    /// the permitted one, and permitted can only shrink.
    pub fn set_process_caps(&self, uid_is_root: bool) -> Result<(), CapError> {
        let target: CapsHashSet = match uid_is_root {
            true => self.keep.intersection(&supported()).copied().collect(),
            false => CapsHashSet::new(),
        };
        caps::clear(None, CapSet::Ambient).map_err(CapError::ClearAmbient)?;
        let steps = [
            (CapSet::Effective, "effective", &target),
            (CapSet::Permitted, "permitted", &target),
            (CapSet::Inheritable, "inheritable", &CapsHashSet::new()),
        ];
        for (set, name, value) in steps {
            caps::set(None, set, value).map_err(|source| CapError::SetProcess {
                set: name,
                caps: sorted_names(value).join(","),
                source,
            })?;
        }
        Ok(())
    }
}

fn parse_all(names: &[String]) -> Result<Vec<CapArg>, CapError> {
    names.iter().map(|n| parse_cap(n)).collect()
}

/// Capabilities the running kernel knows (it rejects the others with EINVAL).
fn supported() -> CapsHashSet {
    caps::runtime::thread_all_supported()
}

fn sorted(set: &CapsHashSet) -> Vec<Capability> {
    let sorted: BTreeSet<u8> = set.iter().map(|c| c.index()).collect();
    let by_index = |i: u8| caps::all().into_iter().find(|c| c.index() == i);
    sorted.into_iter().filter_map(by_index).collect()
}

fn sorted_names(set: &CapsHashSet) -> Vec<String> {
    sorted(set).iter().map(|c| c.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Capability::*;

    #[test]
    fn parses_docker_spellings() {
        let cases: &[(&str, Option<CapArg>)] = &[
            ("NET_ADMIN", Some(CapArg::One(CAP_NET_ADMIN))),
            ("CAP_NET_ADMIN", Some(CapArg::One(CAP_NET_ADMIN))),
            ("net_admin", Some(CapArg::One(CAP_NET_ADMIN))),
            ("cap_sys_ptrace", Some(CapArg::One(CAP_SYS_PTRACE))),
            ("Sys_Admin", Some(CapArg::One(CAP_SYS_ADMIN))),
            ("ALL", Some(CapArg::All)),
            ("all", Some(CapArg::All)),
            ("CAP_ALL", None),
            ("NET_ADMINX", None),
            ("", None),
            ("CAP_", None),
            (" NET_ADMIN", None),
        ];
        for (input, want) in cases {
            let got = parse_cap(input).ok();
            assert_eq!(got, *want, "parse_cap({input:?})");
        }
    }

    #[test]
    fn unknown_names_the_input() {
        let err = parse_cap("net_admn").unwrap_err();
        assert!(err.to_string().contains("\"net_admn\""), "{err}");
    }

    fn set(caps: &[Capability]) -> CapsHashSet {
        caps.iter().copied().collect()
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn builds_policies_like_docker() {
        let default = set(&DEFAULT);
        let with = |extra: &[Capability]| -> CapsHashSet {
            default.iter().chain(extra).copied().collect()
        };
        let without = |gone: &[Capability]| -> CapsHashSet {
            default
                .iter()
                .filter(|c| !gone.contains(c))
                .copied()
                .collect()
        };
        let all_but = |gone: &[Capability]| -> CapsHashSet {
            caps::all()
                .into_iter()
                .filter(|c| !gone.contains(c))
                .collect()
        };
        type Case<'a> = (&'a [&'a str], &'a [&'a str], bool, CapsHashSet);
        let cases: Vec<Case> = vec![
            (&[], &[], false, default.clone()),
            (&["NET_RAW"], &[], false, set(&DOCKER_DEFAULT)),
            (&["NET_ADMIN"], &[], false, with(&[CAP_NET_ADMIN])),
            (
                &[],
                &["chown", "CAP_KILL"],
                false,
                without(&[CAP_CHOWN, CAP_KILL]),
            ),
            (&["ALL"], &[], false, caps::all()),
            (&["all"], &["SYS_ADMIN"], false, all_but(&[CAP_SYS_ADMIN])),
            (
                &["NET_BIND_SERVICE"],
                &["ALL"],
                false,
                set(&[CAP_NET_BIND_SERVICE]),
            ),
            (&[], &["ALL"], false, CapsHashSet::new()),
            // add ALL wins over drop ALL, as in Docker.
            (&["ALL"], &["ALL"], false, caps::all()),
            // both dropped and added: added back.
            (&["KILL"], &["KILL"], false, default.clone()),
            (&[], &["ALL"], true, caps::all()),
            (&[], &[], true, caps::all()),
        ];
        for (add, drop, privileged, want) in cases {
            let got = CapPolicy::from_flags(&strings(add), &strings(drop), privileged)
                .unwrap_or_else(|e| panic!("{add:?} {drop:?}: {e}"));
            assert_eq!(
                got.keep, want,
                "add {add:?} drop {drop:?} privileged {privileged}"
            );
        }
    }

    #[test]
    fn rejects_unknown_flags_even_when_privileged() {
        for (add, drop) in [(&["NOPE"][..], &[][..]), (&[], &["CAP_NOPE"])] {
            let err = CapPolicy::from_flags(&strings(add), &strings(drop), true).unwrap_err();
            assert!(matches!(err, CapError::Unknown { .. }), "{err}");
        }
    }

    #[test]
    fn names_are_sorted_by_number() {
        let p = CapPolicy {
            keep: set(&[CAP_KILL, CAP_CHOWN, CAP_SYS_ADMIN]),
        };
        assert_eq!(p.names(), ["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"]);
    }
}
