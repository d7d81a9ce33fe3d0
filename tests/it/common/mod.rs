//! Helpers for the end-to-end tests: a temporary project with a small pipeline, and the binary.

pub mod procs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Project {
    pub dir: tempfile::TempDir,
}

/// A small pipeline on generated CIFAR-10: 2 schedules × 2 seeds, a couple of epochs.
pub const PIPELINE: &str = r#"version: 1
salt: test
datasets:
  cifar10:
    format: cifar10-binary
    files:
      - name: cifar-10-binary.tar.gz
        urls: [http://127.0.0.1:9/unreachable.tar.gz]
        md5: c32a1d4ab5d03f1284b67883e8d87530
    generate:
      generator: cifar10
      params: {train_per_class: 20, test_per_class: 5, seed: 0}
experiments:
  small:
    kind: vision
    datasets: [cifar10]
    determinism: bitwise
    params: {model: small_cnn, width: 0.125, epochs: 2, batch_size: 50, lr: 0.05, switch_epoch: 1}
    grid:
      schedule: [none, early]
      seed: [0, 1]
profiles:
  smoke:
    threads: 1
    datasets:
      cifar10: {source: generate}
"#;

/// The `repro` binary, after checking that the worker it starts was built beside it: the worker
/// is its own package, which `cargo test` of this one does not build (`make test` does).
pub fn repro_bin() -> &'static Path {
    static CHECKED: std::sync::Once = std::sync::Once::new();
    let repro = Path::new(env!("CARGO_BIN_EXE_repro"));
    CHECKED.call_once(|| {
        let worker = repro.with_file_name("repro-worker");
        assert!(
            worker.exists(),
            "{} is missing: build it before these tests (`cargo build --workspace --bins`, as \
             `make test` does)",
            worker.display()
        );
    });
    repro
}

impl Project {
    pub fn new(pipeline: &str) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pipeline.yaml"), pipeline).expect("write pipeline");
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(repro_bin());
        c.current_dir(self.path())
            .args(args)
            .env_remove("REPRO_PROFILE")
            .env_remove("REPRO_STORE")
            .env_remove("REPRO_MIRROR");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("spawn repro")
    }

    pub fn store(&self) -> PathBuf {
        self.path().join("artifacts")
    }

    pub fn records(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.store().join("runs")).expect("runs dir") {
            let p = e.expect("entry").path();
            out.push(serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("json"));
        }
        out
    }
}

impl Project {
    /// `repro run --profile smoke --device cpu EXTRA…`.
    pub fn smoke(&self, extra: &[&str]) -> Output {
        let mut args = vec!["run", "--profile", "smoke", "--device", "cpu"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// The record of one run id.
    pub fn record(&self, run_id: &str) -> serde_json::Value {
        self.records()
            .into_iter()
            .find(|r| r["run_id"] == run_id)
            .unwrap_or_else(|| panic!("no record of {run_id}"))
    }

    /// The store object holding output `name` of run `run_id`.
    pub fn output(&self, run_id: &str, name: &str) -> PathBuf {
        let rec = self.record(run_id);
        let sha = rec["outputs"][name]["sha256"]
            .as_str()
            .unwrap_or_else(|| panic!("{run_id} has no output {name}: {}", rec["outputs"]));
        self.object(sha)
    }

    /// The rows of a JSON-lines output of run `run_id`.
    pub fn rows(&self, run_id: &str, name: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.output(run_id, name))
            .expect("read output")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON row"))
            .collect()
    }

    /// Path of a store object.
    pub fn object(&self, sha256: &str) -> PathBuf {
        self.store()
            .join("objects/sha256")
            .join(&sha256[..2])
            .join(&sha256[2..])
    }
}

/// Flip the bits of one byte of a file (making it writable first, as store objects are not).
/// Every file under `dir`, at any depth (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

pub fn flip_byte(path: &Path, offset: usize) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut bytes = std::fs::read(path).expect("read");
    bytes[offset] ^= 0xff;
    std::fs::write(path, &bytes).expect("write");
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Assert success and return the combined output.
pub fn ok(o: Output) -> String {
    let t = text(&o);
    assert!(
        o.status.success(),
        "repro failed ({:?}):\n{t}",
        o.status.code()
    );
    t
}
