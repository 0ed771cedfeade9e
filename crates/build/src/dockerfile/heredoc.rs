//! Here-documents, found before `parse-dockerfile` sees the text.
//!
//! `parse-dockerfile` 0.1.9 knows a `RUN` here-document only when it is the
//! first and only word (`RUN <<EOF`), and it does not give the delimiter
//! names that `COPY <<name /dest` needs as file names. So den finds them
//! itself: for each `RUN`, `COPY` and `ADD` (also after `ONBUILD`) whose
//! logical line has words starting with `<<NAME` or `<<-NAME` (the name may
//! be quoted, which turns expansion off), the following lines up to a line
//! equal to `NAME` are the bodies, in order. The text handed to the parser
//! is the same text with those bodies blanked (each byte a space, newlines
//! kept) and each `<<` marker replaced by `xx`, so every byte offset and
//! line number stays the same and the parser sees plain words. The model
//! reads words back from the original text at the parser's spans.

use std::collections::BTreeMap;

use super::{Heredoc, Problem};

/// The text for the parser, and the here-documents of each instruction,
/// keyed by the byte offset of the instruction's first line.
#[derive(Debug)]
pub(crate) struct Prepass {
    pub masked: String,
    pub heredocs: BTreeMap<usize, Vec<Heredoc>>,
}

/// One `<<NAME` in an instruction's line.
#[derive(Debug, PartialEq)]
struct Marker {
    /// Byte offset of `<<` in the text.
    at: usize,
    name: String,
    strip_tabs: bool,
    expand: bool,
}

/// Physical lines with their byte offsets.
fn lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        out.push((at, line));
        at += line.len();
    }
    out
}

fn is_comment_or_blank(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

fn continues(line: &str, escape: char) -> bool {
    line.trim_end().ends_with(escape)
}

/// Finds here-documents; see the module doc.
pub(crate) fn prepass(text: &str, escape: char) -> Result<Prepass, Problem> {
    let lines = lines(text);
    let mut masked = text.as_bytes().to_vec();
    let mut heredocs = BTreeMap::new();
    let mut i = 0;
    while i < lines.len() {
        if is_comment_or_blank(lines[i].1) {
            i += 1;
            continue;
        }
        let first = i;
        let mut markers = Vec::new();
        let takes_heredocs = takes_heredocs(lines[i].1);
        loop {
            let (at, line) = lines[i];
            if takes_heredocs && !(i > first && is_comment_or_blank(line)) {
                markers.extend(find_markers(line, at));
            }
            i += 1;
            let last_continues =
                continues(line, escape) || (i > first + 1 && is_comment_or_blank(line));
            if !last_continues || i >= lines.len() {
                break;
            }
        }
        if markers.is_empty() {
            continue;
        }
        let mut docs = Vec::new();
        for m in &markers {
            masked[m.at] = b'x';
            masked[m.at + 1] = b'x';
            let (doc, next) = body(&lines, i, m).ok_or_else(|| {
                Problem::error(
                    first + 1,
                    format!(
                        "expected the end of here-document {}, but the file ended",
                        m.name
                    ),
                )
            })?;
            for (at, line) in &lines[i..next] {
                let end = at + line.trim_end_matches('\n').len();
                masked[*at..end].fill(b' ');
            }
            i = next;
            docs.push(doc);
        }
        heredocs.insert(lines[first].0, docs);
    }
    let masked = String::from_utf8(masked).unwrap_or_else(|_| text.to_owned());
    Ok(Prepass { masked, heredocs })
}

/// Whether this instruction line is RUN, COPY or ADD (possibly after ONBUILD).
fn takes_heredocs(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let mut word = words.next().unwrap_or_default().to_ascii_uppercase();
    if word == "ONBUILD" {
        word = words.next().unwrap_or_default().to_ascii_uppercase();
    }
    matches!(word.as_str(), "RUN" | "COPY" | "ADD")
}

/// The body starting at line `start`, and the index of the line after its
/// terminator.
fn body(lines: &[(usize, &str)], start: usize, m: &Marker) -> Option<(Heredoc, usize)> {
    let mut content = String::new();
    for (k, (_, line)) in lines.iter().enumerate().skip(start) {
        let mut l = line.trim_end_matches('\n').trim_end_matches('\r');
        if m.strip_tabs {
            l = l.trim_start_matches('\t');
        }
        if l == m.name {
            let doc = Heredoc {
                name: m.name.clone(),
                content,
                expand: m.expand,
            };
            return Some((doc, k + 1));
        }
        content.push_str(l);
        content.push('\n');
    }
    None
}

/// `<<NAME` words of one physical line, outside quotes.
fn find_markers(line: &str, offset: usize) -> Vec<Marker> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut quote: Option<u8> = None;
    let mut word_start = true;
    let mut k = 0;
    while k < b.len() {
        let c = b[k];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            k += 1;
            continue;
        }
        let at_word =
            word_start || (k > 0 && b[k - 1].is_ascii_digit() && digits_from_word_start(b, k));
        let is_marker =
            c == b'<' && at_word && b.get(k + 1) == Some(&b'<') && b.get(k + 2) != Some(&b'<');
        if is_marker && let Some((m, end)) = marker_at(line, k) {
            out.push(Marker {
                at: offset + k,
                ..m
            });
            k = end;
            word_start = false;
            continue;
        }
        if c == b'"' || c == b'\'' {
            quote = Some(c);
        }
        word_start = c.is_ascii_whitespace();
        k += 1;
    }
    out
}

/// Whether b[..k] ends with a word made only of digits (`2<<EOF`).
fn digits_from_word_start(b: &[u8], k: usize) -> bool {
    let start = b[..k]
        .iter()
        .rposition(|c| c.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    b[start..k].iter().all(u8::is_ascii_digit)
}

/// Parses `<<[-]WORD` at `k`; returns the marker and the offset after it.
fn marker_at(line: &str, k: usize) -> Option<(Marker, usize)> {
    let rest = &line[k + 2..];
    let strip_tabs = rest.starts_with('-');
    let rest = if strip_tabs { &rest[1..] } else { rest };
    let len = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    let word = &rest[..len];
    let name: String = word.chars().filter(|c| *c != '"' && *c != '\'').collect();
    if name.is_empty() {
        return None;
    }
    let marker = Marker {
        at: k,
        name,
        strip_tabs,
        expand: !word.contains(['"', '\'']),
    };
    Some((marker, k + 2 + usize::from(strip_tabs) + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_in_lines() {
        let names = |line: &str| -> Vec<(String, bool, bool)> {
            find_markers(line, 0)
                .into_iter()
                .map(|m| (m.name, m.strip_tabs, m.expand))
                .collect()
        };
        let t = |s: &str, strip: bool, expand: bool| (s.to_owned(), strip, expand);
        assert_eq!(names("RUN <<EOF"), [t("EOF", false, true)]);
        assert_eq!(names("RUN python3 <<EOF > /out"), [t("EOF", false, true)]);
        assert_eq!(
            names("RUN cat <<A <<-'B'"),
            [t("A", false, true), t("B", true, false)]
        );
        assert_eq!(names("COPY <<\"x y\" /d"), [t("x", false, false)]);
        assert_eq!(names("RUN 3<<EOF cat"), [t("EOF", false, true)]);
        assert!(names("RUN echo \"a <<b\"").is_empty());
        assert!(names("RUN echo a<<b").is_empty());
        assert!(names("RUN cat <<<word").is_empty());
        assert!(names("RUN echo <<").is_empty());
    }

    #[test]
    fn bodies_are_blanked_and_offsets_kept() {
        let text = "FROM a\nRUN cat <<A <<-B \\\n  && echo\nline a\nA\n\tline b\n\tB\nRUN x\n";
        let p = prepass(text, '\\').unwrap();
        assert_eq!(p.masked.len(), text.len());
        assert_eq!(
            p.masked,
            "FROM a\nRUN cat xxA xx-B \\\n  && echo\n      \n \n       \n  \nRUN x\n"
        );
        let docs = &p.heredocs[&7];
        assert_eq!(docs[0].content, "line a\n");
        assert_eq!(docs[1].content, "line b\n");
        assert_eq!(docs[1].name, "B");
    }

    #[test]
    fn unterminated_body() {
        let e = prepass("FROM a\nRUN <<EOF\necho\n", '\\').unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(
            e.message,
            "expected the end of here-document EOF, but the file ended"
        );
    }
}
