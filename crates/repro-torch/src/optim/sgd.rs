//! SGD with momentum and coupled (L2) weight decay, as `torch.optim.SGD` computes it with
//! dampening 0 and Nesterov off:
//!
//! ```text
//! d   = g + λ·w                 (λ = this step's weight decay; skipped when λ = 0)
//! buf = d                       (first step of a parameter)
//! buf = μ·buf + d               (later steps)
//! w   = w − lr·buf
//! ```
//!
//! Learning rate and weight decay are arguments of [`Sgd::step`], because the schedules of the
//! paper change both per epoch. All updates are in place and outside autograd.
//!
//! Numerics: torch fuses `a + α·b` into one rounding (`add(…, alpha=α)`); tch exposes no `alpha`,
//! so here `α·b` is rounded first. Results agree with torch to a few ulps
//! (crates/repro-torch/tests/it/optim.rs checks a relative difference ≤ 1e-6 in float32 over many
//! steps), not bitwise.

use tch::Tensor;

use crate::checkpoint::State;

/// Stochastic gradient descent with momentum over a fixed list of parameters.
pub struct Sgd {
    params: Vec<Tensor>,
    momentum: f64,
    buffers: Vec<Option<Tensor>>,
}

impl Sgd {
    /// An optimizer over `params` (shallow clones of the model's variables) with momentum `μ`.
    pub fn new(params: Vec<Tensor>, momentum: f64) -> Sgd {
        let buffers = params.iter().map(|_| None).collect();
        Sgd {
            params,
            momentum,
            buffers,
        }
    }

    /// Zero the gradients of all parameters that have one, in place (torch's
    /// `zero_grad(set_to_none=False)`; tch cannot unset a gradient). A parameter that never
    /// received a gradient keeps none and is skipped by [`Sgd::step`].
    pub fn zero_grad(&mut self) {
        for p in &self.params {
            p.shallow_clone().zero_grad();
        }
    }

    /// One step with this step's learning rate and weight decay (schedules change both per epoch). Params without a grad are skipped, like torch.
    pub fn step(&mut self, lr: f64, weight_decay: f64) {
        let momentum = self.momentum;
        tch::no_grad(|| {
            for (p, buf) in self.params.iter().zip(self.buffers.iter_mut()) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let d = if weight_decay != 0.0 {
                    g.g_add(&(p * weight_decay))
                } else {
                    g
                };
                match buf {
                    None => *buf = Some(d.detach().copy()),
                    Some(b) if momentum == 0.0 => {
                        b.copy_(&d);
                    }
                    Some(b) => {
                        let _ = b.g_mul_scalar_(momentum);
                        let _ = b.g_add_(&d);
                    }
                }
                let b = buf.as_ref().expect("set above");
                let mut p = p.shallow_clone();
                let _ = p.g_add_(&(b * -lr));
            }
        });
    }

    /// The momentum buffer of parameter i (None before its first step).
    pub fn momentum_buffer(&self, i: usize) -> Option<&Tensor> {
        self.buffers.get(i).and_then(|b| b.as_ref())
    }

    /// The parameters, in the order given to [`Sgd::new`].
    pub fn params(&self) -> &[Tensor] {
        &self.params
    }

    /// Save the momentum buffers into a checkpoint under `prefix`.
    pub fn save_state(&self, st: &mut State, prefix: &str) {
        for (i, b) in self.buffers.iter().enumerate() {
            if let Some(b) = b {
                st.put_tensor(format!("{prefix}.momentum.{i}"), b);
            }
        }
    }

    /// Restore what [`Sgd::save_state`] saved (a parameter without a buffer then had none).
    pub fn load_state(&mut self, st: &mut State, prefix: &str) -> anyhow::Result<()> {
        for (i, (p, b)) in self.params.iter().zip(self.buffers.iter_mut()).enumerate() {
            let name = format!("{prefix}.momentum.{i}");
            *b = if st.has_tensor(&name) {
                Some(st.tensor(&name, p.device())?)
            } else {
                None
            };
        }
        Ok(())
    }
}
