//! `repro push`/`pull` throughput against copying the same objects with the tools a user would
//! otherwise reach for, in one process so both sides see the same machine and page cache.
//!
//!     bench_share WORK [--runs N] [--mib M] [--repeats R] [--s3 s3://BUCKET/PREFIX]
//!
//! Makes a store in WORK with N finished runs whose outputs total about M MiB (per run a 2 KiB
//! metrics file and one weights file: the shape of a profile's runs), then per repeat, in
//! alternating order: push to a fresh folder remote and `cp -r` the objects folder; pull from it
//! into a fresh store and `cp -r` back. With `--s3` (credentials and endpoint from the
//! environment, as for `repro push`), also push to and pull from S3, against `scripts/
//! bench_s3_client.py` (boto3's transfer manager, the AWS CLI's, 8 threads) on the same objects.
//! Prints `name MiB/s` words (bench.py's `metrics_words`): the median of the repeats.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use repro_core::store::Store;
use repro_core::store::key::Manifest;
use repro_core::store::published::{FORMAT, Publication};
use repro_core::store::record::RunRecord;
use repro_share::remote::{Remote, RemoteSpec};
use repro_share::transfer;

struct Args {
    work: PathBuf,
    runs: usize,
    mib: usize,
    repeats: usize,
    s3: Option<String>,
}

fn args() -> Result<Args> {
    let mut a = Args {
        work: PathBuf::new(),
        runs: 32,
        mib: 256,
        repeats: 3,
        s3: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut value = || it.next().with_context(|| format!("{x} needs a value"));
        match x.as_str() {
            "--runs" => a.runs = value()?.parse()?,
            "--mib" => a.mib = value()?.parse()?,
            "--repeats" => a.repeats = value()?.parse()?,
            "--s3" => a.s3 = Some(value()?),
            _ if a.work.as_os_str().is_empty() => a.work = PathBuf::from(x),
            _ => bail!("unexpected argument {x}"),
        }
    }
    if a.work.as_os_str().is_empty() {
        bail!("usage: bench_share WORK [--runs N] [--mib M] [--repeats R] [--s3 URL]");
    }
    Ok(a)
}

/// A store of `runs` finished runs with about `mib` MiB of seeded, incompressible outputs.
fn make_store(root: &Path, runs: usize, mib: usize) -> Result<(Store, Publication, u64)> {
    let store = Store::open(root)?;
    let scratch = tempfile::tempdir_in(root)?;
    let per_run = (mib << 20) / runs.max(1);
    let mut ids = std::collections::BTreeMap::new();
    let mut total = 0;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..runs {
        let mut outputs = std::collections::BTreeMap::new();
        for (name, size) in [("metrics.jsonl", 2048), ("weights.safetensors", per_run)] {
            let bytes: Vec<u8> = (0..size)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let f = scratch.path().join(name);
            std::fs::write(&f, &bytes)?;
            total += size as u64;
            outputs.insert(name.to_string(), store.put_file(&f)?);
        }
        let mut params = serde_json::Map::new();
        params.insert("seed".into(), serde_json::json!(i));
        let manifest = Manifest {
            salt: "bench".into(),
            kind: "vision".into(),
            kind_version: 1,
            params,
            inputs: Default::default(),
            env: Default::default(),
        };
        let key = manifest.key();
        store.write_record(&RunRecord {
            key: key.clone(),
            run_id: format!("e/seed={i}"),
            experiment: "e".into(),
            manifest,
            outputs,
            metrics: Default::default(),
            environment: Default::default(),
            started: String::new(),
            finished: String::new(),
            seconds: 0.0,
            host: String::new(),
        })?;
        ids.insert(format!("e/seed={i}"), key);
    }
    let f = scratch.path().join("pipeline.yaml");
    std::fs::write(&f, b"version: 1\n")?;
    let pipeline = store.put_file(&f)?;
    let publication = Publication {
        format: FORMAT,
        profile: "bench".into(),
        runs: ids,
        generated: Default::default(),
        report: None,
        pipeline,
        lock: None,
        repro: env!("CARGO_PKG_VERSION").into(),
    };
    Ok((store, publication, total))
}

fn timed(f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64())
}

fn run(cmd: &mut Command) -> Result<()> {
    let s = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !s.success() {
        bail!("{cmd:?} failed: {s}");
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let a = args()?;
    std::fs::create_dir_all(&a.work)?;
    let (store, publication, bytes) = make_store(&a.work.join("store"), a.runs, a.mib)?;
    let mib = bytes as f64 / (1 << 20) as f64;
    let objects = store.root().join("objects");
    let none = |_| {};
    let mut rows: Vec<(&str, Vec<f64>)> = [
        "push_file",
        "cp_out",
        "pull_file",
        "cp_in",
        "push_s3",
        "boto3_up",
        "pull_s3",
        "boto3_down",
    ]
    .into_iter()
    .map(|n| (n, Vec::new()))
    .collect();
    let mut put = |name: &str, secs: f64| {
        if let Some((_, v)) = rows.iter_mut().find(|(n, _)| *n == name) {
            v.push(mib / secs);
        }
    };
    for r in 0..a.repeats {
        let dir = a.work.join(format!("r{r}"));
        std::fs::create_dir_all(&dir)?;
        let remote_dir = dir.join("remote");
        let remote = Remote::open(&RemoteSpec {
            url: format!("file://{}", std::path::absolute(&remote_dir)?.display()),
            endpoint: None,
        })?;
        let into = Store::open(&dir.join("pulled"))?;
        let push = || timed(|| transfer::push(&store, &remote, &publication, &none).map(drop));
        let cp_out = || {
            timed(|| {
                run(Command::new("cp")
                    .arg("-r")
                    .arg(&objects)
                    .arg(dir.join("cp")))
            })
        };
        let pull = || timed(|| transfer::pull(&into, &remote, "bench", None, &none).map(drop));
        let cp_in = || {
            timed(|| {
                run(Command::new("cp")
                    .arg("-r")
                    .arg(dir.join("cp"))
                    .arg(dir.join("cp-back")))
            })
        };
        if r % 2 == 0 {
            put("push_file", push()?);
            put("cp_out", cp_out()?);
            put("pull_file", pull()?);
            put("cp_in", cp_in()?);
        } else {
            put("cp_out", cp_out()?);
            put("push_file", push()?);
            put("cp_in", cp_in()?);
            put("pull_file", pull()?);
        }
        if let Some(url) = &a.s3 {
            let remote = Remote::open(&RemoteSpec {
                // A fresh prefix per process and repeat: the server outlives both.
                url: format!("{url}/{}-r{r}", std::process::id()),
                endpoint: None,
            })?;
            let into = Store::open(&dir.join("pulled-s3"))?;
            let client = |dir_arg: &str, what: &str| {
                let script = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../..")
                    .join("scripts/bench_s3_client.py");
                let py = std::env::var("REPRO_PYTHON").unwrap_or_else(|_| "python3".into());
                timed(|| {
                    run(Command::new(&py)
                        .arg(&script)
                        .arg(what)
                        .arg(dir_arg)
                        .arg(format!("{url}/boto3-{}-r{r}", std::process::id())))
                })
            };
            let objects_arg = objects.to_string_lossy().into_owned();
            let down_arg = dir.join("boto3-down").to_string_lossy().into_owned();
            put(
                "push_s3",
                timed(|| transfer::push(&store, &remote, &publication, &none).map(drop))?,
            );
            put("boto3_up", client(&objects_arg, "upload")?);
            put(
                "pull_s3",
                timed(|| transfer::pull(&into, &remote, "bench", None, &none).map(drop))?,
            );
            put("boto3_down", client(&down_arg, "download")?);
        }
        std::fs::remove_dir_all(&dir)?;
    }
    println!("objects {} MiB {mib:.0}", 2 * a.runs + 1);
    for (name, v) in rows.into_iter().filter(|(_, v)| !v.is_empty()) {
        println!("{name}_MiB/s {:.1}", median(v));
    }
    Ok(())
}
