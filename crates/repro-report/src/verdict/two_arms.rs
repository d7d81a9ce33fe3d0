//! The two-arm tests of `verdict`: arm `a` against arm `b` by Welch's one-sided test, with an
//! optional non-inferiority margin (`less`, `greater`), or by TOST (`equivalent`).

use super::result::{CheckResult, Group, POWER, Verdict, arm_text, group, show};
use crate::numbers::num;
use crate::select::{Point, Selection};
use repro_core::metrics::stats;
use repro_core::pipeline::claims::{Arm, ClaimSpec};

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Side {
    Less,
    Greater,
}

pub(super) fn arm_group(sel: &Selection, arm: &Arm) -> Group {
    let points: Vec<&Point> = sel.points.iter().filter(|p| p.in_arm(arm)).collect();
    group(arm_text(arm), &points)
}

/// Too few values on a side for statistics: the verdict stays "not run" (none) or
/// "inconclusive" (one seed).
fn too_few(groups: &[&Group], r: &mut CheckResult) -> bool {
    if let Some(g) = groups.iter().find(|g| g.values.is_empty()) {
        r.note = Some(format!("no finished run of arm `{}`", g.label));
        r.verdict = Verdict::NotRun;
        return true;
    }
    if groups.iter().any(|g| g.values.len() < 2) {
        r.note = Some("one seed per arm gives no variance estimate: at least 2 needed".into());
        r.verdict = Verdict::Inconclusive;
        return true;
    }
    false
}

/// H₁: mean(a) < mean(b) + margin (`Less`) or mean(a) > mean(b) − margin (`Greater`), Welch.
pub(super) fn pair(
    c: &ClaimSpec,
    sel: &Selection,
    a: &Arm,
    b: &Arm,
    side: Side,
    margin: f64,
    r: &mut CheckResult,
) {
    let (ga, gb) = (arm_group(sel, a), arm_group(sel, b));
    // Neutral wording: the test column states the claim, this says what was seen.
    r.measured = format!("{} vs {}", show(&ga), show(&gb));
    if margin != 0.0 {
        r.measured += &format!(" (margin {margin})");
    }
    r.seeds = format!("{}+{}", ga.values.len(), gb.values.len());
    r.groups = vec![ga.clone(), gb.clone()];
    if too_few(&[&ga, &gb], r) {
        return;
    }
    // H₁ as "mean(x) − mean(y) < margin" in both cases.
    let (x, y) = match side {
        Side::Less => (&ga.values, &gb.values),
        Side::Greater => (&gb.values, &ga.values),
    };
    match stats::welch_shifted(x, y, margin) {
        Ok(w) => {
            let p_other = 1.0 - w.p_less;
            r.statistics.insert("t".into(), w.t);
            r.statistics.insert("df".into(), w.df);
            r.statistics.insert("p".into(), w.p_less);
            r.measured += &format!("; Welch p = {}", num(w.p_less));
            r.verdict = if w.p_less < c.alpha {
                Verdict::Reproduced
            } else if p_other < c.alpha {
                r.note = Some(format!(
                    "significant in the opposite direction (p = {})",
                    num(p_other)
                ));
                Verdict::NotReproduced
            } else {
                let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
                if mean(x) < mean(y) + margin {
                    // The effect is the distance to the margin: compare x with y shifted by it.
                    let shifted: Vec<f64> = y.iter().map(|v| v + margin).collect();
                    r.seeds_needed = stats::seeds_needed(x, &shifted, c.alpha, POWER)
                        .ok()
                        .flatten();
                } else {
                    r.note = Some("the observed difference points the other way".into());
                }
                Verdict::Inconclusive
            };
        }
        Err(_) => {
            // Both sides constant across seeds: the ordering is exact or absent.
            let (mx, my) = (x[0], y[0]);
            r.note = Some("no variance across seeds: the ordering is read directly".into());
            r.verdict = if mx < my + margin {
                Verdict::Reproduced
            } else {
                Verdict::NotReproduced
            };
        }
    }
}

pub(super) fn equivalent(
    c: &ClaimSpec,
    sel: &Selection,
    a: &Arm,
    b: &Arm,
    margin: f64,
    r: &mut CheckResult,
) {
    let (ga, gb) = (arm_group(sel, a), arm_group(sel, b));
    r.seeds = format!("{}+{}", ga.values.len(), gb.values.len());
    r.groups = vec![ga.clone(), gb.clone()];
    r.measured = format!("{} vs {}", show(&ga), show(&gb));
    if too_few(&[&ga, &gb], r) {
        return;
    }
    let (x, y) = (&ga.values, &gb.values);
    let diff = ga.mean.unwrap_or(f64::NAN) - gb.mean.unwrap_or(f64::NAN);
    r.statistics.insert("difference".into(), diff);
    r.measured = format!(
        "{} − {} = {} (margin ±{})",
        ga.label,
        gb.label,
        num(diff),
        num(margin)
    );
    match stats::tost(x, y, margin) {
        Ok(p) => {
            r.statistics.insert("p".into(), p);
            r.measured += &format!("; TOST p = {}", num(p));
            // Non-equivalence shown: the difference lies beyond the margin, significantly.
            let above = stats::welch_shifted(y, x, -margin).map(|w| w.p_less);
            let below = stats::welch_shifted(x, y, -margin).map(|w| w.p_less);
            let beyond = [above, below].into_iter().flatten().fold(1.0, f64::min);
            r.verdict = if p < c.alpha {
                Verdict::Reproduced
            } else if beyond < c.alpha {
                r.note = Some(format!(
                    "the difference exceeds the margin significantly (p = {})",
                    num(beyond)
                ));
                Verdict::NotReproduced
            } else {
                r.seeds_needed = stats::seeds_needed_equivalence(x, y, margin, c.alpha, POWER)
                    .ok()
                    .flatten();
                if r.seeds_needed.is_none() {
                    r.note = Some("the observed difference is outside the margin".into());
                }
                Verdict::Inconclusive
            };
        }
        Err(_) => {
            r.note = Some("no variance across seeds: the difference is read directly".into());
            r.verdict = if diff.abs() < margin {
                Verdict::Reproduced
            } else {
                Verdict::NotReproduced
            };
        }
    }
}
