//! What a training stage saves at an epoch (or iteration) boundary so that a killed run resumes
//! where it was and ends with the bytes an uninterrupted run would have written: named tensors
//! (model variables, optimizer buffers) in `state.safetensors`, everything else (counters, RNG
//! positions, metrics so far) in `state.json`, and libtorch's generator states. The folder
//! layout and its atomicity are [`repro_core::store::work`]'s.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::{Map, Value};
use tch::Tensor;

use super::stage::StageContext;
use crate::checkpoint::State;
use crate::libtorch::{rng_state, set_rng_state};

const CPU_RNG: &str = "rng.cpu";
const DEVICE_RNG: &str = "rng.device";

/// The shape of what the trainers save. Bump it when a trainer's saved state changes (a
/// counter renamed, a buffer added): a checkpoint of another format is not resumed from, and
/// the run starts over instead of failing on it. 2: counters as one serde struct per trainer.
pub const FORMAT: u64 = 2;
const FORMAT_KEY: &str = "checkpoint_format";

impl StageContext<'_> {
    /// The state of the newest checkpoint of this run, with libtorch's generators restored to
    /// what they were when it was saved; `None` when the run starts from the beginning (or runs
    /// without a work folder, as in tests that call a stage directly). The outputs are already
    /// as that checkpoint saw them (the engine prepared `out_dir`).
    pub fn resume(&self) -> Result<Option<State>> {
        let Some(ck) = &self.checkpoints else {
            return Ok(None);
        };
        let Some((_, dir)) = ck.latest()? else {
            return Ok(None);
        };
        let file = dir.join("state.safetensors");
        let tensors: BTreeMap<String, Tensor> = Tensor::read_safetensors(&file)
            .with_context(|| format!("reading {}", file.display()))?
            .into_iter()
            .collect();
        let json = dir.join("state.json");
        let values: Map<String, Value> = serde_json::from_slice(
            &std::fs::read(&json).with_context(|| format!("reading {}", json.display()))?,
        )
        .with_context(|| format!("{} is not a checkpoint state", json.display()))?;
        if values.get(FORMAT_KEY).and_then(Value::as_u64) != Some(FORMAT) {
            tracing::warn!(
                "{} is of another checkpoint format than this worker's ({FORMAT}): the run starts over",
                dir.display()
            );
            start_over(&self.out_dir)?;
            return Ok(None);
        }
        let mut state = State { tensors, values };
        set_rng_state(tch::Device::Cpu, &state.tensor(CPU_RNG, tch::Device::Cpu)?)?;
        if self.device.is_cuda() {
            set_rng_state(self.device, &state.tensor(DEVICE_RNG, tch::Device::Cpu)?)?;
        }
        Ok(Some(state))
    }

    /// Save `state` as the checkpoint after `unit` epochs (or iterations), together with
    /// libtorch's generator states and a snapshot of `out_dir`. No-op without a work folder.
    pub fn checkpoint(&self, unit: u64, mut state: State) -> Result<()> {
        let Some(ck) = &self.checkpoints else {
            return Ok(());
        };
        state.values.insert(FORMAT_KEY.into(), FORMAT.into());
        state.put_tensor(CPU_RNG, &rng_state(tch::Device::Cpu)?);
        if self.device.is_cuda() {
            state.put_tensor(DEVICE_RNG, &rng_state(self.device)?);
        }
        let tmp = ck.begin()?;
        let named: Vec<(&str, &Tensor)> =
            state.tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        Tensor::write_safetensors(&named, tmp.path().join("state.safetensors"))?;
        std::fs::write(
            tmp.path().join("state.json"),
            serde_json::to_vec(&state.values)?,
        )?;
        ck.commit(tmp, unit, &self.out_dir)
            .with_context(|| format!("cannot save checkpoint {unit} in {}", ck.dir().display()))
    }
}

/// Empty `out_dir`, which the engine filled from a checkpoint this run does not resume from.
fn start_over(out_dir: &std::path::Path) -> Result<()> {
    for e in std::fs::read_dir(out_dir)? {
        let path = e?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use repro_core::store::work::WorkDir;

    #[test]
    fn a_checkpoint_of_another_format_is_not_resumed_from() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::open(dir.path().join("work")).unwrap();
        let emit = |_: &repro_core::pipeline::progress::Progress| {};
        let (params, datasets) = (Map::new(), BTreeMap::new());
        let ctx = StageContext {
            run_id: "r",
            params: &params,
            datasets: &datasets,
            upstream: &[],
            out_dir: work.out_dir(),
            device: tch::Device::Cpu,
            precision: Default::default(),
            progress: crate::train::progress::ProgressOut {
                emit: &emit,
                every: std::time::Duration::ZERO,
                started: std::time::Instant::now(),
            },
            checkpoints: Some(work.checkpoints()),
        };
        let mut state = State::default();
        state.put("epoch", &3u64).unwrap();
        std::fs::write(ctx.out_dir.join("metrics.jsonl"), "{}\n").unwrap();
        ctx.checkpoint(3, state).unwrap();
        assert_eq!(work.prepare_attempt().unwrap(), Some(3));
        let resumed = ctx.resume().unwrap().expect("this format resumes");
        assert_eq!(resumed.get::<u64>("epoch").unwrap(), 3);

        // The same checkpoint as an older worker wrote it: no format number.
        let (_, saved) = work.checkpoints().latest().unwrap().unwrap();
        let json = saved.join("state.json");
        let mut values: Map<String, Value> =
            serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        values.remove(FORMAT_KEY);
        std::fs::write(&json, serde_json::to_vec(&values).unwrap()).unwrap();
        assert_eq!(work.prepare_attempt().unwrap(), Some(3));
        assert!(ctx.out_dir.join("metrics.jsonl").exists());
        assert!(ctx.resume().unwrap().is_none(), "starts over");
        assert_eq!(std::fs::read_dir(&ctx.out_dir).unwrap().count(), 0);
    }
}
