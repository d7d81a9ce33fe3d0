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
