//! Which host ids a container's ids map to.
//!
//! Two modes, chosen by [`IdMapping::detect`]:
//!
//! - **Subordinate** (the normal rootless set-up): container uid 0 is the user,
//!   container uids `1..N` are the first `N-1` ids of the user's range in
//!   `/etc/subuid` (same for gids and `/etc/subgid`), with `N = min(65536,
//!   count)`. Writing such a map needs the setuid helpers `newuidmap` and
//!   `newgidmap` (Debian package `uidmap`).
//! - **Single**: only the user's own uid and gid are mapped (to 0). Works with
//!   nothing installed; `chown` to any other id fails with `EINVAL` (a
//!   container turns such calls into no-ops: see `crate::seccomp::single_id`).
//! - **Keep-id** (`--userns=keep-id`, derived from a subordinate mapping with
//!   [`IdMapping::keep_id`]): the user's uid `U` is `U` inside too; container
//!   ids `0..U` and `U+1..N` take the subordinate range in order, as podman
//!   does. The same for the gid.
//!
//! [`IdMapping::uid_map`] and [`IdMapping::gid_map`] give every mode as
//! `inside outside count` lines, the form of `/proc/PID/uid_map` and of
//! `newuidmap`'s arguments.
//!
//! The environment variable `DEN_USERNS=single` forces single-id mode even when
//! subordinate ids are configured; `DEN_USERNS=auto` (or unset) detects.
//!
//! The parsers here are pure (`&str` in, value out); [`IdMapping::detect`] is
//! the thin wrapper that reads the files and the environment.

use std::ffi::OsStr;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, User};

/// Name of the environment variable that selects the mapping mode.
pub const USERNS_ENV: &str = "DEN_USERNS";

/// The largest number of container ids den maps (uids 0..=65535).
pub const MAX_MAPPED: u32 = 65536;

/// A contiguous range of host ids: `start .. start + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub start: u32,
    pub count: u32,
}

/// Who an `/etc/subuid` line belongs to: shadow-utils accepts a name or a
/// numeric uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Name(String),
    Id(u32),
}

/// One parsed `/etc/subuid` or `/etc/subgid` line: `owner:start:count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubIdEntry {
    pub owner: Owner,
    pub range: IdRange,
}

/// Why a subordinate-id line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubIdParseError {
    #[error("expected `owner:start:count`")]
    Fields,
    #[error("owner is empty")]
    EmptyOwner,
    #[error("`{0}` is not a number from 0 to 4294967295")]
    Number(String),
    #[error("the range is empty (count 0)")]
    EmptyRange,
    #[error("start + count overflows 32 bits")]
    Overflow,
}

/// Parse one line of `/etc/subuid` or `/etc/subgid`. Blank lines and `#`
/// comments give `Ok(None)`.
pub fn parse_subid_line(line: &str) -> Result<Option<SubIdEntry>, SubIdParseError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut fields = line.split(':');
    let (Some(owner), Some(start), Some(count), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(SubIdParseError::Fields);
    };
    let owner = match owner.trim() {
        "" => return Err(SubIdParseError::EmptyOwner),
        o if o.bytes().all(|b| b.is_ascii_digit()) => Owner::Id(parse_u32(o)?),
        o => Owner::Name(o.to_owned()),
    };
    let range = IdRange {
        start: parse_u32(start)?,
        count: parse_u32(count)?,
    };
    if range.count == 0 {
        return Err(SubIdParseError::EmptyRange);
    }
    if range.start.checked_add(range.count - 1).is_none() {
        return Err(SubIdParseError::Overflow);
    }
    Ok(Some(SubIdEntry { owner, range }))
}

fn parse_u32(s: &str) -> Result<u32, SubIdParseError> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SubIdParseError::Number(s.to_owned()));
    }
    s.parse().map_err(|_| SubIdParseError::Number(s.to_owned()))
}

/// The first range in `contents` (a whole `/etc/subuid` or `/etc/subgid`)
/// owned by the user `name` or by the numeric `uid`. Malformed lines are
/// skipped, as shadow-utils does.
pub fn find_subid_range(contents: &str, name: Option<&str>, uid: u32) -> Option<IdRange> {
    contents
        .lines()
        .filter_map(|line| parse_subid_line(line).ok().flatten())
        .find(|entry| match &entry.owner {
            Owner::Name(n) => Some(n.as_str()) == name,
            Owner::Id(id) => *id == uid,
        })
        .map(|entry| entry.range)
}

/// The first id at or above 100000 past every range in the given
/// `/etc/subuid`/`/etc/subgid` contents: where a new user's range can start
/// without overlapping anyone's.
pub fn next_free_subid_start(files: &[&str]) -> u64 {
    files
        .iter()
        .flat_map(|contents| contents.lines())
        .filter_map(|line| parse_subid_line(line).ok().flatten())
        .map(|entry| u64::from(entry.range.start) + u64::from(entry.range.count))
        .fold(100_000, u64::max)
}

/// The mapping mode requested through `DEN_USERNS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsernsMode {
    /// Subordinate ids when available, else single.
    Auto,
    /// Always single-id mode.
    Single,
}

impl UsernsMode {
    /// Parse the value of `DEN_USERNS`; unset, empty and unknown values mean
    /// `Auto`.
    pub fn parse(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("single") => UsernsMode::Single,
            _ => UsernsMode::Auto,
        }
    }

    pub fn from_env() -> Self {
        Self::parse(std::env::var(USERNS_ENV).ok().as_deref())
    }
}

/// How container ids map to host ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMapping {
    /// Container 0 → `uid`/`gid`; container `1..N` → `sub_*.start ..`.
    Subordinate {
        uid: u32,
        gid: u32,
        sub_uid: IdRange,
        sub_gid: IdRange,
    },
    /// Container 0 → `uid`/`gid`; nothing else is mapped.
    Single { uid: u32, gid: u32 },
    /// `--userns=keep-id`: container `uid`/`gid` → the same host ids; the
    /// other container ids `0..N` → `sub_*.start ..`, in order.
    KeepId {
        uid: u32,
        gid: u32,
        sub_uid: IdRange,
        sub_gid: IdRange,
    },
}

/// One line of a uid or gid map: container ids `inside .. inside + count`
/// are host ids `outside .. outside + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// Why `--userns=keep-id` cannot be used: the user has no usable
/// subordinate ids.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "--userns=keep-id needs subordinate ids, which den cannot use here ({reason}): {fix}, or run without --userns=keep-id"
)]
pub struct KeepIdError {
    /// Why single-id mode is in use.
    pub reason: String,
    /// What to do about it.
    pub fix: String,
}

impl KeepIdError {
    /// Works out why `uid` is in single-id mode, in the order
    /// [`IdMapping::detect`] checks, and the fix.
    fn explain(uid: u32) -> KeepIdError {
        let (reason, fix) = if UsernsMode::from_env() == UsernsMode::Single {
            (
                format!("{USERNS_ENV}=single is set"),
                format!("unset {USERNS_ENV}"),
            )
        } else if let Err(e) =
            subordinate_ranges(uid, Path::new("/etc/subuid"), Path::new("/etc/subgid"))
        {
            let files = ["/etc/subuid", "/etc/subgid"]
                .map(|f| fs_err::read_to_string(f).unwrap_or_default());
            let start = next_free_subid_start(&[&files[0], &files[1]]);
            let range = format!("{start}-{}", start + u64::from(MAX_MAPPED) - 1);
            let user = User::from_uid(Uid::from_raw(uid))
                .ok()
                .flatten()
                .map_or_else(|| uid.to_string(), |u| u.name);
            (
                e.to_string(),
                format!(
                    "as root, run `usermod --add-subuids {range} --add-subgids {range} {user}`"
                ),
            )
        } else {
            let tools = ["newuidmap", "newgidmap"].map(find_id_tool);
            let reason = tools
                .into_iter()
                .find_map(Result::err)
                .map_or_else(|| "single-id mode".to_owned(), |e| e.to_string());
            (reason, "install the uidmap package".to_owned())
        };
        KeepIdError { reason, fix }
    }
}

impl IdMapping {
    /// The mapping for the current user: subordinate when `/etc/subuid` and
    /// `/etc/subgid` have ranges for this user and setuid `newuidmap` and
    /// `newgidmap` are installed, single otherwise (or when
    /// `DEN_USERNS=single`).
    pub fn detect() -> IdMapping {
        Self::detect_explained().0
    }

    /// Like [`detect`](Self::detect), also saying why single-id mode was
    /// chosen (`None` in subordinate mode).
    pub fn detect_explained() -> (IdMapping, Option<String>) {
        let uid = Uid::current().as_raw();
        let gid = Gid::current().as_raw();
        let single = IdMapping::Single { uid, gid };
        if UsernsMode::from_env() == UsernsMode::Single {
            return (single, Some(format!("{USERNS_ENV}=single is set")));
        }
        let ranges = subordinate_ranges(uid, Path::new("/etc/subuid"), Path::new("/etc/subgid"));
        let (sub_uid, sub_gid) = match ranges {
            Ok(r) => r,
            Err(e) => return (single, Some(e.to_string())),
        };
        for tool in ["newuidmap", "newgidmap"] {
            if let Err(e) = find_id_tool(tool) {
                return (single, Some(e.to_string()));
            }
        }
        (
            IdMapping::Subordinate {
                uid,
                gid,
                sub_uid,
                sub_gid,
            },
            None,
        )
    }

    /// The keep-id mapping built on this one's subordinate ranges; single-id
    /// mode has none to offer (the error says why, and what to do).
    pub fn keep_id(&self) -> Result<IdMapping, KeepIdError> {
        match *self {
            IdMapping::Subordinate {
                uid,
                gid,
                sub_uid,
                sub_gid,
            }
            | IdMapping::KeepId {
                uid,
                gid,
                sub_uid,
                sub_gid,
            } => Ok(IdMapping::KeepId {
                uid,
                gid,
                sub_uid,
                sub_gid,
            }),
            IdMapping::Single { uid, .. } => Err(KeepIdError::explain(uid)),
        }
    }

    /// The uid map, as written to `/proc/PID/uid_map`.
    pub fn uid_map(&self) -> Vec<MapRange> {
        match *self {
            IdMapping::Subordinate { uid, sub_uid, .. } => root_is_own(uid, sub_uid),
            IdMapping::Single { uid, .. } => only(uid),
            IdMapping::KeepId { uid, sub_uid, .. } => keep_own(uid, sub_uid),
        }
    }

    /// The gid map, as written to `/proc/PID/gid_map`.
    pub fn gid_map(&self) -> Vec<MapRange> {
        match *self {
            IdMapping::Subordinate { gid, sub_gid, .. } => root_is_own(gid, sub_gid),
            IdMapping::Single { gid, .. } => only(gid),
            IdMapping::KeepId { gid, sub_gid, .. } => keep_own(gid, sub_gid),
        }
    }

    /// The host uid that `container_uid` maps to, if it is mapped.
    pub fn map_uid_to_host(&self, container_uid: u32) -> Option<u32> {
        to_host(&self.uid_map(), container_uid)
    }

    /// The host gid that `container_gid` maps to, if it is mapped.
    pub fn map_gid_to_host(&self, container_gid: u32) -> Option<u32> {
        to_host(&self.gid_map(), container_gid)
    }

    /// How many container ids from 0 on are mapped, as uids and as gids:
    /// `N` in the module doc (less in keep-id mode when the user's id is `N`
    /// or more and so lies outside `0..N`).
    pub fn mapped_count(&self) -> u32 {
        contiguous(&self.uid_map()).min(contiguous(&self.gid_map()))
    }
}

/// `N = min(65536, count)`: container ids `0..N` are mapped.
pub(crate) fn mapped_len(range: IdRange) -> u32 {
    range.count.min(MAX_MAPPED)
}

/// Container 0 is `own`, nothing else is mapped.
fn only(own: u32) -> Vec<MapRange> {
    vec![MapRange {
        inside: 0,
        outside: own,
        count: 1,
    }]
}

/// Container 0 is `own`; `1..N` are the first `N-1` ids of `sub`.
fn root_is_own(own: u32, sub: IdRange) -> Vec<MapRange> {
    let mut map = only(own);
    let rest = mapped_len(sub) - 1;
    if rest > 0 {
        map.push(MapRange {
            inside: 1,
            outside: sub.start,
            count: rest,
        });
    }
    map
}

/// Container `own` is `own`; the other ids of `0..N` take the same `N-1`
/// subordinate ids as [`root_is_own`], in order (an `own` of `N` or more is
/// mapped on its own, above them).
fn keep_own(own: u32, sub: IdRange) -> Vec<MapRange> {
    let rest = mapped_len(sub) - 1;
    let below = own.min(rest);
    let lines = [
        (0, sub.start, below),
        (own, own, 1),
        (own.saturating_add(1), sub.start + below, rest - below),
    ];
    lines
        .into_iter()
        .filter(|&(_, _, count)| count > 0)
        .map(|(inside, outside, count)| MapRange {
            inside,
            outside,
            count,
        })
        .collect()
}

fn to_host(map: &[MapRange], container: u32) -> Option<u32> {
    map.iter()
        .find(|r| container >= r.inside && container - r.inside < r.count)
        .map(|r| r.outside + (container - r.inside))
}

/// How many ids from 0 on `map` covers without a gap.
fn contiguous(map: &[MapRange]) -> u32 {
    let mut ranges = map.to_vec();
    ranges.sort_by_key(|r| r.inside);
    let mut next = 0u32;
    for r in ranges {
        if r.inside != next {
            break;
        }
        next = r.inside.saturating_add(r.count);
    }
    next
}

/// Why the user has no usable subordinate ids.
#[derive(Debug, thiserror::Error)]
pub enum SubIdError {
    #[error("no entry for {user} in {}", file.display())]
    NoEntry { user: String, file: PathBuf },
    #[error("cannot read {}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The user's first subordinate uid and gid ranges, matched by user name (from
/// the passwd database) and by numeric uid.
pub fn subordinate_ranges(
    uid: u32,
    subuid: &Path,
    subgid: &Path,
) -> Result<(IdRange, IdRange), SubIdError> {
    let name = User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name);
    let user = name.clone().unwrap_or_else(|| format!("uid {uid}"));
    let lookup = |file: &Path| -> Result<IdRange, SubIdError> {
        let contents = match fs_err::read_to_string(file) {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(SubIdError::Read {
                    file: file.to_owned(),
                    source,
                });
            }
        };
        find_subid_range(&contents, name.as_deref(), uid).ok_or_else(|| SubIdError::NoEntry {
            user: user.clone(),
            file: file.to_owned(),
        })
    };
    Ok((lookup(subuid)?, lookup(subgid)?))
}

/// Why `newuidmap`/`newgidmap` cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IdToolError {
    #[error(
        "{tool} not found on PATH or in /usr/bin: install the uidmap package, or set DEN_USERNS=single"
    )]
    NotFound { tool: &'static str },
    #[error("{} is not setuid root, so it cannot map subordinate ids: run `chmod u+s {0}` as root (or reinstall the uidmap package), or set DEN_USERNS=single", path.display())]
    NotSetuid { path: PathBuf },
}

/// Find the setuid helper `tool` (`newuidmap` or `newgidmap`) on `PATH`, then
/// in `/usr/bin`, and check that it is owned by root with the setuid bit.
pub fn find_id_tool(tool: &'static str) -> Result<PathBuf, IdToolError> {
    let path_var = std::env::var_os("PATH");
    let path = find_in_path(tool, path_var.as_deref(), Path::new("/usr/bin"))
        .ok_or(IdToolError::NotFound { tool })?;
    let meta = fs_err::metadata(&path).map_err(|_| IdToolError::NotFound { tool })?;
    if meta.uid() != 0 || meta.mode() & 0o4000 == 0 {
        return Err(IdToolError::NotSetuid { path });
    }
    Ok(path)
}

/// The first regular file called `name` in the directories of `path_var`, then
/// in `fallback`.
fn find_in_path(name: &str, path_var: Option<&OsStr>, fallback: &Path) -> Option<PathBuf> {
    let dirs = path_var.map(std::env::split_paths).into_iter().flatten();
    dirs.chain(std::iter::once(fallback.to_owned()))
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(owner: Owner, start: u32, count: u32) -> Option<SubIdEntry> {
        Some(SubIdEntry {
            owner,
            range: IdRange { start, count },
        })
    }

    #[test]
    fn parse_lines() {
        use SubIdParseError as E;
        let name = |n: &str| Owner::Name(n.to_owned());
        let cases: &[(&str, Result<Option<SubIdEntry>, SubIdParseError>)] = &[
            (
                "alice:100000:65536",
                Ok(entry(name("alice"), 100000, 65536)),
            ),
            (
                "  alice:100000:65536  ",
                Ok(entry(name("alice"), 100000, 65536)),
            ),
            ("1000:200000:1000", Ok(entry(Owner::Id(1000), 200000, 1000))),
            ("_apt-x.y:1:1", Ok(entry(name("_apt-x.y"), 1, 1))),
            ("", Ok(None)),
            ("   ", Ok(None)),
            ("# alice:1:2", Ok(None)),
            ("alice:100000", Err(E::Fields)),
            ("alice:1:2:3", Err(E::Fields)),
            ("alice", Err(E::Fields)),
            (":1:2", Err(E::EmptyOwner)),
            ("alice:x:2", Err(E::Number("x".into()))),
            ("alice:-1:2", Err(E::Number("-1".into()))),
            ("alice:1:", Err(E::Number("".into()))),
            ("alice:1:4294967296", Err(E::Number("4294967296".into()))),
            ("alice:1:0", Err(E::EmptyRange)),
            ("alice:4294967295:1", Ok(entry(name("alice"), u32::MAX, 1))),
            ("alice:4294967295:2", Err(E::Overflow)),
            ("99999999999:1:2", Err(E::Number("99999999999".into()))),
        ];
        for (line, want) in cases {
            assert_eq!(&parse_subid_line(line), want, "line {line:?}");
        }
    }

    #[test]
    fn find_ranges() {
        let file = "# comment\nbob:100000:65536\nbroken line\nalice:165536:65536\n1000:300000:10\nalice:400000:5\n";
        // (user name, uid, expected (start, count))
        type Case<'a> = (Option<&'a str>, u32, Option<(u32, u32)>);
        let cases: &[Case] = &[
            (Some("alice"), 1001, Some((165536, 65536))),
            (Some("bob"), 1002, Some((100000, 65536))),
            (Some("carol"), 1000, Some((300000, 10))),
            (None, 1000, Some((300000, 10))),
            (Some("carol"), 1003, None),
            (None, 1003, None),
            (Some("ali"), 1004, None),
        ];
        for &(name, uid, want) in cases {
            let got = find_subid_range(file, name, uid).map(|r| (r.start, r.count));
            assert_eq!(got, want, "name {name:?} uid {uid}");
        }
    }

    #[test]
    fn free_start() {
        let cases: &[(&[&str], u64)] = &[
            (&[], 100000),
            (&["", "# x:1:2"], 100000),
            (&["a:1000:10"], 100000),
            (
                &["a:100000:65536\nb:165536:65536", "a:100000:65536"],
                231072,
            ),
            (&["a:100000:65536", "b:300000:5\nbad"], 300005),
        ];
        for &(files, want) in cases {
            assert_eq!(next_free_subid_start(files), want, "{files:?}");
        }
    }

    #[test]
    fn userns_mode() {
        let cases = [
            (None, UsernsMode::Auto),
            (Some(""), UsernsMode::Auto),
            (Some("auto"), UsernsMode::Auto),
            (Some("single"), UsernsMode::Single),
            (Some(" SINGLE "), UsernsMode::Single),
            (Some("bogus"), UsernsMode::Auto),
        ];
        for (value, want) in cases {
            assert_eq!(UsernsMode::parse(value), want, "{value:?}");
        }
    }

    #[test]
    fn map_to_host() {
        let sub = IdMapping::Subordinate {
            uid: 1000,
            gid: 1001,
            sub_uid: IdRange {
                start: 100000,
                count: 65536,
            },
            sub_gid: IdRange {
                start: 200000,
                count: 10,
            },
        };
        let single = IdMapping::Single {
            uid: 1000,
            gid: 1001,
        };
        let cases: &[(&IdMapping, u32, Option<u32>, Option<u32>)] = &[
            (&sub, 0, Some(1000), Some(1001)),
            (&sub, 1, Some(100000), Some(200000)),
            (&sub, 9, Some(100008), Some(200008)),
            (&sub, 10, Some(100009), None),
            (&sub, 999, Some(100998), None),
            (&sub, 65535, Some(165534), None),
            (&sub, 65536, None, None),
            (&single, 0, Some(1000), Some(1001)),
            (&single, 1, None, None),
        ];
        for &(map, id, uid, gid) in cases {
            assert_eq!(map.map_uid_to_host(id), uid, "uid {id} in {map:?}");
            assert_eq!(map.map_gid_to_host(id), gid, "gid {id} in {map:?}");
        }
        assert_eq!(sub.mapped_count(), 10);
        assert_eq!(single.mapped_count(), 1);
        let keep = sub.keep_id().unwrap();
        let cases: &[(u32, Option<u32>, Option<u32>)] = &[
            (0, Some(100000), Some(200000)),
            (8, Some(100008), Some(200008)),
            (9, Some(100009), None),
            (999, Some(100999), None),
            (1000, Some(1000), None),
            (1001, Some(101000), Some(1001)),
            (1002, Some(101001), None),
            (65535, Some(165534), None),
            (65536, None, None),
        ];
        for &(id, uid, gid) in cases {
            assert_eq!(keep.map_uid_to_host(id), uid, "uid {id} in {keep:?}");
            assert_eq!(keep.map_gid_to_host(id), gid, "gid {id} in {keep:?}");
        }
        assert_eq!(keep.mapped_count(), 9);
        assert_eq!(keep.keep_id().unwrap(), keep);
        assert!(single.keep_id().is_err());
        let big = IdRange {
            start: 1,
            count: 1 << 20,
        };
        assert_eq!(mapped_len(big), 65536);
    }

    #[test]
    fn map_lines() {
        let range = |start, count| IdRange { start, count };
        let line = |m: &[MapRange]| {
            m.iter()
                .map(|r| format!("{} {} {}", r.inside, r.outside, r.count))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let keep = |own, sub| line(&keep_own(own, sub));
        assert_eq!(
            line(&root_is_own(1000, range(100000, 65536))),
            "0 1000 1, 1 100000 65535"
        );
        assert_eq!(line(&root_is_own(1000, range(5, 1))), "0 1000 1");
        assert_eq!(
            keep(1000, range(100000, 65536)),
            "0 100000 1000, 1000 1000 1, 1001 101000 64535"
        );
        assert_eq!(
            keep(1000, range(100000, 1 << 20)),
            "0 100000 1000, 1000 1000 1, 1001 101000 64535"
        );
        assert_eq!(keep(0, range(100000, 65536)), "0 0 1, 1 100000 65535");
        assert_eq!(
            keep(65535, range(100000, 65536)),
            "0 100000 65535, 65535 65535 1"
        );
        assert_eq!(keep(70000, range(5, 10)), "0 5 9, 70000 70000 1");
        assert_eq!(keep(1000, range(5, 1)), "1000 1000 1");
        assert_eq!(contiguous(&keep_own(70000, range(5, 10))), 9);
        assert_eq!(contiguous(&keep_own(1000, range(5, 1))), 0);
        assert_eq!(contiguous(&keep_own(3, range(5, 10))), 10);
    }

    #[test]
    fn path_search() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        fs_err::create_dir(&bin).unwrap();
        fs_err::write(bin.join("tool"), "").unwrap();
        fs_err::create_dir(bin.join("adir")).unwrap();
        let fallback = dir.path().join("fallback");
        fs_err::create_dir(&fallback).unwrap();
        fs_err::write(fallback.join("other"), "").unwrap();
        let path_var = std::env::join_paths([Path::new("relative"), &bin]).unwrap();
        let find = |name| find_in_path(name, Some(&path_var), &fallback);
        assert_eq!(find("tool"), Some(bin.join("tool")));
        assert_eq!(find("other"), Some(fallback.join("other")));
        assert_eq!(find("adir"), None);
        assert_eq!(find("missing"), None);
        assert_eq!(
            find_in_path("other", None, &fallback),
            Some(fallback.join("other"))
        );
    }
}
