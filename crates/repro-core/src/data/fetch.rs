//! Fetching dataset files: owns getting one [`DatasetFile`] into a dataset folder, verified.
//!
//! Sources are tried in order — the configured mirrors first (a local folder or a base URL holding
//! the same file names), then the file's own URLs — until one yields bytes whose size and pinned
//! digests match. Downloads stream into a temp file in the destination folder while being hashed;
//! only a verified file is renamed (durably) to `dest_dir/<name>`, so a partial or wrong download
//! never appears there. A complete file whose digest does not match is moved to the quarantine
//! folder as `<name>.<sha256-prefix>.rejected` for inspection.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::data::DatasetFile;
use crate::store::atomic;
use crate::store::hash::{self, FileDigests};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const BUF_SIZE: usize = 256 * 1024;
/// Without a progress bar, how often a long transfer logs how far it got.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Hex digits of the sha256 used in quarantined file names.
const QUARANTINE_PREFIX_LEN: usize = 12;

/// How [`fetch_file`] looks for a file and where it puts rejects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// Tried before the file's own URLs, in this order.
    pub mirrors: Vec<Mirror>,
    /// Complete downloads whose digest or size does not match are moved here.
    pub quarantine_dir: PathBuf,
    /// Show an indicatif bar when stderr is a terminal; otherwise progress goes to tracing lines.
    pub progress: bool,
    /// Refuse any source that announces or delivers more than this many bytes.
    pub max_bytes: Option<u64>,
}

impl FetchOptions {
    /// No mirrors, no progress bar, no size cap.
    pub fn new(quarantine_dir: impl Into<PathBuf>) -> Self {
        FetchOptions {
            mirrors: Vec::new(),
            quarantine_dir: quarantine_dir.into(),
            progress: false,
            max_bytes: None,
        }
    }
}

/// A place holding the same file names as upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mirror {
    /// A local folder: `<dir>/<name>` is copied.
    Dir(PathBuf),
    /// A base URL: `<base>/<name>` is downloaded (`http://`, `https://` or `file://`).
    BaseUrl(String),
}

impl Mirror {
    /// `http://…`/`https://…` → [`Mirror::BaseUrl`]; `file:///path` (or `file://localhost/path`)
    /// → [`Mirror::Dir`]; anything else is taken as a folder path. A `file://` URL naming another
    /// host is kept as a `BaseUrl` and fails, with a reason, when used.
    pub fn parse(s: &str) -> Mirror {
        if has_scheme(s, "file://") {
            return match file_url_path(s) {
                Some(path) => Mirror::Dir(path),
                None => Mirror::BaseUrl(s.to_string()),
            };
        }
        if has_scheme(s, "http://") || has_scheme(s, "https://") {
            Mirror::BaseUrl(s.to_string())
        } else {
            Mirror::Dir(PathBuf::from(s))
        }
    }

    fn source_for(&self, name: &str) -> Source {
        match self {
            Mirror::Dir(dir) => Source::Path(dir.join(name)),
            Mirror::BaseUrl(base) => Source::from_url(&format!(
                "{}/{}",
                base.trim_end_matches('/'),
                url_encode(name)
            )),
        }
    }
}

impl fmt::Display for Mirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mirror::Dir(dir) => write!(f, "{}", dir.display()),
            Mirror::BaseUrl(url) => f.write_str(url),
        }
    }
}

/// A verified file in its final place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// `dest_dir/<name>`.
    pub path: PathBuf,
    /// Lowercase hex.
    pub sha256: String,
    /// Lowercase hex.
    pub md5: String,
    pub size: u64,
    /// Where the bytes came from: a URL, a path, or `"existing"` when the file was already there.
    pub source: String,
}

/// A file that is not what its [`DatasetFile`] pins.
///
/// `what` is `"size"`, `"md5"` or `"sha256"`; `"io"` when the file could not be read to check it
/// (then `expected` says what was needed and `actual` holds the I/O error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct DigestMismatch {
    pub what: &'static str,
    pub expected: String,
    pub actual: String,
    pub path: PathBuf,
}

impl DigestMismatch {
    fn describe(&self) -> String {
        if self.what == "io" {
            format!("cannot check {}: {}", self.path.display(), self.actual)
        } else {
            format!(
                "{}: {} mismatch: expected {}, got {}",
                self.path.display(),
                self.what,
                self.expected,
                self.actual
            )
        }
    }
}

/// Check `path` against the size and digests pinned in `file` (each only if pinned; hex compared
/// case-insensitively). Returns the file's digests, so an unpinned file's can be recorded.
pub fn check_file(file: &DatasetFile, path: &Path) -> Result<FileDigests, DigestMismatch> {
    let io_err = |e: io::Error| DigestMismatch {
        what: "io",
        expected: "a readable file".to_string(),
        actual: e.to_string(),
        path: path.to_path_buf(),
    };
    // A size mismatch is known from metadata, without hashing a possibly huge file.
    if let Some(size) = file.size {
        let len = fs::metadata(path).map_err(io_err)?.len();
        if len != size {
            return Err(mismatch("size", size.to_string(), len.to_string(), path));
        }
    }
    let digests = hash::digests_file(path).map_err(io_err)?;
    check_digests(file, &digests, path)?;
    Ok(digests)
}

/// Get `file` into `dest_dir/<name>`, verified; see the module docs for the order of sources.
///
/// A valid file already there is returned without touching the network. One that does not match
/// is moved to the quarantine folder first. If every source fails, the error lists each source
/// and why it failed.
pub fn fetch_file(file: &DatasetFile, dest_dir: &Path, opts: &FetchOptions) -> Result<Fetched> {
    check_name(&file.name)?;
    let dest = dest_dir.join(&file.name);

    // What happened to a file already at `dest` that was not the pinned one (for the error).
    let mut rejected = None;
    if fs::symlink_metadata(&dest).is_ok() {
        match check_file(file, &dest) {
            Ok(d) => {
                tracing::debug!(file = %file.name, "already present and valid");
                return Ok(fetched(dest, d, "existing".to_string()));
            }
            Err(e) => {
                tracing::warn!(file = %file.name, "existing file rejected: {e}");
                let moved = match quarantine_existing(&dest, &file.name, &opts.quarantine_dir) {
                    Ok(q) => format!("moved to {}", q.display()),
                    Err(qe) => format!("could not be quarantined: {qe:#}"),
                };
                tracing::warn!(file = %file.name, "{moved}");
                rejected = Some(format!(
                    "the file already there was rejected ({e}) and {moved}"
                ));
            }
        }
    }

    let sources: Vec<Source> = opts
        .mirrors
        .iter()
        .map(|m| m.source_for(&file.name))
        .chain(file.urls.iter().map(|u| Source::from_url(u)))
        .collect();
    if sources.is_empty() {
        let msg = format!(
            "cannot fetch {}: no mirrors given and no URLs listed",
            file.name
        );
        match rejected {
            Some(r) => bail!("{r}; then {msg}"),
            None => bail!(msg),
        }
    }
    fs::create_dir_all(dest_dir).with_context(|| format!("creating {}", dest_dir.display()))?;
    if file.md5.is_none() && file.sha256.is_none() {
        tracing::warn!(file = %file.name, "no digest pinned: accepting whatever a source delivers");
    }

    let agent = ureq::AgentBuilder::new()
        .timeout_connect(CONNECT_TIMEOUT)
        .timeout_read(READ_TIMEOUT)
        .user_agent(concat!("repro/", env!("CARGO_PKG_VERSION")))
        .build();
    let mut failures = Vec::new();
    for source in &sources {
        match try_source(source, file, dest_dir, &dest, opts, &agent) {
            Ok(done) => {
                tracing::info!(file = %file.name, source = %source, size = done.size, "fetched");
                return Ok(done);
            }
            Err(e) => {
                tracing::warn!(file = %file.name, source = %source, "source failed: {e:#}");
                failures.push(format!("{source}: {e:#}"));
            }
        }
    }
    let mut msg = match failures.len() {
        1 => format!("cannot fetch {}: its only source failed:", file.name),
        n => format!("cannot fetch {}: all {n} sources failed:", file.name),
    };
    if let Some(r) = rejected {
        msg = format!("{r}; then {msg}");
    }
    for (i, f) in failures.iter().enumerate() {
        msg.push_str(&format!("\n  {}. {f}", i + 1));
    }
    Err(anyhow!(msg))
}

/// Where one attempt reads from.
#[derive(Debug)]
enum Source {
    Path(PathBuf),
    Http(String),
    /// A URL this module cannot read, with the reason.
    Unusable(String, &'static str),
}

impl Source {
    fn from_url(url: &str) -> Source {
        if has_scheme(url, "http://") || has_scheme(url, "https://") {
            Source::Http(url.to_string())
        } else if has_scheme(url, "file://") {
            match file_url_path(url) {
                Some(p) => Source::Path(p),
                None => Source::Unusable(
                    url.to_string(),
                    "file:// URLs must name a local absolute path (file:///path)",
                ),
            }
        } else {
            Source::Unusable(url.to_string(), "unsupported URL scheme")
        }
    }

    /// A reader over the whole file and its announced length.
    fn open(&self, agent: &ureq::Agent) -> Result<(Box<dyn Read>, Option<u64>)> {
        match self {
            Source::Path(p) => {
                let f = File::open(p)?;
                let meta = f.metadata()?;
                if !meta.is_file() {
                    bail!("{} is not a regular file", p.display());
                }
                Ok((Box::new(f), Some(meta.len())))
            }
            Source::Http(url) => {
                // Identity, so the bytes hashed are the bytes published: with gzip allowed, a
                // server may label a .tar.gz as Content-Encoding: gzip and ureq would inflate it.
                let resp = match agent.get(url).set("Accept-Encoding", "identity").call() {
                    Ok(r) => r,
                    Err(ureq::Error::Status(code, r)) => {
                        bail!("HTTP {code} {}", r.status_text())
                    }
                    // Not `{t}`: its Display repeats the URL, which the caller already names.
                    Err(ureq::Error::Transport(t)) => {
                        let mut why = t.kind().to_string();
                        if let Some(m) = t.message() {
                            why.push_str(&format!(": {m}"));
                        }
                        if let Some(cause) = std::error::Error::source(&t) {
                            why.push_str(&format!(": {cause}"));
                        }
                        bail!("{why}")
                    }
                };
                let len = resp
                    .header("Content-Length")
                    .and_then(|v| v.trim().parse::<u64>().ok());
                Ok((Box::new(resp.into_reader()), len))
            }
            Source::Unusable(_, why) => bail!("{why}"),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Path(p) => write!(f, "{}", p.display()),
            Source::Http(u) | Source::Unusable(u, _) => f.write_str(u),
        }
    }
}

fn try_source(
    source: &Source,
    file: &DatasetFile,
    dest_dir: &Path,
    dest: &Path,
    opts: &FetchOptions,
    agent: &ureq::Agent,
) -> Result<Fetched> {
    let (reader, announced) = source.open(agent)?;
    if let (Some(len), Some(max)) = (announced, opts.max_bytes)
        && len > max
    {
        bail!("announces {len} bytes, over the limit of {max}");
    }
    if let (Some(len), Some(size)) = (announced, file.size)
        && len != size
    {
        bail!("size mismatch: expected {size} bytes, source announces {len}");
    }

    // Dropping `tmp` on any early return removes the partial file.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", file.name))
        .suffix(".part")
        .tempfile_in(dest_dir)
        .with_context(|| format!("creating a temp file in {}", dest_dir.display()))?;
    let limits = StreamLimits {
        announced,
        max_bytes: opts.max_bytes,
        size: file.size,
    };
    let digests = copy_hashing(
        reader,
        tmp.as_file_mut(),
        limits,
        &file.name,
        source,
        opts.progress,
    )?;
    tmp.as_file()
        .sync_all()
        .context("syncing the downloaded file")?;

    // The bytes never reached `dest`: the mismatch names the source they came from.
    if let Err(m) = check_digests(file, &digests, Path::new(&source.to_string())) {
        let where_ = match quarantine(tmp.into_temp_path(), &file.name, &digests.sha256, opts) {
            Ok(q) => format!("moved to {}", q.display()),
            Err(e) => format!("deleted (could not quarantine: {e:#})"),
        };
        bail!("{m}; {where_}");
    }

    let tmp_path = tmp.into_temp_path();
    atomic::rename_durable(&tmp_path, dest)
        .with_context(|| format!("moving the download to {}", dest.display()))?;
    // The temp path no longer exists; keep() only disarms its delete-on-drop.
    let _ = tmp_path.keep();
    Ok(fetched(dest.to_path_buf(), digests, source.to_string()))
}

#[derive(Clone, Copy)]
struct StreamLimits {
    /// Content-Length or file length: fewer bytes means truncated.
    announced: Option<u64>,
    max_bytes: Option<u64>,
    /// Pinned size: more bytes is a mismatch, no point reading on.
    size: Option<u64>,
}

/// Copy `reader` into `out`, hashing as it goes, enforcing `limits`.
fn copy_hashing(
    mut reader: impl Read,
    out: &mut File,
    limits: StreamLimits,
    name: &str,
    source: &Source,
    progress: bool,
) -> Result<FileDigests> {
    let bar = progress_bar(progress, limits.announced, name);
    if bar.is_none() {
        match limits.announced {
            Some(n) => tracing::info!(file = %name, "fetching {n} bytes from {source}"),
            None => tracing::info!(file = %name, "fetching from {source}"),
        }
    }
    let start = Instant::now();
    let mut last_log = start;
    let mut sha = Sha256::new();
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; BUF_SIZE];
    let mut got = 0u64;
    let truncated = |got: u64| match limits.announced {
        Some(total) => anyhow!("truncated: got {got} of {total} bytes"),
        None => anyhow!("truncated: connection closed after {got} bytes"),
    };
    let result = loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break Err(truncated(got)),
            Err(e) => break Err(anyhow!(e).context(format!("reading after {got} bytes"))),
        };
        got += n as u64;
        if let Some(max) = limits.max_bytes
            && got > max
        {
            break Err(anyhow!("more than the limit of {max} bytes"));
        }
        if let Some(size) = limits.size
            && got > size
        {
            break Err(anyhow!(
                "size mismatch: more than the expected {size} bytes"
            ));
        }
        if let Some(total) = limits.announced
            && got > total
        {
            break Err(anyhow!("more than the announced {total} bytes"));
        }
        let chunk = &buf[..n];
        sha.update(chunk);
        md5.update(chunk);
        if let Err(e) = out.write_all(chunk) {
            break Err(anyhow!(e).context("writing the temp file"));
        }
        match &bar {
            Some(b) => b.inc(n as u64),
            None if last_log.elapsed() >= LOG_EVERY => {
                last_log = Instant::now();
                match limits.announced {
                    Some(total) => tracing::info!(file = %name, "{got} of {total} bytes"),
                    None => tracing::info!(file = %name, "{got} bytes"),
                }
            }
            None => {}
        }
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    result?;
    if let Some(total) = limits.announced
        && got < total
    {
        return Err(truncated(got));
    }
    out.flush()?;
    tracing::debug!(file = %name, "{got} bytes in {:.1?}", start.elapsed());
    Ok(FileDigests {
        sha256: hex::encode(sha.finalize()),
        md5: hex::encode(md5.finalize()),
        size: got,
    })
}

fn progress_bar(enabled: bool, total: Option<u64>, name: &str) -> Option<ProgressBar> {
    if !enabled || !io::stderr().is_terminal() {
        return None;
    }
    let (bar, template) = match total {
        Some(t) => (
            ProgressBar::new(t),
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{msg} {spinner} {bytes} {bytes_per_sec}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(name.to_string());
    Some(bar)
}

/// Compare already computed digests of `path` with what `file` pins (each only if pinned).
pub fn check_digests(
    file: &DatasetFile,
    d: &FileDigests,
    path: &Path,
) -> Result<(), DigestMismatch> {
    if let Some(size) = file.size
        && size != d.size
    {
        return Err(mismatch("size", size.to_string(), d.size.to_string(), path));
    }
    if let Some(want) = &file.sha256
        && !want.trim().eq_ignore_ascii_case(&d.sha256)
    {
        return Err(mismatch("sha256", want.clone(), d.sha256.clone(), path));
    }
    if let Some(want) = &file.md5
        && !want.trim().eq_ignore_ascii_case(&d.md5)
    {
        return Err(mismatch("md5", want.clone(), d.md5.clone(), path));
    }
    Ok(())
}

fn mismatch(what: &'static str, expected: String, actual: String, path: &Path) -> DigestMismatch {
    DigestMismatch {
        what,
        expected,
        actual,
        path: path.to_path_buf(),
    }
}

fn fetched(path: PathBuf, d: FileDigests, source: String) -> Fetched {
    Fetched {
        path,
        sha256: d.sha256,
        md5: d.md5,
        size: d.size,
        source,
    }
}

/// Move a rejected download to `quarantine_dir/<name>.<sha256-prefix>.rejected`.
fn quarantine(
    tmp: tempfile::TempPath,
    name: &str,
    sha256: &str,
    opts: &FetchOptions,
) -> Result<PathBuf> {
    let prefix = sha256.get(..QUARANTINE_PREFIX_LEN).unwrap_or(sha256);
    let to = opts
        .quarantine_dir
        .join(format!("{name}.{prefix}.rejected"));
    if move_file(&tmp, &to)? {
        // Renamed away: only disarm the delete-on-drop. Copied: dropping `tmp` removes it.
        let _ = tmp.keep();
    }
    Ok(to)
}

fn quarantine_existing(path: &Path, name: &str, quarantine_dir: &Path) -> Result<PathBuf> {
    let sha = hash::sha256_file(path).with_context(|| format!("hashing {}", path.display()))?;
    let prefix = sha.get(..QUARANTINE_PREFIX_LEN).unwrap_or(&sha);
    let to = quarantine_dir.join(format!("{name}.{prefix}.rejected"));
    if !move_file(path, &to)? {
        fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(to)
}

/// Rename (returns true), or copy when the quarantine folder is on another filesystem (returns
/// false; the caller removes the source).
fn move_file(from: &Path, to: &Path) -> Result<bool> {
    fs::create_dir_all(to.parent().unwrap_or(Path::new(".")))
        .with_context(|| format!("creating the folder of {}", to.display()))?;
    if fs::rename(from, to).is_ok() {
        return Ok(true);
    }
    fs::copy(from, to).with_context(|| format!("copying to {}", to.display()))?;
    Ok(false)
}

/// The name becomes a path component and a URL segment: a single plain component only.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        bail!("invalid dataset file name {name:?}: must be a plain file name");
    }
    Ok(())
}

fn has_scheme(s: &str, scheme: &str) -> bool {
    s.get(..scheme.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
}

/// `file:///abs/path` or `file://localhost/abs/path`, percent-decoded; `None` for other hosts.
fn file_url_path(url: &str) -> Option<PathBuf> {
    let rest = url.get("file://".len()..)?;
    let path = if rest.starts_with('/') {
        rest
    } else if has_scheme(rest, "localhost/") {
        &rest["localhost".len()..]
    } else {
        return None;
    };
    Some(PathBuf::from(percent_decode(path)?))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn url_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_parse() {
        assert_eq!(
            Mirror::parse("https://example.org/m/"),
            Mirror::BaseUrl("https://example.org/m/".into())
        );
        assert_eq!(
            Mirror::parse("HTTP://example.org"),
            Mirror::BaseUrl("HTTP://example.org".into())
        );
        assert_eq!(
            Mirror::parse("file:///srv/my%20mirror"),
            Mirror::Dir("/srv/my mirror".into())
        );
        assert_eq!(
            Mirror::parse("file://localhost/srv/m"),
            Mirror::Dir("/srv/m".into())
        );
        assert_eq!(
            Mirror::parse("file://other/srv/m"),
            Mirror::BaseUrl("file://other/srv/m".into())
        );
        assert_eq!(Mirror::parse("../mirror"), Mirror::Dir("../mirror".into()));
    }

    #[test]
    fn base_url_join_and_encode() {
        let with = Mirror::BaseUrl("http://h/m/".into()).source_for("a b.tgz");
        let without = Mirror::BaseUrl("http://h/m".into()).source_for("a b.tgz");
        assert_eq!(with.to_string(), "http://h/m/a%20b.tgz");
        assert_eq!(without.to_string(), "http://h/m/a%20b.tgz");
    }

    #[test]
    fn names_must_be_plain() {
        for bad in ["", ".", "..", "a/b", "a\\b", "../x"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("cifar-10-python.tar.gz").is_ok());
    }
}
