//! A stat cache: (path, size, mtime, inode) → sha256, so unchanged large files (datasets) are
//! not re-hashed on every run. Kept in `artifacts/cache/stat.json`; losing it only costs time.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::atomic::write_atomic;
use super::hash::{FileDigests, digests_file};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    size: u64,
    mtime_ns: i128,
    inode: u64,
    sha256: String,
    md5: String,
}

#[derive(Debug, Default)]
pub struct StatCache {
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
    dirty: bool,
    /// Files hashed (not served from the cache) since load; for tests and benchmarks.
    pub hashed: usize,
}

impl StatCache {
    pub fn load(path: &Path) -> StatCache {
        let entries = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        StatCache {
            path: path.to_path_buf(),
            entries,
            dirty: false,
            hashed: 0,
        }
    }

    /// Digests of `file`, from the cache when its size, mtime and inode are unchanged.
    pub fn digests(&mut self, file: &Path) -> std::io::Result<FileDigests> {
        let meta = std::fs::metadata(file)?;
        let mtime_ns = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
        let name = file.canonicalize()?.to_string_lossy().into_owned();
        if let Some(e) = self.entries.get(&name)
            && e.size == meta.len()
            && e.mtime_ns == mtime_ns
            && e.inode == meta.ino()
        {
            return Ok(FileDigests {
                sha256: e.sha256.clone(),
                md5: e.md5.clone(),
                size: e.size,
            });
        }
        let d = digests_file(file)?;
        self.hashed += 1;
        self.entries.insert(
            name,
            Entry {
                size: d.size,
                mtime_ns,
                inode: meta.ino(),
                sha256: d.sha256.clone(),
                md5: d.md5.clone(),
            },
        );
        self.dirty = true;
        Ok(d)
    }

    /// Forget a file (e.g. after it was found corrupt).
    pub fn forget(&mut self, file: &Path) {
        if let Ok(name) = file.canonicalize() {
            self.dirty |= self.entries.remove(&*name.to_string_lossy()).is_some();
        }
    }

    pub fn save(&mut self) -> std::io::Result<()> {
        if self.dirty {
            let bytes = serde_json::to_vec(&self.entries).map_err(std::io::Error::other)?;
            write_atomic(&self.path, &bytes)?;
            self.dirty = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_once_until_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("data.bin");
        std::fs::write(&f, b"hello").unwrap();
        let cache_path = dir.path().join("stat.json");
        let mut c = StatCache::load(&cache_path);
        let a = c.digests(&f).unwrap();
        c.save().unwrap();
        let mut c = StatCache::load(&cache_path);
        assert_eq!(c.digests(&f).unwrap(), a);
        assert_eq!(c.hashed, 0, "unchanged file must come from the cache");
        std::fs::write(&f, b"HELLO, longer").unwrap();
        let b = c.digests(&f).unwrap();
        assert_ne!(a.sha256, b.sha256);
        assert_eq!(c.hashed, 1);
    }
}
