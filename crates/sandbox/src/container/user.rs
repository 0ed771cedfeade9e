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
            return Err(SetupError::User(format!(
                "unable to find user {u}: no matching entries in /etc/passwd"
            )));
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
                return Err(SetupError::User(format!(
                    "unable to find group {g}: no matching entries in /etc/group"
                )));
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
pub fn lookup(spec: &str) -> Result<User, SetupError> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    resolve_user(spec, &passwd, &group)
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
