//! `repro push` and `repro pull`.
//!
//! A remote is laid out as a store is, so both are a set difference of content addresses:
//! - push checks every object it will send is intact here (a damaged one is refused, never
//!   published), lists the remote's `objects/sha256/` once, uploads the objects it lacks
//!   ([`CONCURRENCY`] at once, large ones in parts), then the records, then the publication
//!   last: a remote never names what it lacks;
//! - pull reads the publication (its keys checked to be sha256s: no name can become a path
//!   outside the store), each record (refused unless its manifest hashes to its name), and
//!   downloads the objects the store lacks, each streamed into `tmp/pull-<pid>-<sha256>` while
//!   hashed and counted, and moved in only when size and digest match its name. Records go in
//!   only once every object they list is intact, and the publication after every record. A
//!   pull killed at any point leaves no partial object or record visible; a rerun fetches what
//!   is missing, and removes the temp files of pulls whose process is gone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::remote::{Handle, Remote};
use crate::{Progress, Publication, Stats};
use repro_core::store::published::{is_sha256, layout};
use repro_core::store::record::{ObjectRef, RunRecord};
use repro_core::store::{ObjectState, Store};

/// Requests in flight at once.
pub const CONCURRENCY: usize = 8;

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .context("cannot start the transfer's threads")
}

/// Copy every record and object `publication` names from `store` to `remote`, skipping objects
/// the remote already holds, then the publication itself (last: a remote never names what it
/// lacks).
pub fn push(
    store: &Store,
    remote: &Remote,
    publication: &Publication,
    progress: &dyn Fn(Progress),
) -> Result<Stats> {
    let remote = remote.writer()?;
    // Everything sent is checked here first: corrupt data is never published.
    let mut records = Vec::new();
    let mut objects: BTreeMap<String, ObjectRef> = BTreeMap::new();
    for key in publication.record_keys() {
        let path = store.root().join(layout::record(key));
        let r = store
            .read_record(key)?
            .ok_or_else(|| anyhow!("the record {key} is not in the store ({})", path.display()))?;
        for (name, o) in &r.outputs {
            match store.check_object(o) {
                ObjectState::Intact => {}
                state => bail!(
                    "refusing to push: run {} output {name} (sha256 {}) at {} is {}; `repro run \
                     --profile {}` rebuilds it",
                    r.run_id,
                    o.sha256,
                    store.object_path(&o.sha256).display(),
                    describe(&state),
                    publication.profile
                ),
            }
            objects.insert(o.sha256.clone(), o.clone());
        }
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        records.push((key.to_string(), Bytes::from(bytes)));
    }
    let p = &publication.pipeline;
    let state = store.check_object(p);
    if !state.is_intact() {
        bail!(
            "refusing to push: the pipeline.yaml object (sha256 {}) at {} is {}",
            p.sha256,
            store.object_path(&p.sha256).display(),
            describe(&state)
        );
    }
    objects.insert(p.sha256.clone(), p.clone());
    store.save_stat()?;

    runtime()?.block_on(async {
        let there = remote_objects(&remote).await?;
        let mut stats = Stats::default();
        let mut send = Vec::new();
        for o in objects.into_values() {
            if there.get(&o.sha256) == Some(&o.size) {
                stats.objects_present += 1;
                stats.bytes_present += o.size;
            } else {
                send.push(o);
            }
        }
        let mut at = Progress {
            objects_total: send.len(),
            bytes_total: send.iter().map(|o| o.size).sum(),
            ..Progress::default()
        };
        progress(at);
        let mut uploads = stream::iter(send.into_iter().map(|o| {
            let remote = remote.clone();
            let file = store.object_path(&o.sha256);
            async move {
                remote
                    .put_file(&layout::object(&o.sha256), &file)
                    .await
                    .map(|()| o)
            }
        }))
        .buffer_unordered(CONCURRENCY);
        while let Some(done) = uploads.next().await {
            let o = done?;
            stats.objects += 1;
            stats.bytes += o.size;
            at.objects_done += 1;
            at.bytes_done += o.size;
            progress(at);
        }
        let mut puts = stream::iter(records.into_iter().map(|(key, bytes)| {
            let remote = remote.clone();
            async move { remote.put(&layout::record(&key), bytes).await }
        }))
        .buffer_unordered(CONCURRENCY);
        while let Some(done) = puts.next().await {
            done?;
            stats.records += 1;
        }
        remote
            .put(
                &layout::publication(&publication.profile),
                Bytes::from(publication.to_json()),
            )
            .await?;
        Ok(stats)
    })
}

fn describe(state: &ObjectState) -> String {
    match state {
        ObjectState::Intact => "intact".into(),
        ObjectState::Missing => "missing".into(),
        ObjectState::Corrupt(what) => format!("corrupt ({what})"),
        ObjectState::Unreadable(e) => format!("unreadable ({e})"),
    }
}

/// The objects a remote holds: sha256 → size.
async fn remote_objects(remote: &Handle) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for (rel, size) in remote.list("objects/sha256").await? {
        let Some(rest) = rel.strip_prefix("objects/sha256/") else {
            continue;
        };
        let Some((a, b)) = rest.split_once('/') else {
            continue;
        };
        let sha = format!("{a}{b}");
        if a.len() == 2 && is_sha256(&sha) {
            out.insert(sha, size);
        }
    }
    Ok(out)
}

/// Bring `profile`'s publication from `remote` into `store`: every object it names that the
/// store lacks (each verified against its sha256 before it enters the store), then the records,
/// then the publication (`Store::write_publication`). `only`: just these run ids (and the
/// generated datasets; the report only comes with the whole profile).
pub fn pull(
    store: &Store,
    remote: &Remote,
    profile: &str,
    only: Option<&BTreeSet<String>>,
    progress: &dyn Fn(Progress),
) -> Result<(Publication, Stats)> {
    let remote = remote.reader()?;
    // Shared with runs, exclusive for gc: nothing is collected while objects arrive.
    let _held = store.lock_shared()?;
    remove_stale_temps(store);
    let (publication, stats) =
        runtime()?.block_on(pull_async(store, &remote, profile, only, progress))?;
    store.save_stat()?;
    Ok((publication, stats))
}

async fn pull_async(
    store: &Store,
    remote: &Handle,
    profile: &str,
    only: Option<&BTreeSet<String>>,
    progress: &dyn Fn(Progress),
) -> Result<(Publication, Stats)> {
    let rel = layout::publication(profile);
    let Some(bytes) = remote.get_bytes(&rel).await? else {
        let mut msg = format!(
            "the remote {} has no published profile {profile} (no {})",
            remote.url(),
            remote.describe(&rel)
        );
        // Name the profiles that are there, where the remote can list (not plain HTTP).
        if let Ok(there) = remote.list("published").await {
            let names: Vec<String> = there
                .iter()
                .filter_map(|(r, _)| r.strip_prefix("published/")?.strip_suffix(".json"))
                .map(str::to_string)
                .collect();
            if !names.is_empty() {
                msg.push_str(&format!("; it has {}", names.join(", ")));
            }
        }
        msg.push_str(&format!(
            ". `repro push --profile {profile}` on the machine that ran it publishes it"
        ));
        bail!(msg);
    };
    let mut publication = Publication::parse(&bytes, &remote.describe(&rel))?;
    if publication.profile != profile {
        bail!(
            "{} is the publication of profile {:?}, not {profile:?}",
            remote.describe(&rel),
            publication.profile
        );
    }
    if let Some(only) = only {
        let absent: Vec<&str> = only
            .iter()
            .filter(|id| !publication.runs.contains_key(*id))
            .map(String::as_str)
            .collect();
        if !absent.is_empty() {
            bail!(
                "the remote's publication of profile {profile} has no run {} (it has {} runs)",
                absent.join(", "),
                publication.runs.len()
            );
        }
        publication.runs.retain(|id, _| only.contains(id));
        publication.report = None;
    }

    // Records: those already here with every output intact stay; the others are fetched and
    // checked to hash to their names.
    let mut records: Vec<RunRecord> = Vec::new();
    let mut fetch = Vec::new();
    for key in publication.record_keys() {
        match store.read_record(key) {
            Ok(Some(r)) if r.key == key && store.damaged_outputs(&r).is_empty() => records.push(r),
            _ => fetch.push(key.to_string()),
        }
    }
    let mut fetched: Vec<RunRecord> = Vec::new();
    let mut gets = stream::iter(fetch.into_iter().map(|key| async move {
        let rel = layout::record(&key);
        let bytes = remote.get_bytes(&rel).await?.ok_or_else(|| {
            anyhow!(
                "the remote's publication of profile {profile} names the record {key}, but {} \
                 is absent: the remote is incomplete (push again)",
                remote.describe(&rel)
            )
        })?;
        check_record(&key, &bytes, &remote.describe(&rel))
    }))
    .buffer_unordered(CONCURRENCY);
    while let Some(r) = gets.next().await {
        fetched.push(r?);
    }
    drop(gets);

    // Objects: every output of every record, and the pipeline.yaml.
    let mut objects: BTreeMap<String, ObjectRef> = BTreeMap::new();
    let named = records
        .iter()
        .chain(&fetched)
        .flat_map(|r| r.outputs.values())
        .chain(std::iter::once(&publication.pipeline));
    for o in named {
        if let Some(other) = objects.insert(o.sha256.clone(), o.clone())
            && other.size != o.size
        {
            bail!(
                "the remote's records name object {} with two sizes ({} and {} bytes): refused",
                o.sha256,
                other.size,
                o.size
            );
        }
    }
    let mut stats = Stats::default();
    let mut get = Vec::new();
    for o in objects.into_values() {
        if store.check_object(&o).is_intact() {
            stats.objects_present += 1;
            stats.bytes_present += o.size;
        } else {
            get.push(o);
        }
    }
    let bytes_done = Arc::new(AtomicU64::new(0));
    let mut at = Progress {
        objects_total: get.len(),
        bytes_total: get.iter().map(|o| o.size).sum(),
        ..Progress::default()
    };
    progress(at);
    let tmp = store.root().join("tmp");
    let pid = std::process::id();
    let mut downloads = stream::iter(get.into_iter().map(|o| {
        let file = tmp.join(format!("pull-{pid}-{}", o.sha256));
        let task = tokio::spawn(download(
            remote.clone(),
            o.clone(),
            file,
            bytes_done.clone(),
        ));
        async move {
            let got = task
                .await
                .map_err(|e| anyhow!("the download of object {} stopped: {e}", o.sha256))
                .and_then(|r| r);
            (o, got)
        }
    }))
    .buffer_unordered(CONCURRENCY);
    let mut failed = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            next = downloads.next() => {
                let Some((o, got)) = next else { break };
                // A verified object goes in at once, whatever happens to the others: a rerun
                // then fetches only what is still missing.
                match got.and_then(|file| store.put_verified(&file, &o).map(|()| file)) {
                    Ok(_) => {
                        stats.objects += 1;
                        stats.bytes += o.size;
                        at.objects_done += 1;
                    }
                    Err(e) => failed.push(e),
                }
                at.bytes_done = bytes_done.load(Ordering::Relaxed);
                progress(at);
            }
            _ = tick.tick() => {
                at.bytes_done = bytes_done.load(Ordering::Relaxed);
                progress(at);
            }
        }
    }
    drop(downloads);
    if !failed.is_empty() {
        let n = failed.len();
        let mut msg: Vec<String> = failed.iter().take(5).map(|e| format!("{e:#}")).collect();
        if n > 5 {
            msg.push(format!("and {} more", n - 5));
        }
        bail!(
            "{n} object(s) of profile {profile} could not be pulled from {}; no record or \
             publication was written (the {} objects that arrived intact are kept, so a rerun \
             fetches only the rest):\n  {}",
            remote.url(),
            stats.objects,
            msg.join("\n  ")
        );
    }
    // Every object of every record is intact: the records, then the publication.
    for r in &fetched {
        store.write_record(r)?;
        stats.records += 1;
    }
    if only.is_some()
        && let Some(old) = store.publication(profile)?
        && old.pipeline == publication.pipeline
    {
        // Runs pulled before stay named, besides the ones pulled now.
        let mut runs = old.runs;
        runs.extend(publication.runs);
        publication.runs = runs;
        let mut generated = old.generated;
        generated.extend(publication.generated);
        publication.generated = generated;
    }
    store.write_publication(&publication)?;
    Ok((publication, stats))
}

/// A fetched record, refused (with where it came from) unless `RunRecord::parse_named` takes it.
fn check_record(key: &str, bytes: &[u8], origin: &str) -> Result<RunRecord> {
    RunRecord::parse_named(bytes, key).map_err(|why| anyhow!("{origin}: {why}: refused"))
}

/// Removes its file when dropped armed: a failed or cancelled download leaves nothing.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// What has arrived of one object: counted and hashed as it comes, checked against its name.
struct Arrival<'a> {
    o: &'a ObjectRef,
    origin: String,
    hasher: Sha256,
    n: u64,
}

impl<'a> Arrival<'a> {
    fn new(o: &'a ObjectRef, origin: String) -> Self {
        Arrival {
            o,
            origin,
            hasher: Sha256::new(),
            n: 0,
        }
    }

    fn refused(&self, what: String) -> anyhow::Error {
        anyhow!(
            "object {} from {}: {what}, but {} bytes with that sha256 were expected: refused, \
             nothing of it entered the store",
            self.o.sha256,
            self.origin,
            self.o.size
        )
    }

    fn announced(&self, size: u64) -> Result<()> {
        if size != self.o.size {
            return Err(self.refused(format!("the remote holds {size} bytes")));
        }
        Ok(())
    }

    fn take(&mut self, chunk: &[u8]) -> Result<()> {
        self.n += chunk.len() as u64;
        if self.n > self.o.size {
            return Err(self.refused(format!("more than {} bytes arrived", self.o.size)));
        }
        self.hasher.update(chunk);
        Ok(())
    }

    fn finish(self) -> Result<()> {
        if self.n != self.o.size {
            return Err(self.refused(format!("{} bytes arrived", self.n)));
        }
        let actual = hex::encode(self.hasher.clone().finalize());
        if actual != self.o.sha256 {
            return Err(self.refused(format!("its bytes hash to {actual}")));
        }
        Ok(())
    }
}

/// Fetch object `o` into `file`, hashing and counting, and make it durable; `file` when its size
/// and sha256 are `o`'s, else an error saying what arrived (and `file` removed).
async fn download(
    remote: Handle,
    o: ObjectRef,
    file: PathBuf,
    bytes_done: Arc<AtomicU64>,
) -> Result<PathBuf> {
    let rel = layout::object(&o.sha256);
    let mut arrival = Arrival::new(&o, remote.describe(&rel));
    let mut guard = TempFile(Some(file.clone()));
    if let Some(src) = remote.local_file(&rel) {
        // A folder remote: object_store reads local files 8 KiB per blocking call, so copy
        // with one blocking call and a large buffer instead (the same checks).
        let (one, dst, origin) = (o.clone(), file.clone(), arrival.origin.clone());
        tokio::task::spawn_blocking(move || {
            copy_local(&src, &dst, Arrival::new(&one, origin), &bytes_done)
        })
        .await
        .map_err(|e| anyhow!("the copy of object {} stopped: {e}", o.sha256))??;
        guard.0 = None;
        return Ok(file);
    }
    let (announced, mut chunks) = remote
        .get_stream(&rel)
        .await
        .with_context(|| format!("object {}", o.sha256))?;
    arrival.announced(announced)?;
    let create = tokio::fs::File::create(&file)
        .await
        .with_context(|| format!("cannot create {}", file.display()))?;
    // Chunks arrive small; each write to a tokio file is a trip to its blocking pool.
    let mut out = tokio::io::BufWriter::with_capacity(COPY_BUFFER, create);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.with_context(|| format!("object {}", o.sha256))?;
        arrival.take(&chunk)?;
        out.write_all(&chunk)
            .await
            .with_context(|| format!("cannot write {}", file.display()))?;
        bytes_done.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    out.flush()
        .await
        .with_context(|| format!("cannot write {}", file.display()))?;
    arrival.finish()?;
    // Durable here, in parallel with the other downloads, so moving it in stays cheap.
    out.into_inner()
        .sync_all()
        .await
        .with_context(|| format!("cannot write {}", file.display()))?;
    guard.0 = None;
    Ok(file)
}

/// The buffer of a copy into the store's `tmp/`.
const COPY_BUFFER: usize = 1 << 20;

/// A folder remote's object `src` copied to `dst` through `arrival`'s checks, made durable.
fn copy_local(src: &Path, dst: &Path, mut arrival: Arrival, bytes_done: &AtomicU64) -> Result<()> {
    use std::io::{Read, Write};
    let mut from = std::fs::File::open(src)
        .with_context(|| format!("object {}: cannot read {}", arrival.o.sha256, src.display()))?;
    arrival.announced(from.metadata()?.len())?;
    let mut to =
        std::fs::File::create(dst).with_context(|| format!("cannot create {}", dst.display()))?;
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        let n = from
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", src.display()))?;
        if n == 0 {
            break;
        }
        arrival.take(&buf[..n])?;
        to.write_all(&buf[..n])
            .with_context(|| format!("cannot write {}", dst.display()))?;
        bytes_done.fetch_add(n as u64, Ordering::Relaxed);
    }
    arrival.finish()?;
    to.sync_all()
        .with_context(|| format!("cannot write {}", dst.display()))
}

/// Remove `tmp/pull-<pid>-…` files left by pulls whose process is gone (killed mid-way).
fn remove_stale_temps(store: &Store) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(dir) = std::fs::read_dir(store.root().join("tmp")) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("pull-"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
