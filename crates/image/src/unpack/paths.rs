//! Pure checks on entry names: what a layer may name, and what a name means.
//!
//! Nothing here touches the filesystem; the results feed the `*at` calls in
//! [`super::beneath`].

/// Why an entry name (or hard link target) is refused.
pub(super) const ABSOLUTE: &str = "absolute path; layer entries must be relative to the layer root";
pub(super) const DOT_DOT: &str = "path escapes the layer (`..` component)";
pub(super) const NUL: &str = "name contains a NUL byte";

/// Normalises a raw entry name into `out` as `a/b/c`: no leading `/`, no `.`
/// or empty components, no trailing `/`. The layer root normalises to an empty
/// name. `out` is cleared first and reused, so a steady stream of entries does
/// not allocate.
///
/// Refuses absolute names, any `..` component and NUL bytes; a leading `./`
/// (what `tar -C dir .` writes) is stripped like any other `.` component.
pub(super) fn normalize(raw: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    out.clear();
    if raw.first() == Some(&b'/') {
        return Err(ABSOLUTE);
    }
    if raw.contains(&0) {
        return Err(NUL);
    }
    for component in raw.split(|b| *b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err(DOT_DOT),
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(component);
            }
        }
    }
    Ok(())
}

/// Splits a normalised name into its parent directory (empty for the layer
/// root) and its final component.
pub(super) fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(slash) => (&path[..slash], &path[slash + 1..]),
        None => (&path[..0], path),
    }
}

/// Number of components in a normalised name (0 for the layer root).
pub(super) fn depth(path: &[u8]) -> usize {
    if path.is_empty() {
        0
    } else {
        1 + path.iter().filter(|b| **b == b'/').count()
    }
}

/// What an OCI whiteout file name asks for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Whiteout<'a> {
    /// Not a whiteout: an ordinary entry.
    None,
    /// `.wh.NAME`: NAME is deleted from the layers below.
    File(&'a [u8]),
    /// `.wh..wh..opq`: the directory hides everything below it.
    Opaque,
    /// Some other `.wh..wh.*` name (aufs bookkeeping such as `.wh..wh.plnk`).
    Meta,
    /// `.wh.`, `.wh..` or `.wh...`: a whiteout that names no file.
    Invalid,
}

/// Classifies the final component of an entry name.
pub(super) fn whiteout(name: &[u8]) -> Whiteout<'_> {
    const PREFIX: &[u8] = b".wh.";
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return Whiteout::None;
    };
    if rest == b".wh..opq" {
        Whiteout::Opaque
    } else if rest.starts_with(PREFIX) {
        Whiteout::Meta
    } else if matches!(rest, b"" | b"." | b"..") {
        Whiteout::Invalid
    } else {
        Whiteout::File(rest)
    }
}

/// An entry name for messages; only built on the error and skip paths.
pub(super) fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_table() {
        type Case<'a> = (&'a [u8], Result<&'a [u8], &'a str>);
        let cases: &[Case] = &[
            (b"a/b/c", Ok(b"a/b/c")),
            (b"./a/b/", Ok(b"a/b")),
            (b"./", Ok(b"")),
            (b".", Ok(b"")),
            (b"a//./b", Ok(b"a/b")),
            (b"/etc/passwd", Err(ABSOLUTE)),
            (b"../x", Err(DOT_DOT)),
            (b"a/../../x", Err(DOT_DOT)),
            (b"a/..", Err(DOT_DOT)),
            (b"a/..b", Ok(b"a/..b")),
            (b"a\0b", Err(NUL)),
        ];
        let mut out = Vec::new();
        for (raw, want) in cases {
            let got = normalize(raw, &mut out).map(|()| out.as_slice());
            assert_eq!(got, *want, "{}", show(raw));
        }
    }

    #[test]
    fn split_and_depth() {
        assert_eq!(split(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split(b"c"), (&b""[..], &b"c"[..]));
        assert_eq!(depth(b""), 0);
        assert_eq!(depth(b"a"), 1);
        assert_eq!(depth(b"a/b/c"), 3);
    }

    #[test]
    fn whiteout_table() {
        assert_eq!(whiteout(b"file"), Whiteout::None);
        assert_eq!(whiteout(b".wh.file"), Whiteout::File(b"file"));
        assert_eq!(whiteout(b".wh..hidden"), Whiteout::File(b".hidden"));
        assert_eq!(whiteout(b".wh..wh..opq"), Whiteout::Opaque);
        assert_eq!(whiteout(b".wh..wh.plnk"), Whiteout::Meta);
        assert_eq!(whiteout(b".wh."), Whiteout::Invalid);
        assert_eq!(whiteout(b".wh.."), Whiteout::Invalid);
        assert_eq!(whiteout(b".wh..."), Whiteout::Invalid);
    }
}
