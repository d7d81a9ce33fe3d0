//! Seed statistics for the claims (docs/paper.md#claims): mean with a 95% Student-t interval,
//! Welch's one-sided t-test for orderings, TOST equivalence for "≈ within a margin", and how many
//! seeds an undecided comparison would need; and rliable's interquartile mean ([`iqm`]) for RL
//! returns (its bootstrap intervals are in [`super::bootstrap`]). scipy's conventions
//! (`ttest_ind(equal_var=False)`, `trim_mean`), so the tests can check the numbers against it.

use anyhow::{Result, bail};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Mean and spread of one arm's per-seed values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1); NaN for one value.
    pub sd: f64,
    /// 95% confidence interval of the mean (Student t, n − 1 df); `None` for one value.
    pub ci95: Option<(f64, f64)>,
}

/// Welch's t-test of H₁: mean(a) < mean(b).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// One-sided p-value (scipy's `alternative="less"`).
    pub p_less: f64,
}

fn check(x: &[f64], what: &str, min: usize) -> Result<()> {
    if x.len() < min {
        bail!("{what}: {} value(s), at least {min} needed", x.len());
    }
    if let Some(v) = x.iter().find(|v| !v.is_finite()) {
        bail!("{what}: non-finite value {v}");
    }
    Ok(())
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

fn t_dist(df: f64) -> StudentsT {
    StudentsT::new(0.0, 1.0, df).expect("df > 0 was checked")
}

pub fn summarize(x: &[f64]) -> Result<Summary> {
    check(x, "summary", 1)?;
    let n = x.len();
    if n == 1 {
        return Ok(Summary {
            n,
            mean: x[0],
            sd: f64::NAN,
            ci95: None,
        });
    }
    let (mean, var) = mean_var(x);
    let sd = var.sqrt();
    let half = t_dist(n as f64 - 1.0).inverse_cdf(0.975) * sd / (n as f64).sqrt();
    Ok(Summary {
        n,
        mean,
        sd,
        ci95: Some((mean - half, mean + half)),
    })
}

/// Welch's test of H₁: mean(a) − mean(b) < `shift` (`shift` = 0 for a plain ordering).
pub fn welch_shifted(a: &[f64], b: &[f64], shift: f64) -> Result<Welch> {
    check(a, "welch: first sample", 2)?;
    check(b, "welch: second sample", 2)?;
    let (ma, va) = mean_var(a);
    let (mb, vb) = mean_var(b);
    let (sa, sb) = (va / a.len() as f64, vb / b.len() as f64);
    let se2 = sa + sb;
    if se2 == 0.0 {
        bail!("welch: both samples are constant; the test is undefined");
    }
    let t = (ma - mb - shift) / se2.sqrt();
    let df = se2 * se2 / (sa * sa / (a.len() as f64 - 1.0) + sb * sb / (b.len() as f64 - 1.0));
    Ok(Welch {
        t,
        df,
        p_less: t_dist(df).cdf(t),
    })
}

/// Welch's one-sided test of H₁: mean(a) < mean(b).
pub fn welch_less(a: &[f64], b: &[f64]) -> Result<Welch> {
    welch_shifted(a, b, 0.0)
}

/// Two one-sided tests (Welch) of equivalence: H₁: |mean(a) − mean(b)| < `margin`. Returns the
/// TOST p-value, the larger of the two one-sided p-values.
pub fn tost(a: &[f64], b: &[f64], margin: f64) -> Result<f64> {
    if !(margin > 0.0 && margin.is_finite()) {
        bail!("tost: margin must be positive and finite, got {margin}");
    }
    let upper = welch_shifted(a, b, margin)?.p_less; // H₁: diff < +m
    let lower = 1.0 - welch_shifted(a, b, -margin)?.p_less; // H₁: diff > −m
    Ok(upper.max(lower))
}

/// One-sample t-test of H₁: mean(x) > `threshold`; the one-sided p-value. An error when the
/// values do not vary (the test is undefined).
pub fn t_greater(x: &[f64], threshold: f64) -> Result<f64> {
    check(x, "t-test", 2)?;
    let (m, v) = mean_var(x);
    if v == 0.0 {
        bail!("t-test: the values are constant; the test is undefined");
    }
    let t = (m - threshold) / (v / x.len() as f64).sqrt();
    Ok(1.0 - t_dist(x.len() as f64 - 1.0).cdf(t))
}

/// Seeds per arm a TOST with `margin` would need, from the observed difference and spread
/// (normal approximation with the distance to the nearer margin as the effect). `None` when
/// the observed difference is already outside the margin.
pub fn seeds_needed_equivalence(
    a: &[f64],
    b: &[f64],
    margin: f64,
    alpha: f64,
    power: f64,
) -> Result<Option<usize>> {
    check(a, "seeds_needed: first sample", 2)?;
    check(b, "seeds_needed: second sample", 2)?;
    let (ma, va) = mean_var(a);
    let (mb, vb) = mean_var(b);
    let delta = margin - (ma - mb).abs();
    if delta <= 0.0 {
        return Ok(None);
    }
    Ok(sample_size(va + vb, delta, alpha, power))
}

/// The normal-approximation sample size n = (z₁₋α + z_power)² · variance / δ² (at least 2);
/// `None` for a zero effect or zero variance.
fn sample_size(variance: f64, delta: f64, alpha: f64, power: f64) -> Option<usize> {
    if delta == 0.0 || variance == 0.0 {
        return None;
    }
    let z = Normal::standard();
    let k = z.inverse_cdf(1.0 - alpha) + z.inverse_cdf(power);
    Some(((k * k * variance / (delta * delta)).ceil() as usize).max(2))
}

/// Seeds per arm that a one-sided comparison at level `alpha` with power `power` would need,
/// given the observed difference of means and pooled spread (normal approximation,
/// n = 2 (z₁₋α + z_power)² σ² / δ²). `None` when the observed difference or spread is zero.
pub fn seeds_needed(a: &[f64], b: &[f64], alpha: f64, power: f64) -> Result<Option<usize>> {
    check(a, "seeds_needed: first sample", 2)?;
    check(b, "seeds_needed: second sample", 2)?;
    let (ma, va) = mean_var(a);
    let (mb, vb) = mean_var(b);
    // 2 (z₁₋α + z_power)² σ̄² / δ² with σ̄² = (va + vb)/2.
    Ok(sample_size(va + vb, (ma - mb).abs(), alpha, power))
}

/// Seeds a one-sample comparison of a mean against `threshold` would need (normal
/// approximation, n = (z₁₋α + z_power)² σ² / δ²), from the observed values. `None` when the
/// observed mean equals the threshold or the values do not vary.
pub fn seeds_needed_one(
    x: &[f64],
    threshold: f64,
    alpha: f64,
    power: f64,
) -> Result<Option<usize>> {
    check(x, "seeds_needed_one", 2)?;
    let (m, v) = mean_var(x);
    Ok(sample_size(v, (m - threshold).abs(), alpha, power))
}

/// The interquartile mean, exactly as `scipy.stats.trim_mean(x, 0.25)` (what rliable's IQM
/// is): sort, drop `int(0.25 · n)` values from each end, average the rest. So for n < 4 nothing
/// is trimmed (the plain mean), n = 4…7 drops one value each side, n = 8…11 two, and so on.
pub fn iqm(x: &[f64]) -> Result<f64> {
    check(x, "iqm", 1)?;
    let mut sorted = x.to_vec();
    Ok(iqm_in_place(&mut sorted))
}

/// [`iqm`] of finite values, reordering them (the bootstrap's inner loop reuses one buffer).
pub(crate) fn iqm_in_place(x: &mut [f64]) -> f64 {
    x.sort_unstable_by(f64::total_cmp);
    let cut = x.len() / 4; // int(0.25 * n): 0.25 · n is exact in floating point
    let kept = &x[cut..x.len() - cut];
    kept.iter().sum::<f64>() / kept.len() as f64
}

/// Kendall's τ-b rank correlation (ties counted as scipy's `kendalltau` does). `None` when
/// either variable is constant (τ undefined).
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Result<Option<f64>> {
    if x.len() != y.len() {
        bail!("kendall: {} x values but {} y values", x.len(), y.len());
    }
    check(x, "kendall: x", 2)?;
    check(y, "kendall: y", 2)?;
    let (mut concordant, mut discordant, mut ties_x, mut ties_y) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            let dx = (x[i] - x[j]).partial_cmp(&0.0);
            let dy = (y[i] - y[j]).partial_cmp(&0.0);
            use std::cmp::Ordering::Equal;
            match (dx, dy) {
                (Some(Equal), Some(Equal)) => {}
                (Some(Equal), _) => ties_x += 1,
                (_, Some(Equal)) => ties_y += 1,
                (a, b) if a == b => concordant += 1,
                _ => discordant += 1,
            }
        }
    }
    let n0 = (concordant + discordant + ties_x) as f64;
    let n1 = (concordant + discordant + ties_y) as f64;
    if n0 == 0.0 || n1 == 0.0 {
        return Ok(None);
    }
    Ok(Some((concordant - discordant) as f64 / (n0 * n1).sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_an_error() {
        assert!(summarize(&[]).is_err());
        assert!(welch_less(&[1.0], &[1.0, 2.0]).is_err());
        assert!(welch_less(&[1.0, f64::NAN], &[1.0, 2.0]).is_err());
        assert!(welch_less(&[1.0, 1.0], &[2.0, 2.0]).is_err());
        assert!(tost(&[1.0, 2.0], &[1.0, 2.0], 0.0).is_err());
        assert!(iqm(&[]).is_err());
        assert!(iqm(&[1.0, f64::INFINITY]).is_err());
        let one = summarize(&[3.0]).unwrap();
        assert_eq!((one.mean, one.ci95), (3.0, None));
    }

    #[test]
    fn seeds_needed_grows_as_the_difference_shrinks() {
        let a = [1.0, 1.2, 0.8, 1.1];
        let near = seeds_needed(&a, &[1.05, 1.25, 0.85, 1.15], 0.05, 0.8)
            .unwrap()
            .unwrap();
        let far = seeds_needed(&a, &[2.0, 2.2, 1.8, 2.1], 0.05, 0.8)
            .unwrap()
            .unwrap();
        assert!(near > 50 * far / 2, "near {near}, far {far}");
        assert_eq!(seeds_needed(&a, &a, 0.05, 0.8).unwrap(), None);
    }

    #[test]
    fn iqm_trims_a_quarter_from_each_end() {
        assert_eq!(iqm(&[5.0]).unwrap(), 5.0);
        assert_eq!(iqm(&[1.0, 2.0, 9.0]).unwrap(), 4.0); // n = 3: nothing trimmed
        assert_eq!(iqm(&[100.0, 1.0, 2.0, -50.0]).unwrap(), 1.5);
        assert_eq!(iqm(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1e9]).unwrap(), 3.5);
    }

    #[test]
    fn kendall_extremes() {
        let x = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(
            kendall_tau_b(&x, &[10.0, 20.0, 30.0, 40.0]).unwrap(),
            Some(1.0)
        );
        assert_eq!(
            kendall_tau_b(&x, &[4.0, 3.0, 2.0, 1.0]).unwrap(),
            Some(-1.0)
        );
        assert_eq!(kendall_tau_b(&x, &[5.0; 4]).unwrap(), None);
        assert!(kendall_tau_b(&x, &[1.0]).is_err());
    }
}
