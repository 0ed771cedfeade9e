//! `den compose config`: the resolved model as YAML, and the `--services`
//! and `--volumes` listings.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::yaml::{Node, Raw};

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.value {
            Raw::Null => s.serialize_unit(),
            Raw::Bool(b) => s.serialize_bool(*b),
            Raw::Int(i) => s.serialize_i64(*i),
            Raw::Float(f) => s.serialize_f64(*f),
            Raw::Str(v) => s.serialize_str(v),
            Raw::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Raw::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// The model as YAML text, keys in their order.
pub fn to_yaml(model: &Node) -> String {
    // Serializing an in-memory tree of strings, numbers, lists and
    // string-keyed mappings cannot fail.
    serde_saphyr::to_string(model).unwrap_or_default()
}

/// The names in a top-level section (`services`, `volumes`, `networks`),
/// in file order, one per line for `config --services` / `--volumes`.
pub fn names(model: &Node, section: &str) -> Vec<String> {
    match model.get(section).map(|n| &n.value) {
        Some(Raw::Map(m)) => m.iter().map(|(k, _)| k.clone()).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    #[test]
    fn round_trips_through_yaml() {
        let text = "name: app\nservices:\n  web:\n    image: py:3\n    ports: [\"8080:80\", 81]\n    tty: true\n    environment: {A: \"1\", B: ~, C: \"yes\"}\n  db:\n    image: m\nvolumes:\n  data: {}\n";
        let model = parse("c.yaml", text).unwrap();
        let out = to_yaml(&model);
        let again = parse("out.yaml", &out).unwrap();
        assert_eq!(to_yaml(&again), out);
        let web = again.get("services").unwrap().get("web").unwrap();
        assert_eq!(
            web.get("environment").unwrap().get("A").unwrap().value,
            Raw::Str("1".into())
        );
        assert_eq!(
            web.get("environment").unwrap().get("C").unwrap().value,
            Raw::Str("yes".into())
        );
        assert_eq!(web.get("tty").unwrap().value, Raw::Bool(true));
        assert!(out.starts_with("name: app\nservices:\n  web:\n"), "{out}");
        assert_eq!(names(&model, "services"), ["web", "db"]);
        assert_eq!(names(&model, "volumes"), ["data"]);
        assert!(names(&model, "networks").is_empty());
    }
}
