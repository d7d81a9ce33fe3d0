//! Datasets as runs see them: fetched archives verified against their pins (through the stat
//! cache) or generated stand-ins produced as store runs, then extracted once into `datasets/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Map;

use super::key::Manifest;
use super::plan::DatasetNode;
use super::spec::DatasetSource;
use super::stage::DatasetView;
use crate::data::extract::{ExtractLimits, extract, kind_from_name};
use crate::data::fetch::{FetchOptions, Mirror, fetch_file};
use crate::data::generate;
use crate::store::Store;
use crate::store::record::{ObjectRef, RunRecord};
use crate::store::statcache::StatCache;

/// A dataset ready to read.
pub struct Prepared {
    pub view: DatasetView,
    /// File name → sha256, the dataset's identity in run keys.
    pub digests: BTreeMap<String, String>,
    /// Whether this call did work (fetch, generate or extract).
    pub did_work: bool,
}

/// Identity of a fetched file as pinned in pipeline.yaml, available before any download.
pub fn pinned_identity(f: &crate::data::DatasetFile) -> String {
    match (&f.sha256, &f.md5) {
        (Some(s), _) => s.to_ascii_lowercase(),
        (None, Some(m)) => format!("md5:{}", m.to_ascii_lowercase()),
        (None, None) => "unpinned".into(),
    }
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
/// dataset has not been generated yet.
pub fn identity(
    store: &Store,
    salt: &str,
    node: &DatasetNode,
) -> Result<Option<BTreeMap<String, String>>> {
    match node.source {
        DatasetSource::Fetch => Ok(Some(
            node.spec
                .files
                .iter()
                .map(|f| (f.name.clone(), pinned_identity(f)))
                .collect(),
        )),
        DatasetSource::Generate => {
            let m = generation_manifest(salt, node).context("no generate section")?;
            Ok(store
                .read_record(&m.key())?
                .map(|r| r.outputs.into_iter().map(|(k, o)| (k, o.sha256)).collect()))
        }
    }
}

/// Fetch or generate, verify and extract one dataset.
pub fn prepare(
    store: &Store,
    datasets_dir: &Path,
    salt: &str,
    node: &DatasetNode,
    stat: &mut StatCache,
    fetch: &FetchOptions,
) -> Result<Prepared> {
    let dir = datasets_dir.join(&node.name);
    let mut did_work = false;
    let (archives, digests): (Vec<PathBuf>, BTreeMap<String, String>) = match node.source {
        DatasetSource::Fetch => {
            let mut paths = Vec::new();
            for f in &node.spec.files {
                let path = dir.join(&f.name);
                if path.exists() {
                    let d = stat
                        .digests(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    if let Err(e) = crate::data::fetch::check_digests(f, &d, &path) {
                        stat.forget(&path);
                        bail!(
                            "{e}\n(the file in datasets/ is not the published one; delete it and run `repro fetch {}`)",
                            node.name
                        );
                    }
                } else {
                    fetch_file(f, &dir, fetch)
                        .with_context(|| format!("fetching dataset {}", node.name))?;
                    did_work = true;
                }
                paths.push(path);
            }
            let ids = node
                .spec
                .files
                .iter()
                .map(|f| (f.name.clone(), pinned_identity(f)))
                .collect();
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
        let _lock = store.lock_key(&format!(
            "extract-{}",
            crate::store::hash::sha256_bytes(dest.to_string_lossy().as_bytes())
        ))?;
        if !dest.join(".extracted").exists() {
            did_work = true;
        }
        extract(archive, kind, &dest, &ExtractLimits::default())
            .with_context(|| format!("extracting {}", archive.display()))?;
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
            format: node.spec.format.clone(),
            root,
        },
        digests,
        did_work,
    })
}

/// The store record of a generated dataset, generating it under the key lock if needed.
fn generated_record(store: &Store, salt: &str, node: &DatasetNode) -> Result<(RunRecord, bool)> {
    let m = generation_manifest(salt, node).context("dataset has no generate section")?;
    let key = m.key();
    if let Some(r) = store.read_record(&key)?
        && r.outputs.values().all(|o| store.has_object(o))
    {
        return Ok((r, false));
    }
    let _lock = store.lock_key(&key)?;
    if let Some(r) = store.read_record(&key)?
        && r.outputs.values().all(|o| store.has_object(o))
    {
        return Ok((r, false));
    }
    let g = node.spec.generate.as_ref().context("no generate section")?;
    let started = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let t0 = std::time::Instant::now();
    let scratch = store.scratch("gen-")?;
    let files = generate::generate(&g.generator, &node.gen_params, scratch.path())
        .with_context(|| format!("generating dataset {}", node.name))?;
    let mut outputs = BTreeMap::new();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let o: ObjectRef = store.put_file(&f)?;
        outputs.insert(name, o);
    }
    let r = RunRecord {
        key: key.clone(),
        run_id: format!("dataset:{}", node.name),
        experiment: format!("dataset:{}", node.name),
        manifest: m,
        outputs,
        metrics: Map::new(),
        environment: Map::new(),
        started,
        finished: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        seconds: t0.elapsed().as_secs_f64(),
        host: crate::runtime::hostname(),
    };
    store.write_record(&r)?;
    Ok((r, true))
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
        quarantine_dir: store.root().join("quarantine"),
        progress,
        max_bytes: None,
    }
}
