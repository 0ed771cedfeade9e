//! Enters real user namespaces, so it runs without the libtest harness: the
//! harness's threads would make `enter_user_namespace` refuse (and rightly).
//!
//! The parent stays on the host and re-executes this binary as a child that
//! enters the namespace, becomes uid 0, and chowns a file to container uid
//! 999; the parent then checks the owner it sees against `IdMapping`. Run as
//! root it covers single-id mode; run as a user with /etc/subuid ranges (copy
//! the binary somewhere the user can read it) it covers subordinate mode.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use den_sandbox::idmap::{IdMapping, USERNS_ENV};
use den_sandbox::probe::rootless_checks;
use den_sandbox::userns::enter_user_namespace;
use nix::unistd::{Gid, Uid, chown};

const CONTAINER_ID: u32 = 999;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, file] = &args[..]
        && mode == "child"
    {
        std::process::exit(child(Path::new(file)));
    }
    if args.iter().any(|a| a == "--list") {
        println!("userns: test"); // what `cargo test -- --list` expects
        return;
    }
    for forced_single in [false, true] {
        chown_across_the_mapping(forced_single);
    }
    probe_reports_user_namespaces();
    println!("test result: ok. 3 passed");
}

/// In the namespace: report ids, chown the file to CONTAINER_ID if mapped.
/// Exit 0: chowned; 3: chown refused with EINVAL (unmapped id); else failure.
fn child(file: &Path) -> i32 {
    let map = IdMapping::detect();
    if let Err(e) = enter_user_namespace(&map) {
        eprintln!("enter_user_namespace: {e}");
        return 1;
    }
    if !Uid::current().is_root() || Gid::current().as_raw() != 0 {
        eprintln!(
            "not root inside: uid {} gid {}",
            Uid::current(),
            Gid::current()
        );
        return 2;
    }
    let id = Some(CONTAINER_ID);
    match chown(file, id.map(Uid::from_raw), id.map(Gid::from_raw)) {
        Ok(()) => 0,
        Err(nix::Error::EINVAL) => 3,
        Err(e) => {
            eprintln!("chown: {e}");
            4
        }
    }
}

fn chown_across_the_mapping(forced_single: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("f");
    fs_err::write(&file, "x").expect("write");
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.arg("child").arg(&file);
    if forced_single {
        cmd.env(USERNS_ENV, "single");
    }
    let status = cmd.status().expect("spawn child");
    let map = match forced_single {
        true => IdMapping::Single {
            uid: Uid::current().as_raw(),
            gid: Gid::current().as_raw(),
        },
        false => IdMapping::detect(),
    };
    let owner = fs_err::metadata(&file).expect("stat").uid();
    match map.map_uid_to_host(CONTAINER_ID) {
        Some(host) => {
            assert_eq!(status.code(), Some(0), "child in {map:?}");
            assert_eq!(owner, host, "owner on the host in {map:?}");
        }
        None => {
            assert_eq!(
                status.code(),
                Some(3),
                "unmapped chown in {map:?} must give EINVAL"
            );
            assert_eq!(owner, Uid::current().as_raw());
        }
    }
    // The helper child (subordinate mode) must have been reaped: the only
    // children of ours are gone once `status()` returned.
    println!("ok: {map:?}: container uid {CONTAINER_ID} -> host owner {owner}");
}

fn probe_reports_user_namespaces() {
    let checks = rootless_checks();
    for c in &checks {
        println!(
            "{} {}: {}",
            if c.ok { "ok  " } else { "fail" },
            c.name,
            c.detail
        );
    }
    let userns = checks
        .iter()
        .find(|c| c.name == "user namespaces")
        .expect("userns check");
    assert!(userns.ok, "{userns:?}");
    assert!(
        checks.iter().all(|c| c.ok == c.fix.is_none()),
        "a fix exactly when failing"
    );
}
