//! The container user: `uid[:gid]` or `name[:group]`, looked up in the
//! container's own /etc/passwd and /etc/group (after pivot_root).

use super::SetupError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: Option<String>,
}

/// One `/etc/passwd` entry: name, uid, gid, home.
fn passwd_entries(text: &str) -> impl Iterator<Item = (&str, u32, u32, &str)> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6).then(|| Some((f[0], f[2].parse().ok()?, f[3].parse().ok()?, f[5])))?
    })
}

/// One `/etc/group` entry: name, gid, members.
fn group_entries(text: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4).then(|| {
            Some((
                f[0],
                f[2].parse().ok()?,
                f[3].split(',').filter(|m| !m.is_empty()).collect(),
            ))
        })?
    })
}

/// Resolves `spec` against the texts of passwd and group (pure, for tests).
pub fn resolve_user(spec: &str, passwd: &str, group: &str) -> Result<User, SetupError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let entry = passwd_entries(passwd).find(|(name, uid, ..)| *name == u || u.parse() == Ok(*uid));
    let (uid, primary, home, name) = match (u.parse::<u32>(), entry) {
        (_, Some((name, uid, gid, home))) => (uid, gid, Some(home.to_string()), Some(name)),
        (Ok(uid), None) => (uid, 0, None, None),
        (Err(_), None) => {
            return Err(SetupError::UnknownUser(u.to_string()));
        }
    };
    let gid = match g {
        None => primary,
        Some(g) => match (
            g.parse::<u32>(),
            group_entries(group).find(|(n, ..)| *n == g),
        ) {
            (Ok(gid), _) => gid,
            (Err(_), Some((_, gid, _))) => gid,
            (Err(_), None) => {
                return Err(SetupError::UnknownGroup(g.to_string()));
            }
        },
    };
    let mut groups = vec![gid];
    if let Some(name) = name {
        groups.extend(
            group_entries(group)
                .filter(|(_, gid, members)| members.contains(&name) && !groups.contains(gid))
                .map(|(_, gid, _)| gid)
                .collect::<Vec<_>>(),
        );
    }
    groups.dedup();
    Ok(User {
        uid,
        gid,
        groups,
        home,
    })
}

/// Reads the container's files; missing files are empty.
/// A numeric `UID[:GID]` (or the default, root) needs no names, so a file
/// den refuses to read is then taken as empty; a name needs both files.
pub fn lookup(spec: &str) -> Result<User, SetupError> {
    let numeric = spec
        .split(':')
        .all(|part| part.is_empty() || part.parse::<u32>().is_ok());
    let read = |path| match read_account_file(path) {
        Err(_) if numeric => Ok(String::new()),
        other => other,
    };
    resolve_user(spec, &read("/etc/passwd")?, &read("/etc/group")?)
}

/// The largest /etc/passwd or /etc/group den reads from an image.
const ACCOUNT_FILE_MAX: u64 = 4 << 20;

/// Reads one of the image's account files (after pivot_root, so `/` is the
/// container's root): it must be a regular file reached without following a
/// symlink, and at most [`ACCOUNT_FILE_MAX`] bytes. The image is hostile: a
/// link to `/dev/zero` or a fifo must fail at once, not read forever.
fn read_account_file(path: &str) -> Result<String, SetupError> {
    use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags};
    use std::io::Read;
    let refuse = |why: &str| SetupError::AccountFile {
        path: path.to_string(),
        why: why.to_string(),
    };
    let root = rfs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| refuse(&format!("cannot be opened ({e})")))?;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let fd = match rfs::openat2(&root, path, flags, Mode::empty(), resolve) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(String::new()),
        Err(rustix::io::Errno::LOOP) => return Err(refuse("is a symlink or lies under one")),
        Err(e) => return Err(refuse(&format!("cannot be opened ({e})"))),
    };
    let stat = rfs::fstat(&fd).map_err(|e| refuse(&format!("cannot be read ({e})")))?;
    if rfs::FileType::from_raw_mode(stat.st_mode) != rfs::FileType::RegularFile {
        return Err(refuse("is not a regular file"));
    }
    let mut text = Vec::new();
    std::fs::File::from(fd)
        .take(ACCOUNT_FILE_MAX + 1)
        .read_to_end(&mut text)
        .map_err(|e| refuse(&format!("cannot be read ({e})")))?;
    if text.len() as u64 > ACCOUNT_FILE_MAX {
        return Err(refuse("is larger than 4 MiB"));
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nmysql:x:999:999::/nonexistent:/bin/false\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\nshadow:x:42:\nmysql:x:999:\nstaff:x:50:mysql\n";

    #[test]
    fn resolves_like_docker() {
        let cases = [
            ("", (0, 0, vec![0])),
            ("root", (0, 0, vec![0])),
            ("mysql", (999, 999, vec![999, 50])),
            ("999", (999, 999, vec![999, 50])),
            ("1234", (1234, 0, vec![0])),
            ("1234:5678", (1234, 5678, vec![5678])),
            ("mysql:shadow", (999, 42, vec![42, 50])),
        ];
        for (spec, (uid, gid, groups)) in cases {
            let u = resolve_user(spec, PASSWD, GROUP).unwrap();
            assert_eq!((u.uid, u.gid, u.groups), (uid, gid, groups), "{spec}");
        }
        assert!(resolve_user("nobody", PASSWD, GROUP).is_err());
        assert!(resolve_user("mysql:nogroup", PASSWD, GROUP).is_err());
    }
}
