//! What a training stage saves at an epoch (or iteration) boundary so that a killed run resumes
//! where it was and ends with the bytes an uninterrupted run would have written: named tensors
//! (model variables, optimizer buffers) in `state.safetensors`, everything else (counters, RNG
//! positions, metrics so far) in `state.json`, and libtorch's generator states. The folder
//! layout and its atomicity are [`repro_core::store::work`]'s.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tch::Tensor;

use super::StageContext;
use crate::libtorch::{rng_state, set_rng_state};

/// A checkpoint's contents while it is being built or after it was read.
#[derive(Default)]
pub struct State {
    tensors: BTreeMap<String, Tensor>,
    values: Map<String, Value>,
}

const CPU_RNG: &str = "rng.cpu";
const DEVICE_RNG: &str = "rng.device";

impl State {
    /// A tensor by name (copied to the CPU when saved).
    pub fn put_tensor(&mut self, name: impl Into<String>, t: &Tensor) {
        let copy = tch::no_grad(|| t.detach().to_device(tch::Device::Cpu).contiguous());
        self.tensors.insert(name.into(), copy);
    }

    /// A serializable value by name (floats come back bit for bit: serde_json parses with
    /// `float_roundtrip`).
    pub fn put<T: Serialize + ?Sized>(&mut self, name: &str, v: &T) -> Result<()> {
        self.values.insert(name.into(), serde_json::to_value(v)?);
        Ok(())
    }

    /// Take the tensor `name`, moved to `device`.
    pub fn tensor(&mut self, name: &str, device: tch::Device) -> Result<Tensor> {
        let t = self
            .tensors
            .remove(name)
            .with_context(|| format!("the checkpoint has no tensor `{name}`"))?;
        Ok(t.to_device(device))
    }

    /// Whether the tensor `name` was saved.
    pub fn has_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The value `name`.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let v = self
            .values
            .get(name)
            .with_context(|| format!("the checkpoint has no value `{name}`"))?;
        serde_json::from_value(v.clone())
            .with_context(|| format!("the checkpoint's value `{name}` has another type"))
    }

    /// Every variable of `vs` (parameters and buffers such as BatchNorm's running statistics)
    /// under `prefix`.
    pub fn put_vars(&mut self, prefix: &str, vs: &tch::nn::VarStore) {
        for (name, t) in vs.variables() {
            self.put_tensor(format!("{prefix}.{name}"), &t);
        }
    }

    /// Copy the variables saved by [`State::put_vars`] back into `vs`.
    pub fn load_vars(&mut self, prefix: &str, vs: &tch::nn::VarStore) -> Result<()> {
        for (name, mut var) in vs.variables() {
            let src = self.tensor(&format!("{prefix}.{name}"), var.device())?;
            anyhow::ensure!(
                src.size() == var.size(),
                "checkpoint variable `{prefix}.{name}` has shape {:?}, the model {:?}",
                src.size(),
                var.size()
            );
            tch::no_grad(|| var.copy_(&src));
        }
        Ok(())
    }
}

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
