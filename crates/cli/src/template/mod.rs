//! Docker's `--format`: `table` (den's default table), `json`, or a Go
//! template (`{{.Names}}`, `table {{.ID}}\t{{.Image}}`) executed on the
//! Docker-named JSON of each row.
//!
//! Hand-written rather than on a crate: see ARCHITECTURE.md ("Go templates")
//! for why `gtmpl` was not used. [`lex`] splits text and actions, [`parse`]
//! builds the tree, [`exec`] runs it on a `serde_json::Value` with Go's
//! rules, [`funcs`] holds Go's and Docker's functions, and [`tabwrite`]
//! aligns a `table` format's cells as Go's `text/tabwriter` does with
//! Docker's settings (minimum width 10, padding 3).
//!
//! Every string in the data has its control characters escaped before the
//! template sees it ([`crate::output::escape_controls`]): text from a
//! container or an image cannot drive the user's terminal through a format.

mod exec;
mod funcs;
mod lex;
mod parse;
mod printf;

use anyhow::Context as _;
use serde_json::Value;

use crate::output::escape_controls;

/// What `--format` asked for.
pub enum Format {
    /// No `--format`, or `--format table`: the command's own table.
    Default,
    /// `--format json`.
    Json,
    Template(GoFormat),
}

impl Format {
    pub fn parse(format: Option<&str>) -> anyhow::Result<Format> {
        Ok(match format {
            None | Some("table") => Format::Default,
            Some("json") => Format::Json,
            Some(text) => Format::Template(GoFormat::parse(text)?),
        })
    }
}

/// A parsed Go template, and whether it had the `table` prefix.
pub struct GoFormat {
    text: String,
    nodes: Vec<parse::Node>,
    table: bool,
}

impl GoFormat {
    pub fn parse(text: &str) -> anyhow::Result<GoFormat> {
        let (body, table) = match text.strip_prefix("table") {
            Some(rest) => (rest, true),
            None => (text, false),
        };
        // Docker's preFormat: trimmed, and a typed `\t` or `\n` means a tab
        // or a newline.
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let nodes = lex::pieces(&body)
            .and_then(parse::parse)
            .with_context(|| format!("invalid --format `{text}`"))?;
        Ok(GoFormat {
            text: text.to_string(),
            nodes,
            table,
        })
    }

    /// The template on one value, without a newline.
    pub fn execute(&self, data: &Value) -> anyhow::Result<String> {
        self.run(&sanitize(data), false)
    }

    fn run(&self, data: &Value, header: bool) -> anyhow::Result<String> {
        exec::Exec::new(data, header)
            .run(&self.nodes)
            .with_context(|| format!("--format `{}`", self.text))
    }

    /// Each row on its own line; with `table`, a header row first (each
    /// field's title from `headers`, else its name in capitals) and the
    /// cells aligned.
    pub fn render(&self, rows: &[Value], headers: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut out = String::new();
        if self.table {
            let mut titles = serde_json::Map::new();
            for (field, title) in headers {
                titles.insert(field.to_string(), Value::from(*title));
            }
            if let Some(Value::Object(first)) = rows.first() {
                for k in first.keys() {
                    titles
                        .entry(k)
                        .or_insert_with(|| Value::from(k.to_uppercase()));
                }
            }
            out.push_str(&self.run(&Value::Object(titles), true)?);
            out.push('\n');
        }
        for row in rows {
            out.push_str(&self.execute(row)?);
            out.push('\n');
        }
        Ok(if self.table { tabwrite(&out) } else { out })
    }
}

/// `inspect`'s output: the JSON array (no `--format`, or `json`), or the
/// template on each object, each on its own line (`docker inspect -f`).
pub fn print_inspect(objects: &[Value], format: Option<&str>) -> anyhow::Result<()> {
    match Format::parse(format)? {
        Format::Default | Format::Json => {
            println!("{}", serde_json::to_string_pretty(objects)?)
        }
        Format::Template(t) => {
            for o in objects {
                println!("{}", t.execute(o)?);
            }
        }
    }
    Ok(())
}

/// `v` with every string (and key) passed through [`escape_controls`].
fn sanitize(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::from(escape_controls(s)),
        Value::Array(a) => Value::Array(a.iter().map(sanitize).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (escape_controls(k), sanitize(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Go's `text/tabwriter` as Docker sets it up (minwidth 10, tabwidth 1,
/// padding 3, spaces): a tab ends a cell; the cells of one column, over a
/// run of consecutive lines that have it, are as wide as the widest plus
/// three, and at least ten. The text after a line's last tab is not padded.
pub fn tabwrite(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let cells = |l: &Vec<&str>| l.len() - 1;
    let mut widths: Vec<Vec<usize>> = lines.iter().map(|l| vec![0; cells(l)]).collect();
    let most = lines.iter().map(cells).max().unwrap_or(0);
    for col in 0..most {
        let mut start = 0;
        while start < lines.len() {
            if cells(&lines[start]) <= col {
                start += 1;
                continue;
            }
            let end = (start..lines.len())
                .find(|&i| cells(&lines[i]) <= col)
                .unwrap_or(lines.len());
            let w = (start..end)
                .map(|i| lines[i][col].chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(10);
            (start..end).for_each(|i| widths[i][col] = w);
            start = end;
        }
    }
    let out: Vec<String> = lines
        .iter()
        .zip(&widths)
        .map(|(l, w)| {
            let mut s = String::new();
            for (cell, width) in l.iter().zip(w) {
                s.push_str(cell);
                s.push_str(&" ".repeat(width - cell.chars().count()));
            }
            s.push_str(l[l.len() - 1]);
            s
        })
        .collect();
    out.join("\n")
}

#[cfg(test)]
mod tests;
