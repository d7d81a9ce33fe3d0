//! The content-addressed store under `artifacts/`:
//! - `objects/sha256/ab/cdef…`: immutable, read-only output files named by their sha256;
//! - `runs/<key>.json`: one record per finished run (see [`record`]);
//! - `refs/<profile>/<hash of run id>.json`: the latest key of each run id, for "what changed";
//! - `locks/`: advisory locks (one per key while it runs; one store-wide, shared by runs and
//!   taken exclusively by `gc`), `tmp/`: scratch on the same filesystem, `cache/`: the stat cache;
//! - `work/<key>/`: the outputs and checkpoints of a run in progress, where an interrupted run
//!   resumes (see [`work`]); removed once its record is written;
//! - `quarantine/`: objects found corrupt, moved aside (never deleted) before their runs rebuild;
//! - `published/<profile>.json`: a profile's results as pulled or imported (see [`published`]).
//!
//! Every write is atomic (temp, fsync, rename), so a crash never leaves a partial file visible.
//! An object counts as present only when it is intact: its stat matches the verified-stat cache
//! ([`statcache`]) or its bytes re-hash to its name; writing an object over a damaged copy
//! repairs it.

pub mod atomic;
pub mod gc;
pub mod hash;
pub mod key;
pub mod memo;
pub mod published;
pub mod record;
pub mod statcache;
pub mod work;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use atomic::{rename_durable, write_atomic};
use record::{ObjectRef, RunRecord};
use statcache::StatCache;

pub struct Store {
    root: PathBuf,
    /// Loaded on first use; shared by the scheduling threads of one process.
    stat: OnceLock<Mutex<StatCache>>,
    /// Re-hash every object instead of trusting the stat cache (`repro run --verify`).
    rehash: bool,
    /// sha256 → run ids of the records listing it; built when a corrupt object needs owners.
    owners: OnceLock<BTreeMap<String, Vec<String>>>,
}

/// A held advisory lock; released on drop.
pub struct Held(#[allow(dead_code)] File);

/// How an object stands against the digest and size its record names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectState {
    Intact,
    Missing,
    /// Present, but its size or bytes are not the ones named (what was found, in words).
    Corrupt(String),
    /// Present but unreadable (permissions, I/O error).
    Unreadable(String),
}

impl ObjectState {
    pub fn is_intact(&self) -> bool {
        matches!(self, ObjectState::Intact)
    }
}

/// A damaged object of a record.
#[derive(Debug, Clone)]
pub struct Damage {
    /// The output's name in the record.
    pub name: String,
    pub object: ObjectRef,
    pub state: ObjectState,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.state {
            ObjectState::Intact => write!(f, "output {} is intact", self.name),
            ObjectState::Missing => write!(f, "output {} is missing", self.name),
            ObjectState::Corrupt(what) => write!(f, "output {} is corrupt ({what})", self.name),
            ObjectState::Unreadable(e) => write!(f, "output {} cannot be read ({e})", self.name),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct RefFile {
    run_id: String,
    key: String,
}

impl Store {
    /// Open (creating the folders of) a store.
    pub fn open(root: &Path) -> Result<Store> {
        for sub in ["objects/sha256", "runs", "refs", "locks", "tmp", "cache"] {
            fs::create_dir_all(root.join(sub)).with_context(|| {
                format!("cannot create store folder {}", root.join(sub).display())
            })?;
        }
        Ok(Store {
            root: root.to_path_buf(),
            stat: OnceLock::new(),
            rehash: false,
            owners: OnceLock::new(),
        })
    }

    /// Re-hash every object checked from now on, ignoring the stat cache.
    pub fn set_rehash(&mut self, rehash: bool) {
        self.rehash = rehash;
        if let Some(m) = self.stat.get_mut() {
            m.get_mut().unwrap_or_else(|e| e.into_inner()).rehash = rehash;
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The verified-stat cache of this store (objects and dataset files).
    pub fn stat(&self) -> MutexGuard<'_, StatCache> {
        self.stat
            .get_or_init(|| {
                let mut c = StatCache::load(&self.root.join("cache/stat.json"), &self.root);
                c.rehash = self.rehash;
                Mutex::new(c)
            })
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Write the stat cache's new entries (losing them only costs time, so callers may ignore
    /// the error).
    pub fn save_stat(&self) -> Result<()> {
        if self.stat.get().is_some() {
            let path = self.root.join("cache/stat.json");
            self.stat()
                .save()
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }

    pub fn object_path(&self, sha256: &str) -> PathBuf {
        let (a, b) = sha256.split_at(2.min(sha256.len()));
        self.root.join("objects/sha256").join(a).join(b)
    }

    /// The work folder of run `key` (hold the key's lock while using it).
    pub fn work(&self, key: &str) -> Result<work::WorkDir> {
        work::WorkDir::open(self.root.join("work").join(key))
    }

    /// `cache/`: caches, rebuilt when lost (stat caches, the device probe).
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// `quarantine/<what>/`: where damaged files of one sort are moved aside.
    pub fn quarantine_dir(&self, what: &str) -> PathBuf {
        self.root.join("quarantine").join(what)
    }

    /// `<backend>/`: the submissions, ledgers and job logs of a queue backend (`slurm`), created.
    pub fn queue_dir(&self, backend: &str) -> Result<PathBuf> {
        let dir = self.root.join(backend);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(dir)
    }

    /// How many run records the store holds.
    pub fn record_count(&self) -> usize {
        fs::read_dir(self.root.join("runs")).map_or(0, |d| d.count())
    }

    /// `logs/<key>.log`: a run's worker output, one section per attempt (the folder is
    /// created).
    pub fn log_path(&self, key: &str) -> Result<PathBuf> {
        let logs = self.root.join("logs");
        fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
        Ok(logs.join(format!("{key}.log")))
    }

    /// A fresh scratch folder on the store's filesystem.
    pub fn scratch(&self, prefix: &str) -> Result<tempfile::TempDir> {
        let tmp = self.root.join("tmp");
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&tmp)
            .with_context(|| format!("cannot create a scratch folder in {}", tmp.display()))
    }

    /// Move `file` into the store as an object; returns its reference. An intact object already
    /// there is kept (objects are immutable) and `file` is removed; a damaged one is replaced
    /// by `file`, atomically, and the repair is logged.
    pub fn put_file(&self, file: &Path) -> Result<ObjectRef> {
        let d =
            hash::digests_file(file).with_context(|| format!("cannot read {}", file.display()))?;
        let o = ObjectRef {
            sha256: d.sha256,
            size: d.size,
        };
        self.put_verified(file, &o)?;
        Ok(o)
    }

    /// [`Store::put_file`] for a `file` whose bytes the caller already hashed to `o` as they
    /// were written (a pulled or imported object): not read again.
    pub fn put_verified(&self, file: &Path, o: &ObjectRef) -> Result<()> {
        let dest = self.object_path(&o.sha256);
        match self.check_object(o) {
            ObjectState::Intact => {
                fs::remove_file(file)
                    .with_context(|| format!("cannot remove {}", file.display()))?;
                return Ok(());
            }
            ObjectState::Missing => {}
            ObjectState::Corrupt(what) | ObjectState::Unreadable(what) => tracing::warn!(
                "object {} was damaged ({what}): replaced by a fresh copy",
                dest.display()
            ),
        }
        fs::set_permissions(file, fs::Permissions::from_mode(0o444))
            .with_context(|| format!("cannot make {} read-only", file.display()))?;
        // A rename replaces a damaged file at `dest` in one step: readers see old or new.
        rename_durable(file, &dest)
            .with_context(|| format!("cannot move object into {}", dest.display()))?;
        self.stat().record_trusted(&dest, &o.sha256);
        Ok(())
    }

    /// Whether an object is present with the size and bytes it is named by: from the stat
    /// cache when the file's stat is unchanged since it was verified, else by re-hashing.
    pub fn check_object(&self, o: &ObjectRef) -> ObjectState {
        let path = self.object_path(&o.sha256);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return ObjectState::Missing,
            Err(e) => return ObjectState::Unreadable(e.to_string()),
        };
        if !meta.is_file() {
            return ObjectState::Corrupt("not a regular file".into());
        }
        if meta.len() != o.size {
            return ObjectState::Corrupt(format!("{} bytes, {} expected", meta.len(), o.size));
        }
        if self.stat().fresh_sha256(&path, &meta) == Some(o.sha256.as_str()) {
            return ObjectState::Intact;
        }
        // Hash outside the cache's lock: other scheduling threads keep checking meanwhile.
        let started = statcache::now_ns();
        match hash::sha256_file(&path) {
            Ok(actual) if actual == o.sha256 => {
                let mut stat = self.stat();
                stat.record_hashed(&path, started, &actual);
                stat.hashed += 1;
                stat.hashed_bytes += o.size;
                ObjectState::Intact
            }
            Ok(actual) => {
                self.stat().forget(&path);
                ObjectState::Corrupt(format!("its bytes hash to {}…", &actual[..12]))
            }
            Err(e) => ObjectState::Unreadable(e.to_string()),
        }
    }

    /// The outputs of a record that are not intact (empty: the run is cached).
    pub fn damaged_outputs(&self, r: &RunRecord) -> Vec<Damage> {
        r.outputs
            .iter()
            .filter_map(|(name, o)| {
                let state = self.check_object(o);
                (!state.is_intact()).then(|| Damage {
                    name: name.clone(),
                    object: o.clone(),
                    state,
                })
            })
            .collect()
    }

    /// Move a corrupt object aside to `quarantine/objects/` (never deleted), so the run that
    /// owns it rebuilds it; returns where it went. A missing object is left alone.
    pub fn quarantine_object(&self, sha256: &str) -> Result<Option<PathBuf>> {
        let path = self.object_path(sha256);
        if fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        let dir = self.root.join("quarantine/objects");
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let to = dir.join(format!("{sha256}.{}.corrupt", statcache::now_ns()));
        rename_durable(&path, &to)
            .with_context(|| format!("cannot move {} to {}", path.display(), to.display()))?;
        self.stat().forget(&path);
        Ok(Some(to))
    }

    /// Move the corrupt objects among a run's damaged outputs aside so it rebuilds them; one
    /// line per damaged output saying what is wrong, where, and which runs own the object.
    pub fn quarantine_damaged(&self, run_id: &str, damage: &[Damage]) -> Result<Vec<String>> {
        let mut lines = Vec::new();
        for d in damage {
            let moved = match d.state {
                ObjectState::Corrupt(_) => self.quarantine_object(&d.object.sha256)?,
                _ => None,
            };
            lines.push(format!(
                "{run_id}: {d}: {}{} (owned by {})",
                self.object_path(&d.object.sha256).display(),
                moved
                    .map(|q| format!(", moved to {}", q.display()))
                    .unwrap_or_default(),
                self.owners(&d.object.sha256).join(", ")
            ));
        }
        Ok(lines)
    }

    /// Run ids of every record that lists the object (the index is built once per process).
    pub fn owners(&self, sha256: &str) -> Vec<String> {
        let index = self.owners.get_or_init(|| {
            let mut index: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for r in self.records().unwrap_or_default().into_iter().flatten() {
                for o in r.outputs.values() {
                    index
                        .entry(o.sha256.clone())
                        .or_default()
                        .push(r.run_id.clone());
                }
            }
            index
        });
        let mut ids = index.get(sha256).cloned().unwrap_or_default();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Re-hash an object; an error says whether it is missing or corrupt.
    pub fn verify_object(&self, o: &ObjectRef) -> Result<PathBuf> {
        let path = self.object_path(&o.sha256);
        let actual = match hash::sha256_file(&path) {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                bail!("object {} is missing ({})", o.sha256, path.display())
            }
            Err(e) => bail!(
                "object {} cannot be read ({}): {e}",
                o.sha256,
                path.display()
            ),
        };
        if actual != o.sha256 {
            bail!(
                "object {} is corrupt: its content hashes to {actual} ({})",
                o.sha256,
                path.display()
            );
        }
        Ok(path)
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.root.join("runs").join(format!("{key}.json"))
    }

    pub fn read_record(&self, key: &str) -> Result<Option<RunRecord>> {
        let path = self.record_path(key);
        match fs::read(&path) {
            Ok(b) => Ok(Some(serde_json::from_slice(&b).with_context(|| {
                format!("run record {} is not valid", path.display())
            })?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn write_record(&self, r: &RunRecord) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(r)?;
        let path = self.record_path(&r.key);
        write_atomic(&path, &bytes)
            .with_context(|| format!("cannot write run record {}", path.display()))
    }

    /// Every run record in the store (unreadable ones are reported as errors).
    pub fn records(&self) -> Result<Vec<Result<RunRecord>>> {
        let mut out = Vec::new();
        let runs = self.root.join("runs");
        let dir = fs::read_dir(&runs).with_context(|| format!("cannot list {}", runs.display()))?;
        for e in dir {
            let path = e
                .with_context(|| format!("cannot list {}", runs.display()))?
                .path();
            if path.extension().is_some_and(|x| x == "json") {
                out.push(
                    fs::read(&path)
                        .map_err(anyhow::Error::from)
                        .and_then(|b| Ok(serde_json::from_slice(&b)?))
                        .with_context(|| format!("run record {}", path.display())),
                );
            }
        }
        Ok(out)
    }

    fn ref_path(&self, profile: &str, run_id: &str) -> PathBuf {
        let h = hash::sha256_bytes(run_id.as_bytes());
        self.root
            .join("refs")
            .join(profile)
            .join(format!("{}.json", &h[..32]))
    }

    /// The key last recorded for a run id in a profile.
    pub fn get_ref(&self, profile: &str, run_id: &str) -> Option<String> {
        let b = fs::read(self.ref_path(profile, run_id)).ok()?;
        let r: RefFile = serde_json::from_slice(&b).ok()?;
        (r.run_id == run_id).then_some(r.key)
    }

    pub fn set_ref(&self, profile: &str, run_id: &str, key: &str) -> Result<()> {
        let bytes = serde_json::to_vec(&RefFile {
            run_id: run_id.into(),
            key: key.into(),
        })?;
        let path = self.ref_path(profile, run_id);
        write_atomic(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Exclusive lock on one key, blocking until free: two processes never run the same key.
    pub fn lock_key(&self, key: &str) -> Result<Held> {
        self.lock_file(&format!("{key}.lock"), false)
    }

    /// An exclusive lock of a name (e.g. one profile's Slurm submissions).
    pub fn lock_named(&self, name: &str) -> Result<Held> {
        self.lock_file(&format!("{name}.lock"), false)
    }

    /// Shared store lock held by every process that writes runs; `gc` takes it exclusively.
    pub fn lock_shared(&self) -> Result<Held> {
        self.lock_file("store.lock", true)
    }

    pub fn lock_exclusive(&self) -> Result<Held> {
        self.lock_file("store.lock", false)
    }

    fn lock_file(&self, name: &str, shared: bool) -> Result<Held> {
        let path = self.root.join("locks").join(name);
        let f = File::create(&path).with_context(|| {
            format!(
                "cannot open the lock file {} (is the store writable?)",
                path.display()
            )
        })?;
        if shared { f.lock_shared() } else { f.lock() }
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(Held(f))
    }

    /// All objects on disk.
    pub fn objects(&self) -> Result<Vec<(String, PathBuf)>> {
        let mut out = Vec::new();
        for e in walkdir::WalkDir::new(self.root.join("objects/sha256"))
            .min_depth(2)
            .max_depth(2)
        {
            let e = e?;
            if e.file_type().is_file() {
                let dir = e
                    .path()
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                out.push((
                    format!("{dir}{}", e.file_name().to_string_lossy()),
                    e.path().to_path_buf(),
                ));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_content_addressed_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let f = dir.path().join("out.bin");
        fs::write(&f, b"payload").unwrap();
        let o = s.put_file(&f).unwrap();
        assert!(!f.exists());
        assert_eq!(o.sha256, hash::sha256_bytes(b"payload"));
        assert!(s.verify_object(&o).is_ok());
        let p = s.object_path(&o.sha256);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&p, b"pAyload").unwrap();
        let e = s.verify_object(&o).unwrap_err().to_string();
        assert!(e.contains("corrupt"), "{e}");
        fs::remove_file(&p).unwrap();
        assert!(
            s.verify_object(&o)
                .unwrap_err()
                .to_string()
                .contains("missing")
        );
    }

    #[test]
    fn put_file_repairs_a_damaged_object_and_check_sees_damage() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let f = dir.path().join("out.bin");
        fs::write(&f, b"payload").unwrap();
        let o = s.put_file(&f).unwrap();
        assert_eq!(s.check_object(&o), ObjectState::Intact);
        let p = s.object_path(&o.sha256);
        // Same size, one byte changed: the stat cache must not vouch for it.
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&p, b"pAyload").unwrap();
        assert!(matches!(s.check_object(&o), ObjectState::Corrupt(_)));
        // Writing the same content again replaces the damaged copy.
        fs::write(&f, b"payload").unwrap();
        assert_eq!(s.put_file(&f).unwrap(), o);
        assert_eq!(fs::read(&p).unwrap(), b"payload");
        assert_eq!(s.check_object(&o), ObjectState::Intact);
        // Truncated: found by size alone.
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&p, b"pay").unwrap();
        assert!(matches!(s.check_object(&o), ObjectState::Corrupt(w) if w.contains("3 bytes")));
        let q = s.quarantine_object(&o.sha256).unwrap().unwrap();
        assert_eq!(
            fs::read(&q).unwrap(),
            b"pay",
            "quarantine keeps the damaged bytes"
        );
        assert_eq!(s.check_object(&o), ObjectState::Missing);
    }

    #[test]
    fn lock_errors_name_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        // A lock path that cannot be opened (as a read-only store's cannot be, for non-root).
        fs::create_dir_all(dir.path().join("locks/store.lock")).unwrap();
        let e = format!("{:#}", s.lock_shared().err().unwrap());
        assert!(e.contains("locks/store.lock"), "{e}");
    }
}
