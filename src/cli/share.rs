//! `repro push`, `pull`, `export` and `import`: a profile's results shared through a remote or
//! one bundle file (repro-share does the work), and what each says it moved.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::Path;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use super::ctx::{Ctx, threads_for};
use super::profile::Selection;
use repro_core::pipeline::publish::{self, Shared};
use repro_share::{Progress, Publication, Stats, bundle, config, remote::Remote, transfer};

/// `repro push`: the profile's finished runs (or the targets' and their upstream runs), their
/// generated datasets and, for a whole profile, its report.
pub(super) fn push_cmd(
    ctx: &Ctx,
    on: &Selection,
    remote: Option<&str>,
    targets: &[String],
) -> Result<()> {
    let shared = shared(ctx, on, targets)?;
    let remote = Remote::open(&config::resolve(remote, &ctx.pipeline.remotes)?)?;
    let bar = bar(ctx.quiet);
    let stats = transfer::push(&ctx.store, &remote, &shared.publication, &|p| tick(&bar, p))?;
    bar.finish_and_clear();
    say_left_out(&shared);
    println!(
        "pushed profile {} to {}: {} runs; {}",
        shared.publication.profile,
        remote.url(),
        shared.publication.runs.len(),
        moved(&stats, "sent", "already there")
    );
    Ok(())
}

/// `repro pull`: the profile's publication from the remote (only the targets' runs and their
/// upstream runs when targets are named).
pub(super) fn pull_cmd(
    ctx: &Ctx,
    on: &Selection,
    remote: Option<&str>,
    targets: &[String],
) -> Result<()> {
    let profile = ctx.pick_profile(on)?;
    let only: Option<BTreeSet<String>> = (!targets.is_empty())
        .then(|| ctx.plan(&profile, targets))
        .transpose()?
        .map(|plan| plan.runs.into_iter().map(|r| r.id).collect());
    let remote = Remote::open(&config::resolve(remote, &ctx.pipeline.remotes)?)?;
    let bar = bar(ctx.quiet);
    let (publication, stats) =
        transfer::pull(&ctx.store, &remote, &profile, only.as_ref(), &|p| {
            tick(&bar, p)
        })?;
    bar.finish_and_clear();
    say_received(
        ctx,
        &publication,
        &stats,
        &format!("pulled from {}", remote.url()),
    );
    Ok(())
}

/// `repro export`: the same as a push, into one tar file.
pub(super) fn export_cmd(ctx: &Ctx, on: &Selection, file: &Path, targets: &[String]) -> Result<()> {
    let shared = shared(ctx, on, targets)?;
    let stats = bundle::export(&ctx.store, &shared.publication, file)?;
    say_left_out(&shared);
    println!(
        "exported profile {} to {}: {} runs, {} records, {} objects ({})",
        shared.publication.profile,
        file.display(),
        shared.publication.runs.len(),
        stats.records,
        stats.objects,
        bytes(stats.bytes)
    );
    Ok(())
}

/// `repro import`: a bundle into the store, every digest checked first.
pub(super) fn import_cmd(ctx: &Ctx, file: &Path) -> Result<()> {
    let (publication, stats) = bundle::import(&ctx.store, file)?;
    say_received(
        ctx,
        &publication,
        &stats,
        &format!("imported from {}", file.display()),
    );
    Ok(())
}

/// The publication of the selected runs, as they stand in this store.
fn shared(ctx: &Ctx, on: &Selection, targets: &[String]) -> Result<Shared> {
    let profile = ctx.pick_profile(on)?;
    let plan = ctx.plan(&profile, targets)?;
    let device = ctx.device(on.device)?;
    let states = ctx.exec().states(&plan, &device, threads_for(&plan))?;
    publish::publication(
        &ctx.exec(),
        &plan,
        &states,
        &ctx.pipeline.path,
        targets.is_empty(),
    )
}

fn say_left_out(shared: &Shared) {
    if let Some(first) = shared.unfinished.first() {
        eprintln!(
            "note: {} run(s) of profile {} have not finished and are not shared (e.g. {first})",
            shared.unfinished.len(),
            shared.publication.profile
        );
    }
    if let Some(why) = &shared.report_left_out {
        eprintln!("note: the report is not shared: {why}");
    }
}

/// What a pull or import brought, and what to do next.
fn say_received(ctx: &Ctx, p: &Publication, stats: &Stats, how: &str) {
    let here = std::fs::read(&ctx.pipeline.path)
        .map(|b| repro_core::store::hash::sha256_bytes(&b))
        .unwrap_or_default();
    if here != p.pipeline.sha256 {
        eprintln!(
            "note: the runs were made with another pipeline.yaml (sha256 {}…, object {}); runs \
             whose parameters or inputs differ from {}'s are not taken as done",
            &p.pipeline.sha256[..12],
            ctx.store.object_path(&p.pipeline.sha256).display(),
            ctx.pipeline.path.display()
        );
    }
    println!(
        "profile {} {how}: {} runs{}; {}",
        p.profile,
        p.runs.len(),
        if p.report.is_some() {
            " and their report"
        } else {
            ""
        },
        moved(stats, "fetched", "already here")
    );
    if !ctx.quiet {
        println!(
            "next: `repro verify --profile {0}` re-hashes them against pipeline.lock; `repro \
             report --profile {0}` renders the report from them, training nothing",
            p.profile
        );
    }
}

fn moved(s: &Stats, verb: &str, present: &str) -> String {
    format!(
        "{} records, {} objects {verb} ({}), {} objects {present} ({})",
        s.records,
        s.objects,
        bytes(s.bytes),
        s.objects_present,
        bytes(s.bytes_present)
    )
}

fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// A bytes bar on a terminal; hidden otherwise.
fn bar(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} objects",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn tick(bar: &ProgressBar, p: Progress) {
    bar.set_length(p.bytes_total);
    bar.set_position(p.bytes_done);
    bar.set_message(format!("{}/{}", p.objects_done, p.objects_total));
}
