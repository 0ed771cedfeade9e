//! Image references with Docker's normalisation rules, on top of
//! `oci_spec::distribution::Reference`.

use std::fmt;

use oci_spec::distribution::Reference;

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

impl ImageRef {
    pub fn parse(input: &str) -> Result<Self, RefError> {
        let r = Reference::try_from(input).map_err(|e| RefError {
            input: input.into(),
            reason: e.to_string(),
        })?;
        let registry = match r.registry() {
            "index.docker.io" => "docker.io".to_string(),
            other => other.to_string(),
        };
        Ok(Self {
            registry,
            repository: r.repository().to_string(),
            tag: r.tag().map(Into::into),
            digest: r.digest().map(Into::into),
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
                "busybox@sha256:da2f542ab6b1b15bd63bd6db53f372e722b9db62acc161aa7010467931a820ba",
                "docker.io/library/busybox@sha256:da2f542ab6b1b15bd63bd6db53f372e722b9db62acc161aa7010467931a820ba",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(ImageRef::parse(input).unwrap().to_string(), want, "{input}");
        }
        let by_digest = ImageRef::parse(cases[6].0).unwrap();
        assert_eq!(by_digest.tagged_name(), None);
        assert!(by_digest.manifest_reference().starts_with("sha256:"));
    }

    #[test]
    fn rejects_bad_references() {
        for bad in ["", "UPPER", "a b", "x@sha256:123", ":tag"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
