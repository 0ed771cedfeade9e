//! Image references with Docker's normalisation rules
//! (`python:3.12-slim` is `docker.io/library/python:3.12-slim`).
//!
//! Parsed by hand after Docker's grammar (distribution/reference): the
//! regular expression `oci-spec` compiles costs about 40 ms per process, which
//! every `den run` would pay.

use std::fmt;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub registry: String,
    pub repository: String,
    /// `latest` when neither tag nor digest was given.
    pub tag: Option<String>,
    pub digest: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid image reference `{input}`: {reason} (expected [host[:port]/]name[:tag][@sha256:digest], lowercase)"
)]
pub struct RefError {
    pub input: String,
    pub reason: String,
}

/// `a-z0-9` runs joined by `.`, `_`, `__` or any number of `-`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|x| x.is_ascii_alphanumeric() || x == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|x| x.is_ascii_digit()))
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|x| x.is_ascii_alphanumeric() || b"_.-".contains(x))
}

impl ImageRef {
    pub fn parse(input: &str) -> Result<Self, RefError> {
        let err = |reason: &str| RefError {
            input: input.into(),
            reason: reason.into(),
        };
        if input.is_empty() {
            return Err(err("empty name"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => {
                let hex = d
                    .strip_prefix("sha256:")
                    .ok_or_else(|| err("only sha256 digests are supported"))?;
                if hex.len() != 64
                    || !hex
                        .bytes()
                        .all(|x| x.is_ascii_digit() || (b'a'..=b'f').contains(&x))
                {
                    return Err(err("a sha256 digest has 64 lowercase hex digits"));
                }
                (r, Some(d.to_string()))
            }
            None => (input, None),
        };
        // A tag follows the last `:` that comes after the last `/`.
        let (name, tag) = match rest.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, Some(t)),
            _ => (rest, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(err("invalid tag"));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                if !valid_domain(first) {
                    return Err(err("invalid registry host"));
                }
                let first = if first == "index.docker.io" {
                    "docker.io"
                } else {
                    first
                };
                (first.to_string(), rest.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        if path.bytes().any(|x| x.is_ascii_uppercase()) {
            return Err(err("repository name must be lowercase"));
        }
        if !path.split('/').all(valid_component) {
            return Err(err("invalid repository name"));
        }
        let repository = if registry == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if repository.len() > 255 {
            return Err(err("repository name too long"));
        }
        let tag = tag
            .map(str::to_string)
            .or_else(|| digest.is_none().then(|| "latest".to_string()));
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`.
    pub fn repo_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name an image gets in the store: `registry/repository:tag`, or
    /// `None` for a pull by digest alone.
    pub fn tagged_name(&self) -> Option<String> {
        self.tag
            .as_ref()
            .map(|t| format!("{}:{t}", self.repo_name()))
    }

    /// What to ask the registry for: the digest if given, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repo_name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_normalisation() {
        let cases = [
            ("python:3.12-slim", "docker.io/library/python:3.12-slim"),
            ("busybox", "docker.io/library/busybox:latest"),
            ("user/app", "docker.io/user/app:latest"),
            (
                "index.docker.io/library/debian:12",
                "docker.io/library/debian:12",
            ),
            (
                "127.0.0.1:5000/library/busybox:latest",
                "127.0.0.1:5000/library/busybox:latest",
            ),
            ("localhost/x", "localhost/x:latest"),
            (
                "localhost:5000/a/b-c__d.e:v1.2_3",
                "localhost:5000/a/b-c__d.e:v1.2_3",
            ),
            ("my.registry/a", "my.registry/a:latest"),
            (
                "busybox@sha256:da2f542ab6b1b15bd63bd6db53f372e722b9db62acc161aa7010467931a820ba",
                "docker.io/library/busybox@sha256:da2f542ab6b1b15bd63bd6db53f372e722b9db62acc161aa7010467931a820ba",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(ImageRef::parse(input).unwrap().to_string(), want, "{input}");
        }
        let by_digest =
            ImageRef::parse(cases.iter().find(|c| c.0.contains('@')).unwrap().0).unwrap();
        assert_eq!(by_digest.tagged_name(), None);
        assert!(by_digest.manifest_reference().starts_with("sha256:"));
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "UPPER",
            "a b",
            "x@sha256:123",
            ":tag",
            "a//b",
            "a/",
            "-a",
            "a:b:c",
            "host:port/x",
            "x@md5:abc",
            "a__-b",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
