//! The Adam family of [`super::adam`] for a fused group (issue 30): N independent runs ("members")
//! trained as one stacked model, every parameter of shape `[N, …]` with member i's parameter as its
//! slice i. Members share β₁, β₂, ε and the step count (they step together); they differ in the
//! learning rate α, the weight decay λ and the [`Variant`]. One sequence of kernels per parameter
//! serves all members, whatever mix of variants: the per-member quantities enter as tensors of
//! shape `[N, 1, 1, …]` broadcast over the run axis.
//!
//! Per member the update is [`super::adam`]'s, in its order of operations, with the variant's flags
//! folded into per-member coefficients (a, b ∈ {0, 1}; the decay mode as 0/1 masks):
//!
//! ```text
//! A  = a·λ,  B = b·λ                               (per member; r = λ·w enters as w·A, w·B)
//! gm = g + w·A          gv = g + w·B               (one addcmul each; shared when A = B)
//! w  = w · (1 − α·λ·[plain])                       (before the Adam update, as torch's AdamW)
//! m  = m.lerp(gm, 1−β₁);  v = β₂·v + (1−β₂)·gv²
//! d  = √v / √(1−β₂ᵗ) + ε
//! w  = w + (w · (−α·λ·[adaptive])) / d            (solo: p.addcdiv_(p, d, value=−αλ))
//! w  = w / (1/d · (α·λ·[implicit]) + 1)
//! w  = w + (m · (−α/(1−β₁ᵗ))) / d                  (solo: p.addcdiv_(m, d, value=−α/(1−β₁ᵗ)))
//! ```
//!
//! Each per-member coefficient is computed on the host in f64 exactly as the solo optimizer
//! computes its scalar (`1.0 − lr·wd`, `−lr·wd`, `lr·wd`, `lr / (1 − β₁.powf(t))`) and rounded once
//! to the parameters' kind, which is what torch does with the solo scalar; a coefficient of 1 or 0
//! leaves a member's values exactly as the solo skips do (w·1 = w, g + w·0 = g, w + 0/d = w,
//! w/1 = w, up to the sign of a zero), and `1·x/d` in `addcdiv_` is the solo `value·x/d`. On CPU a
//! member therefore follows the solo [`super::adam::Adam`] with its config to the last bit in our
//! test (crates/repro-torch/tests/it/stacked_adam.rs measures the difference); on a GPU, not
//! measured yet, broadcast kernels may round differently, which the test's 1e-5 relative tolerance
//! allows.
//!
//! "Exactly nothing" for a member without a flag relies on w·0 = 0, which holds while w is finite.
//! A member whose w went non-finite (a diverged run) would put NaN into gm or gv through w·0; such
//! a member is to be [`StackedAdam::freeze`]d right after the step that made it non-finite, which
//! zeroes its parameters, moments and gradients, sets its α and λ to 0 for good, and from then on
//! zeroes its gradients in place before each step (one masked fill per parameter, only once some
//! member is frozen), so neither its own NaN gradients nor its flags can bring a NaN back. The
//! other members are untouched by all this: every kernel is elementwise along the run axis.
//!
//! Costs: per parameter and step at most 18 kernels, whatever N (gm and gv 1–2, the plain decay 1,
//! the moments 3, d 3, the adaptive decay 2, the implicit decay 4, the update 2, the frozen mask
//! 1), where N solo optimizers take 7–11 each. The decays and l2 terms are skipped when no member
//! uses them at this step's α, λ (as the solo skips them at λ = 0). The coefficients that depend
//! only on α, λ and the frozen set are uploaded once per change of those host values (one small
//! host→device copy, non-blocking); the step size α/(1−β₁ᵗ) changes with t and is uploaded once per
//! step (per distinct step count among the parameters). Nothing in [`StackedAdam::step`] loops over
//! members or synchronises with the device.
//!
//! The E8 drown-out diagnostic ([`StackedAdam::track_drown_out_every`]) is the solo optimizer's,
//! per member: [`super::stacked_drown_out`].

use tch::{Device, Kind, Tensor};

use super::adam::{DecayMode, Variant};
use super::drown_out::DrownOut;
use super::stacked_drown_out::{Observed, Tracker};

mod slice;
mod state;
use crate::libtorch::ops;
use slice::{Slice, denominator, members_per_chunk};

/// Rows of the cached coefficient matrix, each `[N]`.
const ROW_A: i64 = 0;
const ROW_B: i64 = 1;
const ROW_PLAIN: i64 = 2;
const ROW_ADAPTIVE: i64 = 3;
const ROW_IMPLICIT: i64 = 4;
const ROWS: usize = 5;

/// Per-parameter optimizer state, as the solo optimizer's.
struct Moments {
    step: u64,
    m: Tensor,
    v: Tensor,
}

/// The per-member coefficients of the α, λ and frozen set they were built from.
struct Coefs {
    lr: Vec<u64>,
    wd: Vec<u64>,
    /// `[ROWS, N]` per parameter kind on the parameters' device.
    by_kind: Vec<(Kind, Tensor)>,
    any_a: bool,
    any_b: bool,
    /// Rows A and B are equal (then gv is gm).
    same_ab: bool,
    any_plain: bool,
    any_adaptive: bool,
    any_implicit: bool,
}

impl Coefs {
    fn rows(&self, kind: Kind) -> &Tensor {
        &self
            .by_kind
            .iter()
            .find(|(k, _)| *k == kind)
            .expect("coefficients exist for every parameter kind")
            .1
    }
}

/// `values` as a tensor of `shape` in `kind` on `device`: rounded once from f64 (on the host for
/// float32, as torch rounds a double scalar for a float op), copied without blocking the host.
fn upload(values: &[f64], shape: &[i64], kind: Kind, device: Device) -> Tensor {
    let host = if kind == Kind::Float {
        let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        Tensor::from_slice(&v)
    } else {
        Tensor::from_slice(values)
    };
    // A host→device copy from pageable memory is staged at once and does not wait for the device.
    host.reshape(shape).to_device_(device, kind, true, false)
}

/// `[N, 1, …, 1]` with `ndim` dimensions: a row viewed to broadcast over one parameter.
fn broadcast(row: &Tensor, ndim: usize) -> Tensor {
    let mut shape = vec![1i64; ndim.max(1)];
    shape[0] = -1;
    row.view(shape.as_slice())
}

/// The Adam family for N members at once over stacked parameters (module doc).
pub struct StackedAdam {
    params: Vec<Tensor>,
    members: usize,
    beta1: f64,
    beta2: f64,
    eps: f64,
    variants: Vec<Variant>,
    state: Vec<Option<Moments>>,
    frozen: Vec<bool>,
    /// `[N]` bool on the device, true for frozen members; None while none is.
    frozen_mask: Option<Tensor>,
    coefs: Option<Coefs>,
    /// The parameters' kinds, each once.
    kinds: Vec<Kind>,
    device: Device,
    /// The E8 diagnostic, while tracked.
    drown: Option<Tracker>,
}

impl StackedAdam {
    /// An optimizer over `params` (shallow clones of the stacked model's variables, each `[N, …]`
    /// on one device), member i with `variants[i]`; `variants.len()` is N.
    pub fn new(
        params: Vec<Tensor>,
        beta1: f64,
        beta2: f64,
        eps: f64,
        variants: &[Variant],
    ) -> StackedAdam {
        let members = variants.len();
        assert!(members > 0, "a stacked optimizer needs at least one member");
        let device = params.first().map_or(Device::Cpu, Tensor::device);
        let mut kinds = Vec::new();
        for (i, p) in params.iter().enumerate() {
            let size = p.size();
            assert!(
                size.first() == Some(&(members as i64)),
                "parameter {i} has shape {size:?}, not [{members}, …]"
            );
            assert_eq!(p.device(), device, "parameter {i} is on another device");
            if !kinds.contains(&p.kind()) {
                kinds.push(p.kind());
            }
        }
        let state = params.iter().map(|_| None).collect();
        StackedAdam {
            params,
            members,
            beta1,
            beta2,
            eps,
            variants: variants.to_vec(),
            state,
            frozen: vec![false; members],
            frozen_mask: None,
            coefs: None,
            kinds,
            device,
            drown: None,
        }
    }

    /// The E8 diagnostic sampled every `every` steps (0: off), per member, as the solo
    /// [`super::adam::Adam::track_drown_out_every`] (the shadows move every step from now on).
    pub fn track_drown_out_every(&mut self, every: u64) {
        self.drown = (every > 0).then(|| Tracker::new(every, self.params.len()));
    }

    /// Per member, the diagnostic of the last sampled step: `None` while it is not tracked,
    /// before the first sample, and for frozen members.
    pub fn drown_out(&self) -> Vec<Option<DrownOut>> {
        match &self.drown {
            Some(t) => t.drown_out(&self.frozen),
            None => vec![None; self.members],
        }
    }

    /// Per member, per layer group (`group_of[i]`: the group of stacked parameter i, of
    /// `groups`), the diagnostic of the last sampled step, as the solo
    /// [`super::adam::Adam::drown_out_by_group`]; all `None` where [`StackedAdam::drown_out`] is.
    pub fn drown_out_by_group(
        &self,
        group_of: &[usize],
        groups: usize,
    ) -> Vec<Vec<Option<DrownOut>>> {
        match &self.drown {
            Some(t) => t.drown_out_by_group(group_of, groups, &self.frozen),
            None => vec![vec![None; groups]; self.members],
        }
    }

    /// N, the number of members.
    pub fn members(&self) -> usize {
        self.members
    }

    /// The stacked parameters, in the order given to [`StackedAdam::new`].
    pub fn params(&self) -> &[Tensor] {
        &self.params
    }

    /// The members' variants.
    pub fn variants(&self) -> &[Variant] {
        &self.variants
    }

    /// (β₁, β₂, ε), shared by the members.
    pub fn betas_eps(&self) -> (f64, f64, f64) {
        (self.beta1, self.beta2, self.eps)
    }

    /// Unset the gradients of all parameters (torch's `zero_grad()`, set_to_none=True; see
    /// [`super::adam::Adam::clear_grads`]): a parameter the next backward does not reach is skipped
    /// by [`StackedAdam::step`].
    pub fn clear_grads(&mut self) {
        for p in &self.params {
            ops::clear_grad(p);
        }
    }

    /// (m, v) of stacked parameter i, None before its first step.
    pub fn moments(&self, i: usize) -> Option<(&Tensor, &Tensor)> {
        self.state
            .get(i)
            .and_then(|s| s.as_ref())
            .map(|s| (&s.m, &s.v))
    }

    /// How many steps stacked parameter i has taken (0 before its first).
    pub fn steps(&self, i: usize) -> u64 {
        self.state
            .get(i)
            .and_then(|s| s.as_ref())
            .map_or(0, |s| s.step)
    }

    /// Which members are frozen.
    pub fn frozen(&self) -> &[bool] {
        &self.frozen
    }

    /// The cached coefficients for this α, λ (frozen members at 0), rebuilt when they changed.
    fn coefs(&mut self, lr: &[f64], wd: &[f64]) -> &Coefs {
        let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<u64>>();
        let (lr_bits, wd_bits) = (bits(lr), bits(wd));
        let fresh = self
            .coefs
            .as_ref()
            .is_some_and(|c| c.lr == lr_bits && c.wd == wd_bits);
        if !fresh {
            let n = self.members;
            let mut host = vec![0f64; ROWS * n];
            for i in 0..n {
                let (lr, wd) = if self.frozen[i] {
                    (0.0, 0.0)
                } else {
                    (lr[i], wd[i])
                };
                let v = self.variants[i];
                let at = |row: i64| row as usize * n + i;
                host[at(ROW_A)] = if v.l2_in_m { wd } else { 0.0 };
                host[at(ROW_B)] = if v.l2_in_v { wd } else { 0.0 };
                host[at(ROW_PLAIN)] = if v.decay == DecayMode::Plain {
                    1.0 - lr * wd
                } else {
                    1.0
                };
                host[at(ROW_ADAPTIVE)] = if v.decay == DecayMode::Adaptive {
                    -lr * wd
                } else {
                    0.0
                };
                host[at(ROW_IMPLICIT)] = if v.decay == DecayMode::AdaptiveImplicit {
                    lr * wd
                } else {
                    0.0
                };
            }
            let row = |r: i64| &host[r as usize * n..(r as usize + 1) * n];
            let any = |r: i64, neutral: f64| row(r).iter().any(|&x| x != neutral);
            let shape = [ROWS as i64, n as i64];
            let by_kind = self
                .kinds
                .iter()
                .map(|&k| (k, upload(&host, &shape, k, self.device)))
                .collect();
            self.coefs = Some(Coefs {
                lr: lr_bits,
                wd: wd_bits,
                by_kind,
                any_a: any(ROW_A, 0.0),
                any_b: any(ROW_B, 0.0),
                same_ab: row(ROW_A)
                    .iter()
                    .zip(row(ROW_B))
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                any_plain: any(ROW_PLAIN, 1.0),
                any_adaptive: any(ROW_ADAPTIVE, 0.0),
                any_implicit: any(ROW_IMPLICIT, 0.0),
            });
        }
        self.coefs.as_ref().expect("built above")
    }

    /// One step; `lr[i]` and `weight_decay[i]` are member i's α and λ for this step (schedules
    /// change them per step; a frozen member's are ignored). Parameters without a gradient are
    /// skipped (their step count does not advance), as the solo optimizer does.
    pub fn step(&mut self, lr: &[f64], weight_decay: &[f64]) {
        let n = self.members;
        assert_eq!(lr.len(), n, "one learning rate per member");
        assert_eq!(weight_decay.len(), n, "one weight decay per member");
        let (beta1, beta2, eps) = (self.beta1, self.beta2, self.eps);
        let device = self.device;
        // −α/(1−β₁ᵗ) per member as the solo `-step_size`, frozen members at 0.
        let lr_eff: Vec<f64> = lr
            .iter()
            .zip(&self.frozen)
            .map(|(&lr, &f)| if f { 0.0 } else { lr })
            .collect();
        self.coefs(lr, weight_decay);
        let coefs = self.coefs.as_ref().expect("built above");
        // The diagnostic's per-member inputs: λ (frozen members 0), αλ and the bounds.
        let sample = self.drown.as_mut().map(Tracker::begin_step);
        let wd_eff: Vec<f64> = weight_decay
            .iter()
            .zip(&self.frozen)
            .map(|(&wd, &f)| if f { 0.0 } else { wd })
            .collect();
        let lr_wd: Vec<f64> = lr_eff.iter().zip(&wd_eff).map(|(a, b)| a * b).collect();
        let bounds: Vec<_> = self
            .variants
            .iter()
            .map(|v| v.stability_bound(beta1))
            .collect();
        let any_wd = wd_eff.iter().any(|&w| w != 0.0);
        let mut wd_rows: Vec<(Kind, Tensor)> = Vec::new();
        let drown = &mut self.drown;
        let mut step_sizes: Vec<(u64, Kind, Tensor)> = Vec::new();
        tch::no_grad(|| {
            for (i, p) in self.params.iter().enumerate() {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let (ndim, kind) = (p.dim(), p.kind());
                let rows = coefs.rows(kind);
                let st = self.state[i].get_or_insert_with(|| Moments {
                    step: 0,
                    m: p.zeros_like(),
                    v: p.zeros_like(),
                });
                st.step += 1;
                let t = st.step;
                let tf = t as f64;
                let pos = match step_sizes
                    .iter()
                    .position(|(s, k, _)| *s == t && *k == kind)
                {
                    Some(pos) => pos,
                    None => {
                        let bias_correction1 = 1.0 - beta1.powf(tf);
                        let neg: Vec<f64> =
                            lr_eff.iter().map(|&lr| -(lr / bias_correction1)).collect();
                        step_sizes.push((t, kind, upload(&neg, &[n as i64], kind, device)));
                        step_sizes.len() - 1
                    }
                };
                // The diagnostic's r is λ·w from the step's starting w: a copy only for a sampled
                // step's sums (the shadows move chunk by chunk before w does).
                let w0 = match sample {
                    Some(true) if any_wd => Some(p.copy()),
                    _ => None,
                };
                let wd_row = match (sample, any_wd) {
                    (Some(_), true) => Some(match wd_rows.iter().find(|(k, _)| *k == kind) {
                        Some((_, t)) => t.shallow_clone(),
                        None => {
                            let t = upload(&wd_eff, &[n as i64], kind, device);
                            wd_rows.push((kind, t.shallow_clone()));
                            t
                        }
                    }),
                    _ => None,
                };
                let shadows = drown.as_mut().map(|t| t.shadows(i, p));
                let chunk = members_per_chunk(p, device);
                for start in (0..n as i64).step_by(chunk) {
                    let len = chunk.min(n - start as usize) as i64;
                    let part = |x: &Tensor| x.narrow(0, start, len);
                    let view = Slice {
                        p: part(p),
                        g: part(&g),
                        m: part(&st.m),
                        v: part(&st.v),
                        coef: |r: i64| broadcast(&part(&rows.get(r)), ndim),
                        frozen: self.frozen_mask.as_ref().map(|f| broadcast(&part(f), ndim)),
                        step_size: broadcast(&part(&step_sizes[pos].2), ndim),
                        shadows: shadows.as_ref().map(|(mg, mr, vg)| {
                            let wd = wd_row.as_ref().map(|w| broadcast(&part(w), ndim));
                            (part(mg), part(mr), part(vg), wd)
                        }),
                    };
                    view.step(coefs, (beta1, beta2, eps), tf);
                }

                if let (Some(tracker), Some(true)) = (drown.as_mut(), sample) {
                    let zeros = Tensor::zeros([n as i64], (kind, device));
                    let wd = wd_row.as_ref().unwrap_or(&zeros);
                    let observed = Observed {
                        g: &g,
                        w0: w0.as_ref().unwrap_or(p),
                        wd: &broadcast(wd, ndim),
                        m: &st.m,
                        denom: &denominator(&st.v, beta2, tf, eps),
                        lr_wd: &lr_wd,
                        bounds: &bounds,
                        betas: (beta1, beta2),
                        eps,
                        any_wd,
                    };
                    tracker.observe(i, &observed);
                }
            }
        });
        if let Some(t) = self.drown.as_mut() {
            t.end_step();
        }
    }

    /// Per member, ‖∇L‖₂ over all parameters that have a gradient: an `[N]` tensor in the
    /// gradients' kind (f32 for a float32 model) on the parameters' device, with no host sync.
    /// Zeros when no parameter has a gradient.
    pub fn grad_norms(&self) -> Tensor {
        tch::no_grad(|| self.grad_norms_of(&self.grads()))
    }

    fn grads(&self) -> Vec<Tensor> {
        self.params
            .iter()
            .map(Tensor::grad)
            .filter(Tensor::defined)
            .collect()
    }

    fn grad_norms_of(&self, grads: &[Tensor]) -> Tensor {
        let n = self.members as i64;
        let Some(first) = grads.first() else {
            let kind = self.kinds.first().copied().unwrap_or(Kind::Float);
            return Tensor::zeros([n], (kind, self.device));
        };
        let kind = first.kind();
        let norms: Vec<Tensor> = grads
            .iter()
            .map(|g| {
                g.reshape([n, -1])
                    .norm_scalaropt_dim(2, [1i64].as_slice(), false)
                    .to_kind(kind)
            })
            .collect();
        Tensor::stack(&norms, 0).norm_scalaropt_dim(2, [0i64].as_slice(), false)
    }

    /// torch.nn.utils.clip_grad_norm_ per member: member i's gradients are scaled by
    /// min(1, max / (‖gᵢ‖ + 1e-6)), written as the solo [`crate::train::lm::clip_grad_norm`] writes
    /// it (`(‖g‖ + 1e-6).reciprocal() · max`, clamped to ≤ 1). Returns the `[N]` norms before
    /// clipping ([`StackedAdam::grad_norms`]); `max_norm` ≤ 0 turns clipping off. No host sync.
    pub fn clip_grad_norms(&mut self, max_norm: f64) -> Tensor {
        tch::no_grad(|| {
            let grads = self.grads();
            let total = self.grad_norms_of(&grads);
            if max_norm > 0.0 && !grads.is_empty() {
                let coef = ((&total + 1e-6).reciprocal() * max_norm).clamp_max(1.0);
                for g in &grads {
                    let c = broadcast(&coef.to_kind(g.kind()), g.dim());
                    let _ = g.shallow_clone().g_mul_(&c);
                }
            }
            total
        })
    }

    /// Per member, ‖w‖₂ over all parameters, summed in f64 (as
    /// [`crate::train::common::total_norm`]); one device→host copy.
    pub fn weight_norms(&self) -> Vec<f64> {
        let n = self.members as i64;
        tch::no_grad(|| {
            let sq: Vec<Tensor> = self
                .params
                .iter()
                .map(|p| {
                    p.to_kind(Kind::Double)
                        .reshape([n, -1])
                        .square()
                        .sum_dim_intlist([1i64].as_slice(), false, Kind::Double)
                })
                .collect();
            if sq.is_empty() {
                return vec![0.0; self.members];
            }
            let total = Tensor::stack(&sq, 0)
                .sum_dim_intlist([0i64].as_slice(), false, Kind::Double)
                .sqrt()
                .to_device(Device::Cpu);
            Vec::<f64>::try_from(&total).expect("an [N] f64 tensor")
        })
    }

    /// Freeze member `member` for good (it diverged): its parameters, moments and gradients are
    /// set to 0 and its α and λ to 0 from now on; before each later step its gradients are zeroed,
    /// so no NaN or Inf stays anywhere. The other members are untouched. Freezing again is a no-op.
    pub fn freeze(&mut self, member: usize) {
        assert!(member < self.members, "member {member} of {}", self.members);
        if self.frozen[member] {
            return;
        }
        self.frozen[member] = true;
        let i = member as i64;
        tch::no_grad(|| {
            for p in &self.params {
                let _ = p.get(i).zero_();
                let g = p.grad();
                if g.defined() {
                    let _ = g.get(i).zero_();
                }
            }
            for s in self.state.iter().flatten() {
                let _ = s.m.get(i).zero_();
                let _ = s.v.get(i).zero_();
            }
        });
        self.rebuild_frozen();
    }

    /// The frozen mask and the coefficients after the frozen set changed.
    fn rebuild_frozen(&mut self) {
        self.coefs = None;
        self.frozen_mask = self
            .frozen
            .iter()
            .any(|&f| f)
            .then(|| Tensor::from_slice(&self.frozen).to_device(self.device));
    }
}
