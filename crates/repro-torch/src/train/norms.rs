//! Weight-norm statistics of the vision trainer (docs/paper.md#e1 logs, E2, claim C3): per-layer
//! norms, and for the BatchNorm-preceded (scale-invariant) conv weights the effective learning rate
//! α/‖w‖², the relative update ‖Δw‖/‖w‖ and the norm growth measured against its predictions.
//!
//! Per-step quantities are accumulated on the device and read once per epoch, so the tracker adds
//! no host synchronisation to the training step.

use serde::Serialize;
use tch::{Kind, Tensor};

use crate::checkpoint::State;

/// Statistics of one scale-invariant weight over one epoch.
#[derive(Debug, Clone, Serialize)]
pub struct LayerEpoch {
    pub name: String,
    /// ‖w‖ at the end of the epoch.
    pub norm: f64,
    /// α/‖w‖² with the epoch's learning rate and the end-of-epoch norm.
    pub eff_lr: f64,
    /// Mean over the epoch's steps of ‖Δw‖/‖w‖ (Δw the optimizer's actual step).
    pub rel_update: f64,
}

/// What [`NormTracker::finish_epoch`] reports.
#[derive(Debug, Clone, Serialize)]
pub struct EpochNorms {
    /// ‖w‖ over all trainable parameters.
    pub weight_norm: f64,
    /// ‖W‖ of every weight with two or more dimensions (conv and linear), by name.
    pub layer_norms: serde_json::Map<String, serde_json::Value>,
    pub scale_invariant: Vec<LayerEpoch>,
    /// Means over the scale-invariant layers.
    pub eff_lr_mean: f64,
    pub rel_update_mean: f64,
    /// Σ‖w‖² over the scale-invariant weights at the end of the epoch.
    pub si_norm_sq: f64,
    /// Its change over the epoch, measured.
    pub si_growth_measured: f64,
    /// Predicted change, Σ_t α²‖∇f‖² (docs/paper.md#e2: gradient ⟂ w, no momentum, no WD).
    pub si_growth_pred_grad: f64,
    /// Predicted change, Σ_t ‖Δw_t‖² (the same orthogonality argument applied to the actual
    /// momentum steps).
    pub si_growth_pred_step: f64,
    /// √(mean over steps of ‖∇f‖²), all parameters, without weight decay.
    pub grad_norm: f64,
}

pub struct NormTracker {
    params: Vec<(String, Tensor)>,
    /// Indices into `params` of the scale-invariant weights.
    si: Vec<usize>,
    /// Rows: Σ‖g‖², Σ‖Δw‖², Σ‖Δw‖/‖w‖; one column per scale-invariant weight; plus Σ‖g_all‖².
    acc: Tensor,
    grad_all: Tensor,
    steps: usize,
    start_sq: f64,
}

impl NormTracker {
    /// `params`: every trainable parameter by name; `scale_invariant`: the names of the
    /// BN-preceded conv weights (an unknown name is an error).
    pub fn new(params: Vec<(String, Tensor)>, scale_invariant: &[String]) -> anyhow::Result<Self> {
        let si = scale_invariant
            .iter()
            .map(|n| {
                params.iter().position(|(p, _)| p == n).ok_or_else(|| {
                    anyhow::anyhow!("scale-invariant weight `{n}` is not a parameter")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let device = params
            .first()
            .map(|(_, t)| t.device())
            .unwrap_or(tch::Device::Cpu);
        let mut t = NormTracker {
            acc: Tensor::zeros([3, si.len() as i64], (Kind::Float, device)),
            grad_all: Tensor::zeros([], (Kind::Float, device)),
            params,
            si,
            steps: 0,
            start_sq: 0.0,
        };
        t.start_sq = t.si_norm_sq();
        Ok(t)
    }

    /// Save the running sums into a checkpoint under `prefix`.
    pub fn save_state(&self, st: &mut State, prefix: &str) -> anyhow::Result<()> {
        st.put_tensor(format!("{prefix}.acc"), &self.acc);
        st.put_tensor(format!("{prefix}.grad_all"), &self.grad_all);
        st.put(&format!("{prefix}.counters"), &(self.steps, self.start_sq))
    }

    /// Restore what [`NormTracker::save_state`] saved.
    pub fn load_state(&mut self, st: &mut State, prefix: &str) -> anyhow::Result<()> {
        let device = self.acc.device();
        self.acc = st.tensor(&format!("{prefix}.acc"), device)?;
        self.grad_all = st.tensor(&format!("{prefix}.grad_all"), device)?;
        (self.steps, self.start_sq) = st.get(&format!("{prefix}.counters"))?;
        Ok(())
    }

    /// Record the gradients of the step about to be taken (call after backward, before the step).
    pub fn record_grads(&mut self) {
        tch::no_grad(|| {
            let sq: Vec<Tensor> = self
                .params
                .iter()
                .map(|(_, p)| sq_norm(&p.grad()))
                .collect();
            self.grad_all += Tensor::stack(&sq, 0).sum(Kind::Float);
            if !self.si.is_empty() {
                let g: Vec<Tensor> = self.si.iter().map(|&i| sq[i].shallow_clone()).collect();
                let mut row = self.acc.get(0);
                row += Tensor::stack(&g, 0);
            }
        });
    }

    /// Record the step just taken: `step(i)` is Δw of the i-th scale-invariant weight (in the
    /// order of the names given to [`NormTracker::new`]).
    pub fn record_step(&mut self, step: impl Fn(usize) -> Tensor) {
        self.steps += 1;
        if self.si.is_empty() {
            return;
        }
        tch::no_grad(|| {
            let (mut d2, mut rel) = (Vec::new(), Vec::new());
            for (k, &i) in self.si.iter().enumerate() {
                let d = sq_norm(&step(k));
                rel.push(d.sqrt() / sq_norm(&self.params[i].1).sqrt());
                d2.push(d);
            }
            let mut row = self.acc.get(1);
            row += Tensor::stack(&d2, 0);
            let mut row = self.acc.get(2);
            row += Tensor::stack(&rel, 0);
        });
    }

    /// Summarise the epoch trained with learning rate `lr` and start the next one.
    pub fn finish_epoch(&mut self, lr: f64) -> EpochNorms {
        let steps = self.steps.max(1) as f64;
        let acc: Vec<f64> = Vec::<f64>::try_from(self.acc.to_kind(Kind::Double).flatten(0, -1))
            .expect("a float tensor converts to Vec<f64>");
        let n = self.si.len();
        let (g2, d2, rel) = (&acc[..n], &acc[n..2 * n], &acc[2 * n..]);
        let norms: Vec<f64> = tch::no_grad(|| {
            self.params
                .iter()
                .map(|(_, p)| sq_norm(p).double_value(&[]).sqrt())
                .collect()
        });
        let layer_norms = self
            .params
            .iter()
            .zip(&norms)
            .filter(|((_, p), _)| p.dim() >= 2)
            .map(|((name, _), &n)| (name.clone(), serde_json::json!(n)))
            .collect();
        let scale_invariant: Vec<LayerEpoch> = self
            .si
            .iter()
            .enumerate()
            .map(|(k, &i)| LayerEpoch {
                name: self.params[i].0.clone(),
                norm: norms[i],
                eff_lr: lr / (norms[i] * norms[i]),
                rel_update: rel[k] / steps,
            })
            .collect();
        let mean = |f: fn(&LayerEpoch) -> f64| {
            scale_invariant.iter().map(f).sum::<f64>() / n.max(1) as f64
        };
        let si_norm_sq: f64 = self.si.iter().map(|&i| norms[i] * norms[i]).sum();
        let out = EpochNorms {
            weight_norm: norms.iter().map(|n| n * n).sum::<f64>().sqrt(),
            layer_norms,
            eff_lr_mean: mean(|l| l.eff_lr),
            rel_update_mean: mean(|l| l.rel_update),
            scale_invariant,
            si_norm_sq,
            si_growth_measured: si_norm_sq - self.start_sq,
            si_growth_pred_grad: lr * lr * g2.iter().sum::<f64>(),
            si_growth_pred_step: d2.iter().sum(),
            grad_norm: (self.grad_all.double_value(&[]) / steps).sqrt(),
        };
        let _ = self.acc.zero_();
        let _ = self.grad_all.zero_();
        self.steps = 0;
        self.start_sq = si_norm_sq;
        out
    }

    fn si_norm_sq(&self) -> f64 {
        tch::no_grad(|| {
            self.si
                .iter()
                .map(|&i| sq_norm(&self.params[i].1).double_value(&[]))
                .sum()
        })
    }
}

fn sq_norm(t: &Tensor) -> Tensor {
    t.square().sum(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain SGD steps orthogonal to w: the measured growth equals both predictions.
    #[test]
    fn growth_of_orthogonal_steps_matches_predictions() {
        let w = Tensor::from_slice(&[3.0f32, 0.0]).set_requires_grad(true);
        let b = Tensor::from_slice(&[1.0f32]).set_requires_grad(true);
        let mut t = NormTracker::new(
            vec![
                ("w".into(), w.shallow_clone()),
                ("b".into(), b.shallow_clone()),
            ],
            &["w".to_string()],
        )
        .unwrap();
        let lr = 0.5;
        // The gradient (0, 2) is orthogonal to w = (3, 0); the step is −lr·g.
        let loss = (&w * Tensor::from_slice(&[0.0f32, 2.0])).sum(Kind::Float) + &b * 0.0;
        loss.backward();
        t.record_grads();
        let step = w.grad() * -lr;
        tch::no_grad(|| {
            let _ = w.shallow_clone().g_add_(&step);
        });
        t.record_step(|_| step.shallow_clone());
        let e = t.finish_epoch(lr);
        // ‖w‖² goes 9 → 9 + 1 = 10.
        assert!((e.si_growth_measured - 1.0).abs() < 1e-6, "{e:?}");
        assert!((e.si_growth_pred_grad - 1.0).abs() < 1e-6);
        assert!((e.si_growth_pred_step - 1.0).abs() < 1e-6);
        assert!((e.scale_invariant[0].eff_lr - lr / 10.0).abs() < 1e-6);
        assert!((e.scale_invariant[0].rel_update - 1.0 / 10f64.sqrt()).abs() < 1e-6);
        assert!((e.grad_norm - 2.0).abs() < 1e-6);
        assert!((e.weight_norm - 11f64.sqrt()).abs() < 1e-6);
        assert_eq!(e.layer_norms.len(), 0, "1-D tensors are not layer weights");
        // The next epoch starts from zero.
        let e2 = t.finish_epoch(lr);
        assert_eq!((e2.si_growth_measured, e2.si_growth_pred_step), (0.0, 0.0));
    }

    #[test]
    fn unknown_scale_invariant_name_is_an_error() {
        let w = Tensor::zeros([2], (Kind::Float, tch::Device::Cpu));
        let err = NormTracker::new(vec![("w".into(), w)], &["v".to_string()]).err();
        assert!(err.unwrap().to_string().contains("`v`"));
    }
}
