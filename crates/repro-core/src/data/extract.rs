//! Safe archive extraction: owns turning a fetched `.tar.gz`/`.zip` (or plain file) into a
//! complete folder, or nothing.
//!
//! Everything is written into a temp folder next to `dest`, which is renamed to `dest` only after
//! the last entry, a `.manifest.json` (every extracted file's path, size and sha256, hashed as it
//! is written) and a `.extracted` marker (the archive's sha256) are written, so a half-extracted
//! tree never appears at `dest`; on any refusal or error the temp folder is removed.
//! [`check_tree`] compares a tree with its manifest (changed, missing and added files), through
//! the stat cache so that unchanged files are not re-hashed.
//!
//! Refused, with an error naming the entry and why:
//! - paths with `..` components, absolute paths, Windows drive/UNC prefixes or backslashes;
//! - every symlink and hard link in a tar, and every zip entry marked as a symlink — datasets do
//!   not need links, and refusing them all is simpler to trust than resolving targets;
//! - device files, fifos and other special entries;
//! - more than [`ExtractLimits::max_entries`] entries, more than
//!   [`ExtractLimits::max_total_bytes`] expanded bytes, or expanded bytes more than
//!   [`ExtractLimits::max_ratio`] times the archive's size (decompression bombs). Bytes are counted
//!   as actually written while streaming; sizes claimed by headers are not trusted.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, bail};
use flate2::read::GzDecoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::ArchiveKind;
use crate::store::statcache::StatCache;
use crate::store::{atomic, hash};

/// Name of the completion marker inside an extracted folder; holds the archive's sha256.
pub const MARKER: &str = ".extracted";
/// Name of the manifest inside an extracted folder: every file the archive put there.
pub const MANIFEST: &str = ".manifest.json";

/// What an extraction wrote: relative path (with `/`) → size and sha256.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeManifest {
    pub archive_sha256: String,
    pub files: BTreeMap<String, TreeFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeFile {
    pub size: u64,
    pub sha256: String,
}

impl TreeManifest {
    pub fn load(dest: &Path) -> Result<TreeManifest> {
        let path = dest.join(MANIFEST);
        let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid", path.display()))
    }
}

/// A file of an extracted tree that is not what its manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeProblem {
    /// Relative to the tree.
    pub path: String,
    pub what: String,
}

impl std::fmt::Display for TreeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.what)
    }
}

/// Compare an extracted tree with its manifest: files whose size or sha256 changed, files
/// missing, files added. Unchanged files come from `stat` (set `stat.rehash` to re-hash all).
pub fn check_tree(dest: &Path, stat: &mut StatCache) -> Result<Vec<TreeProblem>> {
    let manifest = TreeManifest::load(dest)?;
    let mut problems = Vec::new();
    for (rel, want) in &manifest.files {
        let path = dest.join(rel);
        let problem = match fs::metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Some("missing".to_string()),
            Err(e) => Some(format!("cannot be read: {e}")),
            Ok(m) if m.len() != want.size => Some(format!(
                "{} bytes, the archive holds {}",
                m.len(),
                want.size
            )),
            Ok(_) => match stat.sha256(&path) {
                Ok(sha) if sha == want.sha256 => None,
                Ok(sha) => Some(format!("sha256 {sha}, the archive holds {}", want.sha256)),
                Err(e) => Some(format!("cannot be read: {e}")),
            },
        };
        if let Some(what) = problem {
            problems.push(TreeProblem {
                path: rel.clone(),
                what,
            });
        }
    }
    for entry in walkdir::WalkDir::new(dest)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.with_context(|| format!("listing {}", dest.display()))?;
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = relative_name(dest, entry.path());
        if rel != MARKER && rel != MANIFEST && !manifest.files.contains_key(&rel) {
            problems.push(TreeProblem {
                path: rel,
                what: "added: not in the archive".into(),
            });
        }
    }
    Ok(problems)
}

fn relative_name(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

const BUF_SIZE: usize = 256 * 1024;

/// Bounds on what one archive may expand to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Total bytes written across all entries. Default: 64 GiB.
    pub max_total_bytes: u64,
    /// Entries of any kind (files, folders). Default: 2,000,000.
    pub max_entries: u64,
    /// Expanded bytes divided by the archive's size on disk. Default: 200.
    pub max_ratio: u64,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_total_bytes: 64 << 30,
            max_entries: 2_000_000,
            max_ratio: 200,
        }
    }
}

/// What an extraction produced (the marker not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractReport {
    /// Regular files written.
    pub files: u64,
    /// Bytes written into them.
    pub bytes: u64,
}

/// `.tar.gz`/`.tgz` → [`ArchiveKind::TarGz`], `.zip` → [`ArchiveKind::Zip`] (case-insensitive),
/// anything else → [`ArchiveKind::None`].
pub fn kind_from_name(name: &str) -> ArchiveKind {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        ArchiveKind::TarGz
    } else if lower.ends_with(".zip") {
        ArchiveKind::Zip
    } else {
        ArchiveKind::None
    }
}

/// Extract `archive` into the folder `dest` (see the module docs for what is refused).
///
/// If `dest` already holds a marker for this archive and a manifest, returns its report without
/// extracting (whether its files still match is [`check_tree`]'s business). A marker for a
/// different archive, or a tree extracted before manifests existed, is stale: it is replaced
/// once the new one is complete. A `dest` without a marker is an error (interrupted or foreign;
/// remove it by hand).
/// [`ArchiveKind::None`] copies the file into `dest/<file name>`.
pub fn extract(
    archive: &Path,
    kind: ArchiveKind,
    dest: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractReport> {
    let archive_sha = hash::sha256_file(archive)
        .with_context(|| format!("reading archive {}", archive.display()))?;
    let stale = match fs::symlink_metadata(dest) {
        Ok(meta) => {
            if !meta.is_dir() {
                bail!("{} exists and is not a folder", dest.display());
            }
            match fs::read_to_string(dest.join(MARKER)) {
                Ok(m)
                    if m.trim().eq_ignore_ascii_case(&archive_sha)
                        && dest.join(MANIFEST).exists() =>
                {
                    tracing::debug!(dest = %dest.display(), "already extracted");
                    return report_existing(dest);
                }
                Ok(m) if m.trim().eq_ignore_ascii_case(&archive_sha) => {
                    tracing::info!(dest = %dest.display(), "extracted without a manifest; redoing");
                    true
                }
                Ok(_) => {
                    tracing::info!(dest = %dest.display(), "extracted from another archive; redoing");
                    true
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
                    "{} exists but has no {MARKER} marker (interrupted or not ours); remove it to extract again",
                    dest.display()
                ),
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("reading {}", dest.join(MARKER).display()));
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("checking {}", dest.display())),
    };

    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dest_name = dest
        .file_name()
        .ok_or_else(|| anyhow!("{} has no final component", dest.display()))?
        .to_string_lossy()
        .into_owned();
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    // Removed on drop: every early return below leaves nothing behind.
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{dest_name}."))
        .suffix(".partial")
        .tempdir_in(parent)
        .with_context(|| format!("creating a temp folder in {}", parent.display()))?;
    set_folder_mode(tmp.path())?;

    let compressed = fs::metadata(archive)
        .with_context(|| format!("reading {}", archive.display()))?
        .len();
    let mut budget = Budget {
        limits,
        compressed,
        check_ratio: kind != ArchiveKind::None,
        report: ExtractReport::default(),
        entries: 0,
        manifest: TreeManifest {
            archive_sha256: archive_sha.clone(),
            files: BTreeMap::new(),
        },
    };
    match kind {
        ArchiveKind::TarGz => extract_tar(archive, tmp.path(), &mut budget),
        ArchiveKind::Zip => extract_zip(archive, tmp.path(), &mut budget),
        ArchiveKind::None => copy_plain(archive, tmp.path(), &mut budget),
    }
    .with_context(|| format!("extracting {} into {}", archive.display(), dest.display()))?;

    let manifest = serde_json::to_vec(&budget.manifest)?;
    let mut f = File::create(tmp.path().join(MANIFEST)).context("writing the manifest")?;
    f.write_all(&manifest)?;
    f.sync_all()?;
    let mut marker = File::create(tmp.path().join(MARKER)).context("writing the marker")?;
    marker.write_all(format!("{archive_sha}\n").as_bytes())?;
    marker.sync_all()?;
    atomic::sync_dir(tmp.path())?;

    if stale {
        replace_dir(tmp.path(), dest, &dest_name, parent)?;
    } else {
        fs::rename(tmp.path(), dest)
            .with_context(|| format!("moving the extracted tree to {}", dest.display()))?;
    }
    // The temp folder is now `dest`; keep() only disarms its removal on drop.
    let _ = tmp.keep();
    atomic::sync_dir(parent)?;
    Ok(budget.report)
}

/// Swap a finished tree in for a stale one: old aside, new in, old removed.
fn replace_dir(new: &Path, dest: &Path, dest_name: &str, parent: &Path) -> Result<()> {
    let aside = tempfile::Builder::new()
        .prefix(&format!(".{dest_name}."))
        .suffix(".stale")
        .tempdir_in(parent)?;
    let old = aside.path().join("old");
    fs::rename(dest, &old).with_context(|| format!("moving aside {}", dest.display()))?;
    if let Err(e) = fs::rename(new, dest) {
        // Put the old tree back rather than leave nothing; `aside` is then empty and removed.
        let _ = fs::rename(&old, dest);
        return Err(e).with_context(|| format!("moving the extracted tree to {}", dest.display()));
    }
    // Dropping `aside` removes the old tree.
    drop(aside);
    Ok(())
}

fn report_existing(dest: &Path) -> Result<ExtractReport> {
    let mut report = ExtractReport::default();
    for entry in walkdir::WalkDir::new(dest).follow_links(false) {
        let entry = entry.with_context(|| format!("listing {}", dest.display()))?;
        if entry.file_type().is_file()
            && entry.path() != dest.join(MARKER)
            && entry.path() != dest.join(MANIFEST)
        {
            report.files += 1;
            report.bytes += entry.metadata()?.len();
        }
    }
    Ok(report)
}

struct Budget<'a> {
    limits: &'a ExtractLimits,
    compressed: u64,
    check_ratio: bool,
    report: ExtractReport,
    entries: u64,
    manifest: TreeManifest,
}

impl Budget<'_> {
    fn entry(&mut self, name: &str) -> Result<()> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            bail!(
                "refusing {name:?}: more than {} entries (max_entries)",
                self.limits.max_entries
            );
        }
        Ok(())
    }

    /// Account for `n` more bytes of `name` before they are written.
    fn bytes(&mut self, name: &str, n: u64) -> Result<()> {
        let total = self.report.bytes + n;
        if total > self.limits.max_total_bytes {
            bail!(
                "refusing {name:?}: expands past {} bytes in total (max_total_bytes)",
                self.limits.max_total_bytes
            );
        }
        if self.check_ratio && total > self.compressed.saturating_mul(self.limits.max_ratio) {
            bail!(
                "refusing {name:?}: expands to more than {} times the archive's {} bytes (max_ratio; a decompression bomb?)",
                self.limits.max_ratio,
                self.compressed
            );
        }
        self.report.bytes = total;
        Ok(())
    }
}

fn extract_tar(archive: &Path, root: &Path, budget: &mut Budget<'_>) -> Result<()> {
    use tar::EntryType;

    let file = File::open(archive)?;
    let mut tar = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    for entry in tar.entries().context("reading the tar stream")? {
        let mut entry = entry.context("reading a tar entry")?;
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8(raw)
            .map_err(|e| anyhow!("refusing entry {:?}: path is not UTF-8", e.as_bytes()))?;
        budget.entry(&name)?;
        let rel = safe_relative(&name)?;
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                write_file(&mut entry, root, &rel, &name, budget)?;
            }
            EntryType::Directory => create_dir(root, &rel, &name)?,
            EntryType::Symlink | EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                bail!("refusing {name:?}: links are never extracted (link to {target:?})");
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                bail!("refusing {name:?}: device files and fifos are never extracted")
            }
            other => bail!("refusing {name:?}: unsupported tar entry type {other:?}"),
        }
    }
    Ok(())
}

fn extract_zip(archive: &Path, root: &Path, budget: &mut Budget<'_>) -> Result<()> {
    const S_IFMT: u32 = 0o170000;
    const S_IFREG: u32 = 0o100000;
    const S_IFDIR: u32 = 0o040000;

    let file = File::open(archive)?;
    let mut zip =
        zip::ZipArchive::new(BufReader::new(file)).context("reading the zip directory")?;
    if zip.len() as u64 > budget.limits.max_entries {
        bail!(
            "refusing archive: {} entries, more than {} (max_entries)",
            zip.len(),
            budget.limits.max_entries
        );
    }
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .with_context(|| format!("reading zip entry {i}"))?;
        let name = entry.name().to_string();
        budget.entry(&name)?;
        let rel = safe_relative(&name)?;
        if entry.enclosed_name().is_none() {
            bail!("refusing {name:?}: path escapes the destination");
        }
        if entry.is_symlink() {
            bail!("refusing {name:?}: symlinks are never extracted");
        }
        let file_type = entry.unix_mode().unwrap_or(0) & S_IFMT;
        if file_type != 0 && file_type != S_IFREG && file_type != S_IFDIR {
            bail!("refusing {name:?}: device files, fifos and sockets are never extracted");
        }
        if entry.is_dir() || file_type == S_IFDIR {
            create_dir(root, &rel, &name)?;
        } else {
            write_file(&mut entry, root, &rel, &name, budget)?;
        }
    }
    Ok(())
}

fn copy_plain(path: &Path, root: &Path, budget: &mut Budget<'_>) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{} has no file name", path.display()))?
        .to_string_lossy()
        .into_owned();
    budget.entry(&name)?;
    let rel = safe_relative(&name)?;
    let mut file = File::open(path)?;
    write_file(&mut file, root, &rel, &name, budget)
}

/// Stream one entry to `root/rel`, counting every byte against the budget before writing it.
fn write_file(
    reader: &mut dyn Read,
    root: &Path,
    rel: &Path,
    name: &str,
    budget: &mut Budget<'_>,
) -> Result<()> {
    if rel.as_os_str().is_empty() {
        bail!("refusing {name:?}: a file entry with an empty path");
    }
    let out_path = root.join(rel);
    if let Some(dir) = out_path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating the folder for {name:?}"))?;
    }
    let mut out = File::create(&out_path).with_context(|| format!("creating {name:?}"))?;
    let mut sha = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {name:?}")),
        };
        budget.bytes(name, n as u64)?;
        out.write_all(&buf[..n])
            .with_context(|| format!("writing {name:?}"))?;
        sha.update(&buf[..n]);
        size += n as u64;
    }
    // The marker claims completeness, so the data must be durable before it is written.
    out.sync_all()
        .with_context(|| format!("syncing {name:?}"))?;
    budget.report.files += 1;
    // A later entry of the same name overwrites the file, and so its manifest line.
    budget.manifest.files.insert(
        relative_name(Path::new(""), rel),
        TreeFile {
            size,
            sha256: hex::encode(sha.finalize()),
        },
    );
    Ok(())
}

fn create_dir(root: &Path, rel: &Path, name: &str) -> Result<()> {
    fs::create_dir_all(root.join(rel)).with_context(|| format!("creating folder {name:?}"))
}

/// Validate an entry name and turn it into a relative path made of plain components only.
/// An empty result means the archive root itself (e.g. `./`).
fn safe_relative(name: &str) -> Result<PathBuf> {
    let refuse = |why: &str| Err(anyhow!("refusing {name:?}: {why}"));
    if name.contains('\0') {
        return refuse("path contains NUL");
    }
    if name.starts_with('/') {
        return refuse("absolute path");
    }
    if name.contains('\\') {
        return refuse("backslash in path (Windows path or UNC prefix)");
    }
    let first = name.split('/').next().unwrap_or("");
    if first.len() >= 2 && first.as_bytes()[1] == b':' && first.as_bytes()[0].is_ascii_alphabetic()
    {
        return refuse("Windows drive prefix");
    }
    let mut rel = PathBuf::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return refuse("path contains a '..' component"),
            p => rel.push(p),
        }
    }
    if rel == Path::new(MARKER) || rel == Path::new(MANIFEST) {
        return refuse("name reserved for the extraction marker and manifest");
    }
    Ok(rel)
}

/// tempdir_in creates 0700 folders; the extracted tree should read like any other folder.
fn set_folder_mode(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("setting permissions on {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(kind_from_name("a.tar.gz"), ArchiveKind::TarGz);
        assert_eq!(kind_from_name("A.TGZ"), ArchiveKind::TarGz);
        assert_eq!(kind_from_name("a.zip"), ArchiveKind::Zip);
        assert_eq!(kind_from_name("a.bin"), ArchiveKind::None);
        assert_eq!(kind_from_name("a.tar"), ArchiveKind::None);
    }

    #[test]
    fn relative_paths() {
        assert_eq!(safe_relative("./a/b").unwrap(), PathBuf::from("a/b"));
        assert_eq!(safe_relative("./").unwrap(), PathBuf::new());
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "C:/x",
            "c:x",
            "a\\..\\x",
            "\\\\server\\share",
            ".extracted",
            "./.manifest.json",
        ] {
            assert!(safe_relative(bad).is_err(), "{bad:?}");
        }
    }
}
