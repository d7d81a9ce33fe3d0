//! The cached-stage protocol, written once for runs, generated datasets and the report: lock
//! the key, look again (another process may have finished it, or a damaged record's objects need
//! quarantining), compute into a scratch folder, put every file left there into the store, and
//! write the record last, so a crash at any moment leaves nothing visible but whole objects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use anyhow::Result;
use serde_json::{Map, Value};

use super::Store;
use super::atomic::write_atomic;
use super::hash;
use super::key::Manifest;
use super::record::RunRecord;

/// What a memoized computation is, as its record names it.
pub struct Job<'a> {
    pub run_id: &'a str,
    pub experiment: &'a str,
    /// Compute even when a record is present (`repro run --force`).
    pub force: bool,
    /// Compute in the key's resumable work folder ([`super::work`]) instead of a fresh scratch
    /// folder, so an interrupted attempt resumes from its checkpoints.
    pub resumable: bool,
    /// The machine it runs on, for the record.
    pub host: &'a str,
}

/// Where a computation writes: every file left under `out` becomes an output.
pub struct Scratch {
    /// The attempt's own folder (the engine↔worker files go here).
    pub root: PathBuf,
    pub out: PathBuf,
    /// Checkpoints of a resumable job; `None` for a fresh scratch folder.
    pub checkpoints: Option<PathBuf>,
    /// The unit (epoch, iteration) of the checkpoint this attempt resumes from.
    pub resumed: Option<u64>,
}

/// What a computation reports besides its files.
#[derive(Debug, Default)]
pub struct Computed {
    pub metrics: Map<String, Value>,
    pub environment: Map<String, Value>,
}

/// The record of a memoized job and how it was obtained.
pub struct Memo {
    pub record: RunRecord,
    /// `false`: the record was already there (finished by an earlier or another process).
    pub computed: bool,
    /// One line per damaged object moved to quarantine before computing again.
    pub quarantined: Vec<String>,
}

impl Store {
    /// The record of `manifest`'s key, computing it with `compute` when the store has no intact
    /// one. Holds the key's lock throughout, so two processes never compute one key at once.
    pub fn memoize(
        &self,
        manifest: Manifest,
        job: Job,
        compute: impl FnOnce(&Scratch) -> Result<Computed>,
    ) -> Result<Memo> {
        let key = manifest.key();
        let _lock = self.lock_key(&key)?;
        let mut quarantined = Vec::new();
        if !job.force
            && let Some(record) = self.read_record(&key)?
        {
            let damage = self.damaged_outputs(&record);
            if damage.is_empty() {
                return Ok(Memo {
                    record,
                    computed: false,
                    quarantined,
                });
            }
            quarantined = self.quarantine_damaged(job.run_id, &damage)?;
        }
        let started = SystemTime::now();
        let t0 = Instant::now();
        let (computed, out, work, _temp) = if job.resumable {
            let mut work = self.work(&key)?;
            if job.force {
                work.remove()?;
                work = self.work(&key)?;
            }
            let scratch = Scratch {
                resumed: work.prepare_attempt()?,
                root: work.root().to_path_buf(),
                out: work.out_dir(),
                checkpoints: Some(work.checkpoints().dir().to_path_buf()),
            };
            (compute(&scratch)?, scratch.out, Some(work), None)
        } else {
            let temp = self.scratch(&format!("{}-", job.experiment.replace(':', "-")))?;
            let scratch = Scratch {
                root: temp.path().to_path_buf(),
                out: temp.path().to_path_buf(),
                checkpoints: None,
                resumed: None,
            };
            (compute(&scratch)?, scratch.out, None, Some(temp))
        };
        let record = self.put_outputs(key, manifest, &job, &out, computed, (started, t0))?;
        if let Some(work) = work {
            work.remove()?;
        }
        Ok(Memo {
            record,
            computed: true,
            quarantined,
        })
    }

    /// [`Store::memoize`] for a fused group: the records of `members` (in position order),
    /// computing them together with `compute` when any is missing or damaged. Holds every
    /// member's key lock (taken in key order, so two processes cannot deadlock) throughout.
    /// The group computes in one resumable work folder, named by the members' keys, with one
    /// output folder per member (`out/<position>/`); `compute` returns one [`Computed`] per
    /// member. A member whose intact record was already there keeps it.
    pub fn memoize_group(
        &self,
        members: Vec<(Manifest, Job)>,
        compute: impl FnOnce(&GroupScratch) -> Result<Vec<Computed>>,
    ) -> Result<Vec<Memo>> {
        let keys: Vec<String> = members.iter().map(|(m, _)| m.key()).collect();
        let mut lock_order = keys.clone();
        lock_order.sort();
        let _locks = lock_order
            .iter()
            .map(|k| self.lock_key(k))
            .collect::<Result<Vec<_>>>()?;
        let mut have: Vec<Option<RunRecord>> = Vec::new();
        let mut quarantined = Vec::new();
        for ((_, job), key) in members.iter().zip(&keys) {
            let mut intact = None;
            if let Some(record) = self.read_record(key)? {
                let damage = self.damaged_outputs(&record);
                if damage.is_empty() {
                    intact = (!job.force).then_some(record);
                } else {
                    quarantined.extend(self.quarantine_damaged(job.run_id, &damage)?);
                }
            }
            have.push(intact);
        }
        if have.iter().all(Option::is_some) {
            return Ok(have
                .into_iter()
                .flatten()
                .map(|record| Memo {
                    record,
                    computed: false,
                    quarantined: Vec::new(),
                })
                .collect());
        }
        let started = SystemTime::now();
        let t0 = Instant::now();
        let group_key = hash::sha256_bytes(format!("fused group\n{}", keys.join("\n")).as_bytes());
        let mut work = self.work(&group_key)?;
        if members.iter().any(|(_, job)| job.force) {
            work.remove()?;
            work = self.work(&group_key)?;
        }
        write_atomic(
            &work.root().join(GROUP_MEMBERS),
            &serde_json::to_vec(&keys)?,
        )?;
        let resumed = work.prepare_attempt()?;
        let out = work.out_dir();
        let member_out: Vec<PathBuf> = (0..members.len())
            .map(|i| out.join(format!("{i:03}")))
            .collect();
        for d in &member_out {
            std::fs::create_dir_all(d)?;
        }
        let scratch = GroupScratch {
            scratch: Scratch {
                root: work.root().to_path_buf(),
                out,
                checkpoints: Some(work.checkpoints().dir().to_path_buf()),
                resumed,
            },
            member_out,
        };
        let computed = compute(&scratch)?;
        anyhow::ensure!(
            computed.len() == members.len(),
            "the group of {} members reported {} outcomes",
            members.len(),
            computed.len()
        );
        let mut memos = Vec::new();
        let parts = members.into_iter().zip(keys).zip(computed).zip(have);
        for (i, ((((manifest, job), key), computed), had)) in parts.enumerate() {
            let memo = match had {
                Some(record) => Memo {
                    record,
                    computed: false,
                    quarantined: Vec::new(),
                },
                None => Memo {
                    record: self.put_outputs(
                        key,
                        manifest,
                        &job,
                        &scratch.member_out[i],
                        computed,
                        (started, t0),
                    )?,
                    computed: true,
                    quarantined: std::mem::take(&mut quarantined),
                },
            };
            memos.push(memo);
        }
        work.remove()?;
        Ok(memos)
    }

    /// Put every file under `out` into the store and write the record of `key` naming them
    /// (last, so the record appears only once every object is in).
    fn put_outputs(
        &self,
        key: String,
        manifest: Manifest,
        job: &Job,
        out: &Path,
        computed: Computed,
        (started, t0): (SystemTime, Instant),
    ) -> Result<RunRecord> {
        let mut outputs = BTreeMap::new();
        for f in files_under(out)? {
            let rel = f.strip_prefix(out)?.to_string_lossy().into_owned();
            outputs.insert(rel, self.put_file(&f)?);
        }
        let record = RunRecord {
            key,
            run_id: job.run_id.to_string(),
            experiment: job.experiment.to_string(),
            manifest,
            outputs,
            metrics: computed.metrics,
            environment: computed.environment,
            started: humantime::format_rfc3339_seconds(started).to_string(),
            finished: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            seconds: t0.elapsed().as_secs_f64(),
            host: job.host.to_string(),
        };
        self.write_record(&record)?;
        Ok(record)
    }
}

/// The file in a fused group's work folder that lists its members' keys (for `repro gc`).
const GROUP_MEMBERS: &str = "members.json";

/// The members' keys of the fused group whose work folder is `dir`; `None` for a run's folder.
pub fn group_members(dir: &Path) -> Option<Vec<String>> {
    let bytes = std::fs::read(dir.join(GROUP_MEMBERS)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Where a fused group computes: the group's scratch (its `out` holds the members' folders)
/// and each member's own output folder, in position order.
pub struct GroupScratch {
    pub scratch: Scratch,
    pub member_out: Vec<PathBuf>,
}

/// Every file under `dir`, in name order.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e?;
        if e.file_type().is_file() {
            out.push(e.into_path());
        }
    }
    Ok(out)
}
