//! `ADD` of a local tar archive: its entries re-written into the step's
//! layer beneath the destination, as Docker extracts it.
//!
//! The archive is the user's file but its names are data: each is cleaned
//! (leading `/` and `.` dropped) and refused when a `..` would climb out of
//! the destination or a component starts with `.wh.` (an OCI whiteout,
//! which would delete files of the layers below). Hard links must name an
//! entry beneath the destination too; symlinks are written as they are,
//! as any layer's are (the store unpacks layers without following them).
//! Devices are skipped (an unprivileged build cannot make them).

use std::io::{self, Read};
use std::path::Path;

use crate::layer::{LayerError, LayerWriter, io_err};

/// How an archive is compressed, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A plain tar.
    Tar,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
    /// bzip2 (recognised, not decompressed).
    Bzip2,
    /// xz (recognised, not decompressed).
    Xz,
}

/// What `head` (the first 512 bytes or fewer) says the file is, if an
/// archive. Compressed formats are known by their magic numbers alone, as
/// Docker knows them; a plain tar by its `ustar` magic.
pub fn sniff(head: &[u8]) -> Option<Format> {
    match head {
        [0x1f, 0x8b, ..] => Some(Format::Gzip),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Format::Zstd),
        [b'B', b'Z', b'h', ..] => Some(Format::Bzip2),
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Some(Format::Xz),
        _ if head.len() >= 262 && &head[257..262] == b"ustar" => Some(Format::Tar),
        _ => None,
    }
}

/// The format of the file at `path`, if it is an archive.
pub fn format_of(path: &Path) -> io::Result<Option<Format>> {
    let mut head = Vec::with_capacity(512);
    std::fs::File::open(path)?
        .take(512)
        .read_to_end(&mut head)?;
    Ok(sniff(&head))
}

/// `name` (an archive entry) cleaned, relative; `None` for the archive's
/// root (`./`); `Err` when it climbs out or names a whiteout.
pub fn clean_name(name: &str) -> Result<Option<String>, &'static str> {
    let mut parts: Vec<&str> = Vec::new();
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("leads out of the destination");
                }
            }
            p if p.starts_with(".wh.") => return Err("is an OCI whiteout name"),
            p => parts.push(p),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

fn join(dest: &str, rel: &str) -> String {
    if dest.is_empty() {
        rel.to_owned()
    } else {
        format!("{dest}/{rel}")
    }
}

impl LayerWriter {
    /// Extracts the archive at `src` (format `f`) beneath `dest` (relative
    /// in the image); `chown` replaces the entries' owners.
    pub fn append_archive(
        &mut self,
        src: &Path,
        f: Format,
        dest: &str,
        chown: Option<(u32, u32)>,
    ) -> Result<(), LayerError> {
        let file = std::fs::File::open(src).map_err(io_err("open", src))?;
        let reader: Box<dyn Read> = match f {
            Format::Tar => Box::new(file),
            Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
            Format::Zstd => Box::new(zstd::Decoder::new(file).map_err(io_err("read", src))?),
            Format::Bzip2 | Format::Xz => {
                return Err(LayerError::Archive {
                    archive: src.to_path_buf(),
                    entry: String::new(),
                    why: "cannot be decompressed by den (bzip2 and xz are not supported): recompress it with gzip or zstd",
                });
            }
        };
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(io_err("read", src))? {
            let entry = entry.map_err(io_err("read", src))?;
            self.archive_entry(src, dest, chown, entry)?;
        }
        Ok(())
    }

    fn archive_entry<R: Read>(
        &mut self,
        src: &Path,
        dest: &str,
        chown: Option<(u32, u32)>,
        mut entry: tar::Entry<'_, R>,
    ) -> Result<(), LayerError> {
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let bad = |why| LayerError::Archive {
            archive: src.to_path_buf(),
            entry: name.clone(),
            why,
        };
        let Some(rel) = clean_name(&name).map_err(bad)? else {
            return Ok(());
        };
        let path = join(dest, &rel);
        let old = entry.header();
        let mut h = tar::Header::new_gnu();
        let (uid, gid) = chown.unwrap_or((
            old.uid().map_err(io_err("read", src))? as u32,
            old.gid().map_err(io_err("read", src))? as u32,
        ));
        h.set_uid(uid.into());
        h.set_gid(gid.into());
        h.set_mode(old.mode().map_err(io_err("read", src))? & 0o7777);
        h.set_mtime(self.time(old.mtime().unwrap_or(0)));
        let kind = old.entry_type();
        h.set_entry_type(kind);
        h.set_size(0);
        let w = &self.path;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(entry.size());
                self.tar
                    .append_data(&mut h, &path, &mut entry)
                    .map_err(io_err("write", w))
            }
            tar::EntryType::Directory => self
                .tar
                .append_data(&mut h, format!("{path}/"), io::empty())
                .map_err(io_err("write", w)),
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                self.tar
                    .append_link(&mut h, &path, &target)
                    .map_err(io_err("write", w))
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let Some(target) = clean_name(&target).map_err(bad)? else {
                    return Err(bad("is a hard link to the destination itself"));
                };
                self.tar
                    .append_link(&mut h, &path, join(dest, &target))
                    .map_err(io_err("write", w))
            }
            tar::EntryType::Fifo => self
                .tar
                .append_data(&mut h, &path, io::empty())
                .map_err(io_err("write", w)),
            // Devices, and GNU/PAX metadata the reader has applied.
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_escapes_refused() {
        for (name, want) in [
            ("a/b", Ok(Some("a/b"))),
            ("./a//b/", Ok(Some("a/b"))),
            ("/etc/passwd", Ok(Some("etc/passwd"))),
            ("./", Ok(None)),
            ("a/../b", Ok(Some("b"))),
            ("../x", Err("leads out of the destination")),
            ("a/../../x", Err("leads out of the destination")),
            ("a/.wh.b", Err("is an OCI whiteout name")),
            (".wh..wh..opq", Err("is an OCI whiteout name")),
        ] {
            assert_eq!(
                clean_name(name),
                want.map(|o| o.map(str::to_owned)),
                "{name}"
            );
        }
    }

    #[test]
    fn formats_by_magic() {
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&tar), Some(Format::Tar));
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Some(Format::Gzip));
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Some(Format::Zstd));
        assert_eq!(sniff(b"BZh91AY"), Some(Format::Bzip2));
        assert_eq!(sniff(b"\xfd7zXZ\x00\x00"), Some(Format::Xz));
        assert_eq!(sniff(b"hello"), None);
        assert_eq!(sniff(&[0u8; 512]), None);
    }
}
