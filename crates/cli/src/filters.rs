//! `--filter KEY=VALUE` of `ps`, `images`, `volume ls` and `network ls`,
//! with Docker's semantics: the values given for one key are alternatives
//! (`--filter status=exited --filter status=created` lists both), different
//! keys must all hold, and `label` is the exception: every label filter
//! must match (Docker's `MatchKVList`).

use std::collections::BTreeMap;

use anyhow::bail;

/// Filters checked against the keys a command knows.
#[derive(Debug, Default)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parses `KEY=VALUE`s; `what` names the command in errors.
    pub fn parse(given: &[String], known: &[&str], what: &str) -> anyhow::Result<Self> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in given {
            let Some((k, v)) = f.split_once('=') else {
                bail!(
                    "invalid --filter `{f}`: write KEY=VALUE ({what} knows {})",
                    known.join(", ")
                );
            };
            if !known.contains(&k) {
                bail!(
                    "unsupported filter `{k}` for {what}: use {}",
                    known.join(", ")
                );
            }
            map.entry(k.to_string()).or_default().push(v.to_string());
        }
        Ok(Self(map))
    }

    /// The values given for `key` (empty when none).
    pub fn values(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// True when `key` was not given, or `pred` holds for one of its values.
    pub fn any(&self, key: &str, pred: impl Fn(&str) -> bool) -> bool {
        self.0.get(key).is_none_or(|vs| vs.iter().any(|v| pred(v)))
    }

    /// Every `label=` filter matches `labels`.
    pub fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        self.values("label")
            .iter()
            .all(|f| label_matches(labels, f))
    }

    /// A `true`/`false` filter's values, checked.
    pub fn bool_values(&self, key: &str) -> anyhow::Result<Vec<bool>> {
        self.values(key)
            .iter()
            .map(|v| match v.as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => bail!("invalid --filter `{key}={v}`: use true or false"),
            })
            .collect()
    }
}

/// `KEY` (any value) or `KEY=VALUE`.
pub fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(filter),
    }
}

/// Docker's `reference=` pattern: shell globs (`*`, `?`) where `*` does
/// not cross `/`, matched against the whole name.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len())
                .take_while(|&i| i == 0 || t[i - 1] != '/')
                .any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => t.first().is_some_and(|c| *c != '/') && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().take(256).collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(given: &[&str]) -> Filters {
        let given: Vec<String> = given.iter().map(|s| s.to_string()).collect();
        Filters::parse(&given, &["name", "label", "dangling"], "test").unwrap()
    }

    #[test]
    fn same_key_is_or_labels_are_and() {
        let x = f(&["name=a", "name=b", "label=k", "label=j=1"]);
        assert!(x.any("name", |v| v == "b"));
        assert!(!x.any("name", |v| v == "c"));
        assert!(x.any("other", |_| false));
        let mut labels = BTreeMap::from([("k".to_string(), "x".to_string())]);
        assert!(!x.labels_match(&labels));
        labels.insert("j".into(), "1".into());
        assert!(x.labels_match(&labels));
    }

    #[test]
    fn bad_filters_are_named() {
        let e = Filters::parse(&["color=red".into()], &["name"], "volume ls").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported filter `color` for volume ls: use name"
        );
        let e = Filters::parse(&["name".into()], &["name"], "volume ls").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid --filter `name`: write KEY=VALUE (volume ls knows name)"
        );
        assert!(f(&["dangling=maybe"]).bool_values("dangling").is_err());
    }

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("busybox", "busybox", true),
            ("busy*", "busybox", true),
            ("*box:latest", "busybox:latest", true),
            ("*", "library/busybox", false),
            ("*/*", "library/busybox", true),
            ("b?sybox", "busybox", true),
            ("busybox", "busybox2", false),
        ] {
            assert_eq!(glob(p, t), want, "{p} {t}");
        }
    }
}
