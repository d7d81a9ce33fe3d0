//! One stacked step's kernels on a chunk of members ([`Slice`]), and how many members a chunk
//! takes: the module doc of `stacked` gives the update; this is where it runs.

use tch::{Device, Tensor};

use super::super::drown_out::move_shadows;
use super::{Coefs, ROW_A, ROW_ADAPTIVE, ROW_B, ROW_IMPLICIT, ROW_PLAIN};
use crate::libtorch::ops;

/// Parameter bytes per chunk of members a CPU step works through at once: small enough that a
/// chunk's w, g, m, v and temporaries stay in a core's L2 cache across the step's kernels (the
/// whole stacked tensor does not, and its passes then run at memory speed: a 25-member MinAtar
/// group stepped 2.4× slower than 25 solo optimizers before this). A GPU takes every member at
/// once. Elementwise kernels give the same values either way.
const CPU_CHUNK_BYTES: usize = 128 << 10;

/// How many members of `p` one pass of [`Slice::step`] covers on `device`.
pub(super) fn members_per_chunk(p: &Tensor, device: Device) -> usize {
    let members = p.size()[0].max(1) as usize;
    if device.is_cuda() {
        return members;
    }
    let per_member = (p.numel() / members) * p.kind().elt_size_in_bytes();
    (CPU_CHUNK_BYTES / per_member.max(1)).clamp(1, members)
}

/// d = √v / √(1−β₂ᵗ) + ε, as the solo's `denominator`.
pub(super) fn denominator(v: &Tensor, beta2: f64, t: f64, eps: f64) -> Tensor {
    let bias_correction2_sqrt = (1.0 - beta2.powf(t)).powf(0.5);
    let mut denom = v.sqrt();
    let _ = denom.g_div_scalar_(bias_correction2_sqrt);
    let _ = denom.g_add_scalar_(eps);
    denom
}

/// A run of members of one stacked parameter (views, so updates land in the parameter), with
/// their coefficients broadcast over it.
pub(super) struct Slice<C: Fn(i64) -> Tensor> {
    pub p: Tensor,
    pub g: Tensor,
    pub m: Tensor,
    pub v: Tensor,
    /// A coefficient row's slice, broadcast.
    pub coef: C,
    /// True for frozen members, while any is.
    pub frozen: Option<Tensor>,
    /// −α/(1−β₁ᵗ) per member.
    pub step_size: Tensor,
    /// While the E8 diagnostic is tracked: the shadows' slices (mᵍ, mʳ, vᵍ) and λ broadcast
    /// (None: every λ is 0).
    pub shadows: Option<(Tensor, Tensor, Tensor, Option<Tensor>)>,
}

impl<C: Fn(i64) -> Tensor> Slice<C> {
    /// The module doc's update on these members.
    pub fn step(mut self, coefs: &Coefs, (beta1, beta2, eps): (f64, f64, f64), t: f64) {
        let coef = &self.coef;
        if let Some(mask) = &self.frozen {
            let _ = self.g.masked_fill_(mask, 0.0);
        }
        let g = &self.g;
        if let Some((mg, mr, vg, wd)) = &mut self.shadows {
            // r from w before this step moves it.
            let r = wd.as_ref().map(|wd| &self.p * wd);
            move_shadows((mg, mr, vg), g, r.as_ref(), (beta1, beta2));
        }
        // g + w·A and g + w·B from the step's starting w (one FMA each, as the solo).
        let gm = if coefs.any_a {
            g.addcmul(&self.p, &coef(ROW_A))
        } else {
            g.shallow_clone()
        };
        let gv = if coefs.same_ab {
            gm.shallow_clone()
        } else if coefs.any_b {
            g.addcmul(&self.p, &coef(ROW_B))
        } else {
            g.shallow_clone()
        };
        let p = &mut self.p;
        if coefs.any_plain {
            let _ = p.g_mul_(&coef(ROW_PLAIN));
        }
        let _ = self.m.lerp_(&gm, 1.0 - beta1);
        let _ = self.v.g_mul_scalar_(beta2);
        ops::addcmul_(&mut self.v, &gv, &gv, 1.0 - beta2);
        let denom = denominator(&self.v, beta2, t, eps);
        if coefs.any_adaptive {
            let scaled = &*p * coef(ROW_ADAPTIVE);
            ops::addcdiv_(p, &scaled, &denom, 1.0);
        }
        if coefs.any_implicit {
            let mut shrink = denom.reciprocal();
            let _ = shrink.g_mul_(&coef(ROW_IMPLICIT));
            let _ = shrink.g_add_scalar_(1.0);
            let _ = p.g_div_(&shrink);
        }
        let scaled_m = &self.m * &self.step_size;
        ops::addcdiv_(p, &scaled_m, &denom, 1.0);
    }
}
