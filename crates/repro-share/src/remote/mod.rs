//! A remote: a URL opened as an `object_store` store (`file://` folder, `s3://bucket/prefix` with
//! an optional S3-compatible endpoint, `https://`/`http://` read-only).
//!
//! S3 credentials come from the environment and AWS's own files, never from pipeline.yaml, in
//! the AWS CLI's order: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`);
//! else the profile `AWS_PROFILE` (or `default`) of the shared credentials file
//! (`AWS_SHARED_CREDENTIALS_FILE`, `~/.aws/credentials`) or of the config file
//! (`AWS_CONFIG_FILE`, `~/.aws/config`); else the machine's instance or container role. The
//! region is `AWS_REGION`, `AWS_DEFAULT_REGION` or the profile's `region` (else `us-east-1`); the
//! endpoint is the remote's `endpoint:`, else `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL` or the
//! profile's `endpoint_url` (else AWS itself). Requests are path-style (what MinIO and Ceph
//! expect; AWS accepts it) unless `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`. When a server refuses
//! the credentials, the error says which were used and where they came from (never the secret).
//!
//! An `https://` remote is any static web server over a pushed folder: pull only.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{ClientOptions, ObjectStore, PutPayload, RetryConfig, WriteMultipart};
use tokio::io::AsyncReadExt;

mod s3;

use s3::{condense, open_s3};

/// A remote as named on the command line or in a config: its URL and, for S3-compatible
/// servers, the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    pub url: String,
    pub endpoint: Option<String>,
}

/// An opened remote.
pub struct Remote {
    url: String,
    kind: Kind,
}

enum Kind {
    /// A folder; opened when first used (a push creates it).
    Folder(PathBuf),
    S3(Handle),
    Http(Handle),
}

/// Objects at least this big are uploaded in parts.
pub const MULTIPART_ABOVE: u64 = 64 << 20;
const PART_SIZE: usize = 16 << 20;

/// A remote ready for requests: its store, the prefix every path lives under, and what to say
/// when it refuses. Cheap to clone; transfers give one to each concurrent request.
#[derive(Clone)]
pub struct Handle {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    /// For S3: the credentials used, in words (for "refused" errors).
    credentials: Option<String>,
    /// For a folder remote: the folder, which transfers may read directly.
    folder: Option<PathBuf>,
}

impl Remote {
    /// Open the remote `spec` names; credentials come from the backend's environment variables
    /// and files, never from pipeline.yaml.
    pub fn open(spec: &RemoteSpec) -> Result<Remote> {
        open(
            spec,
            &|k| std::env::var(k).ok().filter(|v| !v.is_empty()),
            true,
        )
    }

    /// [`Remote::open`] with `vars` as the whole environment (tests, and callers that hold
    /// credentials themselves): nothing is read from the process's environment.
    pub fn open_with_env(spec: &RemoteSpec, vars: &BTreeMap<String, String>) -> Result<Remote> {
        open(
            spec,
            &|k| vars.get(k).cloned().filter(|v| !v.is_empty()),
            false,
        )
    }

    /// The URL, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether a push may write to it.
    pub fn writable(&self) -> bool {
        !matches!(self.kind, Kind::Http(_))
    }

    /// The remote ready to read; a folder remote must exist.
    pub fn reader(&self) -> Result<Handle> {
        match &self.kind {
            Kind::Folder(dir) => {
                if !dir.is_dir() {
                    bail!(
                        "remote {}: the folder {} does not exist (nothing was pushed there)",
                        self.url,
                        dir.display()
                    );
                }
                self.folder(dir)
            }
            Kind::S3(h) | Kind::Http(h) => Ok(h.clone()),
        }
    }

    /// The remote ready to write: a folder remote is created; an HTTP(S) one is refused.
    pub fn writer(&self) -> Result<Handle> {
        match &self.kind {
            Kind::Folder(dir) => {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!(
                        "remote {}: cannot create the folder {}",
                        self.url,
                        dir.display()
                    )
                })?;
                self.folder(dir)
            }
            Kind::S3(h) => Ok(h.clone()),
            Kind::Http(_) => bail!(
                "remote {} is read-only: an http(s):// remote can be pulled from, not pushed to. \
                 Push to a folder (file:///path) or to S3 (s3://bucket/prefix) and serve that \
                 folder or bucket over HTTP(S)",
                self.url
            ),
        }
    }

    fn folder(&self, dir: &FsPath) -> Result<Handle> {
        let fs = LocalFileSystem::new_with_prefix(dir)
            .with_context(|| format!("remote {}: cannot open {}", self.url, dir.display()))?;
        Ok(Handle {
            url: self.url.clone(),
            store: Arc::new(fs),
            prefix: ObjPath::default(),
            credentials: None,
            folder: Some(dir.to_path_buf()),
        })
    }
}

fn open(
    spec: &RemoteSpec,
    env: &dyn Fn(&str) -> Option<String>,
    process_env: bool,
) -> Result<Remote> {
    let url = spec.url.trim().to_string();
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!(
            "remote {url:?} is not a URL: use file:///absolute/path, s3://bucket/prefix or \
             https://host/path"
        );
    };
    if spec.endpoint.is_some() && scheme != "s3" {
        bail!("remote {url}: an endpoint is for s3:// remotes (an S3-compatible server) only");
    }
    let kind = match scheme {
        "file" => {
            let path = percent_decode(rest);
            if !path.starts_with('/') {
                bail!(
                    "remote {url}: a file:// URL needs an absolute path (file:///srv/results, \
                     three slashes)"
                );
            }
            Kind::Folder(PathBuf::from(path))
        }
        "s3" => Kind::S3(open_s3(
            &url,
            rest,
            spec.endpoint.as_deref(),
            env,
            process_env,
        )?),
        "http" | "https" => {
            let base = url.trim_end_matches('/');
            let store = HttpBuilder::new()
                .with_url(base)
                .with_client_options(client_options(scheme == "http"))
                .with_retry(retry())
                .build()
                .with_context(|| format!("remote {url}: not a usable URL"))?;
            Kind::Http(Handle {
                url: base.to_string(),
                store: Arc::new(store),
                prefix: ObjPath::default(),
                credentials: None,
                folder: None,
            })
        }
        other => bail!(
            "remote {url}: the scheme {other}:// is not supported (use file://, s3://, https:// \
             or http://)"
        ),
    };
    Ok(Remote {
        url: url.trim_end_matches('/').to_string(),
        kind,
    })
}

pub(crate) fn client_options(allow_http: bool) -> ClientOptions {
    // No overall request timeout (a large object takes as long as it takes), but a bounded
    // connect: an unreachable server fails in seconds.
    ClientOptions::new()
        .with_allow_http(allow_http)
        .with_timeout_disabled()
        .with_connect_timeout(Duration::from_secs(10))
}

pub(crate) fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: 4,
        retry_timeout: Duration::from_secs(60),
        ..RetryConfig::default()
    }
}

/// `%XX` escapes of a file URL's path.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Handle {
    /// The remote's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where `rel` (a store-relative path such as `runs/<key>.json`) is, for messages.
    pub fn describe(&self, rel: &str) -> String {
        format!("{}/{rel}", self.url)
    }

    /// For a folder remote, the file `rel` is (whether or not it exists).
    pub fn local_file(&self, rel: &str) -> Option<PathBuf> {
        self.folder.as_ref().map(|d| d.join(rel))
    }

    fn path(&self, rel: &str) -> ObjPath {
        rel.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |p, part| p.child(part))
    }

    /// An object_store error as a sentence naming the remote path; a refusal of the
    /// credentials says which were used.
    pub fn error(&self, doing: &str, rel: &str, e: object_store::Error) -> anyhow::Error {
        let text = condense(&format!("{e}"));
        let refused = matches!(
            e,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ) || [
            "403",
            "401",
            "Forbidden",
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId",
            "AccessDenied",
            "ExpiredToken",
            "InvalidToken",
        ]
        .iter()
        .any(|s| text.contains(s));
        match (&self.credentials, refused) {
            (Some(creds), true) => anyhow!(
                "cannot {doing} {}: the server refused the credentials. Used: {creds}. Check \
                 that the key and secret are right (not expired) and may read and write this \
                 bucket. ({text})",
                self.describe(rel)
            ),
            _ => anyhow!("cannot {doing} {}: {text}", self.describe(rel)),
        }
    }

    /// The bytes at `rel`; `None` when the remote has nothing there.
    pub async fn get_bytes(&self, rel: &str) -> Result<Option<Bytes>> {
        let got = match self.store.get(&self.path(rel)).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error("read", rel, e)),
        };
        got.bytes()
            .await
            .map(Some)
            .map_err(|e| self.error("read", rel, e))
    }

    /// The bytes at `rel` as a stream of chunks, with the size the remote announced.
    pub async fn get_stream(&self, rel: &str) -> Result<(u64, BoxStream<'static, Result<Bytes>>)> {
        let got = self
            .store
            .get(&self.path(rel))
            .await
            .map_err(|e| self.error("read", rel, e))?;
        let size = got.meta.size;
        let me = self.clone();
        let rel = rel.to_string();
        let stream = got
            .into_stream()
            .map_err(move |e| me.error("read", &rel, e))
            .boxed();
        Ok((size, stream))
    }

    /// Write `bytes` at `rel` (atomically: readers see the old object or the whole new one).
    pub async fn put(&self, rel: &str, bytes: Bytes) -> Result<()> {
        self.store
            .put(&self.path(rel), PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.error("write", rel, e))
    }

    /// Upload the local `file` to `rel`: in one request, or in parts above
    /// [`MULTIPART_ABOVE`] bytes.
    pub async fn put_file(&self, rel: &str, file: &FsPath) -> Result<()> {
        let size = tokio::fs::metadata(file)
            .await
            .with_context(|| format!("cannot read {}", file.display()))?
            .len();
        if size < MULTIPART_ABOVE {
            let bytes = tokio::fs::read(file)
                .await
                .with_context(|| format!("cannot read {}", file.display()))?;
            return self.put(rel, Bytes::from(bytes)).await;
        }
        let upload = self
            .store
            .put_multipart(&self.path(rel))
            .await
            .map_err(|e| self.error("start the upload of", rel, e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut f = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("cannot read {}", file.display()))?;
        let mut buf = vec![0u8; PART_SIZE];
        loop {
            let n = f
                .read(&mut buf)
                .await
                .with_context(|| format!("cannot read {}", file.display()))?;
            if n == 0 {
                break;
            }
            w.wait_for_capacity(4)
                .await
                .map_err(|e| self.error("upload", rel, e))?;
            w.write(&buf[..n]);
        }
        w.finish()
            .await
            .map(|_| ())
            .map_err(|e| self.error("finish the upload of", rel, e))
    }

    /// Every object under `rel_prefix` (a folder such as `objects/sha256`), as its path
    /// relative to the remote's root and its size. Empty when there is nothing.
    pub async fn list(&self, rel_prefix: &str) -> Result<Vec<(String, u64)>> {
        let under = self.path(rel_prefix);
        let mut out = Vec::new();
        let mut s = self.store.list(Some(&under));
        while let Some(meta) = s.next().await {
            let meta = match meta {
                Ok(m) => m,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(self.error("list", rel_prefix, e)),
            };
            if let Some(parts) = meta.location.prefix_match(&self.prefix) {
                let rel: Vec<String> = parts.map(|p| p.as_ref().to_string()).collect();
                out.push((rel.join("/"), meta.size));
            }
        }
        Ok(out)
    }

    /// The size of the object at `rel`, `None` when absent.
    pub async fn head(&self, rel: &str) -> Result<Option<u64>> {
        match self.store.head(&self.path(rel)).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("look up", rel, e)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A remote of `url` with no endpoint.
    pub(crate) fn spec(url: &str) -> RemoteSpec {
        RemoteSpec {
            url: url.into(),
            endpoint: None,
        }
    }

    #[test]
    fn urls_open_by_scheme_and_http_is_read_only() {
        let env = BTreeMap::new();
        let r = Remote::open_with_env(&spec("file:///tmp/a%20b/"), &env).unwrap();
        assert!(matches!(&r.kind, Kind::Folder(p) if p == FsPath::new("/tmp/a b")));
        assert_eq!(r.url(), "file:///tmp/a%20b");
        let e = Remote::open_with_env(&spec("file://rel/x"), &env)
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("absolute path"), "{e:#}");
        let r = Remote::open_with_env(&spec("https://example.org/results/"), &env).unwrap();
        assert!(!r.writable());
        let e = format!("{:#}", r.writer().err().unwrap());
        assert!(
            e.contains("read-only") && e.contains("file://") && e.contains("s3://"),
            "{e}"
        );
        let e = Remote::open_with_env(&spec("ftp://x/y"), &env)
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("not supported"), "{e:#}");
        let e = Remote::open_with_env(&spec("/srv/x"), &env).err().unwrap();
        assert!(format!("{e:#}").contains("not a URL"), "{e:#}");
    }
}
