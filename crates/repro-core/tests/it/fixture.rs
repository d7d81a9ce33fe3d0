//! What the executor's tests share: a pipeline of three training runs and three measurements
//! each reading the training run of its seed, loaded into a fresh store.

use repro_core::pipeline::executor::Executor;
use repro_core::pipeline::spec::Pipeline;
use repro_core::store::Store;

/// Three training runs, and three measurements each reading the training run of its seed.
pub const PIPELINE: &str = r#"
experiments:
  train:
    kind: vision
    params: {epochs: 1}
    grid: {seed: [0, 1, 2]}
  measure:
    kind: sharpness
    needs: [train]
    grid: {seed: [0, 1, 2]}
profiles:
  test: {}
"#;

pub struct Setup {
    _dir: tempfile::TempDir,
    pub pipeline: Pipeline,
    pub store: Store,
    pub root: std::path::PathBuf,
}

pub fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let path = root.join("pipeline.yaml");
    std::fs::write(&path, PIPELINE).unwrap();
    let pipeline = Pipeline::load(&path).unwrap();
    let store = Store::open(&root.join("artifacts")).unwrap();
    Setup {
        _dir: dir,
        pipeline,
        store,
        root,
    }
}

impl Setup {
    pub fn executor(&self) -> Executor<'_> {
        Executor {
            pipeline: &self.pipeline,
            store: &self.store,
            datasets_dir: self.root.join("datasets"),
            lock_path: self.root.join("pipeline.lock"),
        }
    }
}
