//! `repro fetch` (datasets downloaded and their digests checked and locked), `repro gc`
//! (unreferenced objects listed or removed) and `repro lock` (a profile's locked outputs):
//! the commands that change datasets/, the store or pipeline.lock outside a run.

use std::collections::BTreeSet;
use std::io::IsTerminal;

use anyhow::Result;

use super::ctx::{Ctx, Failure, threads_for};
use repro_core::pipeline::lockfile::LockFile;
use repro_core::pipeline::{datasets, verify};
use repro_core::runtime::DeviceChoice;

pub(super) fn fetch_cmd(
    ctx: &Ctx,
    mirror: Option<String>,
    repin: &[String],
    names: &[String],
) -> Result<()> {
    let mut names: Vec<String> = if names.is_empty() && repin.is_empty() {
        ctx.pipeline.datasets.keys().cloned().collect()
    } else {
        names.to_vec()
    };
    for r in repin {
        if !names.contains(r) {
            names.push(r.clone());
        }
    }
    let fancy = !ctx.quiet && std::io::stderr().is_terminal();
    let opts = datasets::fetch_options(&ctx.store, mirror.as_deref(), fancy);
    let _held = ctx.store.lock_named("pipeline-lock")?;
    let mut lock = LockFile::load(&ctx.lock_path)?;
    let mut failures = Vec::new();
    for name in &names {
        let Some(spec) = ctx.pipeline.datasets.get(name) else {
            return Err(Failure::Usage(format!(
                "dataset `{name}` is not declared in {}",
                ctx.pipeline.path.display()
            ))
            .into());
        };
        let repinning = repin.contains(name);
        for f in &spec.files {
            let locked = lock.datasets.get(name).and_then(|m| m.get(&f.name));
            let (pins, from_lock) = if repinning {
                // pipeline.yaml's own digests still hold; only the lock's are forgotten.
                (f.clone(), false)
            } else {
                datasets::effective_pins(f, locked)
            };
            let was = locked.map(|l| l.sha256.clone());
            match repro_core::data::fetch::fetch_file(&pins, &ctx.datasets_dir.join(name), &opts) {
                Ok(got) => {
                    let changed = was.as_ref().filter(|w| **w != got.sha256);
                    println!(
                        "{name}/{}: ok ({} bytes, sha256 {}){}",
                        f.name,
                        got.size,
                        got.sha256,
                        match changed {
                            Some(w) => format!("; repinned (was {w})"),
                            None => String::new(),
                        }
                    );
                    lock.record_dataset_file(name, &f.name, &got.sha256, &got.md5, got.size);
                }
                Err(e) => {
                    eprintln!("{name}/{}: {e:#}", f.name);
                    if from_lock {
                        eprintln!(
                            "  (pipeline.lock pinned this file's sha256 at its first verified \
                             download; to accept a new file, put it in {} and run `repro fetch \
                             --repin {name}`)",
                            ctx.datasets_dir.join(name).display()
                        );
                    }
                    failures.push(format!("{name}/{}", f.name));
                }
            }
        }
    }
    lock.save(&ctx.lock_path)?;
    if !failures.is_empty() {
        return Err(Failure::Work(format!("could not fetch: {}", failures.join(", "))).into());
    }
    Ok(())
}

pub(super) fn gc_cmd(ctx: &Ctx, apply: bool) -> Result<()> {
    let lock = LockFile::load(&ctx.lock_path)?;
    let keep: BTreeSet<String> = lock.digests().cloned().collect();
    let found = ctx.store.gc(&keep, apply)?;
    let verb = if apply { "removed" } else { "would remove" };
    for key in &found.finished_work {
        println!("{verb} work folder of finished run {key}");
    }
    for key in &found.interrupted_work {
        println!("kept work folder of interrupted run {key} (the next run resumes from it)");
    }
    for (sha, size) in &found.objects {
        println!("{verb} {sha} ({size} bytes)");
    }
    let (n, bytes) = (found.objects.len(), found.bytes());
    if apply {
        println!("removed {n} objects, {bytes} bytes");
    } else {
        println!("{n} unreferenced objects, {bytes} bytes; run `repro gc --apply` to remove them");
    }
    Ok(())
}

pub(super) fn lock_cmd(ctx: &Ctx, profile: &str, device: DeviceChoice) -> Result<()> {
    let plan = ctx.plan(profile, &[])?;
    let device = ctx.device(device)?;
    let mut lock = LockFile::load(&ctx.lock_path)?;
    let n = verify::lock_profile(&ctx.exec(), &plan, &mut lock, &device, threads_for(&plan))
        .map_err(|e| Failure::Work(format!("{e:#}")))?;
    lock.save(&ctx.lock_path)?;
    println!(
        "locked {n} bitwise runs of profile {profile} in {}",
        ctx.lock_path.display()
    );
    Ok(())
}
