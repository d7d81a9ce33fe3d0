//! Garbage collection of the store (`repro gc`): objects that no run record, no pulled
//! publication and no digest in `pipeline.lock` refer to, work folders of runs that finished after all, and scratch left by
//! crashed processes. Work folders of interrupted runs are kept: the next run resumes from them.
//! Runs hold the store's shared lock, so gc, holding it exclusively, never races one.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::Store;

/// What a collection found, and removed when applied.
#[derive(Debug, Default)]
pub struct Collected {
    /// Unreferenced objects: (sha256, size in bytes).
    pub objects: Vec<(String, u64)>,
    /// Keys whose work folder is left over from a run killed after its record was written.
    pub finished_work: Vec<String>,
    /// Keys whose work folder belongs to an interrupted run (kept).
    pub interrupted_work: Vec<String>,
}

impl Collected {
    pub fn bytes(&self) -> u64 {
        self.objects.iter().map(|(_, size)| size).sum()
    }
}

impl Store {
    /// Find what is garbage, keeping every object whose digest is in `keep`; remove it when
    /// `apply`.
    pub fn gc(&self, keep: &BTreeSet<String>, apply: bool) -> Result<Collected> {
        let _exclusive = self.lock_exclusive()?;
        let mut found = Collected::default();
        for e in fs::read_dir(self.root.join("work"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let key = e.file_name().to_string_lossy().into_owned();
            // A fused group's folder is finished when every member's record is there.
            let finished = match super::memo::group_members(&e.path()) {
                Some(members) => members
                    .iter()
                    .all(|k| self.read_record(k).ok().flatten().is_some()),
                None => self.read_record(&key).ok().flatten().is_some(),
            };
            if finished {
                if apply {
                    fs::remove_dir_all(e.path())
                        .with_context(|| format!("cannot remove {}", e.path().display()))?;
                }
                found.finished_work.push(key);
            } else {
                found.interrupted_work.push(key);
            }
        }
        for (sha, path, size) in self.unreferenced(keep)? {
            if apply {
                fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
            found.objects.push((sha, size));
        }
        if apply {
            // No run holds the shared lock now, so leftover scratch folders are from crashes.
            for e in fs::read_dir(self.root.join("tmp"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        Ok(found)
    }

    /// Objects no run record, no pulled publication and no digest in `keep` refer to:
    /// (sha256, path, size).
    pub fn unreferenced(&self, keep: &BTreeSet<String>) -> Result<Vec<(String, PathBuf, u64)>> {
        let mut live = keep.clone();
        for r in self.records()? {
            let r = r?;
            live.extend(r.outputs.values().map(|o| o.sha256.clone()));
        }
        for profile in self.published_profiles()? {
            if let Some(p) = self.publication(&profile)? {
                live.insert(p.pipeline.sha256);
            }
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
