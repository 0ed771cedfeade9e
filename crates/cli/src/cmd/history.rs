//! `den history IMAGE`: the config's history entries, newest first, each
//! with the size of the layer it made (Docker's columns).

use den_image::store::Store;

use crate::args::HistoryArgs;
use crate::context::Context;
use crate::output::{ago, human_size, table};
use crate::template::Format;

pub fn run(ctx: &Context, a: &HistoryArgs) -> anyhow::Result<i32> {
    let store = ctx.store()?;
    let images = store.images()?;
    let image = crate::local_images::resolve(&store, &images, &a.image)?;
    let config: serde_json::Value = serde_json::from_slice(&store.read_blob(&image.id)?)?;
    let rows = rows(&store, &image.layers, &config, a.no_trunc);
    if a.quiet {
        println!("{}", short(&image.id.to_string(), a.no_trunc));
        return Ok(0);
    }
    match Format::parse(a.format.as_deref())? {
        Format::Default => print!(
            "{}",
            table(
                &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
                &rows
            )
        ),
        Format::Json => objects(&rows).iter().for_each(|o| println!("{o}")),
        Format::Template(t) => print!("{}", t.render(&objects(&rows), &FIELDS)?),
    }
    Ok(0)
}

/// `docker history --format`'s fields (in the table's column order) and
/// their titles.
const FIELDS: [(&str, &str); 5] = [
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

fn objects(rows: &[Vec<String>]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|r| {
            let fields = FIELDS
                .iter()
                .zip(r)
                .map(|((k, _), v)| (k.to_string(), serde_json::Value::from(v.as_str())));
            serde_json::Value::Object(fields.collect())
        })
        .collect()
}

fn short(id: &str, no_trunc: bool) -> String {
    let hex = id.trim_start_matches("sha256:");
    if no_trunc {
        id.to_owned()
    } else {
        hex[..12.min(hex.len())].to_owned()
    }
}

/// One row per history entry, newest first; entries that made a layer get
/// that layer's size, in order.
fn rows(
    store: &Store,
    layers: &[den_image::store::LayerRecord],
    config: &serde_json::Value,
    no_trunc: bool,
) -> Vec<Vec<String>> {
    let now = chrono::Utc::now();
    let mut layer = layers.iter();
    let mut out = Vec::new();
    let history = config["history"].as_array().cloned().unwrap_or_default();
    for h in &history {
        let empty = h["empty_layer"].as_bool().unwrap_or(false);
        let size = if empty {
            0
        } else {
            layer
                .next()
                .and_then(|l| store.layer_info(&l.diff_id).ok())
                .map_or(0, |i| i.size)
        };
        let by = h["created_by"].as_str().unwrap_or("").replace('\n', " ");
        let by = if no_trunc || by.chars().count() <= 45 {
            by
        } else {
            format!("{}…", by.chars().take(44).collect::<String>())
        };
        out.push(vec![
            "<missing>".to_owned(),
            h["created"]
                .as_str()
                .map(|c| ago(c, now))
                .unwrap_or_default(),
            by,
            human_size(size),
            h["comment"].as_str().unwrap_or("").to_owned(),
        ]);
    }
    out.reverse();
    out
}
