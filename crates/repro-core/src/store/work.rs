//! The work folder of a run in progress, `work/<key>/`, where an interrupted run resumes from:
//!
//! ```text
//! work/<key>/task.json, outcome.json   the engine↔worker files of the current attempt
//! work/<key>/out/                      the stage's out_dir (outputs being written)
//! work/<key>/checkpoints/LATEST        names the newest complete checkpoint
//! work/<key>/checkpoints/<unit>/       state.safetensors, state.json, out/ (out_dir as it was)
//! ```
//!
//! Only the holder of the key's lock touches the folder. A checkpoint is written under a
//! temporary name, fsynced, renamed into place, and only then named by `LATEST` (an atomic
//! write), so a kill at any moment leaves the previous checkpoint intact. Each attempt starts
//! from `out/` as the newest checkpoint saw it, so files a killed attempt half wrote vanish.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::atomic::{sync_dir, write_atomic};

/// The work folder of one run key.
#[derive(Debug, Clone)]
pub struct WorkDir {
    root: PathBuf,
}

impl WorkDir {
    /// `root` is `<store>/work/<key>`; created if missing.
    pub fn open(root: PathBuf) -> Result<WorkDir> {
        fs::create_dir_all(root.join("out"))
            .and_then(|_| fs::create_dir_all(root.join("checkpoints")))
            .with_context(|| format!("cannot create the work folder {}", root.display()))?;
        Ok(WorkDir { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn out_dir(&self) -> PathBuf {
        self.root.join("out")
    }

    pub fn checkpoints(&self) -> Checkpoints {
        Checkpoints {
            dir: self.root.join("checkpoints"),
        }
    }

    /// Make `out/` what the newest checkpoint saw (empty without one), and return that
    /// checkpoint's unit (epoch or iteration count), if any.
    pub fn prepare_attempt(&self) -> Result<Option<u64>> {
        let out = self.out_dir();
        remove_dir_if_exists(&out)?;
        fs::create_dir_all(&out)?;
        // Checkpoints a killed attempt never committed.
        let ck = self.checkpoints();
        for e in fs::read_dir(ck.dir())?.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                remove_dir_if_exists(&e.path())?;
            }
        }
        let Some((unit, dir)) = ck.latest()? else {
            return Ok(None);
        };
        copy_tree(&dir.join("out"), &out)
            .with_context(|| format!("cannot restore outputs from {}", dir.display()))?;
        Ok(Some(unit))
    }

    /// Drop the folder: the run finished (its outputs are in the store) or starts over.
    pub fn remove(self) -> Result<()> {
        remove_dir_if_exists(&self.root)
            .with_context(|| format!("cannot remove {}", self.root.display()))
    }
}

/// The checkpoints of one run (see the module doc for the layout).
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
}

impl Checkpoints {
    pub fn new(dir: PathBuf) -> Checkpoints {
        Checkpoints { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The newest complete checkpoint: (unit, folder). A `LATEST` naming a missing folder is an
    /// error (it cannot happen without someone deleting files by hand).
    pub fn latest(&self) -> Result<Option<(u64, PathBuf)>> {
        let pointer = self.dir.join("LATEST");
        let name = match fs::read_to_string(&pointer) {
            Ok(s) => s.trim().to_string(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", pointer.display())),
        };
        let unit: u64 = name.parse().with_context(|| {
            format!(
                "{} says {name:?}: expected a checkpoint number",
                pointer.display()
            )
        })?;
        let dir = self.dir.join(&name);
        anyhow::ensure!(
            dir.is_dir(),
            "{} names checkpoint {name}, which is missing: remove {} to start the run over",
            pointer.display(),
            self.dir.display()
        );
        Ok(Some((unit, dir)))
    }

    /// A fresh folder to write checkpoint files into; hand it to [`Checkpoints::commit`].
    pub fn begin(&self) -> Result<tempfile::TempDir> {
        fs::create_dir_all(&self.dir)?;
        Ok(tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(&self.dir)?)
    }

    /// Make the checkpoint in `tmp` (its files complete) the newest, with `out_dir` snapshotted
    /// into it, and remove older ones.
    pub fn commit(&self, tmp: tempfile::TempDir, unit: u64, out_dir: &Path) -> Result<()> {
        copy_tree(out_dir, &tmp.path().join("out"))?;
        sync_tree(tmp.path())?;
        let name = format!("{unit:08}");
        let dest = self.dir.join(&name);
        remove_dir_if_exists(&dest)?;
        fs::rename(tmp.keep(), &dest)?;
        sync_dir(&self.dir)?;
        write_atomic(&self.dir.join("LATEST"), name.as_bytes())?;
        for e in fs::read_dir(&self.dir)?.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let stale = n != name && n != "LATEST" && !n.starts_with(".tmp-");
            if stale {
                remove_dir_if_exists(&e.path())?;
            }
        }
        Ok(())
    }
}

fn remove_dir_if_exists(p: &Path) -> Result<()> {
    match fs::remove_dir_all(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", p.display()))
        }
        _ => Ok(()),
    }
}

/// Copy every file under `from` to the same place under `to`.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for e in walkdir::WalkDir::new(from).min_depth(1) {
        let e = e?;
        let dest = to.join(e.path().strip_prefix(from)?);
        if e.file_type().is_dir() {
            fs::create_dir_all(&dest)?;
        } else if e.file_type().is_file() {
            fs::copy(e.path(), &dest)
                .with_context(|| format!("cannot copy {}", e.path().display()))?;
        }
    }
    Ok(())
}

/// fsync every file and folder under `dir`, so a rename of `dir` publishes durable contents.
fn sync_tree(dir: &Path) -> Result<()> {
    for e in walkdir::WalkDir::new(dir).contents_first(true) {
        let e = e?;
        if e.file_type().is_dir() {
            sync_dir(e.path())?;
        } else {
            fs::File::open(e.path())?.sync_all()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn an_attempt_starts_from_the_newest_checkpoint_outputs() {
        let root = tempfile::tempdir().unwrap();
        let work = WorkDir::open(root.path().join("k")).unwrap();
        assert_eq!(work.prepare_attempt().unwrap(), None);
        let out = work.out_dir();
        fs::write(out.join("metrics.jsonl"), "row0\n").unwrap();
        let ck = work.checkpoints();
        let tmp = ck.begin().unwrap();
        fs::write(tmp.path().join("state.json"), "{}").unwrap();
        ck.commit(tmp, 1, &out).unwrap();
        fs::write(out.join("metrics.jsonl"), "row0\nrow1\n").unwrap();
        let tmp = ck.begin().unwrap();
        ck.commit(tmp, 2, &out).unwrap();
        assert_eq!(names(ck.dir()), ["00000002", "LATEST"], "older ones go");

        // A killed attempt half wrote a row and a file; the next one does not see them.
        fs::write(out.join("metrics.jsonl"), "row0\nrow1\nro").unwrap();
        fs::write(out.join("final.safetensors"), "partial").unwrap();
        // …and left a checkpoint it never committed.
        let abandoned = ck.begin().unwrap().keep();
        assert_eq!(work.prepare_attempt().unwrap(), Some(2));
        assert_eq!(names(&out), ["metrics.jsonl"]);
        assert_eq!(
            fs::read_to_string(out.join("metrics.jsonl")).unwrap(),
            "row0\nrow1\n"
        );
        assert!(!abandoned.exists(), "uncommitted checkpoints are dropped");
        assert_eq!(ck.latest().unwrap().unwrap().0, 2);
    }

    #[test]
    fn a_dangling_pointer_is_an_error_that_says_what_to_do() {
        let root = tempfile::tempdir().unwrap();
        let work = WorkDir::open(root.path().join("k")).unwrap();
        fs::write(work.checkpoints().dir().join("LATEST"), "00000007").unwrap();
        let e = work.prepare_attempt().unwrap_err().to_string();
        assert!(
            e.contains("00000007") && e.contains("start the run over"),
            "{e}"
        );
    }
}
