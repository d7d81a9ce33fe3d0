//! Generalization and sharpness metrics of a trained network (docs/paper.md#e3, claims C4/C5).
//!
//! Curvature metrics work on an [`Objective`]: the training loss on a fixed subset, given as a sum
//! of chunk losses so Hessian-vector products (HVPs) run chunk by chunk within memory. An HVP is
//! a double backward pass: `g = ∇L` with a graph, then `∇(g·v)`; chunk results are summed.
//!
//! * [`lambda_max`]: power iteration on HVPs. It converges to the eigenvector of the eigenvalue
//!   of **largest magnitude** and returns its Rayleigh quotient, *with its sign*. At (or near) a
//!   minimum the Hessian is positive semi-definite and this is the largest eigenvalue, the usual
//!   sharpness. A negative value means the dominant curvature is negative: the point is not a
//!   minimum (a saddle or a concave direction dominates) and the value is not a sharpness.
//!   When two eigenvalues of equal magnitude and opposite signs dominate, the iteration does not
//!   settle and the value is meaningless.
//! * [`hutchinson_trace`]: `tr(H) ≈ mean zᵀHz` over Rademacher probes `z`, with its standard error.
//! * [`eps_sharpness`]: Keskar et al.'s ε-sharpness, by projected sign-gradient ascent in the box
//!   `|δᵢ| ≤ ε(|wᵢ|+1)` (they used L-BFGS-B; the box and the normalization are theirs).
//! * [`scale_invariant_sharpness`]: `S_inv = λ_max(H restricted to W) · ‖W‖²` over the weights
//!   `W` that precede batch norm. For such weights the loss satisfies `L(cW) = L(W)`, hence
//!   `H(cW) = H(W)/c²`, and the product does not depend on the arbitrary scale of `W`. In eval
//!   mode this holds when the running statistics follow the scale of the weights, which they do
//!   after training (the running mean scales with `c`, the running variance with `c²`).
//! * Norm-based measures: [`frobenius_sum`], [`spectral_norm`], [`log_spectral_product`],
//!   [`distance`] (e.g. from the initialization).
//!
//! Random vectors come from a ChaCha8 stream seeded by the caller, so every result is a
//! deterministic function of the network, the data and the seed. Reported scalars are accumulated
//! in f64 whatever the parameters' kind.

use anyhow::{Context, Result, bail, ensure};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

/// Relative change of the Rayleigh quotient below which [`lambda_max`] stops early.
const LAMBDA_TOL: f64 = 1e-4;
/// Relative change of the estimate below which [`spectral_norm`] stops early.
const SIGMA_TOL: f64 = 1e-10;

/// The training loss as a sum over chunks (each chunk's loss already weighted so that the sum is
/// the mean loss over the subset); lets HVPs run chunk by chunk within memory.
pub struct Objective<'a> {
    pub chunks: usize,
    pub loss: &'a dyn Fn(usize) -> Tensor,
}

impl Objective<'_> {
    /// The loss of chunk `i`, checked to be a scalar.
    fn chunk_loss(&self, i: usize) -> Result<Tensor> {
        let l = (self.loss)(i);
        ensure!(
            l.numel() == 1,
            "the loss of chunk {i} has shape {:?}, not a scalar",
            l.size()
        );
        Ok(l.reshape([]))
    }

    /// The loss, without a graph.
    fn value(&self) -> Result<f64> {
        let mut total = 0.0;
        for i in 0..self.chunks {
            total += tch::no_grad(|| self.chunk_loss(i))?.double_value(&[]);
        }
        ensure!(total.is_finite(), "the loss is not finite ({total})");
        Ok(total)
    }

    /// The loss and its gradient w.r.t. `params`.
    fn gradient(&self, params: &[Tensor]) -> Result<(f64, Vec<Tensor>)> {
        let mut total = 0.0;
        let mut acc = zeros_like(params);
        tch::with_grad(|| -> Result<()> {
            for i in 0..self.chunks {
                let l = self.chunk_loss(i)?;
                total += l.double_value(&[]);
                let g = Tensor::f_run_backward(&[&l], params, false, false)
                    .with_context(|| format!("gradient of chunk {i}"))?;
                add_defined(&mut acc, g);
            }
            Ok(())
        })?;
        ensure!(total.is_finite(), "the loss is not finite ({total})");
        Ok((total, acc))
    }

    /// The Hessian-vector product `H v` w.r.t. `params`, summed over chunks.
    fn hvp(&self, params: &[Tensor], v: &[Tensor]) -> Result<Vec<Tensor>> {
        let mut acc = zeros_like(params);
        tch::with_grad(|| -> Result<()> {
            for i in 0..self.chunks {
                let l = self.chunk_loss(i)?;
                let g = Tensor::f_run_backward(&[&l], params, true, true)
                    .with_context(|| format!("gradient of chunk {i}"))?;
                let mut dot: Option<Tensor> = None;
                for (gi, vi) in g.iter().zip(v) {
                    // An undefined gradient, or one without a graph, has a zero derivative.
                    if gi.defined() && gi.requires_grad() {
                        let t = (gi * vi).sum(gi.kind());
                        dot = Some(match dot {
                            None => t,
                            Some(d) => d + t,
                        });
                    }
                }
                let Some(dot) = dot else { continue };
                let hv = Tensor::f_run_backward(&[&dot], params, false, false)
                    .with_context(|| format!("Hessian-vector product of chunk {i}"))?;
                add_defined(&mut acc, hv);
            }
            Ok(())
        })?;
        Ok(acc)
    }
}

fn zeros_like(params: &[Tensor]) -> Vec<Tensor> {
    params.iter().map(|p| p.detach().zeros_like()).collect()
}

fn add_defined(acc: &mut [Tensor], terms: Vec<Tensor>) {
    for (a, t) in acc.iter_mut().zip(terms) {
        if t.defined() {
            *a += t.detach();
        }
    }
}

fn check(obj: &Objective, params: &[Tensor], what: &str) -> Result<()> {
    ensure!(!params.is_empty(), "{what}: no parameters given");
    ensure!(obj.chunks > 0, "{what}: the objective has no chunks");
    for (i, p) in params.iter().enumerate() {
        ensure!(
            p.requires_grad(),
            "{what}: parameter {i} (shape {:?}) does not require grad",
            p.size()
        );
    }
    Ok(())
}

/// `Σᵢ aᵢ·bᵢ` in f64.
fn dot(a: &[Tensor], b: &[Tensor]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            (x.to_kind(Kind::Double) * y.to_kind(Kind::Double))
                .sum(Kind::Double)
                .double_value(&[])
        })
        .sum()
}

/// A tensor shaped, typed and placed like `like`, filled from `f`.
fn filled(like: &Tensor, mut f: impl FnMut() -> f64) -> Tensor {
    let vals: Vec<f64> = (0..like.numel()).map(|_| f()).collect();
    Tensor::from_slice(&vals)
        .reshape(like.size())
        .to_kind(like.kind())
        .to_device(like.device())
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // in (0, 1]
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn gaussian(params: &[Tensor], rng: &mut ChaCha8Rng) -> Vec<Tensor> {
    params.iter().map(|p| filled(p, || normal(rng))).collect()
}

fn rademacher(params: &[Tensor], rng: &mut ChaCha8Rng) -> Vec<Tensor> {
    params
        .iter()
        .map(|p| filled(p, || if rng.random::<bool>() { 1.0 } else { -1.0 }))
        .collect()
}

fn scale(v: &[Tensor], c: f64) -> Vec<Tensor> {
    v.iter().map(|t| t * c).collect()
}

/// Largest-magnitude eigenvalue of the Hessian of the objective w.r.t. `params`, with its sign
/// (see the module documentation: negative means the dominant curvature is negative), by at
/// most `iters` power iterations on Hessian-vector products from a Gaussian start drawn from
/// `seed`; stops early when the Rayleigh quotient changes by less than 1e-4 relatively.
pub fn lambda_max(obj: &Objective, params: &[Tensor], iters: usize, seed: u64) -> Result<f64> {
    check(obj, params, "lambda_max")?;
    ensure!(iters > 0, "lambda_max: iters must be at least 1");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v0 = gaussian(params, &mut rng);
    let mut v = scale(&v0, 1.0 / dot(&v0, &v0).sqrt());
    let mut prev: Option<f64> = None;
    let mut lambda = 0.0;
    for _ in 0..iters {
        let hv = obj.hvp(params, &v)?;
        lambda = dot(&v, &hv);
        let norm = dot(&hv, &hv).sqrt();
        if !lambda.is_finite() || !norm.is_finite() {
            bail!("lambda_max: the Hessian-vector product is not finite");
        }
        if norm == 0.0 {
            return Ok(0.0); // H v = 0: the Hessian vanishes along the iterate
        }
        v = scale(&hv, 1.0 / norm);
        if prev.is_some_and(|p| (lambda - p).abs() <= LAMBDA_TOL * lambda.abs()) {
            break;
        }
        prev = Some(lambda);
    }
    Ok(lambda)
}

/// Hutchinson estimate of tr(H) with `probes` Rademacher probes drawn from `seed`:
/// (mean of zᵀHz, its standard error). At least 2 probes (a standard error needs them).
pub fn hutchinson_trace(
    obj: &Objective,
    params: &[Tensor],
    probes: usize,
    seed: u64,
) -> Result<(f64, f64)> {
    check(obj, params, "hutchinson_trace")?;
    ensure!(
        probes >= 2,
        "hutchinson_trace: {probes} probe(s); a standard error needs at least 2"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut samples = Vec::with_capacity(probes);
    for _ in 0..probes {
        let z = rademacher(params, &mut rng);
        let s = dot(&z, &obj.hvp(params, &z)?);
        ensure!(s.is_finite(), "hutchinson_trace: zᵀHz is not finite ({s})");
        samples.push(s);
    }
    let n = probes as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Ok((mean, (var / n).sqrt()))
}

/// Keskar et al. ε-sharpness: max over the box |δᵢ| ≤ ε(|wᵢ|+1) of
/// (L(w+δ) − L(w)) / (1 + L(w)) × 100, by `steps` steps of projected sign-gradient ascent from
/// δ = 0 (step 2.5·ε(|wᵢ|+1)/steps per coordinate, as in PGD); the best point visited counts, so
/// the result is ≥ 0. The parameters are restored exactly afterwards, also on error.
pub fn eps_sharpness(obj: &Objective, params: &[Tensor], eps: f64, steps: usize) -> Result<f64> {
    check(obj, params, "eps_sharpness")?;
    ensure!(
        eps.is_finite() && eps >= 0.0,
        "eps_sharpness: ε = {eps} is not a non-negative number"
    );
    ensure!(steps > 0, "eps_sharpness: steps must be at least 1");
    let saved: Vec<Tensor> = params.iter().map(|p| p.detach().copy()).collect();
    let result = ascend(obj, params, &saved, eps, steps);
    tch::no_grad(|| {
        for (p, s) in params.iter().zip(&saved) {
            p.detach().copy_(s);
        }
    });
    result
}

fn ascend(
    obj: &Objective,
    params: &[Tensor],
    w0: &[Tensor],
    eps: f64,
    steps: usize,
) -> Result<f64> {
    let base = obj.value()?;
    let radius: Vec<Tensor> = w0.iter().map(|w| (w.abs() + 1.0) * eps).collect();
    let step = 2.5 / steps as f64;
    let mut delta = zeros_like(w0);
    let mut best = base;
    for k in 0..=steps {
        tch::no_grad(|| {
            for ((p, w), d) in params.iter().zip(w0).zip(&delta) {
                p.detach().copy_(&(w + d));
            }
        });
        if k == steps {
            best = best.max(obj.value()?);
            break;
        }
        let (value, grad) = obj.gradient(params)?;
        best = best.max(value);
        delta = tch::no_grad(|| {
            delta
                .iter()
                .zip(&grad)
                .zip(&radius)
                .map(|((d, g), r)| {
                    let moved = d + g.sign() * r * step;
                    moved.minimum(r).maximum(&(-r))
                })
                .collect()
        });
    }
    let s = (best - base) / (1.0 + base) * 100.0;
    ensure!(
        s.is_finite(),
        "eps_sharpness: the result is not finite ({s})"
    );
    Ok(s)
}

/// Σ ‖W‖²_F, in f64.
pub fn frobenius_sum(weights: &[Tensor]) -> f64 {
    tch::no_grad(|| {
        weights
            .iter()
            .map(|w| {
                w.detach()
                    .to_kind(Kind::Double)
                    .square()
                    .sum(Kind::Double)
                    .double_value(&[])
            })
            .sum()
    })
}

/// Spectral norm of a weight reshaped to [out, -1] (conv kernels), by at most `iters` power
/// iterations on WᵀW (f64) from a Gaussian start drawn from `seed`, stopping once the estimate
/// changes by less than 1e-10 relatively. The estimate approaches the norm from below; it
/// converges like (σ₂/σ₁)^(2k), slowly when the top two singular values are close. A scalar
/// or a vector counts as one column.
pub fn spectral_norm(w: &Tensor, iters: usize, seed: u64) -> f64 {
    if w.numel() == 0 {
        return 0.0;
    }
    tch::no_grad(|| {
        let out = if w.dim() == 0 { 1 } else { w.size()[0] };
        let m = w.detach().to_kind(Kind::Double).reshape([out, -1]);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut v = filled(&m.get(0), || normal(&mut rng));
        v = &v / v.norm().double_value(&[]);
        let mut sigma = 0.0;
        for _ in 0..iters.max(1) {
            let u = m.mv(&v);
            let nu = u.norm().double_value(&[]);
            if nu == 0.0 {
                return 0.0;
            }
            let wt_u = m.tr().mv(&(u / nu));
            let next = wt_u.norm().double_value(&[]);
            v = wt_u / next;
            let done = (next - sigma).abs() <= SIGMA_TOL * next;
            sigma = next;
            if done {
                break;
            }
        }
        sigma
    })
}

/// Σ log ‖W‖₂ (log of the product of spectral norms; the log keeps it finite for deep nets).
/// −∞ when a weight is zero.
pub fn log_spectral_product(weights: &[Tensor], iters: usize, seed: u64) -> f64 {
    weights
        .iter()
        .map(|w| spectral_norm(w, iters, seed).ln())
        .sum()
}

/// ‖a − b‖ over parameter lists (the Euclidean norm of the concatenated differences, in f64; `b`
/// is moved to `a`'s device). Errors name the index on a count or shape mismatch.
pub fn distance(a: &[Tensor], b: &[Tensor]) -> Result<f64> {
    ensure!(
        a.len() == b.len(),
        "distance: {} tensors against {}",
        a.len(),
        b.len()
    );
    let mut total = 0.0;
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        ensure!(
            x.size() == y.size(),
            "distance: tensor {i} has shape {:?} against {:?}",
            x.size(),
            y.size()
        );
        total += tch::no_grad(|| {
            (x.detach().to_kind(Kind::Double)
                - y.detach().to_device(x.device()).to_kind(Kind::Double))
            .square()
            .sum(Kind::Double)
            .double_value(&[])
        });
    }
    ensure!(total.is_finite(), "distance: not finite ({total})");
    Ok(total.sqrt())
}

/// S_inv = λ_max(H restricted to `si`) · Σ‖w‖² over `si` (the scale-invariant, BN-preceded
/// weights); `λ_max` is [`lambda_max`]'s, with its sign.
pub fn scale_invariant_sharpness(
    obj: &Objective,
    si: &[Tensor],
    iters: usize,
    seed: u64,
) -> Result<f64> {
    let lambda = lambda_max(obj, si, iters, seed).context("scale_invariant_sharpness")?;
    Ok(lambda * frobenius_sum(si))
}

/// The trace reading of the same scale invariance: tr(H restricted to `si`) · Σ‖w‖² over `si`
/// (H(cw) = H(w)/c², so both factors' scalings cancel for BN-preceded weights); the trace is
/// [`hutchinson_trace`]'s estimate with `probes` probes.
pub fn scale_invariant_trace(
    obj: &Objective,
    si: &[Tensor],
    probes: usize,
    seed: u64,
) -> Result<f64> {
    let (trace, _) = hutchinson_trace(obj, si, probes, seed).context("scale_invariant_trace")?;
    Ok(trace * frobenius_sum(si))
}
