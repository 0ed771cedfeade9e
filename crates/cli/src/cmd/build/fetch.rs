//! `ADD URL`: den (the builder, not a RUN container) downloads the file
//! into the store's tmp/, bounded in size, its `Last-Modified` as the
//! file's time, its sha256 checked against `--checksum`. A downloaded
//! archive is not extracted (Docker's rule for remote sources).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use den_image::digest::{Digest, Hasher};
use den_image::store::Store;

/// The largest file `ADD URL` downloads.
pub const MAX_DOWNLOAD: u64 = 4 << 30;

/// A downloaded file in the store's tmp/ (removed when dropped), the
/// name the URL gives it, and its digest.
pub struct Fetched {
    pub path: PathBuf,
    pub name: String,
    pub digest: Digest,
}

impl Drop for Fetched {
    fn drop(&mut self) {
        fs_err::remove_file(&self.path).ok();
    }
}

/// Whether an `ADD` source is a URL den downloads.
pub fn is_url(src: &str) -> bool {
    src.starts_with("http://") || src.starts_with("https://")
}

/// The file name a URL gives (its path's last part), as BuildKit names it.
pub fn url_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split(['?', '#']).next().unwrap_or("");
    let path = path.split_once('/').map_or("", |(_, p)| p);
    match path.rsplit('/').find(|p| !p.is_empty()) {
        Some(name) if name != "." && name != ".." => name.to_owned(),
        _ => "__unnamed__".to_owned(),
    }
}

/// Downloads `url`; `checksum` is `--checksum=sha256:HEX`.
pub fn fetch(store: &Store, url: &str, checksum: Option<&str>) -> anyhow::Result<Fetched> {
    let want = checksum
        .map(|c| {
            c.strip_prefix("sha256:")
                .and_then(|h| Digest::from_hex(h).ok())
                .with_context(|| {
                    format!("ADD --checksum={c}: use sha256: and 64 hexadecimal digits")
                })
        })
        .transpose()?;
    let mut fetched = Fetched {
        path: super::commit::tmp_tar(store).with_extension("add"),
        name: url_name(url),
        digest: Digest::of(b""),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (digest, modified) = rt
        .block_on(download(url, &fetched.path))
        .map_err(|e| anyhow::anyhow!("ADD {url}: {e:#}"))?;
    if let Some(t) = modified {
        fs_err::File::options()
            .write(true)
            .open(&fetched.path)?
            .set_modified(t)?;
    }
    if let Some(w) = want
        && w != digest
    {
        bail!("ADD {url}: the download's checksum is {digest}, not the {w} --checksum gives");
    }
    fetched.digest = digest;
    Ok(fetched)
}

/// GETs `url` into a new file at `to` (0600); its digest and Last-Modified.
async fn download(
    url: &str,
    to: &std::path::Path,
) -> anyhow::Result<(Digest, Option<std::time::SystemTime>)> {
    use fs_err::os::unix::fs::OpenOptionsExt;
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .build()?;
    let mut resp = client.get(url).send().await?;
    if !resp.status().is_success() {
        bail!("the server answered {}", resp.status());
    }
    if resp.content_length().is_some_and(|n| n > MAX_DOWNLOAD) {
        bail!(
            "the file is larger than den's limit of {MAX_DOWNLOAD} bytes: download it in a RUN step"
        );
    }
    let modified = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map(std::time::SystemTime::from);
    let mut file = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)?;
    let mut hasher = Hasher::default();
    while let Some(chunk) = resp.chunk().await? {
        hasher.update(&chunk);
        if hasher.len() > MAX_DOWNLOAD {
            bail!(
                "the file is larger than den's limit of {MAX_DOWNLOAD} bytes: download it in a RUN step"
            );
        }
        file.write_all(&chunk)?;
    }
    file.flush()?;
    Ok((hasher.finish(), modified))
}

#[cfg(test)]
mod tests {
    #[test]
    fn url_names() {
        for (url, name) in [
            ("http://h/a/b.tgz", "b.tgz"),
            ("http://h/a/b/?x=1", "b"),
            ("https://h:8080/f#frag", "f"),
            ("http://h", "__unnamed__"),
            ("http://h/", "__unnamed__"),
        ] {
            assert_eq!(super::url_name(url), name, "{url}");
        }
    }
}
