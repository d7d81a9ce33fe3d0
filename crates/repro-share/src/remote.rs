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
use object_store::aws::AmazonS3Builder;
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{ClientOptions, ObjectStore, PutPayload, RetryConfig, WriteMultipart};
use tokio::io::AsyncReadExt;

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

fn client_options(allow_http: bool) -> ClientOptions {
    // No overall request timeout (a large object takes as long as it takes), but a bounded
    // connect: an unreachable server fails in seconds.
    ClientOptions::new()
        .with_allow_http(allow_http)
        .with_timeout_disabled()
        .with_connect_timeout(Duration::from_secs(10))
}

fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: 4,
        retry_timeout: Duration::from_secs(60),
        ..RetryConfig::default()
    }
}

fn open_s3(
    url: &str,
    rest: &str,
    endpoint: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    process_env: bool,
) -> Result<Handle> {
    let rest = rest.trim_matches('/');
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("remote {url}: no bucket (s3://bucket/prefix)");
    }
    let prefix = ObjPath::from_iter(prefix.split('/').filter(|p| !p.is_empty()));
    let aws = AwsFiles::read(env);
    let mut b = if process_env {
        AmazonS3Builder::from_env()
    } else {
        AmazonS3Builder::new()
    }
    .with_bucket_name(bucket);
    let credentials = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            b = b.with_access_key_id(&id).with_secret_access_key(secret);
            if let Some(token) = env("AWS_SESSION_TOKEN") {
                b = b.with_token(token);
            }
            format!(
                "access key {} from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY{})",
                redact(&id),
                if env("AWS_SESSION_TOKEN").is_some() {
                    ", AWS_SESSION_TOKEN"
                } else {
                    ""
                }
            )
        }
        (Some(_), None) | (None, Some(_)) => bail!(
            "remote {url}: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together (one \
             of them is empty or unset)"
        ),
        (None, None) => match aws.keys() {
            Some((id, secret, token, from)) => {
                b = b.with_access_key_id(&id).with_secret_access_key(secret);
                if let Some(token) = token {
                    b = b.with_token(token);
                }
                format!("access key {} of {from}", redact(&id))
            }
            None => {
                if env("AWS_PROFILE").is_some() {
                    bail!(
                        "remote {url}: AWS_PROFILE={} names no profile with keys in {} or {}",
                        aws.profile,
                        aws.credentials_file.display(),
                        aws.config_file.display()
                    );
                }
                format!(
                    "no access key (AWS_ACCESS_KEY_ID is unset and {} has no [{}] keys): the \
                     machine's instance or container role, if it has one",
                    aws.credentials_file.display(),
                    aws.profile
                )
            }
        },
    };
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| aws.get("region"))
        .unwrap_or_else(|| "us-east-1".into());
    b = b.with_region(region);
    let endpoint = endpoint
        .map(str::to_string)
        .or_else(|| env("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .or_else(|| aws.get("endpoint_url"));
    let allow_http = endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    if let Some(e) = &endpoint {
        b = b.with_endpoint(e.trim_end_matches('/'));
    }
    let virtual_hosted = env("AWS_VIRTUAL_HOSTED_STYLE_REQUEST").is_some_and(|v| v == "true");
    let store = b
        .with_virtual_hosted_style_request(virtual_hosted)
        // Every upload carries its sha256 (x-amz-checksum-sha256), which the server checks on
        // arrival: an object named by its digest is stored with that digest or not at all.
        .with_checksum_algorithm(object_store::aws::Checksum::SHA256)
        .with_client_options(client_options(allow_http))
        .with_retry(retry())
        .build()
        .with_context(|| format!("remote {url}: cannot set up S3"))?;
    Ok(Handle {
        url: url.trim_end_matches('/').to_string(),
        store: Arc::new(store),
        prefix,
        credentials: Some(match endpoint {
            Some(e) => format!("{credentials}, at endpoint {e}"),
            None => credentials,
        }),
        folder: None,
    })
}

/// An error's text on one line, an S3 XML error body reduced to its code and message.
fn condense(text: &str) -> String {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let from = text.find(&open)? + open.len();
        let to = text[from..].find(&format!("</{name}>"))? + from;
        Some(text[from..to].to_string())
    };
    let head = match (text.find("<?xml"), tag("Code")) {
        (Some(at), Some(code)) => format!(
            "{}{code}: {}",
            &text[..at],
            tag("Message").unwrap_or_default()
        ),
        _ => text.to_string(),
    };
    head.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first and last four characters of an access key id (an id, not the secret, but still
/// no need to print it whole).
fn redact(id: &str) -> String {
    if id.len() <= 8 {
        return "****".into();
    }
    format!("{}…{}", &id[..4], &id[id.len() - 4..])
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

/// The profile of AWS's shared files that applies, as sections of key = value.
struct AwsFiles {
    profile: String,
    credentials_file: PathBuf,
    config_file: PathBuf,
    credentials: BTreeMap<String, String>,
    config: BTreeMap<String, String>,
}

impl AwsFiles {
    fn read(env: &dyn Fn(&str) -> Option<String>) -> AwsFiles {
        let home = env("HOME").map(PathBuf::from).unwrap_or_default();
        let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let credentials_file = env("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".aws/credentials"));
        let config_file = env("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".aws/config"));
        let section = |file: &FsPath, names: &[String]| {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let sections = parse_ini(&text);
            names
                .iter()
                .find_map(|n| sections.get(n).cloned())
                .unwrap_or_default()
        };
        let credentials = section(&credentials_file, std::slice::from_ref(&profile));
        // The config file names profiles `[profile NAME]`, except `[default]`.
        let config = section(
            &config_file,
            &[format!("profile {profile}"), profile.clone()],
        );
        AwsFiles {
            profile,
            credentials_file,
            config_file,
            credentials,
            config,
        }
    }

    fn get(&self, key: &str) -> Option<String> {
        self.config.get(key).cloned()
    }

    /// Key id, secret, session token and where they came from.
    fn keys(&self) -> Option<(String, String, Option<String>, String)> {
        for (section, file) in [
            (&self.credentials, &self.credentials_file),
            (&self.config, &self.config_file),
        ] {
            if let (Some(id), Some(secret)) = (
                section.get("aws_access_key_id"),
                section.get("aws_secret_access_key"),
            ) {
                return Some((
                    id.clone(),
                    secret.clone(),
                    section.get("aws_session_token").cloned(),
                    format!("profile {} in {}", self.profile, file.display()),
                ));
            }
        }
        None
    }
}

/// The sections of an INI file: `[name]` then `key = value` lines; `#`/`;` comments.
fn parse_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            out.entry(name.clone()).or_default();
            current = Some(name);
        } else if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
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
mod tests {
    use super::*;

    fn spec(url: &str) -> RemoteSpec {
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

    #[test]
    fn s3_credentials_come_from_env_then_profile_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".aws")).unwrap();
        std::fs::write(
            dir.path().join(".aws/credentials"),
            "[default]\naws_access_key_id = AKIADEFAULT0001\naws_secret_access_key = s\n\n\
             [team]\naws_access_key_id=AKIATEAM00000002\naws_secret_access_key=t\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(".aws/config"),
            "[profile team]\nregion = eu-west-3\nendpoint_url = http://127.0.0.1:9\n",
        )
        .unwrap();
        let home = dir.path().display().to_string();
        let creds = |vars: &[(&str, &str)]| {
            let mut env: BTreeMap<String, String> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            env.insert("HOME".into(), home.clone());
            match Remote::open_with_env(&spec("s3://bucket/some/prefix"), &env) {
                Ok(Remote {
                    kind: Kind::S3(h), ..
                }) => Ok((h.credentials.unwrap(), h.prefix.to_string())),
                Ok(_) => panic!("not S3"),
                Err(e) => Err(format!("{e:#}")),
            }
        };
        let (c, prefix) = creds(&[
            ("AWS_ACCESS_KEY_ID", "AKIAENVKEY000003"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
        ])
        .unwrap();
        assert!(c.contains("AKIA…0003") && c.contains("environment"), "{c}");
        assert_eq!(prefix, "some/prefix");
        let (c, _) = creds(&[]).unwrap();
        assert!(
            c.contains("AKIA…0001") && c.contains("profile default"),
            "{c}"
        );
        let (c, _) = creds(&[("AWS_PROFILE", "team")]).unwrap();
        assert!(
            c.contains("AKIA…0002") && c.contains("profile team") && c.contains("127.0.0.1:9"),
            "{c}"
        );
        let e = creds(&[("AWS_PROFILE", "nobody")]).unwrap_err();
        assert!(e.contains("AWS_PROFILE=nobody"), "{e}");
        let e = creds(&[("AWS_ACCESS_KEY_ID", "AKIAENVKEY000003")]).unwrap_err();
        assert!(e.contains("together"), "{e}");
    }

    #[test]
    fn s3_error_bodies_are_condensed() {
        let t = condense(
            "GET x - 403 Forbidden: <?xml version=\"1.0\"?>\n<Error><Code>SignatureDoesNotMatch\
             </Code><Message>The signature\n does not match</Message></Error>",
        );
        assert_eq!(
            t,
            "GET x - 403 Forbidden: SignatureDoesNotMatch: The signature does not match"
        );
    }

    #[test]
    fn ini_sections_and_comments() {
        let s = parse_ini("# c\n[ profile  x ]\nA = 1 \n; c\nb=2=3\n");
        assert_eq!(s["profile x"]["a"], "1");
        assert_eq!(s["profile x"]["b"], "2=3");
    }
}
