//! The report: the paper's claims evaluated on a profile's finished runs, with seed statistics,
//! tables, figures and a self-contained HTML page.
//!
//! It is a cached stage like any run: its key covers the claims, the experiments it shows and
//! the output digests of every finished run it reads, so it is rendered again only when one of
//! those changes. Its files live in the store and are copied to `report/<profile>/`.
//!
//! - [`observe`] reads the runs, [`select`] applies a check's `where`/`tune` to them,
//!   [`verdict`] evaluates the checks, [`sweep`] recognises and reduces an optimizer sweep,
//!   [`returns`] reduces RL returns to IQMs with bootstrap intervals, [`per_experiment`],
//!   [`tables`] and [`exhibits`] shape tables and figures ([`numbers`] writes their numbers), [`figures`] draws them, [`write`] renders the documents,
//!   [`html`] the page; [`ledger`] reads what the runs' records say about them (device, dates,
//!   wall time) and compares a bitwise profile's outputs with `pipeline.lock`.

pub mod exhibits;
pub mod figures;
pub mod html;
pub mod ledger;
pub mod numbers;
pub mod observe;
pub mod per_experiment;
pub mod returns;
pub mod select;
pub mod sweep;
pub mod tables;
pub mod verdict;
pub mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};

use repro_core::pipeline::executor::RunState;
use repro_core::pipeline::lockfile::LockedProfile;
use repro_core::pipeline::plan::Plan;
use repro_core::pipeline::spec::Pipeline;
use repro_core::store::Store;
use repro_core::store::atomic::{rename_durable, sync_dir, write_atomic};
use repro_core::store::key::Manifest;
use repro_core::store::memo::{Computed, Job};
use repro_core::store::record::RunRecord;
use tables::Table;
use verdict::{CheckResult, ClaimSummary};

/// Part of the report's key; the digest of its code (`build.rs`) is too, so a change to the
/// report, or to a crate it depends on, renders every report again.
pub const VERSION: u32 = 1;

/// The workspace crates whose sources `build.rs` digested into the report's code version.
pub const CODE_CRATES: &str = env!("REPRO_REPORT_CODE_CRATES");

/// A rendered (or cached) report.
pub struct Report {
    pub profile: String,
    pub key: String,
    /// Taken from the store: nothing it reads changed since it was rendered.
    pub cached: bool,
    /// `report/<profile>/`.
    pub dir: PathBuf,
    pub checks: Vec<CheckResult>,
    pub claims: Vec<ClaimSummary>,
    /// One row per check.
    pub claims_table: Table,
    /// One per experiment with finished runs.
    pub experiment_tables: Vec<Table>,
    pub runs_read: usize,
    pub runs_planned: usize,
}

/// Evaluate, render if the key is new, and copy the files to `out_root/<profile>/`. `lock` is
/// the profile's entry in `pipeline.lock` (a bitwise profile's runs are compared with it).
pub fn build(
    pipeline: &Pipeline,
    store: &Store,
    plan: &Plan,
    states: &[(String, RunState)],
    lock: Option<&LockedProfile>,
    out_root: &Path,
) -> Result<Report> {
    // Like a run: gc (which takes the store exclusively) waits until the report is stored.
    let _shared = store.lock_shared()?;
    let inputs = observe::gather(pipeline, store, plan, states)?;
    let checks = verdict::evaluate(pipeline, &inputs);
    let claims = verdict::summarize_claims(&checks);
    let claims_table = tables::claims_table(&checks);
    let checks_table = tables::checks_table(&checks);
    let experiment_tables = per_experiment::tables(&inputs);
    let ledger = ledger::gather(store, plan, states, lock)?;
    let manifest = manifest(pipeline, plan, &inputs, &ledger);
    let key = manifest.key();
    let doc = write::Document {
        pipeline,
        profile: &plan.profile,
        key: &key,
        inputs: &inputs,
        checks: &checks,
        claims: &claims,
        claims_table: &claims_table,
        checks_table: &checks_table,
        experiment_tables: &experiment_tables,
        ledger: &ledger,
    };

    let job = Job {
        run_id: "report",
        experiment: "report",
        force: false,
        resumable: false,
        host: &repro_core::runtime::hostname(),
    };
    let memo = store.memoize(manifest, job, |scratch| render(&doc, &scratch.out))?;
    // A damaged report is rendered again: its inputs are the runs' outputs.
    for line in &memo.quarantined {
        eprintln!("{line}");
    }
    let (record, cached) = (memo.record, !memo.computed);
    let dir = out_root.join(&plan.profile);
    materialize(store, &record, &dir)?;
    store.set_ref(&plan.profile, "report", &key)?;
    Ok(Report {
        profile: plan.profile.clone(),
        key,
        cached,
        dir,
        checks,
        claims,
        claims_table,
        experiment_tables,
        runs_read: inputs.digests.len(),
        runs_planned: plan.runs.len(),
    })
}

/// Everything the report's files depend on.
fn manifest(
    pipeline: &Pipeline,
    plan: &Plan,
    inputs: &observe::Inputs,
    ledger: &ledger::Ledger,
) -> Manifest {
    let experiments: Map<String, Value> = inputs
        .experiments
        .iter()
        .map(|e| (e.name.clone(), json!(e.description)))
        .collect();
    let mut params = Map::new();
    params.insert("profile".into(), json!(plan.profile));
    params.insert(
        "profile_description".into(),
        json!(
            pipeline
                .profiles
                .get(&plan.profile)
                .and_then(|p| p.description.clone())
        ),
    );
    params.insert("claims".into(), json!(pipeline.claims));
    // Only when declared, so a pipeline without the list keeps its report keys.
    if !pipeline.provenance.is_empty() {
        params.insert("provenance".into(), json!(pipeline.provenance));
    }
    params.insert("experiments".into(), Value::Object(experiments));
    // The provenance the page shows (records' devices, dates, wall times) and the lock entry
    // its headline compares with: without them a cached report could show stale ones.
    params.insert("runs_shown".into(), ledger.key_value());
    params.insert(
        "planned_runs".into(),
        json!(plan.runs.iter().map(|r| &r.id).collect::<Vec<_>>()),
    );
    Manifest {
        salt: pipeline.salt.clone(),
        kind: "report".into(),
        kind_version: VERSION,
        params,
        inputs: inputs.digests.clone(),
        env: BTreeMap::from([
            ("repro".to_string(), json!(env!("CARGO_PKG_VERSION"))),
            ("report_code".to_string(), json!(env!("REPRO_REPORT_CODE"))),
        ]),
    }
}

/// Render every file into `out`.
fn render(doc: &write::Document, out: &Path) -> Result<Computed> {
    for (name, bytes) in write::files(doc)? {
        let path = out.join(&name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut metrics = Map::new();
    for c in doc.claims {
        metrics.insert(c.claim.clone(), json!(c.verdict));
    }
    Ok(Computed {
        metrics,
        environment: repro_core::runtime::host_fingerprint(),
    })
}

/// Name of the file in a materialized report folder that says which report it holds.
const KEY_FILE: &str = ".report-key";

/// Copy the report's objects to `dir`, replacing what was there in one rename (readers see the
/// old report or the new one, never a mix). Nothing is done when `dir` already holds this key.
fn materialize(store: &Store, record: &RunRecord, dir: &Path) -> Result<()> {
    let parent = dir.parent().context("report folder has no parent")?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let name = dir
        .file_name()
        .context("report folder has no name")?
        .to_string_lossy()
        .into_owned();
    let _lock = store.lock_key(&format!("report-dir-{name}"))?;
    if std::fs::read_to_string(dir.join(KEY_FILE)).ok().as_deref() == Some(record.key.as_str())
        && record.outputs.keys().all(|f| dir.join(f).is_file())
    {
        return Ok(());
    }
    let tmp = parent.join(format!(".{name}.new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    for (file, obj) in &record.outputs {
        let from = store.verify_object(obj)?;
        let to = tmp.join(file);
        if let Some(p) = to.parent() {
            std::fs::create_dir_all(p)?;
        }
        write_atomic(&to, &std::fs::read(&from)?)
            .with_context(|| format!("cannot write {}", to.display()))?;
        // A report is for reading and sharing, unlike the store's private temp files.
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    }
    write_atomic(&tmp.join(KEY_FILE), record.key.as_bytes())?;
    sync_dir(&tmp)?;
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    if dir.exists() {
        rename_durable(dir, &old)
            .with_context(|| format!("cannot move the old {} aside", dir.display()))?;
    }
    rename_durable(&tmp, dir).with_context(|| format!("cannot put {} in place", dir.display()))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}
