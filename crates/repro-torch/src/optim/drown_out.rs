//! The E8 drown-out diagnostic of docs/paper.md#e8 for [`super::adam::Adam`]: the shadow moving
//! averages of the loss gradient alone and of the l2 term alone, the per-parameter sums one
//! sampled step reduces to, and the quantities made of them ([`DrownOut`]), with their means over
//! an epoch or iteration ([`DrownOutMean`]).
//!
//! Per parameter, with g = ∇L, r = λ·w, m and d = √v̂ + ε the optimizer's own, and τ the steps the
//! shadows have moved (they start at zero when tracking starts):
//!
//! ```text
//! mᵍ = β₁·mᵍ + (1−β₁)·g      mʳ = β₁·mʳ + (1−β₁)·r      vᵍ = β₂·vᵍ + (1−β₂)·g²
//! m̂ᵍ = mᵍ/(1−β₁^τ)           dᵍ = √(vᵍ/(1−β₂^τ)) + ε
//! ```
//!
//! and over all parameters that stepped (flattened into one vector):
//!
//! - `l2_over_grad` = ‖r‖/‖g‖, `l2_share_of_m` = ‖mʳ‖/(‖mᵍ‖+‖mʳ‖), `cos_m_mg` = cos(m, mᵍ);
//! - `step_attenuation` = ‖m̂ᵍ/d‖ / ‖m̂ᵍ/dᵍ‖: how much the optimizer's real denominator shrinks
//!   the loss gradient's own step against a denominator made of g alone (1 = not at all; below
//!   1 where λw in v inflates d, the "drowning out" of the step);
//! - `past_stability_bound`: the fraction of coordinates past the variant's stability bound
//!   ([`StabilityBound`], which `super::adam::Variant::stability_bound` gives per variant) at
//!   this step's (α, λ), with k = α·λ/d per coordinate.
//!
//! All ratios are IEEE divisions of the f64 sums (0/0 is NaN, e.g. the attenuation of a step
//! whose m̂ᵍ is zero). The shadows describe m exactly only when tracking runs from the first step.

use tch::{Kind, Tensor};

use crate::libtorch::ops;

/// Where a variant's update stops being a contraction of the decay term, with k = α·λ/d per
/// coordinate (d = √v̂ + ε).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StabilityBound {
    /// No bound: the decay factor stays in [0, 1] (or λw is bounded by √v̂).
    Unbounded,
    /// α·λ must stay below this (the plain decay multiplies every coordinate by 1 − αλ).
    DecayRate(f64),
    /// k must stay below this, per coordinate.
    CoordinateRate(f64),
}

/// The E8 drown-out diagnostic at one step, over a set of parameters that stepped.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct DrownOut {
    /// ‖λw‖ / ‖g‖ (IEEE division: 0/0 is NaN).
    pub l2_over_grad: f64,
    /// ‖mʳ‖ / (‖mᵍ‖ + ‖mʳ‖).
    pub l2_share_of_m: f64,
    /// cos(m, mᵍ) = ⟨m, mᵍ⟩ / (‖m‖·‖mᵍ‖).
    pub cos_m_mg: f64,
    /// ‖m̂ᵍ/d‖ / ‖m̂ᵍ/dᵍ‖ (1 = the loss gradient's step is not attenuated).
    pub step_attenuation: f64,
    /// The fraction of coordinates past the variant's stability bound (0 for unbounded ones).
    pub past_stability_bound: f64,
}

/// How many values a [`DrownOut`] holds, in the order of [`DrownOut::to_array`].
const FIELDS: usize = 5;

impl DrownOut {
    fn to_array(self) -> [f64; FIELDS] {
        [
            self.l2_over_grad,
            self.l2_share_of_m,
            self.cos_m_mg,
            self.step_attenuation,
            self.past_stability_bound,
        ]
    }

    fn from_array([a, b, c, d, e]: [f64; FIELDS]) -> DrownOut {
        DrownOut {
            l2_over_grad: a,
            l2_share_of_m: b,
            cos_m_mg: c,
            step_attenuation: d,
            past_stability_bound: e,
        }
    }

    /// From the per-parameter sums of [`step_sums`] added up over a set of parameters.
    pub(super) fn from_sums(s: &[f64; SUMS]) -> DrownOut {
        let [r2, g2, mg2, mr2, m2, dot, att_real, att_own, past, numel] = *s;
        let (mg, mr) = (mg2.sqrt(), mr2.sqrt());
        DrownOut {
            l2_over_grad: r2.sqrt() / g2.sqrt(),
            l2_share_of_m: mr / (mg + mr),
            cos_m_mg: dot / (m2.sqrt() * mg),
            step_attenuation: (att_real / att_own).sqrt(),
            past_stability_bound: past / numel,
        }
    }
}

/// The mean of sampled diagnostics (over an epoch or an iteration).
#[derive(Default)]
pub struct DrownOutMean {
    sum: [f64; FIELDS],
    n: usize,
}

impl DrownOutMean {
    pub fn add(&mut self, d: DrownOut) {
        for (s, x) in self.sum.iter_mut().zip(d.to_array()) {
            *s += x;
        }
        self.n += 1;
    }

    /// The mean so far (`None` when nothing was added), and start over.
    pub fn take(&mut self) -> Option<DrownOut> {
        let n = std::mem::take(&mut self.n) as f64;
        let mean = std::mem::take(&mut self.sum).map(|s| s / n);
        (n > 0.0).then_some(DrownOut::from_array(mean))
    }
}

/// One parameter's shadow moving averages (see the module doc).
pub(super) struct Shadow {
    pub mg: Tensor,
    pub mr: Tensor,
    pub vg: Tensor,
    /// τ: the steps these shadows have moved, for their bias corrections.
    pub steps: u64,
}

impl Shadow {
    pub fn zeros_like(p: &Tensor) -> Shadow {
        Shadow {
            mg: p.zeros_like(),
            mr: p.zeros_like(),
            vg: p.zeros_like(),
            steps: 0,
        }
    }

    /// Move the shadows by one step of gradient `g` and l2 term `r` (None: λ = 0), with the
    /// optimizer's own kernels for mᵍ and vᵍ (so vᵍ equals v bit for bit where v holds g alone).
    pub fn update(&mut self, g: &Tensor, r: Option<&Tensor>, beta1: f64, beta2: f64) {
        self.steps += 1;
        let shadows = (&mut self.mg, &mut self.mr, &mut self.vg);
        move_shadows(shadows, g, r, (beta1, beta2));
    }
}

/// Move shadows (mᵍ, mʳ, vᵍ: a parameter's, or views of a chunk of a stacked one's members) by
/// gradient `g` and `r` = λ·w (None: λ = 0), the step count left to the caller; a chunked move
/// gives the values of a whole one (every kernel is elementwise).
pub(super) fn move_shadows(
    (mg, mr, vg): (&mut Tensor, &mut Tensor, &mut Tensor),
    g: &Tensor,
    r: Option<&Tensor>,
    (beta1, beta2): (f64, f64),
) {
    let _ = mg.lerp_(g, 1.0 - beta1);
    let _ = vg.g_mul_scalar_(beta2);
    ops::addcmul_(vg, g, g, 1.0 - beta2);
    let _ = mr.g_mul_scalar_(beta1);
    if let Some(r) = r {
        let _ = mr.g_add_(&(r * (1.0 - beta1)));
    }
}

/// How many sums one parameter contributes per sampled step (the row of [`step_sums`]).
pub(super) const SUMS: usize = 10;

/// What one parameter's step looked like, for [`step_sums`].
pub(super) struct StepView<'a> {
    pub g: &'a Tensor,
    /// λ·w from the step's starting w (None: λ = 0).
    pub r: Option<&'a Tensor>,
    /// The optimizer's first moment after the step.
    pub m: &'a Tensor,
    /// The optimizer's denominator d = √v̂ + ε of the step.
    pub denom: &'a Tensor,
    /// α·λ of the step.
    pub lr_wd: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub bound: StabilityBound,
}

/// The row one parameter adds at a sampled step, f64 on its device: ‖r‖², ‖g‖², ‖mᵍ‖², ‖mʳ‖²,
/// ‖m‖², ⟨m, mᵍ⟩, ‖m̂ᵍ/d‖², ‖m̂ᵍ/dᵍ‖², the count of coordinates past the stability bound, and
/// the count of coordinates. Sums add over parameters, which is what makes the per-group and
/// all-parameter values the same computation.
pub(super) fn step_sums(sh: &Shadow, s: &StepView) -> Tensor {
    // Each tensor widened to f64 once (not once per product it enters).
    let wide = |a: &Tensor| a.to_kind(Kind::Double);
    let dot = |a: &Tensor, b: &Tensor| (a * b).sum(Kind::Double);
    let zero = || Tensor::zeros([], (Kind::Double, s.g.device()));
    let r2 = s.r.map_or_else(zero, |r| {
        let r = wide(r);
        dot(&r, &r)
    });
    let (g, mg, mr, m) = (wide(s.g), wide(&sh.mg), wide(&sh.mr), wide(s.m));

    let (beta1, beta2) = s.betas;
    let tau = sh.steps as f64;
    let mg_hat = &mg / (1.0 - beta1.powf(tau));
    // dᵍ with the optimizer's own kernels and bias-correction arithmetic, so that where v holds g
    // alone (V2, V5, tracked from the first step) dᵍ = d bit for bit and the attenuation is 1.
    let mut own_denom = sh.vg.sqrt();
    let _ = own_denom.g_div_scalar_((1.0 - beta2.powf(tau)).powf(0.5));
    let _ = own_denom.g_add_scalar_(s.eps);
    let step_real = &mg_hat / wide(s.denom);
    let step_own = &mg_hat / wide(&own_denom);

    let numel = s.g.numel() as f64;
    // k = αλ/d > c ⇔ d < αλ/c (d > 0); λ = 0 puts nothing past any bound.
    let past = match s.bound {
        _ if s.lr_wd == 0.0 => zero(),
        StabilityBound::Unbounded => zero(),
        StabilityBound::DecayRate(c) => zero() + if s.lr_wd > c { numel } else { 0.0 },
        StabilityBound::CoordinateRate(c) => s.denom.lt(s.lr_wd / c).sum(Kind::Double),
    };
    Tensor::stack(
        &[
            r2,
            dot(&g, &g),
            dot(&mg, &mg),
            dot(&mr, &mr),
            dot(&m, &m),
            dot(&m, &mg),
            dot(&step_real, &step_real),
            dot(&step_own, &step_own),
            past,
            zero() + numel,
        ],
        0,
    )
}

/// What one stacked parameter's step looked like (leading run axis of N members), for
/// [`member_step_sums`]: [`StepView`]'s fields, with α·λ and the bound per member.
pub(super) struct MemberStepView<'a> {
    pub g: &'a Tensor,
    /// λᵢ·wᵢ from the step's starting w (None: every λ is 0).
    pub r: Option<&'a Tensor>,
    pub m: &'a Tensor,
    pub denom: &'a Tensor,
    pub lr_wd: &'a [f64],
    pub betas: (f64, f64),
    pub eps: f64,
    pub bounds: &'a [StabilityBound],
}

/// [`step_sums`] per member of a stacked parameter: an [N, SUMS] f64 tensor whose row i is
/// what member i's own parameter adds (each sum taken over the member's slice).
pub(super) fn member_step_sums(sh: &Shadow, s: &MemberStepView) -> Tensor {
    let n = s.lr_wd.len() as i64;
    let dev = s.g.device();
    let wide = |a: &Tensor| a.to_kind(Kind::Double).reshape([n, -1]);
    let dot =
        |a: &Tensor, b: &Tensor| (a * b).sum_dim_intlist([1i64].as_slice(), false, Kind::Double);
    let zeros = || Tensor::zeros([n], (Kind::Double, dev));
    let r2 = s.r.map_or_else(zeros, |r| {
        let r = wide(r);
        dot(&r, &r)
    });
    let (g, mg, mr, m) = (wide(s.g), wide(&sh.mg), wide(&sh.mr), wide(s.m));
    let (beta1, beta2) = s.betas;
    let tau = sh.steps as f64;
    let mg_hat = &mg / (1.0 - beta1.powf(tau));
    let mut own_denom = sh.vg.sqrt();
    let _ = own_denom.g_div_scalar_((1.0 - beta2.powf(tau)).powf(0.5));
    let _ = own_denom.g_add_scalar_(s.eps);
    let step_real = &mg_hat / wide(s.denom);
    let step_own = &mg_hat / wide(&own_denom);
    let numel = (s.g.numel() as i64 / n) as f64;
    // Per member: coordinates with d < αλ/c (CoordinateRate), or all of them when αλ > c
    // (DecayRate); none for an unbounded variant or λ = 0.
    let mut threshold = vec![f64::NEG_INFINITY; n as usize];
    let mut whole = vec![0.0; n as usize];
    for (i, (&lr_wd, bound)) in s.lr_wd.iter().zip(s.bounds).enumerate() {
        match *bound {
            _ if lr_wd == 0.0 => {}
            StabilityBound::Unbounded => {}
            StabilityBound::DecayRate(c) => whole[i] = if lr_wd > c { numel } else { 0.0 },
            StabilityBound::CoordinateRate(c) => threshold[i] = lr_wd / c,
        }
    }
    // Compared in d's own kind, as `step_sums` compares d with a scalar.
    let threshold = Tensor::from_slice(&threshold)
        .to_device(dev)
        .to_kind(s.denom.kind())
        .view([n, 1]);
    let past = s
        .denom
        .reshape([n, -1])
        .lt_tensor(&threshold)
        .sum_dim_intlist([1i64].as_slice(), false, Kind::Double)
        + Tensor::from_slice(&whole).to_device(dev);
    Tensor::stack(
        &[
            r2,
            dot(&g, &g),
            dot(&mg, &mg),
            dot(&mr, &mr),
            dot(&m, &m),
            dot(&m, &mg),
            dot(&step_real, &step_real),
            dot(&step_own, &step_own),
            past,
            zeros() + numel,
        ],
        1,
    )
}
