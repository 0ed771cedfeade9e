//! The OCI distribution client: manifests and blobs over HTTP(S), with Docker
//! Hub style bearer tokens, basic auth, retries with backoff and resumable,
//! digest-checked blob downloads.
//!
//! Written on `reqwest` rather than `oci-client`: den needs blobs streamed to
//! disk and resumed after a failure, per-request retries, mirrors with their own
//! TLS policy, and pushes of blobs from its store; `oci-client`'s pull buffers
//! whole layers in memory and does not retry.

mod challenge;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Method, Response, StatusCode, header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::auth::{AuthStore, Credentials};
use crate::digest::{Digest, Hasher};
use crate::registries::Endpoint;
use challenge::Challenge;

/// Manifest media types den understands, in the order it prefers them.
pub const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

const ATTEMPTS: u32 = 5;

/// The largest manifest, index or image config den reads: containerd's limit.
pub const MAX_MANIFEST: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach registry {host}: {detail}{hint}")]
    Unreachable {
        host: String,
        detail: String,
        hint: &'static str,
    },
    #[error("unauthorized to {action} {repo} on {host}: log in with `den login {host}`{detail}")]
    Unauthorized {
        host: String,
        repo: String,
        action: &'static str,
        detail: String,
    },
    #[error("{what} not found on {host}: check the image name and tag")]
    NotFound { host: String, what: String },
    #[error("registry {host} answered {status} for {url}: {body}")]
    Http {
        host: String,
        url: String,
        status: StatusCode,
        body: String,
    },
    #[error(
        "{what} from {host} does not match its digest: expected {expected}, got {actual}; the registry or a proxy corrupted it, try again"
    )]
    DigestMismatch {
        host: String,
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "{what} from registry {host} is larger than 4 MiB: refused (den reads manifests and \
         image configs up to 4 MiB, as containerd does)"
    )]
    TooLarge { host: String, what: String },
    #[error(
        "blob {digest} from registry {host} is longer than the {size} bytes its descriptor \
         gives: refused"
    )]
    BlobTooLong {
        host: String,
        digest: Digest,
        size: u64,
    },
    #[error(
        "registry {host} sent an upload location on plain HTTP ({url}) for an HTTPS \
         registry: refused"
    )]
    Downgrade { host: String, url: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    #[error("token service {realm} for {host} failed: {detail}")]
    Token {
        host: String,
        realm: String,
        detail: String,
    },
}

impl RegistryError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A manifest as fetched: its bytes, media type and (verified) digest.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// One repository on one endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Repo<'a> {
    pub endpoint: &'a Endpoint,
    pub name: &'a str,
}

/// The client. Cheap to share behind `&`; tokens are cached per endpoint and scope.
pub struct Client {
    http: reqwest::Client,
    auth: AuthStore,
    /// Credentials given on the command line; they win over the auth files.
    explicit: Option<Credentials>,
    tokens: Mutex<HashMap<(String, String), String>>,
}

impl Client {
    pub fn new(auth: AuthStore, explicit: Option<Credentials>) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("den/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .build()
            .expect("the HTTP client builds with static settings");
        Self {
            http,
            auth,
            explicit,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Fetches a manifest by tag or digest; checks the digest when asked by digest.
    pub async fn get_manifest(
        &self,
        repo: Repo<'_>,
        reference: &str,
    ) -> Result<Fetched, RegistryError> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            repo.endpoint.base_url(),
            repo.name
        );
        let accept = MANIFEST_TYPES.join(", ");
        let resp = self
            .send(repo, "pull", Method::GET, &url, |r| {
                r.header(header::ACCEPT, accept.as_str())
            })
            .await?;
        let resp =
            ok_or_error(resp, repo, || format!("manifest {}:{reference}", repo.name)).await?;
        let media_type = content_type(&resp);
        let what = || match reference.parse::<Digest>() {
            Ok(d) => format!("manifest {}@{d}", repo.name),
            Err(_) => format!("manifest {}:{reference}", repo.name),
        };
        let bytes = read_capped(resp, repo.endpoint, what).await?;
        let digest = Digest::of(&bytes);
        if let Ok(expected) = reference.parse::<Digest>()
            && expected != digest
        {
            return Err(RegistryError::DigestMismatch {
                host: repo.endpoint.host.clone(),
                what: format!("manifest {}", repo.name),
                expected,
                actual: digest,
            });
        }
        Ok(Fetched {
            bytes,
            media_type,
            digest,
        })
    }

    /// Downloads blob `digest` of `size` bytes (its descriptor's) into
    /// `partial`, resuming from what is there, retrying on connection errors
    /// and 5xx, and re-hashing the whole file at the end. A registry that
    /// sends more than `size` bytes is refused at once. On success `partial`
    /// holds exactly the blob (the caller renames it).
    pub async fn fetch_blob(
        &self,
        repo: Repo<'_>,
        digest: &Digest,
        size: u64,
        partial: &Path,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), RegistryError> {
        let mut attempt = 0;
        let blob = (digest, size);
        let actual = loop {
            match self.fetch_blob_once(repo, blob, partial, progress).await {
                Ok(actual) => break actual,
                Err(e @ (RegistryError::Unreachable { .. } | RegistryError::Http { .. }))
                    if attempt + 1 < ATTEMPTS && retryable(&e) =>
                {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        };
        if &actual != digest {
            tokio::fs::remove_file(partial).await.ok();
            return Err(RegistryError::DigestMismatch {
                host: repo.endpoint.host.clone(),
                what: format!("blob of {}", repo.name),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// One download attempt; returns the sha256 of the whole file (a resumed
    /// download re-hashes the part it already had).
    async fn fetch_blob_once(
        &self,
        repo: Repo<'_>,
        (digest, size): (&Digest, u64),
        partial: &Path,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Digest, RegistryError> {
        let have = tokio::fs::metadata(partial)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        let url = format!(
            "{}/v2/{}/blobs/{digest}",
            repo.endpoint.base_url(),
            repo.name
        );
        let range = format!("bytes={have}-");
        let resp = self
            .send(repo, "pull", Method::GET, &url, |r| {
                if have > 0 {
                    r.header(header::RANGE, range.as_str())
                } else {
                    r
                }
            })
            .await?;
        if resp.status() == StatusCode::RANGE_NOT_SATISFIABLE {
            // The partial file is already whole (or longer): its hash decides.
            return Ok(hash_file(partial).await?.finish());
        }
        let resp = ok_or_error(resp, repo, || format!("blob {digest} of {}", repo.name)).await?;
        let resumed = have > 0 && resp.status() == StatusCode::PARTIAL_CONTENT;
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(resumed)
            .truncate(!resumed)
            .open(partial)
            .await
            .map_err(RegistryError::io(partial))?;
        let mut hasher = if resumed {
            hash_file(partial).await?
        } else {
            Hasher::default()
        };
        let mut done = hasher.len();
        progress(done);
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| unreachable(repo.endpoint, &e))?;
            if done + chunk.len() as u64 > size {
                drop(file);
                tokio::fs::remove_file(partial).await.ok();
                return Err(RegistryError::BlobTooLong {
                    host: repo.endpoint.host.clone(),
                    digest: digest.clone(),
                    size,
                });
            }
            file.write_all(&chunk)
                .await
                .map_err(RegistryError::io(partial))?;
            hasher.update(&chunk);
            done += chunk.len() as u64;
            progress(done);
        }
        file.flush().await.map_err(RegistryError::io(partial))?;
        Ok(hasher.finish())
    }

    /// Does the registry have blob `digest` in `repo`?
    pub async fn blob_exists(
        &self,
        repo: Repo<'_>,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let url = format!(
            "{}/v2/{}/blobs/{digest}",
            repo.endpoint.base_url(),
            repo.name
        );
        let resp = self
            .send(repo, "pull,push", Method::HEAD, &url, |r| r)
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => ok_or_error(resp, repo, || format!("blob {digest}"))
                .await
                .map(|_| false),
        }
    }

    /// Uploads the file `path` as blob `digest` (monolithic upload).
    pub async fn push_blob(
        &self,
        repo: Repo<'_>,
        digest: &Digest,
        path: &Path,
    ) -> Result<(), RegistryError> {
        let base = repo.endpoint.base_url();
        let url = format!("{base}/v2/{}/blobs/uploads/", repo.name);
        let resp = self
            .send(repo, "pull,push", Method::POST, &url, |r| {
                r.header(header::CONTENT_LENGTH, 0)
            })
            .await?;
        let resp = ok_or_error(resp, repo, || format!("upload to {}", repo.name)).await?;
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let location = if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put_url = format!("{location}{sep}digest={digest}");
        let len = tokio::fs::metadata(path)
            .await
            .map_err(RegistryError::io(path))?
            .len();
        let file = tokio::fs::File::open(path)
            .await
            .map_err(RegistryError::io(path))?;
        let body = reqwest::Body::from(file);
        let mut body = Some(body);
        let resp = self
            .send(repo, "pull,push", Method::PUT, &put_url, |r| {
                let r = r
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_LENGTH, len);
                match body.take() {
                    Some(b) => r.body(b),
                    None => r,
                }
            })
            .await?;
        ok_or_error(resp, repo, || format!("blob {digest}"))
            .await
            .map(drop)
    }

    /// Uploads a manifest under `reference` (a tag or its digest).
    pub async fn put_manifest(
        &self,
        repo: Repo<'_>,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), RegistryError> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            repo.endpoint.base_url(),
            repo.name
        );
        let resp = self
            .send(repo, "pull,push", Method::PUT, &url, |r| {
                r.header(header::CONTENT_TYPE, media_type)
                    .body(bytes.to_vec())
            })
            .await?;
        ok_or_error(resp, repo, || format!("manifest {reference}"))
            .await
            .map(drop)
    }

    /// Checks that the registry accepts `creds` (for `den login`).
    pub async fn check_login(&self, endpoint: &Endpoint) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", endpoint.base_url());
        let repo = Repo { endpoint, name: "" };
        let resp = self.send(repo, "", Method::GET, &url, |r| r).await?;
        ok_or_error(resp, repo, || "the registry API".into())
            .await
            .map(drop)
    }

    /// Sends one request: cached authorization first, a challenge answered
    /// once on 401, connection errors and 5xx retried with backoff.
    async fn send(
        &self,
        repo: Repo<'_>,
        actions: &str,
        method: Method,
        url: &str,
        mut build: impl FnMut(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let scope = if repo.name.is_empty() {
            String::new()
        } else {
            format!("repository:{}:{actions}", repo.name)
        };
        let key = (repo.endpoint.host.clone(), scope.clone());
        // Credentials and tokens go only to the endpoint's own scheme, host
        // and port: an upload `Location` may name another server.
        let own = same_origin(repo.endpoint, url)?;
        let mut answered = !own;
        let mut attempt = 0;
        loop {
            let mut req = build(self.http.request(method.clone(), url));
            if let Some(auth) = self.tokens.lock().expect("token cache lock").get(&key)
                && own
            {
                req = req.header(header::AUTHORIZATION, auth.as_str());
            }
            let result = req.send().await;
            let retry = match &result {
                Err(e) => !e.is_builder() && !e.is_body() && Failure::of(e).transient(),
                Ok(r) => r.status().is_server_error() && method != Method::PUT,
            };
            if retry && attempt + 1 < ATTEMPTS {
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            let resp = result.map_err(|e| unreachable(repo.endpoint, &e))?;
            if resp.status() != StatusCode::UNAUTHORIZED || answered {
                return Ok(resp);
            }
            let Some(challenge) = resp
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(challenge::parse)
            else {
                return Ok(resp);
            };
            let auth = self.answer(repo, &challenge, &scope).await?;
            self.tokens
                .lock()
                .expect("token cache lock")
                .insert(key.clone(), auth);
            answered = true;
        }
    }

    fn credentials(&self, host: &str) -> Result<Option<Credentials>, RegistryError> {
        match &self.explicit {
            Some(c) => Ok(Some(c.clone())),
            None => Ok(self.auth.get(host)?),
        }
    }

    async fn answer(
        &self,
        repo: Repo<'_>,
        challenge: &Challenge,
        scope: &str,
    ) -> Result<String, RegistryError> {
        let host = &repo.endpoint.host;
        let creds = match self.credentials(host)? {
            None if host == "registry-1.docker.io" => self.credentials("docker.io")?,
            found => found,
        };
        match challenge {
            Challenge::Basic => match creds {
                Some(c) => Ok(c.basic_header()),
                None => Err(RegistryError::Unauthorized {
                    host: host.clone(),
                    repo: repo.name.into(),
                    action: "access",
                    detail: String::new(),
                }),
            },
            Challenge::Bearer {
                realm,
                service,
                scope: asked,
            } => {
                let mut url = reqwest::Url::parse(realm).map_err(|e| RegistryError::Token {
                    host: host.clone(),
                    realm: realm.clone(),
                    detail: e.to_string(),
                })?;
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    let scope = if scope.is_empty() {
                        asked.as_deref().unwrap_or_default()
                    } else {
                        scope
                    };
                    if !scope.is_empty() {
                        q.append_pair("scope", scope);
                    }
                }
                let send_creds = realm_may_get_credentials(repo.endpoint, &url);
                let mut req = self.http.get(url);
                if let Some(c) = creds.as_ref().filter(|_| send_creds) {
                    req = req.header(header::AUTHORIZATION, c.basic_header());
                }
                let token_err = |detail: String| RegistryError::Token {
                    host: host.clone(),
                    realm: realm.clone(),
                    detail,
                };
                let resp = req.send().await.map_err(|e| token_err(e.to_string()))?;
                if resp.status() == StatusCode::UNAUTHORIZED
                    || resp.status() == StatusCode::FORBIDDEN
                {
                    return Err(RegistryError::Unauthorized {
                        host: host.clone(),
                        repo: repo.name.into(),
                        action: "access",
                        detail: ": the token service refused the credentials".into(),
                    });
                }
                if !resp.status().is_success() {
                    return Err(token_err(format!("status {}", resp.status())));
                }
                let body: serde_json::Value =
                    resp.json().await.map_err(|e| token_err(e.to_string()))?;
                let token = body
                    .get("token")
                    .or_else(|| body.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| token_err("answer has no token".into()))?;
                Ok(format!("Bearer {token}"))
            }
        }
    }
}

fn retryable(e: &RegistryError) -> bool {
    match e {
        RegistryError::Unreachable { .. } => true,
        RegistryError::Http { status, .. } => status.is_server_error(),
        _ => false,
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 << attempt.min(6))
}

fn content_type(resp: &Response) -> String {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or(s).trim().to_string())
        .unwrap_or_default()
}

fn unreachable(endpoint: &Endpoint, e: &reqwest::Error) -> RegistryError {
    use std::error::Error as _;
    let mut detail = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        detail = format!("{detail}: {s}");
        source = s.source();
    }
    let hint = Failure::of(e).hint(endpoint);
    RegistryError::Unreachable {
        host: endpoint.host.clone(),
        detail,
        hint,
    }
}

async fn ok_or_error(
    resp: Response,
    repo: Repo<'_>,
    what: impl FnOnce() -> String,
) -> Result<Response, RegistryError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let host = repo.endpoint.host.clone();
    let url = resp.url().to_string();
    let body: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    Err(match status {
        StatusCode::NOT_FOUND => RegistryError::NotFound { host, what: what() },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Unauthorized {
            host,
            repo: repo.name.into(),
            action: "access",
            detail: String::new(),
        },
        _ => RegistryError::Http {
            host,
            url,
            status,
            body: body.trim().to_string(),
        },
    })
}

/// The running sha256 of a whole file.
async fn hash_file(path: &Path) -> Result<Hasher, RegistryError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(RegistryError::io(path))?;
    let mut hasher = Hasher::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).await.map_err(RegistryError::io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher)
}

/// Why a request failed to get an answer, for the hint and the retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The name does not resolve.
    Dns,
    /// The TLS handshake failed (e.g. HTTPS to a plain-HTTP server).
    Tls,
    /// Nothing listens on the port.
    Refused,
    Other,
}

impl Failure {
    fn of(e: &reqwest::Error) -> Self {
        let mut source: Option<&dyn std::error::Error> = Some(e);
        let mut chain = String::new();
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::ConnectionRefused
            {
                return Self::Refused;
            }
            chain.push_str(&s.to_string().to_ascii_lowercase());
            chain.push('\n');
            source = s.source();
        }
        Self::classify(&chain)
    }

    /// Classifies an error chain's text (lower case).
    fn classify(chain: &str) -> Self {
        let has = |words: &[&str]| words.iter().any(|w| chain.contains(w));
        if has(&[
            "dns error",
            "failed to lookup address",
            "name or service not known",
        ]) {
            Self::Dns
        } else if has(&[
            "tls",
            "certificate",
            "invalidcontenttype",
            "handshake",
            "ssl",
        ]) {
            Self::Tls
        } else if has(&["connection refused"]) {
            Self::Refused
        } else {
            Self::Other
        }
    }

    /// Worth retrying: the same request may work in a moment.
    fn transient(self) -> bool {
        matches!(self, Self::Refused | Self::Other)
    }

    fn hint(self, endpoint: &Endpoint) -> &'static str {
        match self {
            Self::Dns => " (the name does not resolve: check the registry's name and the network)",
            Self::Tls if !endpoint.insecure => {
                " (for a plain-HTTP registry use --tls-verify=false or mark it insecure in \
                 registries.toml)"
            }
            Self::Refused => " (nothing listens there: check the host and port)",
            Self::Tls | Self::Other => "",
        }
    }
}

/// Does `url` have the endpoint's own scheme, host and port? An `http` URL
/// for an `https` endpoint is refused outright.
fn same_origin(endpoint: &Endpoint, url: &str) -> Result<bool, RegistryError> {
    let base = reqwest::Url::parse(&endpoint.base_url());
    let target = reqwest::Url::parse(url);
    let (Ok(base), Ok(target)) = (base, target) else {
        return Ok(false);
    };
    if base.scheme() == "https" && target.scheme() != "https" {
        return Err(RegistryError::Downgrade {
            host: endpoint.host.clone(),
            url: url.to_string(),
        });
    }
    Ok(base.origin() == target.origin())
}

/// May the user's basic credentials go to this token realm? Only over
/// HTTPS, or to the registry's own host when the registry itself is plain
/// HTTP (a token server beside it on another port).
fn realm_may_get_credentials(endpoint: &Endpoint, realm: &reqwest::Url) -> bool {
    if realm.scheme() == "https" {
        return true;
    }
    let own = reqwest::Url::parse(&endpoint.base_url()).ok();
    endpoint.insecure && own.is_some_and(|own| own.host_str() == realm.host_str())
}

/// Reads a manifest's body, refusing more than [`MAX_MANIFEST`] bytes
/// (announced or sent).
async fn read_capped(
    resp: Response,
    endpoint: &Endpoint,
    what: impl Fn() -> String,
) -> Result<Vec<u8>, RegistryError> {
    let too_large = || RegistryError::TooLarge {
        host: endpoint.host.clone(),
        what: what(),
    };
    if resp.content_length().is_some_and(|n| n > MAX_MANIFEST) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| unreachable(endpoint, &e))?;
        if (bytes.len() + chunk.len()) as u64 > MAX_MANIFEST {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(host: &str, insecure: bool) -> Endpoint {
        Endpoint {
            host: host.into(),
            insecure,
            mirror: false,
        }
    }

    #[test]
    fn requests_carry_credentials_only_to_the_endpoint_itself() {
        let https = ep("reg.example:5000", false);
        let http = ep("127.0.0.1:5000", true);
        let same = |e: &Endpoint, u: &str| same_origin(e, u).map_err(|e| e.to_string());
        assert_eq!(
            same(&https, "https://reg.example:5000/v2/x/blobs/uploads/1"),
            Ok(true)
        );
        assert_eq!(same(&https, "https://other.example/upload"), Ok(false));
        assert_eq!(same(&https, "https://reg.example:5001/upload"), Ok(false));
        assert_eq!(
            same(&https, "http://reg.example:5000/upload"),
            Err(
                "registry reg.example:5000 sent an upload location on plain HTTP \
                 (http://reg.example:5000/upload) for an HTTPS registry: refused"
                    .into()
            )
        );
        assert_eq!(same(&http, "http://127.0.0.1:5000/upload"), Ok(true));
        assert_eq!(same(&http, "http://127.0.0.2:5000/upload"), Ok(false));
    }

    #[test]
    fn basic_credentials_go_to_https_realms_or_the_insecure_registrys_own_host() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        let https = ep("reg.example", false);
        let http = ep("127.0.0.1:5000", true);
        assert!(realm_may_get_credentials(
            &https,
            &url("https://auth.example/token")
        ));
        assert!(!realm_may_get_credentials(
            &https,
            &url("http://reg.example/token")
        ));
        assert!(realm_may_get_credentials(
            &http,
            &url("http://127.0.0.1:5100/token")
        ));
        assert!(!realm_may_get_credentials(
            &http,
            &url("http://127.0.0.2:5100/token")
        ));
        assert!(!realm_may_get_credentials(
            &http,
            &url("http://evil.example/token")
        ));
    }

    #[test]
    fn each_failure_gets_its_own_hint() {
        let dns = "error sending request\nclient error (connect)\ndns error: failed to lookup address information: name or service not known\n";
        let tls = "error sending request\nclient error (connect)\nreceived corrupt message of type invalidcontenttype\n";
        assert_eq!(Failure::classify(dns), Failure::Dns);
        assert_eq!(Failure::classify(tls), Failure::Tls);
        let https = ep("reg.example", false);
        assert!(!Failure::Dns.hint(&https).contains("tls-verify"));
        assert!(Failure::Tls.hint(&https).contains("--tls-verify=false"));
        assert_eq!(Failure::Tls.hint(&ep("127.0.0.1:5000", true)), "");
    }
}
