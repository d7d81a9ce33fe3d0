//! A checkpoint's contents: named tensors (model variables, optimizer buffers) and named JSON
//! values (counters, RNG positions, metrics so far). Below `optim` and `train`, so optimizers save
//! and load their buffers here without importing the trainers; reading and writing a checkpoint
//! folder is `train::checkpoint`'s.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tch::Tensor;

/// The name under which a trainer saves its counters: one serde struct per trainer, saved and
/// restored as one value.
pub const COUNTERS: &str = "counters";

/// A checkpoint's contents while it is being built or after it was read.
#[derive(Default)]
pub struct State {
    pub(crate) tensors: BTreeMap<String, Tensor>,
    pub(crate) values: Map<String, Value>,
}

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
