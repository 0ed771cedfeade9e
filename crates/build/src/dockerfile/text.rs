//! Positions and raw text: byte offset → line, logical lines.

/// Maps byte offsets to 1-based line numbers.
pub(crate) struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { starts }
    }

    /// Byte offset where 1-based `line` starts.
    pub fn start(&self, line: usize) -> usize {
        self.starts[line.saturating_sub(1).min(self.starts.len() - 1)]
    }

    /// The 1-based line holding byte `pos`.
    pub fn line(&self, pos: usize) -> usize {
        self.starts.partition_point(|&s| s <= pos)
    }
}

/// The logical line starting at byte `start`: up to the first line that
/// does not end in the escape character (comment and blank lines inside
/// continue it).
pub(crate) fn logical_line(text: &str, start: usize, escape: char) -> &str {
    let mut end = start;
    let mut first = true;
    for line in text[start..].split_inclusive('\n') {
        let t = line.trim();
        let inside = !first && (t.is_empty() || t.starts_with('#'));
        end += line.len();
        if !inside && !t.ends_with(escape) {
            break;
        }
        first = false;
    }
    &text[start..end]
}

/// Joins continuation lines the way the Dockerfile parser does: an escape
/// character at the end of a line (with trailing blanks) is removed with
/// its newline, and comment or empty lines inside the instruction vanish.
pub(crate) fn join_continuations(raw: &str, escape: char) -> String {
    let mut out = String::with_capacity(raw.len());
    for (i, line) in raw.split('\n').enumerate() {
        let t = line.trim_start();
        if i > 0 && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        let trimmed = line.trim_end_matches([' ', '\t', '\r']);
        match trimmed.strip_suffix(escape) {
            Some(rest) => out.push_str(rest),
            None => out.push_str(line.trim_end_matches('\r')),
        }
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers() {
        let l = Lines::new("a\nbc\n\nd");
        assert_eq!([0, 1, 2, 4, 5, 6].map(|p| l.line(p)), [1, 1, 2, 2, 3, 4]);
    }

    #[test]
    fn continuations() {
        assert_eq!(join_continuations("echo \\\n  two", '\\'), "echo   two");
        assert_eq!(
            join_continuations("a \\\n# comment\n\n  b \\  \n c", '\\'),
            "a   b  c"
        );
        assert_eq!(join_continuations("dir C:\\", '`'), "dir C:\\");
        assert_eq!(join_continuations("a `\n b", '`'), "a  b");
    }
}
