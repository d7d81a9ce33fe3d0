//! The Adam family of docs/paper.md#e7: one optimizer with flags (a, b, mode) saying where the l2
//! gradient r = λ·w enters. Per parameter, with g = ∇L, step t counted from 1 per parameter:
//!
//! ```text
//! r  = λ·w                                   (w at the start of the step)
//! m  = β₁·m + (1−β₁)·(g + a·r)               (torch: m.lerp_(g + a·r, 1−β₁))
//! v  = β₂·v + (1−β₂)·(g + b·r)²
//! d  = √v / √(1−β₂ᵗ) + ε                     (= √v̂ + ε)
//! w  = w − α·λ·w                             mode = plain     (applied first, as torch.optim.AdamW)
//! w  = w − α·λ·w / d                         mode = adaptive  (applied first, same order)
//! w  = w / (1 + α·λ/d)                       mode = adaptive implicit (same order)
//! w  = w − (α/(1−β₁ᵗ))·m / d                 (= w − α·m̂/(√v̂+ε))
//! ```
//!
//! With k = α·λ/d per coordinate, each variant's stability bound ([`Variant::stability_bound`];
//! the E8 diagnostic counts the coordinates past it):
//!
//! | variant | a | b | mode | stable while |
//! |---|---|---|---|---|
//! | V1 [`Variant::ADAM_L2`] = `torch.optim.Adam(weight_decay=λ)` | 1 | 1 | none | always (bounded: λw is in √v̂) |
//! | V2 [`Variant::ADAMW`] = `torch.optim.AdamW(weight_decay=λ)` | 0 | 0 | plain | αλ < 2 |
//! | V3 [`Variant::L2_IN_M`] | 1 | 0 | none | k < 2(1+β₁)/(1−β₁) |
//! | V4 [`Variant::L2_IN_V`] | 0 | 1 | plain | always in practice (the loss step is bounded by λw in √v̂; the plain decay is V2's, counted past αλ = 2) |
//! | V5 [`Variant::ADAPTIVE_DECOUPLED`] | 0 | 0 | adaptive | k < 2 |
//! | [`Variant::L2_OUT_OF_M`] | 0 | 1 | adaptive | bounded (λw is in √v̂, so k ≤ α/√(1−β₂)·√(1−β₂ᵗ)/\|w\|; counted past k = 2 as V5) |
//! | [`Variant::ADAPTIVE_DECOUPLED_STABLE`] | 0 | 0 | adaptive implicit | every λ |
//!
//! `l2_out_of_m` is V1's step with the β₁-average of λw in m replaced by this step's λw;
//! `adaptive_decoupled_stable` is V5 with its decay taken implicitly: the factor 1/(1 + k) lies
//! in (0, 1] for every k, where V5's 1 − k leaves [−1, 1] past k = 2.
//!
//! Order of operations, as torch 2.11's `_single_tensor_adam`: r is taken from w before anything
//! moves it; the decoupled decay multiplies w by (1 − α·λ) *before* the Adam update (torch's
//! `p.mul_(1 − lr·wd)`), which is the same as subtracting α·λ·w and α·u from the step's starting w
//! because u does not depend on w after r is taken. The adaptive decay (V5) needs d, hence the
//! moments first; it is then applied to w before the Adam update too, so every variant subtracts
//! its decay and α·u from the same starting w (the implicit decay divides the starting w by
//! 1 + α·λ/d, also before the Adam update, so the loss step is V5's). Bias corrections are computed in f64 on the host
//! (`β^t` with `powf`, √(1−β₂ᵗ) as `powf(0.5)`, as Python's `**`), the step size is α/(1−β₁ᵗ), and ε
//! is added after dividing √v by √(1−β₂ᵗ) (not to √v before). λ = 0 skips the decay and l2 terms.
//!
//! Learning rate and weight decay are arguments of [`Adam::step`], because schedules change both.
//! All updates are in place and outside autograd. Numerics: the same kernels in the same order as
//! torch: `v.addcmul_(g, g, value=1−β₂)` and `p.addcdiv_(m, d, value=−s)` through
//! [`crate::libtorch::ops`] (tch has no `value` argument), `g.add(p, alpha=λ)` (an FMA in torch's
//! vectorised CPU kernel) as `g.addcmul(p, λ)` (the same single rounding); m's update is the same
//! `lerp_`. On CPU this reproduces torch.optim's single-tensor path to the last bit in our tests
//! (crates/repro-torch/tests/it/optim.rs checks a relative difference ≤ 1e-6 in float32 and
//! ≤ 1e-12 in float64, not bitwise equality: other devices and torch's foreach/fused paths round
//! differently).
//!
//! The E8 drown-out diagnostic ([`Adam::track_drown_out`], off by default) is computed from
//! shadow moving averages the optimizer moves every step while tracking; what it measures and
//! how is in [`super::drown_out`].

use anyhow::Context as _;
use tch::{Kind, Tensor};

pub use super::drown_out::StabilityBound;
use super::drown_out::{self, DrownOut, Shadow, StepView};
use crate::checkpoint::State;
use crate::libtorch::ops;
pub use repro_core::pipeline::kinds::AdamVariant;

/// How the decoupled weight decay enters the update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DecayMode {
    /// No decoupled decay (λ only acts through the l2 gradient, if a or b is set).
    None,
    /// w ← w − α·λ·w (AdamW).
    Plain,
    /// w ← w − α·λ·w/(√v̂+ε): the decay scaled per coordinate like the gradient step.
    Adaptive,
    /// w ← w/(1 + α·λ/(√v̂+ε)): the adaptive decay taken implicitly (backward Euler on
    /// ẇ = −λw/d), which shrinks w for every λ.
    AdaptiveImplicit,
}

/// Where the l2 gradient r = λ·w enters: the first moment (a), the second moment (b), and the
/// decoupled decay mode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variant {
    pub l2_in_m: bool,
    pub l2_in_v: bool,
    pub decay: DecayMode,
}

impl Variant {
    /// V1: Adam with l2 in the gradient, `torch.optim.Adam(weight_decay=λ)`.
    pub const ADAM_L2: Variant = Variant {
        l2_in_m: true,
        l2_in_v: true,
        decay: DecayMode::None,
    };
    /// V2: AdamW, `torch.optim.AdamW(weight_decay=λ)`.
    pub const ADAMW: Variant = Variant {
        l2_in_m: false,
        l2_in_v: false,
        decay: DecayMode::Plain,
    };
    /// V3: l2 in the first moment only.
    pub const L2_IN_M: Variant = Variant {
        l2_in_m: true,
        l2_in_v: false,
        decay: DecayMode::None,
    };
    /// V4: l2 in the second moment only, plus the decoupled decay.
    pub const L2_IN_V: Variant = Variant {
        l2_in_m: false,
        l2_in_v: true,
        decay: DecayMode::Plain,
    };
    /// V5: decoupled decay scaled by the adaptive denominator.
    pub const ADAPTIVE_DECOUPLED: Variant = Variant {
        l2_in_m: false,
        l2_in_v: false,
        decay: DecayMode::Adaptive,
    };
    /// λw in v and as an explicit adaptive decay, not in m: V1 without the β₁-average of λw.
    pub const L2_OUT_OF_M: Variant = Variant {
        l2_in_m: false,
        l2_in_v: true,
        decay: DecayMode::Adaptive,
    };
    /// V5 with the adaptive decay taken implicitly: stable for every λ.
    pub const ADAPTIVE_DECOUPLED_STABLE: Variant = Variant {
        l2_in_m: false,
        l2_in_v: false,
        decay: DecayMode::AdaptiveImplicit,
    };

    /// V1..V5's short names, in the order of [`AdamVariant::ALL`].
    const SHORT: [&'static str; 5] = ["v1", "v2", "v3", "v4", "v5"];

    /// The long names of the named variants, in the order of docs/paper.md#variants (the `variant`
    /// parameter's choices, [`AdamVariant::NAMES`]).
    pub fn names() -> impl Iterator<Item = &'static str> {
        AdamVariant::NAMES.iter().copied()
    }

    /// "v1".."v5" or a long name ("adam_l2", …, "adaptive_decoupled_stable"), ASCII case
    /// ignored.
    pub fn parse(s: &str) -> Option<Variant> {
        let s = s.trim().to_ascii_lowercase();
        let named = match Variant::SHORT.iter().position(|short| *short == s) {
            Some(i) => AdamVariant::ALL[i],
            None => AdamVariant::parse(&s).ok()?,
        };
        Some(named.into())
    }

    /// The long name of a named variant ("adam_l2", …); "custom" for any other flag set.
    pub fn name(&self) -> &'static str {
        AdamVariant::ALL
            .into_iter()
            .find(|v| Variant::from(*v) == *self)
            .map_or("custom", AdamVariant::name)
    }

    /// The bound the E8 diagnostic counts coordinates past (the module doc's table): k > 2 for
    /// an explicit adaptive decay, k > 2(1+β₁)/(1−β₁) for l2 in m without l2 in v (the l2 term
    /// then acts like a heavy-ball decay of rate k), αλ > 2 for the plain decay, and none for
    /// V1 and the implicit decay.
    pub fn stability_bound(&self, beta1: f64) -> StabilityBound {
        match self.decay {
            DecayMode::Plain => StabilityBound::DecayRate(2.0),
            DecayMode::Adaptive => StabilityBound::CoordinateRate(2.0),
            DecayMode::AdaptiveImplicit => StabilityBound::Unbounded,
            DecayMode::None if self.l2_in_m && !self.l2_in_v => {
                StabilityBound::CoordinateRate(2.0 * (1.0 + beta1) / (1.0 - beta1))
            }
            DecayMode::None => StabilityBound::Unbounded,
        }
    }
}

impl From<AdamVariant> for Variant {
    /// The flags of a named variant.
    fn from(v: AdamVariant) -> Variant {
        match v {
            AdamVariant::AdamL2 => Variant::ADAM_L2,
            AdamVariant::AdamW => Variant::ADAMW,
            AdamVariant::L2InM => Variant::L2_IN_M,
            AdamVariant::L2InV => Variant::L2_IN_V,
            AdamVariant::AdaptiveDecoupled => Variant::ADAPTIVE_DECOUPLED,
            AdamVariant::L2OutOfM => Variant::L2_OUT_OF_M,
            AdamVariant::AdaptiveDecoupledStable => Variant::ADAPTIVE_DECOUPLED_STABLE,
        }
    }
}

/// d = √v / √(1−β₂ᵗ) + ε, in place on the sqrt's own buffer: the same values as torch's
/// `(v.sqrt() / c).add_(ε)` with one temporary fewer (√(1−β₂ᵗ) as `powf(0.5)`, as Python's `**`).
fn denominator(v: &Tensor, beta2: f64, t: f64, eps: f64) -> Tensor {
    let bias_correction2_sqrt = (1.0 - beta2.powf(t)).powf(0.5);
    let mut denom = v.sqrt();
    let _ = denom.g_div_scalar_(bias_correction2_sqrt);
    let _ = denom.g_add_scalar_(eps);
    denom
}

/// The adaptive decoupled decay of w (V5's explicit one, or its implicit form), applied before
/// the Adam update; the other modes leave w here.
fn adaptive_decay(p: &mut Tensor, denom: &Tensor, mode: DecayMode, lr: f64, wd: f64) {
    match mode {
        DecayMode::Adaptive => {
            let p_start = p.shallow_clone();
            ops::addcdiv_(p, &p_start, denom, -lr * wd);
        }
        DecayMode::AdaptiveImplicit => {
            // w / (1 + αλ/d): a factor in (0, 1] however small d gets.
            let mut shrink = denom.reciprocal();
            let _ = shrink.g_mul_scalar_(lr * wd);
            let _ = shrink.g_add_scalar_(1.0);
            let _ = p.g_div_(&shrink);
        }
        DecayMode::None | DecayMode::Plain => {}
    }
}

/// What [`Adam::save_state`] saves besides tensors, as one checkpoint value.
#[derive(serde::Serialize, serde::Deserialize)]
struct Counters {
    /// Per parameter: its step count, `None` before its first step.
    steps: Vec<Option<u64>>,
    /// Per parameter, while tracking the drown-out diagnostic: the shadows' step count.
    shadow_steps: Option<Vec<Option<u64>>>,
    /// The parameters the saved drown-out sums are over, when there are some.
    drown_sums_of: Option<Vec<usize>>,
    tracked_steps: u64,
}

/// Hyper-parameters that stay fixed over training (lr and λ are per step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub variant: Variant,
}

impl Default for AdamConfig {
    /// torch's defaults: β = (0.9, 0.999), ε = 1e-8, plain Adam (V1; with λ = 0 it is Adam).
    fn default() -> AdamConfig {
        AdamConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            variant: Variant::ADAM_L2,
        }
    }
}

struct Moments {
    step: u64,
    m: Tensor,
    v: Tensor,
}

/// Adam with the l2 gradient entering where the [`Variant`] says, over a fixed list of parameters.
pub struct Adam {
    params: Vec<Tensor>,
    cfg: AdamConfig,
    state: Vec<Option<Moments>>,
    /// Per-parameter shadow EMAs, present while the drown-out diagnostic is on.
    shadows: Option<Vec<Option<Shadow>>>,
    /// Sums of the last sampled step, f64 on the params' device, one row of
    /// [`drown_out::step_sums`] per parameter that stepped (their indices alongside). Read (and
    /// synchronised) only by [`Adam::drown_out`] and [`Adam::drown_out_by_group`].
    drown_sums: Option<(Vec<usize>, Tensor)>,
    /// The sums are taken every this many steps (the shadows move every step).
    drown_every: u64,
    /// Steps since tracking was switched on.
    tracked_steps: u64,
}

impl Adam {
    /// An optimizer over `params` (shallow clones of the model's variables).
    pub fn new(params: Vec<Tensor>, cfg: AdamConfig) -> Adam {
        let state = params.iter().map(|_| None).collect();
        Adam {
            params,
            cfg,
            state,
            shadows: None,
            drown_sums: None,
            drown_every: 1,
            tracked_steps: 0,
        }
    }

    /// The configuration given to [`Adam::new`].
    pub fn config(&self) -> &AdamConfig {
        &self.cfg
    }

    /// Zero the gradients of all parameters that have one, in place (torch's
    /// `zero_grad(set_to_none=False)`; tch cannot unset a gradient). A parameter that never
    /// received a gradient keeps none and is skipped by [`Adam::step`].
    pub fn zero_grad(&mut self) {
        for p in &self.params {
            p.shallow_clone().zero_grad();
        }
    }

    /// Unset the gradients of all parameters (torch's default `zero_grad()`, set_to_none=True):
    /// the next backward writes each gradient into a fresh tensor, with no zeroing pass and no
    /// add into the zeroed one. The values are those of [`Adam::zero_grad`] + backward (0 + g = g)
    /// except that a −0 stays −0, which no step reads differently. A parameter the next backward
    /// does not reach then has no gradient and [`Adam::step`] skips it (as torch), where after
    /// `zero_grad` it would step on a zero gradient.
    pub fn clear_grads(&mut self) {
        for p in &self.params {
            ops::clear_grad(p);
        }
    }

    /// Switch the E8 drown-out diagnostic on or off. On: shadow EMAs start at zero and are updated
    /// from the next step. Off: the shadows and the last result are dropped (no cost per step).
    pub fn track_drown_out(&mut self, on: bool) {
        self.track_drown_out_every(u64::from(on));
    }

    /// The diagnostic sampled every `every` steps (0: off): the shadow EMAs still move every step
    /// (they must, to describe m), but the reductions, their f64 copies and the result are
    /// computed only on every `every`-th step after switching on; [`Adam::drown_out`] then gives
    /// the last sampled step's. Changing `every` while on keeps the shadows.
    pub fn track_drown_out_every(&mut self, every: u64) {
        let on = every > 0;
        if on {
            self.drown_every = every;
        }
        match (on, self.shadows.is_some()) {
            (true, false) => {
                self.shadows = Some(self.params.iter().map(|_| None).collect());
                self.tracked_steps = 0;
            }
            (false, _) => {
                self.shadows = None;
                self.drown_sums = None;
            }
            (true, true) => {}
        }
    }

    /// The drown-out diagnostic of the last step; None while tracking is off or before the first
    /// tracked step that had a gradient.
    pub fn drown_out(&self) -> Option<DrownOut> {
        let (_, rows) = self.drown_sums.as_ref()?;
        let total = rows.sum_dim_intlist(0, false, Kind::Double);
        let v: Vec<f64> = Vec::<f64>::try_from(&total.to_device(tch::Device::Cpu)).ok()?;
        Some(DrownOut::from_sums(&v.try_into().ok()?))
    }

    /// The drown-out diagnostic of the last step per group of parameters: `group_of[i]` is the
    /// group of parameter i (< `groups`). A group none of whose parameters stepped is None, and
    /// so is every group while tracking is off. One device→host copy.
    pub fn drown_out_by_group(&self, group_of: &[usize], groups: usize) -> Vec<Option<DrownOut>> {
        let mut sums = vec![None::<[f64; drown_out::SUMS]>; groups];
        let Some((index, rows)) = self.drown_sums.as_ref() else {
            return vec![None; groups];
        };
        let flat: Vec<f64> = Vec::<f64>::try_from(&rows.to_device(tch::Device::Cpu).reshape([-1]))
            .unwrap_or_default();
        for (row, &param) in flat.chunks_exact(drown_out::SUMS).zip(index) {
            let Some(acc) = group_of.get(param).and_then(|&g| sums.get_mut(g)) else {
                continue;
            };
            let acc = acc.get_or_insert([0.0; drown_out::SUMS]);
            for (a, x) in acc.iter_mut().zip(row) {
                *a += x;
            }
        }
        sums.into_iter()
            .map(|s| s.map(|s| DrownOut::from_sums(&s)))
            .collect()
    }

    /// One step with this step's learning rate and weight decay λ; params without a grad are
    /// skipped (their step counter does not advance), like torch.
    pub fn step(&mut self, lr: f64, weight_decay: f64) {
        let AdamConfig {
            beta1,
            beta2,
            eps,
            variant,
        } = self.cfg;
        let wd = weight_decay;
        let mut sums: Vec<Tensor> = Vec::new();
        let mut stepped: Vec<usize> = Vec::new();
        if self.shadows.is_some() {
            self.tracked_steps += 1;
        }
        let sample = self.shadows.is_some() && self.tracked_steps.is_multiple_of(self.drown_every);
        tch::no_grad(|| {
            for (i, p) in self.params.iter().enumerate() {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let st = self.state[i].get_or_insert_with(|| Moments {
                    step: 0,
                    m: p.zeros_like(),
                    v: p.zeros_like(),
                });
                st.step += 1;
                let t = st.step as f64;

                // g + r from the step's starting w; λ = 0 skips the term as torch does. torch's
                // `g.add(p, alpha=λ)` is one FMA, as is addcmul with value 1: g + p·λ rounded once.
                let wd_t = (wd != 0.0).then(|| Tensor::full([], wd, (p.kind(), p.device())));
                let with_r = |on: bool| match (&wd_t, on) {
                    (Some(wd_t), true) => g.addcmul(p, wd_t),
                    _ => g.shallow_clone(),
                };
                let gm = with_r(variant.l2_in_m);
                let gv = if variant.l2_in_v == variant.l2_in_m {
                    gm.shallow_clone()
                } else {
                    with_r(variant.l2_in_v)
                };

                // The step's starting w, for the diagnostic's r (copied only while tracking).
                let p0 = if self.shadows.is_some() && wd != 0.0 {
                    p.copy()
                } else {
                    p.shallow_clone()
                };
                let mut p = p.shallow_clone();
                if variant.decay == DecayMode::Plain && wd != 0.0 {
                    let _ = p.g_mul_scalar_(1.0 - lr * wd);
                }

                let _ = st.m.lerp_(&gm, 1.0 - beta1);
                // torch: v.mul_(β₂).addcmul_(gv, gv, value=1−β₂).
                let _ = st.v.g_mul_scalar_(beta2);
                ops::addcmul_(&mut st.v, &gv, &gv, 1.0 - beta2);

                let step_size = lr / (1.0 - beta1.powf(t));
                let denom = denominator(&st.v, beta2, t, eps);
                if wd != 0.0 {
                    adaptive_decay(&mut p, &denom, variant.decay, lr, wd);
                }
                // torch: p.addcdiv_(m, denom, value=−step_size)
                ops::addcdiv_(&mut p, &st.m, &denom, -step_size);

                if let Some(shadows) = self.shadows.as_mut() {
                    let sh = shadows[i].get_or_insert_with(|| Shadow::zeros_like(&p));
                    let r = (wd != 0.0).then(|| &p0 * wd);
                    sh.update(&g, r.as_ref(), beta1, beta2);
                    if sample {
                        stepped.push(i);
                        sums.push(drown_out::step_sums(
                            sh,
                            &StepView {
                                g: &g,
                                r: r.as_ref(),
                                m: &st.m,
                                denom: &denom,
                                lr_wd: lr * wd,
                                betas: (beta1, beta2),
                                eps,
                                bound: variant.stability_bound(beta1),
                            },
                        ));
                    }
                }
            }
        });
        if sample && !sums.is_empty() {
            self.drown_sums = Some((stepped, Tensor::stack(&sums, 0)));
        }
    }

    /// The parameters, in the order given to [`Adam::new`].
    pub fn params(&self) -> &[Tensor] {
        &self.params
    }

    /// (m, v) of parameter i (torch's `exp_avg`, `exp_avg_sq`), None before its first step.
    pub fn moments(&self, i: usize) -> Option<(&Tensor, &Tensor)> {
        self.state
            .get(i)
            .and_then(|s| s.as_ref())
            .map(|s| (&s.m, &s.v))
    }

    /// How many steps parameter i has taken (0 before its first).
    pub fn steps(&self, i: usize) -> u64 {
        self.state
            .get(i)
            .and_then(|s| s.as_ref())
            .map_or(0, |s| s.step)
    }
    /// Save the moments, step counts and the drown-out shadows into a checkpoint under `prefix`.
    pub fn save_state(&self, st: &mut State, prefix: &str) -> anyhow::Result<()> {
        let counters = Counters {
            steps: self
                .state
                .iter()
                .map(|s| s.as_ref().map(|s| s.step))
                .collect(),
            shadow_steps: self.shadows.as_ref().map(|shadows| {
                shadows
                    .iter()
                    .map(|s| s.as_ref().map(|s| s.steps))
                    .collect()
            }),
            drown_sums_of: self.drown_sums.as_ref().map(|(idx, _)| idx.clone()),
            tracked_steps: self.tracked_steps,
        };
        st.put(&format!("{prefix}.counters"), &counters)?;
        for (i, s) in self.state.iter().enumerate() {
            if let Some(s) = s {
                st.put_tensor(format!("{prefix}.m.{i}"), &s.m);
                st.put_tensor(format!("{prefix}.v.{i}"), &s.v);
            }
        }
        if let Some(shadows) = &self.shadows {
            for (i, s) in shadows.iter().enumerate() {
                if let Some(s) = s {
                    st.put_tensor(format!("{prefix}.mg.{i}"), &s.mg);
                    st.put_tensor(format!("{prefix}.mr.{i}"), &s.mr);
                    st.put_tensor(format!("{prefix}.vg.{i}"), &s.vg);
                }
            }
        }
        if let Some((_, sums)) = &self.drown_sums {
            st.put_tensor(format!("{prefix}.drown_sums"), sums);
        }
        Ok(())
    }

    /// Restore what [`Adam::save_state`] saved into an optimizer built like the saved one
    /// (same parameters, drown-out tracking set the same way).
    pub fn load_state(&mut self, st: &mut State, prefix: &str) -> anyhow::Result<()> {
        let c: Counters = st.get(&format!("{prefix}.counters"))?;
        let steps = c.steps;
        anyhow::ensure!(
            steps.len() == self.params.len(),
            "the checkpoint's optimizer has {} parameters, this one {}",
            steps.len(),
            self.params.len()
        );
        for (i, step) in steps.into_iter().enumerate() {
            let dev = self.params[i].device();
            self.state[i] = match step {
                Some(step) => Some(Moments {
                    step,
                    m: st.tensor(&format!("{prefix}.m.{i}"), dev)?,
                    v: st.tensor(&format!("{prefix}.v.{i}"), dev)?,
                }),
                None => None,
            };
        }
        if let Some(shadows) = &mut self.shadows {
            let steps = c
                .shadow_steps
                .context("the checkpoint's optimizer has no drown-out shadows")?;
            anyhow::ensure!(
                steps.len() == shadows.len(),
                "the checkpoint has drown-out shadows for {} parameters, this optimizer {}",
                steps.len(),
                shadows.len()
            );
            for (i, (s, steps)) in shadows.iter_mut().zip(steps).enumerate() {
                let dev = self.params[i].device();
                let mut tensor = |name: &str| st.tensor(&format!("{prefix}.{name}.{i}"), dev);
                *s = match steps {
                    Some(steps) => Some(Shadow {
                        mg: tensor("mg")?,
                        mr: tensor("mr")?,
                        vg: tensor("vg")?,
                        steps,
                    }),
                    None => None,
                };
            }
        }
        self.drown_sums = match c.drown_sums_of {
            Some(idx) => {
                let dev = self.params.first().map_or(tch::Device::Cpu, |p| p.device());
                Some((idx, st.tensor(&format!("{prefix}.drown_sums"), dev)?))
            }
            None => None,
        };
        self.tracked_steps = c.tracked_steps;
        Ok(())
    }
}
