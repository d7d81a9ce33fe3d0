//! Datasets as runs see them: fetched archives verified against their pins (through the stat
//! cache) or generated stand-ins produced as store runs, then extracted once into `datasets/`
//! and checked against the extraction's manifest before any run reads them.
//!
//! Every fetched file has a digest: pipeline.yaml's, or else the sha256 pipeline.lock recorded at
//! its first verified download, which from then on pins it like a published digest (a different
//! file is refused and quarantined until `repro fetch --repin`). `repro verify` also compares an
//! md5-pinned file with the sha256 locked at its first download. A run key names a file by its
//! pipeline.yaml pin where it has one (so those keys never move), else by the locked sha256: no
//! key exists before the first verified download.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::lockfile::LockedFile;
use super::plan::DatasetNode;
use super::spec::DatasetSource;
use crate::data::extract::{ExtractLimits, check_tree, extract, kind_from_name};
use crate::data::fetch::{FetchOptions, Mirror, fetch_file};
use crate::data::generate;
use crate::data::{DatasetFile, DatasetView};
use crate::store::Store;
use crate::store::hash::FileDigests;
use crate::store::key::Manifest;
use crate::store::memo::{Computed, Job};
use crate::store::record::RunRecord;
use crate::store::statcache::StatCache;

/// pipeline.lock's `datasets:` section: dataset → file → digests of its first verified download.
pub type LockedDatasets = BTreeMap<String, BTreeMap<String, LockedFile>>;

/// A dataset ready to read.
pub struct Prepared {
    pub view: DatasetView,
    /// File name → identity, the dataset's part of run keys.
    pub digests: BTreeMap<String, String>,
    /// Whether this call did work (fetch, generate or extract).
    pub did_work: bool,
    /// Files verified here that pipeline.lock has no digests for yet: record them.
    pub first_seen: Vec<(String, FileDigests)>,
}

/// The pins a fetched file is checked against: pipeline.yaml's; for a file pipeline.yaml gives no
/// digest for, the sha256 pipeline.lock recorded at its first verified download (`true` then).
/// (Not the lock's size: a mismatch is then reported with both digests, not just two sizes.)
pub fn effective_pins(f: &DatasetFile, locked: Option<&LockedFile>) -> (DatasetFile, bool) {
    match locked {
        Some(l) if f.sha256.is_none() && f.md5.is_none() => {
            let mut eff = f.clone();
            eff.sha256 = Some(l.sha256.clone());
            (eff, true)
        }
        _ => (f.clone(), false),
    }
}

/// A fetched file's identity in run keys: pipeline.yaml's sha256, else its md5 (`md5:…`), else
/// the sha256 pipeline.lock recorded at the first verified download; `None` before that.
pub fn file_identity(f: &DatasetFile, locked: Option<&LockedFile>) -> Option<String> {
    match (&f.sha256, &f.md5, locked) {
        (Some(s), _, _) => Some(s.to_ascii_lowercase()),
        (None, Some(m), _) => Some(format!("md5:{}", m.to_ascii_lowercase())),
        (None, None, Some(l)) => Some(l.sha256.to_ascii_lowercase()),
        (None, None, None) => None,
    }
}

fn locked_file<'a>(locked: &'a LockedDatasets, ds: &str, file: &str) -> Option<&'a LockedFile> {
    locked.get(ds).and_then(|m| m.get(file))
}

/// The store manifest of a generated dataset.
pub fn generation_manifest(salt: &str, node: &DatasetNode) -> Option<Manifest> {
    let g = node.spec.generate.as_ref()?;
    // Defaults filled in, so the key says every parameter the bytes depend on.
    let params = generate::resolved_params(&g.generator, &node.gen_params).ok()?;
    Some(Manifest {
        salt: salt.to_string(),
        kind: format!("generate:{}", g.generator),
        kind_version: generate::GENERATOR_VERSION,
        params,
        inputs: BTreeMap::new(),
        env: BTreeMap::new(),
    })
}

/// Digests that identify a dataset in run keys, without doing any work: `None` when a generated
/// dataset has not been generated yet, or a file without a pipeline.yaml digest has not had its
/// first verified download.
pub fn identity(
    store: &Store,
    salt: &str,
    node: &DatasetNode,
    locked: &LockedDatasets,
) -> Result<Option<BTreeMap<String, String>>> {
    match node.source {
        DatasetSource::Fetch => Ok(node
            .spec
            .files
            .iter()
            .map(|f| {
                file_identity(f, locked_file(locked, &node.name, &f.name))
                    .map(|id| (f.name.clone(), id))
            })
            .collect()),
        DatasetSource::Generate => {
            let m = generation_manifest(salt, node).context("no generate section")?;
            Ok(store
                .read_record(&m.key())?
                .map(|r| r.outputs.into_iter().map(|(k, o)| (k, o.sha256)).collect()))
        }
    }
}

/// Fetch or generate, verify and extract one dataset, and check the extracted tree.
pub fn prepare(
    store: &Store,
    datasets_dir: &Path,
    salt: &str,
    node: &DatasetNode,
    locked: &LockedDatasets,
    fetch: &FetchOptions,
) -> Result<Prepared> {
    let dir = datasets_dir.join(&node.name);
    let mut did_work = false;
    let mut first_seen = Vec::new();
    let (archives, digests): (Vec<PathBuf>, BTreeMap<String, String>) = match node.source {
        DatasetSource::Fetch => {
            let mut paths = Vec::new();
            let mut ids = BTreeMap::new();
            for f in &node.spec.files {
                let lock = locked_file(locked, &node.name, &f.name);
                let (pins, from_lock) = effective_pins(f, lock);
                let path = dir.join(&f.name);
                let (d, fetched) = verified_file(store, &pins, &path, &dir, fetch).map_err(|e| {
                    let hint = if from_lock {
                        format!(
                            "\n(pipeline.lock pinned {}'s sha256 at its first verified download; if \
                             the new file is the one you want, put it at {} and run `repro fetch \
                             --repin {}`: the runs that read it get new keys)",
                            f.name,
                            path.display(),
                            node.name
                        )
                    } else {
                        String::new()
                    };
                    anyhow::anyhow!("dataset {}: {e:#}{hint}", node.name)
                })?;
                did_work |= fetched;
                if lock.is_none() {
                    first_seen.push((f.name.clone(), d.clone()));
                }
                let id = file_identity(f, lock).unwrap_or(d.sha256);
                ids.insert(f.name.clone(), id);
                paths.push(path);
            }
            (paths, ids)
        }
        DatasetSource::Generate => {
            let (record, generated) = generated_record(store, salt, node)?;
            did_work |= generated;
            let mut paths = Vec::new();
            for (name, o) in &record.outputs {
                paths.push(
                    store
                        .verify_object(o)
                        .with_context(|| format!("generated dataset {} ({name})", node.name))?,
                );
            }
            (paths, record.output_digests())
        }
    };
    let mut roots = Vec::new();
    for (archive, (name, sha)) in archives.iter().zip(&digests) {
        let tag = sha.trim_start_matches("md5:");
        let dest = dir.join(format!(
            "{}-{}",
            if node.source == DatasetSource::Generate {
                "generated"
            } else {
                "extracted"
            },
            &tag[..16.min(tag.len())]
        ));
        let kind = node.spec.extract.unwrap_or_else(|| kind_from_name(name));
        // Two processes preparing the same dataset must not race on the extracted tree.
        let _lock = store.lock_key(&format!("extract-{}", path_tag(&dest)))?;
        if !dest.join(".extracted").exists() {
            did_work = true;
        }
        extract(archive, kind, &dest, &ExtractLimits::default())?;
        check_extracted(store, &node.name, &dest)?;
        roots.push(dest);
    }
    let root = match roots.as_slice() {
        [one] => one.clone(),
        _ => bail!(
            "dataset {} has {} archives; one archive per dataset is supported",
            node.name,
            roots.len()
        ),
    };
    Ok(Prepared {
        view: DatasetView {
            name: node.name.clone(),
            format: node.spec.format,
            root,
        },
        digests,
        did_work,
        first_seen,
    })
}

/// The file at `path`, checked against `pins` (through the stat cache), or fetched when it is
/// missing or not the pinned one (which `fetch_file` quarantines); `(digests, fetched)`.
fn verified_file(
    store: &Store,
    pins: &DatasetFile,
    path: &Path,
    dir: &Path,
    fetch: &FetchOptions,
) -> Result<(FileDigests, bool)> {
    if path.exists() {
        let d = store
            .stat()
            .digests(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if crate::data::fetch::check_digests(pins, &d, path).is_ok() {
            return Ok((d, false));
        }
        store.stat().forget(path);
    }
    let got = fetch_file(pins, dir, fetch)?;
    Ok((
        FileDigests {
            sha256: got.sha256,
            md5: got.md5,
            size: got.size,
        },
        true,
    ))
}

/// A short tag of a path, for lock and cache file names.
fn path_tag(path: &Path) -> String {
    crate::store::hash::sha256_bytes(path.to_string_lossy().as_bytes())[..32].to_string()
}

/// The stat cache of one extracted tree (its own file, so `plan` and `status` never load it).
pub fn tree_stat(store: &Store, dest: &Path) -> StatCache {
    let file = store
        .cache_dir()
        .join(format!("tree-{}.json", path_tag(dest)));
    StatCache::load(&file, dest)
}

/// Refuse an extracted tree whose files are not what its archive holds.
fn check_extracted(store: &Store, dataset: &str, dest: &Path) -> Result<()> {
    let mut stat = tree_stat(store, dest);
    let problems = check_tree(dest, &mut stat)?;
    if let Err(e) = stat.save() {
        tracing::warn!("cannot save the stat cache of {}: {e}", dest.display());
    }
    if problems.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = problems
        .iter()
        .take(10)
        .map(|p| format!("\n  {p}"))
        .collect();
    bail!(
        "dataset {dataset}: the extracted tree {} is not what its verified archive holds; \
         refusing to train on it ({} file(s)):{}{}\nRemove {} and run again: it is extracted afresh \
         from the archive.",
        dest.display(),
        problems.len(),
        list.concat(),
        if problems.len() > 10 { "\n  …" } else { "" },
        dest.display()
    )
}

/// The store record of a generated dataset, generating it under the key lock if needed.
fn generated_record(store: &Store, salt: &str, node: &DatasetNode) -> Result<(RunRecord, bool)> {
    let m = generation_manifest(salt, node).context("dataset has no generate section")?;
    // Without the key's lock first: the common case is a dataset generated long ago.
    if let Some(r) = store.read_record(&m.key())?
        && store.damaged_outputs(&r).is_empty()
    {
        return Ok((r, false));
    }
    let g = node.spec.generate.as_ref().context("no generate section")?;
    let id = format!("dataset:{}", node.name);
    let job = Job {
        run_id: &id,
        experiment: &id,
        force: false,
        resumable: false,
        host: &crate::runtime::hostname(),
    };
    let memo = store.memoize(m, job, |scratch| {
        generate::generate(&g.generator, &node.gen_params, &scratch.out)
            .with_context(|| format!("generating dataset {}", node.name))?;
        Ok(Computed::default())
    })?;
    for line in &memo.quarantined {
        tracing::warn!("{line}");
    }
    Ok((memo.record, memo.computed))
}

/// Fetch options from the command line and environment.
pub fn fetch_options(store: &Store, mirror: Option<&str>, progress: bool) -> FetchOptions {
    let mut mirrors = Vec::new();
    if let Some(m) = mirror {
        mirrors.push(Mirror::parse(m));
    }
    if let Ok(m) = std::env::var("REPRO_MIRROR")
        && !m.is_empty()
    {
        mirrors.push(Mirror::parse(&m));
    }
    FetchOptions {
        mirrors,
        quarantine_dir: store.quarantine_dir("datasets"),
        progress,
        max_bytes: None,
    }
}
