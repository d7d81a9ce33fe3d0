//! The content-addressed store under `artifacts/`:
//! - `objects/sha256/ab/cdef…`: immutable, read-only output files named by their sha256;
//! - `runs/<key>.json`: one record per finished run (see [`record`]);
//! - `refs/<profile>/<hash of run id>.json`: the latest key of each run id, for "what changed";
//! - `locks/`: advisory locks (one per key while it runs; one store-wide, shared by runs and
//!   taken exclusively by `gc`), `tmp/`: scratch on the same filesystem, `cache/`: the stat cache;
//! - `work/<key>/`: the outputs and checkpoints of a run in progress, where an interrupted run
//!   resumes (see [`work`]); removed once its record is written.
//!
//! Every write is atomic (temp, fsync, rename), so a crash never leaves a partial file visible.

pub mod atomic;
pub mod hash;
pub mod record;
pub mod statcache;
pub mod work;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use atomic::{rename_durable, write_atomic};
use record::{ObjectRef, RunRecord};

pub struct Store {
    root: PathBuf,
}

/// A held advisory lock; released on drop.
pub struct Held(#[allow(dead_code)] File);

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
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn object_path(&self, sha256: &str) -> PathBuf {
        let (a, b) = sha256.split_at(2.min(sha256.len()));
        self.root.join("objects/sha256").join(a).join(b)
    }

    /// The work folder of run `key` (hold the key's lock while using it).
    pub fn work(&self, key: &str) -> Result<work::WorkDir> {
        work::WorkDir::open(self.root.join("work").join(key))
    }

    /// A fresh scratch folder on the store's filesystem.
    pub fn scratch(&self, prefix: &str) -> Result<tempfile::TempDir> {
        Ok(tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(self.root.join("tmp"))?)
    }

    /// Move `file` into the store as an object; returns its reference. An identical object
    /// already there is kept (objects are immutable) and `file` is removed.
    pub fn put_file(&self, file: &Path) -> Result<ObjectRef> {
        let d =
            hash::digests_file(file).with_context(|| format!("cannot read {}", file.display()))?;
        let dest = self.object_path(&d.sha256);
        if dest.exists() {
            fs::remove_file(file)?;
        } else {
            fs::set_permissions(file, fs::Permissions::from_mode(0o444))?;
            rename_durable(file, &dest)
                .with_context(|| format!("cannot move object into {}", dest.display()))?;
        }
        Ok(ObjectRef {
            sha256: d.sha256,
            size: d.size,
        })
    }

    /// Check that an object is present with the right size (cheap).
    pub fn has_object(&self, o: &ObjectRef) -> bool {
        fs::metadata(self.object_path(&o.sha256)).is_ok_and(|m| m.len() == o.size)
    }

    /// Re-hash an object; an error says whether it is missing or corrupt.
    pub fn verify_object(&self, o: &ObjectRef) -> Result<PathBuf> {
        let path = self.object_path(&o.sha256);
        let actual = match hash::sha256_file(&path) {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                bail!("object {} is missing ({})", o.sha256, path.display())
            }
            Err(e) => bail!("object {} cannot be read: {e}", o.sha256),
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
        write_atomic(&self.record_path(&r.key), &bytes)
            .with_context(|| format!("cannot write run record {}", r.key))
    }

    /// Every run record in the store (unreadable ones are reported as errors).
    pub fn records(&self) -> Result<Vec<Result<RunRecord>>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.root.join("runs"))? {
            let path = e?.path();
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
        Ok(write_atomic(&self.ref_path(profile, run_id), &bytes)?)
    }

    /// Exclusive lock on one key, blocking until free: two processes never run the same key.
    pub fn lock_key(&self, key: &str) -> Result<Held> {
        let f = File::create(self.root.join("locks").join(format!("{key}.lock")))?;
        f.lock()?;
        Ok(Held(f))
    }

    /// An exclusive lock of a name (e.g. one profile's Slurm submissions).
    pub fn lock_named(&self, name: &str) -> Result<Held> {
        let f = File::create(self.root.join("locks").join(format!("{name}.lock")))?;
        f.lock()?;
        Ok(Held(f))
    }

    /// Shared store lock held by every process that writes runs; `gc` takes it exclusively.
    pub fn lock_shared(&self) -> Result<Held> {
        let f = File::create(self.root.join("locks/store.lock"))?;
        f.lock_shared()?;
        Ok(Held(f))
    }

    pub fn lock_exclusive(&self) -> Result<Held> {
        let f = File::create(self.root.join("locks/store.lock"))?;
        f.lock()?;
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

    /// Objects no run record and no digest in `keep` refer to: (sha256, path, size).
    pub fn unreferenced(&self, keep: &BTreeSet<String>) -> Result<Vec<(String, PathBuf, u64)>> {
        let mut live = keep.clone();
        for r in self.records()? {
            let r = r?;
            live.extend(r.outputs.values().map(|o| o.sha256.clone()));
        }
        let mut out = Vec::new();
        for (sha, path) in self.objects()? {
            if !live.contains(&sha) {
                let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                out.push((sha, path, size));
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
}
