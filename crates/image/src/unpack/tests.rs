//! Table-driven tests: tar streams built in memory, unpacked into a temporary
//! directory next to an `outside` directory that no entry may touch.

use std::fs;
use std::io::{Cursor, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::*;

/// One tar entry to write. Names and link targets go into the header bytes
/// directly, because `tar::Builder` refuses `..` and absolute names.
enum E {
    File(String, Vec<u8>, u32),
    Dir(String, u32, u64),
    Symlink(String, String),
    Link(String, String),
    Fifo(String),
    CharDev(String),
    /// PAX `SCHILY.xattr.NAME=VALUE` for the file that follows.
    Xattr(String, Vec<u8>),
    /// A file written with `Builder::append_data` (GNU long name if needed).
    LongFile(String, Vec<u8>),
}

fn file(name: &str, data: &str) -> E {
    E::File(name.into(), data.into(), 0o644)
}
fn dir(name: &str) -> E {
    E::Dir(name.into(), 0o755, MTIME)
}
fn symlink(name: &str, target: &str) -> E {
    E::Symlink(name.into(), target.into())
}
fn link(name: &str, target: &str) -> E {
    E::Link(name.into(), target.into())
}

const MTIME: u64 = 1_600_000_000;

fn header(name: &str, link: &str, kind: EntryType, size: u64, mode: u32) -> Header {
    let mut h = Header::new_gnu();
    let gnu = h.as_gnu_mut().expect("gnu header");
    gnu.name[..name.len()].copy_from_slice(name.as_bytes());
    gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    // Our own ids, so the tests pass as root and as an ordinary user.
    h.set_uid(rustix::process::geteuid().as_raw().into());
    h.set_gid(rustix::process::getegid().as_raw().into());
    h.set_mtime(MTIME);
    h.set_cksum();
    h
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let r = match e {
            E::File(n, data, mode) => b.append(
                &header(n, "", EntryType::Regular, data.len() as u64, *mode),
                &data[..],
            ),
            E::Dir(n, mode, mtime) => {
                let mut h = header(n, "", EntryType::Directory, 0, *mode);
                h.set_mtime(*mtime);
                h.set_cksum();
                b.append(&h, io::empty())
            }
            E::Symlink(n, t) => b.append(&header(n, t, EntryType::Symlink, 0, 0o777), io::empty()),
            E::Link(n, t) => b.append(&header(n, t, EntryType::Link, 0, 0o644), io::empty()),
            E::Fifo(n) => b.append(&header(n, "", EntryType::Fifo, 0, 0o640), io::empty()),
            E::CharDev(n) => {
                let mut h = header(n, "", EntryType::Char, 0, 0o666);
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
                h.set_cksum();
                b.append(&h, io::empty())
            }
            E::Xattr(n, value) => {
                let body = format!("SCHILY.xattr.{n}=");
                let mut record = body.into_bytes();
                record.extend_from_slice(value);
                record.push(b'\n');
                // The length prefix counts itself and the space after it.
                let mut len = record.len() + 2;
                while format!("{len} ").len() + record.len() != len {
                    len += 1;
                }
                let mut pax = format!("{len} ").into_bytes();
                pax.extend_from_slice(&record);
                let h = header("PaxHeader", "", EntryType::XHeader, pax.len() as u64, 0o644);
                b.append(&h, &pax[..])
            }
            E::LongFile(n, data) => {
                let mut h = header("", "", EntryType::Regular, data.len() as u64, 0o644);
                b.append_data(&mut h, n, &data[..])
            }
        };
        r.expect("build test layer");
    }
    b.into_inner().expect("finish test layer")
}

/// A temporary directory holding `dest` (unpacked into) and `outside`
/// (holding one file, `keep`, that must survive every layer).
struct Fixture {
    _tmp: tempfile::TempDir,
    top: PathBuf,
    dest: PathBuf,
    outside: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let top = tmp.path().to_path_buf();
    let dest = top.join("dest");
    let outside = top.join("outside");
    fs::create_dir(&dest).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("keep"), "keep").unwrap();
    Fixture {
        _tmp: tmp,
        top,
        dest,
        outside,
    }
}

impl Fixture {
    fn unpack(&self, entries: &[E]) -> Result<UnpackReport, UnpackError> {
        let opts = UnpackOptions {
            ignore_chown_errors: false,
        };
        unpack_layer(Cursor::new(layer(entries)), &self.dest, &opts)
    }

    /// Nothing outside `dest` changed: the top holds only `dest` and
    /// `outside`, and `outside` only the untouched `keep`.
    fn assert_outside_untouched(&self) {
        let mut top: Vec<_> = fs::read_dir(&self.top)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        top.sort();
        assert_eq!(top, ["dest", "outside"]);
        let names: Vec<_> = fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["keep"]);
        let keep = self.outside.join("keep");
        let meta = fs::symlink_metadata(&keep).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.nlink(), 1, "a hard link to `keep` was made");
        assert_eq!(fs::read_to_string(&keep).unwrap(), "keep");
        assert_eq!(
            rfs::getxattr(&self.outside, OPAQUE_XATTR, &mut [0u8; 8]).ok(),
            None
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dest.join(name)
    }
}

/// Which refusal an error must be.
#[derive(Debug, Clone, Copy)]
enum Want {
    Path(&'static str),
    Symlink,
    LinkTarget(&'static str),
}

fn check(err: &UnpackError, want: Want) -> bool {
    match (err, want) {
        (UnpackError::UnsafePath { reason, .. }, Want::Path(r)) => reason == r,
        (UnpackError::UnsafePath { reason, .. }, Want::Symlink) => reason.contains("is a symlink"),
        (UnpackError::UnsafeLinkTarget { reason, .. }, Want::LinkTarget(r)) => reason.contains(r),
        _ => false,
    }
}

#[test]
fn refused_layers_change_nothing_outside() {
    let f = fixture();
    let out = f.outside.to_str().unwrap().to_owned();
    let keep = format!("{out}/keep");
    let cases: Vec<(&str, Vec<E>, Want)> = vec![
        (
            "dot-dot entry",
            vec![file("../outside/keep", "pwned")],
            Want::Path(paths::DOT_DOT),
        ),
        (
            "dot-dot inside",
            vec![file("a/../../x", "pwned")],
            Want::Path(paths::DOT_DOT),
        ),
        (
            "absolute entry",
            vec![file(&format!("{out}/new"), "pwned")],
            Want::Path(paths::ABSOLUTE),
        ),
        (
            "symlink parent",
            vec![symlink("a", &out), file("a/f", "pwned")],
            Want::Symlink,
        ),
        (
            "symlink to dot-dot",
            vec![symlink("a", ".."), file("a/f", "pwned")],
            Want::Symlink,
        ),
        (
            "symlink deeper in the parent",
            vec![dir("x"), symlink("x/y", &out), file("x/y/z", "pwned")],
            Want::Symlink,
        ),
        (
            "dir below a symlink",
            vec![symlink("a", &out), dir("a/sub")],
            Want::Symlink,
        ),
        (
            "dir replaced by a symlink after use",
            vec![
                dir("a"),
                file("a/f", "ok"),
                symlink("a", &out),
                file("a/g", "pwned"),
            ],
            Want::Symlink,
        ),
        (
            "hard link to dot-dot",
            vec![link("l", "../outside/keep")],
            Want::LinkTarget("`..`"),
        ),
        (
            "hard link to /etc/passwd",
            vec![link("l", "/etc/passwd")],
            Want::LinkTarget("absolute"),
        ),
        (
            "hard link absolute outside",
            vec![link("l", &keep)],
            Want::LinkTarget("absolute"),
        ),
        (
            "hard link through a symlinked dir",
            vec![symlink("d", &out), link("l", "d/keep")],
            Want::LinkTarget("is a symlink"),
        ),
        (
            "whiteout with dot-dot",
            vec![file("../.wh.x", "")],
            Want::Path(paths::DOT_DOT),
        ),
        (
            "whiteout below a symlink",
            vec![symlink("a", &out), file("a/.wh.keep", "")],
            Want::Symlink,
        ),
        (
            "opaque marker below a symlink",
            vec![symlink("a", &out), file("a/.wh..wh..opq", "")],
            Want::Symlink,
        ),
        (
            "whiteout of nothing",
            vec![file(".wh..", "")],
            Want::Path("whiteout that names no file"),
        ),
        (
            "file as the root",
            vec![file(".", "x")],
            Want::Path("only a directory may stand for the layer root"),
        ),
    ];
    for (name, entries, want) in cases {
        let f = fixture();
        match f.unpack(&entries) {
            Ok(report) => panic!("{name}: unpacked, want refusal: {report:?}"),
            Err(err) => assert!(
                check(&err, want),
                "{name}: got `{err}` ({err:?}), want {want:?}"
            ),
        }
        f.assert_outside_untouched();
    }
    f.assert_outside_untouched();
}

#[test]
fn error_message_names_entry_and_reason() {
    let f = fixture();
    let err = f.unpack(&[file("../etc/passwd", "x")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "layer entry `../etc/passwd`: path escapes the layer (`..` component)"
    );
    let err = f
        .unpack(&[symlink("a", "/etc"), file("a/passwd", "x")])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "layer entry `a/passwd`: its parent `a` is a symlink; entries may not be written through symlinks"
    );
}

#[test]
fn normal_tree() {
    let f = fixture();
    let report = f
        .unpack(&[
            E::Dir("./".into(), 0o755, MTIME),
            dir("./d/"),
            file("./d/f", "hello"),
            symlink("d/s", "f"),
            symlink("d/abs", "/etc/passwd"),
            link("d/h", "./d/f"),
            E::Fifo("d/p".into()),
            file("top", "t"),
        ])
        .unwrap();
    assert_eq!(report.entries, 8);
    assert_eq!(report.bytes, 6);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(fs::read_to_string(f.path("d/f")).unwrap(), "hello");
    assert_eq!(fs::metadata(f.path("d/f")).unwrap().nlink(), 2);
    assert_eq!(fs::read_link(f.path("d/s")).unwrap(), Path::new("f"));
    assert_eq!(
        fs::read_link(f.path("d/abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert!(
        fs::symlink_metadata(f.path("d/p"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let meta = fs::metadata(f.path("d/f")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o644);
    assert_eq!(meta.mtime(), MTIME as i64);
    assert_eq!(fs::metadata(f.path("d")).unwrap().mtime(), MTIME as i64);
    assert_eq!(
        fs::symlink_metadata(f.path("d/s")).unwrap().mtime(),
        MTIME as i64
    );
    f.assert_outside_untouched();
}

#[test]
fn setuid_and_setgid_modes_kept() {
    let f = fixture();
    f.unpack(&[
        E::File("su".into(), b"x".to_vec(), 0o4755),
        E::File("wall".into(), b"y".to_vec(), 0o2755),
    ])
    .unwrap();
    assert_eq!(fs::metadata(f.path("su")).unwrap().mode() & 0o7777, 0o4755);
    assert_eq!(
        fs::metadata(f.path("wall")).unwrap().mode() & 0o7777,
        0o2755
    );
}

#[test]
fn read_only_dir_gets_children_and_keeps_mode_and_mtime() {
    let f = fixture();
    f.unpack(&[
        E::Dir("ro".into(), 0o555, 1_000_000),
        file("ro/f", "x"),
        E::Dir("ro/sub".into(), 0o500, 2),
    ])
    .unwrap();
    let ro = fs::metadata(f.path("ro")).unwrap();
    assert_eq!(ro.mode() & 0o7777, 0o555);
    assert_eq!(ro.mtime(), 1_000_000);
    assert_eq!(
        fs::metadata(f.path("ro/sub")).unwrap().mode() & 0o7777,
        0o500
    );
    assert_eq!(fs::read_to_string(f.path("ro/f")).unwrap(), "x");
    // Let the temporary directory be removed by an unprivileged user too.
    fs::set_permissions(f.path("ro"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(f.path("ro/sub"), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn whiteout_is_a_char_device_0_0() {
    let f = fixture();
    match f.unpack(&[dir("d"), file("d/.wh.gone", ""), file(".wh.top", "")]) {
        Ok(_) => {}
        Err(UnpackError::Io { source, .. }) if source.raw_os_error() == Some(libc::EPERM) => {
            eprintln!("mknod of a whiteout is not permitted here; skipping");
            return;
        }
        Err(e) => panic!("{e:?}"),
    }
    for name in ["d/gone", "top"] {
        let meta = fs::symlink_metadata(f.path(name)).unwrap();
        assert!(meta.file_type().is_char_device(), "{name}");
        assert_eq!(meta.rdev(), 0, "{name}");
    }
    assert!(!f.path("d/.wh.gone").exists());
}

#[test]
fn whiteout_of_a_file_from_the_same_layer_keeps_the_file() {
    let f = fixture();
    f.unpack(&[file("f", "mine"), file(".wh.f", "")]).unwrap();
    assert_eq!(fs::read_to_string(f.path("f")).unwrap(), "mine");
}

#[test]
fn opaque_dir_gets_the_xattr() {
    let f = fixture();
    let report = f
        .unpack(&[
            dir("d"),
            file("d/.wh..wh..opq", ""),
            file("d/.wh..wh.plnk", ""),
        ])
        .unwrap();
    let mut value = [0u8; 8];
    let n = rfs::getxattr(f.path("d"), OPAQUE_XATTR, &mut value).unwrap();
    assert_eq!(&value[..n], b"y");
    assert!(!f.path("d/.wh..wh..opq").exists());
    assert_eq!(
        report.skipped,
        ["d/.wh..wh.plnk: aufs metadata entry skipped"]
    );
}

#[test]
fn device_node_skipped() {
    let f = fixture();
    let report = f
        .unpack(&[dir("dev"), E::CharDev("dev/null".into())])
        .unwrap();
    assert!(!f.path("dev/null").exists());
    assert_eq!(report.skipped, ["dev/null: character device node skipped"]);
}

#[test]
fn replacing_paths() {
    let f = fixture();
    f.unpack(&[
        // A file replaced by a directory.
        file("x", "file"),
        dir("x"),
        file("x/y", "in dir"),
        // A directory tree replaced by a file.
        dir("y"),
        dir("y/sub"),
        file("y/sub/a", "a"),
        file("y", "now a file"),
        // A directory kept, with the later entry's mode.
        E::Dir("k".into(), 0o700, MTIME),
        file("k/f", "f"),
        E::Dir("k".into(), 0o750, MTIME),
        // A symlink replaced by a file: written in place, not through it.
        symlink("s", &format!("{}/keep", f.outside.display())),
        file("s", "not through"),
    ])
    .unwrap();
    assert_eq!(fs::read_to_string(f.path("x/y")).unwrap(), "in dir");
    assert_eq!(fs::read_to_string(f.path("y")).unwrap(), "now a file");
    assert_eq!(fs::metadata(f.path("k")).unwrap().mode() & 0o7777, 0o750);
    assert_eq!(fs::read_to_string(f.path("k/f")).unwrap(), "f");
    assert!(
        fs::symlink_metadata(f.path("s"))
            .unwrap()
            .file_type()
            .is_file()
    );
    f.assert_outside_untouched();
}

#[test]
fn pax_xattrs_set_or_noted() {
    let f = fixture();
    let report = f
        .unpack(&[
            E::Xattr("user.demo".into(), b"v".to_vec()),
            file("f", "x"),
            E::Xattr("user.overlay.redirect".into(), b"/x".to_vec()),
            file("g", "x"),
        ])
        .unwrap();
    let mut value = [0u8; 8];
    let n = rfs::getxattr(f.path("f"), "user.demo", &mut value).unwrap();
    assert_eq!(&value[..n], b"v");
    assert!(rfs::getxattr(f.path("g"), "user.overlay.redirect", &mut value).is_err());
    assert_eq!(
        report.skipped,
        ["g: xattr user.overlay.redirect not set (reserved for overlayfs)"]
    );
}

/// As root (or root of a namespace mapping 4242/4243) the ids are set; where
/// they cannot be mapped, chown fails unless `ignore_chown_errors` is set,
/// and then the file keeps the caller's owner, its mode and a note.
#[test]
fn chown_to_numeric_ids() {
    let owned_layer = || {
        let mut h = header("owned", "", EntryType::Regular, 1, 0o4755);
        h.set_uid(4242);
        h.set_gid(4243);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, &b"x"[..]).unwrap();
        b.into_inner().unwrap()
    };
    let f = fixture();
    match unpack_layer(
        Cursor::new(owned_layer()),
        &f.dest,
        &UnpackOptions::default(),
    ) {
        Ok(_) => {
            let meta = fs::metadata(f.path("owned")).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (4242, 4243));
            assert_eq!(meta.mode() & 0o7777, 0o4755, "chmod must come after chown");
        }
        Err(UnpackError::Chown {
            entry,
            uid: 4242,
            gid: 4243,
            source,
        }) => {
            assert_eq!(entry, "owned");
            assert!(matches!(
                source.raw_os_error(),
                Some(libc::EINVAL | libc::EPERM)
            ));
        }
        Err(e) => panic!("{e:?}"),
    }

    let f = fixture();
    let opts = UnpackOptions {
        ignore_chown_errors: true,
    };
    let report = unpack_layer(Cursor::new(owned_layer()), &f.dest, &opts).unwrap();
    let meta = fs::metadata(f.path("owned")).unwrap();
    if meta.uid() != 4242 {
        assert_eq!(meta.uid(), rustix::process::geteuid().as_raw());
        assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    }
    assert_eq!(meta.mode() & 0o7777, 0o4755);
}

#[test]
fn long_names_and_stop_at_the_end_marker() {
    let f = fixture();
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(120));
    let mut stream = layer(&[E::LongFile(long.clone(), b"long".to_vec())]);
    stream.extend_from_slice(b"TRAILER");
    let mut reader = Cursor::new(stream);
    unpack_layer(&mut reader, &f.dest, &UnpackOptions::default()).unwrap();
    assert_eq!(fs::read_to_string(f.path(&long)).unwrap(), "long");
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(
        rest.ends_with(b"TRAILER"),
        "the caller must be able to read the rest"
    );
}

/// A GNU sparse layer: one file of `real` bytes holding `hello` at
/// `real / 2` and holes elsewhere; 2 KiB of tar in all.
fn sparse_layer(real: u64) -> Vec<u8> {
    let mut h = header("sparse", "", EntryType::GNUSparse, 512, 0o644);
    let gnu = h.as_gnu_mut().expect("gnu header");
    gnu.set_real_size(real);
    gnu.sparse[0].set_offset(real / 2);
    gnu.sparse[0].set_length(512);
    gnu.sparse[1].set_offset(real);
    gnu.sparse[1].set_length(0);
    h.set_cksum();
    let mut data = b"hello".to_vec();
    data.resize(512, 0);
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &data[..]).expect("build sparse layer");
    b.into_inner().expect("finish sparse layer")
}

#[test]
fn sparse_entry_is_written_as_holes() {
    let f = fixture();
    let real = 200_000_000;
    let stream = sparse_layer(real);
    assert_eq!(stream.len(), 2048);
    unpack_layer(Cursor::new(stream), &f.dest, &UnpackOptions::default()).unwrap();
    let meta = fs::metadata(f.path("sparse")).unwrap();
    assert_eq!(meta.len(), real);
    // 200 MB written out would be ~390,000 blocks; holes leave a few.
    assert!(meta.blocks() < 2048, "{} blocks allocated", meta.blocks());
    let data = fs::read(f.path("sparse")).unwrap();
    let mid = usize::try_from(real / 2).unwrap();
    assert_eq!(&data[mid..mid + 5], b"hello");
    assert!(data[..mid].iter().all(|b| *b == 0));
}

#[test]
fn sparse_entry_beyond_the_cap_is_refused() {
    let f = fixture();
    let stream = sparse_layer(create::SPARSE_MAX + 512);
    let err = unpack_layer(Cursor::new(stream), &f.dest, &UnpackOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "layer entry `sparse`: sparse file of 8589935104 bytes refused: den unpacks sparse \
         files of at most 8589934592 bytes"
    );
    assert!(!f.path("sparse").exists());
    f.assert_outside_untouched();
}

#[test]
fn pax_time_parsing() {
    let t = |s: &str| parse_pax_time(s.as_bytes()).map(|t| (t.tv_sec, t.tv_nsec));
    assert_eq!(t("12"), Some((12, 0)));
    assert_eq!(t("12.5"), Some((12, 500_000_000)));
    assert_eq!(t("12.1234567891"), Some((12, 123_456_789)));
    assert_eq!(t("-1.5"), Some((-2, 500_000_000)));
    assert_eq!(t("x"), None);
}

/// Unpacks `$DEN_UNPACK_BENCH` (a `.tar.gz` layer) and prints the time; run
/// with `cargo test --release -p den-image unpack::tests::bench -- --ignored
/// --nocapture` and compare with `tar -xzf`.
#[test]
#[ignore = "benchmark; needs DEN_UNPACK_BENCH=layer.tar.gz"]
fn bench() {
    let Ok(layer) = std::env::var("DEN_UNPACK_BENCH") else {
        return;
    };
    let f = fixture();
    let gz = flate2::read::GzDecoder::new(io::BufReader::new(fs::File::open(layer).unwrap()));
    let opts = UnpackOptions {
        ignore_chown_errors: true,
    };
    let start = std::time::Instant::now();
    let report = unpack_layer(gz, &f.dest, &opts).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let mb = report.bytes as f64 / 1e6;
    println!(
        "{} entries, {mb:.0} MB in {secs:.2}s ({:.0} MB/s)",
        report.entries,
        mb / secs
    );
}
