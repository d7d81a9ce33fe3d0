//! The verified-stat cache, as git's index keeps one: a file's (size, mtime, ctime, inode) →
//! the digests it had when they were last computed, so unchanged files (store objects, dataset
//! archives and extracted trees) are not re-hashed on every `run`, `plan` or `status`.
//!
//! Kept in `artifacts/cache/stat.json`; losing it only costs time. An in-place write changes
//! mtime and ctime (ctime cannot be set back from user space), so a changed file is re-hashed.
//! Bytes that change with no stat change (bit rot under the filesystem) are caught only by a
//! full re-hash: `repro verify` and `repro run --verify`.
//!
//! Two guards against trusting a stale entry:
//! - racy entries: file timestamps come from a coarse clock, so a file changed within a clock tick
//!   after it was hashed could keep its stat; an entry whose ctime is not safely older than the
//!   start of its hashing is not stored (the file is simply hashed again next time);
//! - concurrent processes: `save` re-reads the file under a lock and merges this process's
//!   changes into it, so two processes on one store never drop each other's entries.

use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::atomic::write_atomic;
use super::hash::{FileDigests, digests_file, sha256_file};

/// An entry is stored only when its ctime is this much older than the start of its hashing
/// (Linux file timestamps lag the real clock by up to one scheduler tick, 1–10 ms).
const RACY_NS: i128 = 50_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    inode: u64,
    sha256: String,
    /// Computed only for files that need it (dataset archives pinned by md5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    md5: Option<String>,
}

impl Entry {
    fn new(meta: &Metadata, sha256: String, md5: Option<String>) -> Entry {
        Entry {
            size: meta.len(),
            mtime_ns: mtime_ns(meta),
            ctime_ns: ctime_ns(meta),
            inode: meta.ino(),
            sha256,
            md5,
        }
    }

    fn matches(&self, meta: &Metadata) -> bool {
        self.size == meta.len()
            && self.mtime_ns == mtime_ns(meta)
            && self.ctime_ns == ctime_ns(meta)
            && self.inode == meta.ino()
    }
}

#[derive(Debug, Default)]
pub struct StatCache {
    path: PathBuf,
    /// Paths under this folder are keyed relative to it (no syscalls, and the store can move).
    base: PathBuf,
    entries: BTreeMap<String, Entry>,
    /// What this process changed since load: merged into the file on save.
    changed: BTreeMap<String, Option<Entry>>,
    /// Ignore entries and hash every file (`repro run --verify`); fresh hashes are still stored.
    pub rehash: bool,
    /// Files hashed (not served from the cache) since load; for tests and benchmarks.
    pub hashed: usize,
    /// Bytes read to hash them.
    pub hashed_bytes: u64,
}

impl StatCache {
    /// Load the cache kept at `path` (an unreadable or old-format file is an empty cache);
    /// paths under `base` are keyed relative to it.
    pub fn load(path: &Path, base: &Path) -> StatCache {
        StatCache {
            path: path.to_path_buf(),
            base: base.to_path_buf(),
            entries: read_entries(path),
            ..Default::default()
        }
    }

    fn name(&self, file: &Path) -> String {
        match file.strip_prefix(&self.base) {
            Ok(rel) => rel.to_string_lossy().into_owned(),
            Err(_) => std::path::absolute(file)
                .unwrap_or_else(|_| file.to_path_buf())
                .to_string_lossy()
                .into_owned(),
        }
    }

    /// The sha256 recorded for `file` if its stat (`meta`) is unchanged since it was hashed.
    pub fn fresh_sha256(&self, file: &Path, meta: &Metadata) -> Option<&str> {
        if self.rehash {
            return None;
        }
        self.entries
            .get(&self.name(file))
            .filter(|e| e.matches(meta))
            .map(|e| e.sha256.as_str())
    }

    /// sha256 and md5 of `file`, from the cache when its stat is unchanged.
    pub fn digests(&mut self, file: &Path) -> std::io::Result<FileDigests> {
        let meta = std::fs::metadata(file)?;
        let name = self.name(file);
        if !self.rehash
            && let Some(e) = self.entries.get(&name).filter(|e| e.matches(&meta))
            && let Some(md5) = &e.md5
        {
            return Ok(FileDigests {
                sha256: e.sha256.clone(),
                md5: md5.clone(),
                size: e.size,
            });
        }
        let started = now_ns();
        let d = digests_file(file)?;
        self.count(d.size);
        self.insert_hashed(name, file, started, d.sha256.clone(), Some(d.md5.clone()))?;
        Ok(d)
    }

    /// sha256 of `file`, from the cache when its stat is unchanged.
    pub fn sha256(&mut self, file: &Path) -> std::io::Result<String> {
        let meta = std::fs::metadata(file)?;
        if let Some(s) = self.fresh_sha256(file, &meta) {
            return Ok(s.to_string());
        }
        let started = now_ns();
        let sha = sha256_file(file)?;
        self.count(meta.len());
        self.insert_hashed(self.name(file), file, started, sha.clone(), None)?;
        Ok(sha)
    }

    /// Record a hash computed by the caller, which started reading the file at `started_ns`
    /// (see [`now_ns`]); racy entries are not stored.
    pub fn record_hashed(&mut self, file: &Path, started_ns: i128, sha256: &str) {
        let name = self.name(file);
        let _ = self.insert_hashed(name, file, started_ns, sha256.to_string(), None);
    }

    /// Record a file whose bytes the caller hashed itself and that nobody else can have written
    /// since (a store object it just renamed into place).
    pub fn record_trusted(&mut self, file: &Path, sha256: &str) {
        if let Ok(meta) = std::fs::metadata(file) {
            let name = self.name(file);
            self.set(name, Some(Entry::new(&meta, sha256.to_string(), None)));
        }
    }

    fn count(&mut self, bytes: u64) {
        self.hashed += 1;
        self.hashed_bytes += bytes;
    }

    fn insert_hashed(
        &mut self,
        name: String,
        file: &Path,
        started_ns: i128,
        sha256: String,
        md5: Option<String>,
    ) -> std::io::Result<()> {
        let meta = std::fs::metadata(file)?;
        if ctime_ns(&meta) + RACY_NS < started_ns {
            self.set(name, Some(Entry::new(&meta, sha256, md5)));
        } else {
            self.set(name, None);
        }
        Ok(())
    }

    fn set(&mut self, name: String, entry: Option<Entry>) {
        match &entry {
            Some(e) => self.entries.insert(name.clone(), e.clone()),
            None => self.entries.remove(&name),
        };
        self.changed.insert(name, entry);
    }

    /// Forget a file (e.g. after it was found corrupt or moved away).
    pub fn forget(&mut self, file: &Path) {
        let name = self.name(file);
        if self.entries.contains_key(&name) {
            self.set(name, None);
        }
    }

    /// Merge this process's changes into the file (under a lock, so concurrent savers keep
    /// each other's entries) and write it atomically.
    pub fn save(&mut self) -> std::io::Result<()> {
        if self.changed.is_empty() {
            return Ok(());
        }
        let lock_path = self.path.with_extension("lock");
        let lock = File::create(&lock_path)?;
        lock.lock()?;
        let mut on_disk = read_entries(&self.path);
        for (name, e) in std::mem::take(&mut self.changed) {
            match e {
                Some(e) => on_disk.insert(name, e),
                None => on_disk.remove(&name),
            };
        }
        let bytes = serde_json::to_vec(&on_disk).map_err(std::io::Error::other)?;
        write_atomic(&self.path, &bytes)?;
        self.entries = on_disk;
        Ok(())
    }
}

fn read_entries(path: &Path) -> BTreeMap<String, Entry> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn mtime_ns(meta: &Metadata) -> i128 {
    meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128
}

fn ctime_ns(meta: &Metadata) -> i128 {
    meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128
}

/// Wall-clock nanoseconds, the clock file timestamps come from; take it before reading a file
/// whose hash goes to [`StatCache::record_hashed`].
pub fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    fn settle() {
        // Let the file's ctime fall safely before the next hash's start (the racy window).
        std::thread::sleep(std::time::Duration::from_millis(
            2 * (RACY_NS / 1_000_000) as u64,
        ));
    }

    #[test]
    fn hashes_once_until_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("data.bin");
        std::fs::write(&f, b"hello").unwrap();
        settle();
        let cache_path = dir.path().join("stat.json");
        let mut c = StatCache::load(&cache_path, dir.path());
        let a = c.digests(&f).unwrap();
        c.save().unwrap();
        let mut c = StatCache::load(&cache_path, dir.path());
        assert_eq!(c.digests(&f).unwrap(), a);
        assert_eq!(c.hashed, 0, "unchanged file must come from the cache");
        std::fs::write(&f, b"HELLO, longer").unwrap();
        let b = c.digests(&f).unwrap();
        assert_ne!(a.sha256, b.sha256);
        assert_eq!(c.hashed, 1);
    }

    #[test]
    fn same_size_in_place_change_is_rehashed_even_with_mtime_restored() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("obj");
        std::fs::write(&f, b"payload").unwrap();
        let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
        settle();
        let mut c = StatCache::load(&dir.path().join("stat.json"), dir.path());
        let a = c.sha256(&f).unwrap();
        settle();
        let h = File::options().write(true).open(&f).unwrap();
        h.write_all_at(b"P", 0).unwrap();
        h.set_modified(mtime).unwrap(); // mtime as before: only ctime tells
        drop(h);
        let b = c.sha256(&f).unwrap();
        assert_ne!(a, b, "a changed file was served from the cache");
    }

    #[test]
    fn racy_entries_are_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("new");
        std::fs::write(&f, b"just written").unwrap();
        let mut c = StatCache::load(&dir.path().join("stat.json"), dir.path());
        c.sha256(&f).unwrap();
        c.sha256(&f).unwrap();
        assert_eq!(
            c.hashed, 2,
            "a file changed moments ago must not be trusted yet"
        );
    }

    #[test]
    fn concurrent_savers_keep_each_others_entries() {
        let dir = tempfile::tempdir().unwrap();
        let (f1, f2) = (dir.path().join("one"), dir.path().join("two"));
        std::fs::write(&f1, b"1").unwrap();
        std::fs::write(&f2, b"2").unwrap();
        settle();
        let path = dir.path().join("stat.json");
        let mut a = StatCache::load(&path, dir.path());
        let mut b = StatCache::load(&path, dir.path());
        a.sha256(&f1).unwrap();
        b.sha256(&f2).unwrap();
        a.save().unwrap();
        b.save().unwrap();
        let mut c = StatCache::load(&path, dir.path());
        c.sha256(&f1).unwrap();
        c.sha256(&f2).unwrap();
        assert_eq!(c.hashed, 0, "one saver dropped the other's entry");
    }
}
