//! The dot-and-interval mini-plot of a check line: the estimate its test decides on (mean(a) −
//! mean(b) for a two-arm test, the mean over seeds for a one-sample or τ test) as a dot, its
//! two-sided 1 − 2α interval as a line (the one whose position against the threshold the
//! one-sided tests and TOST decide on), and the threshold (zero, the margin, the value) as
//! reference lines. Hand-written SVG: a few elements, no figure machinery.

use std::fmt::Write as _;

use statrs::distribution::{ContinuousCDF, StudentsT};

use super::super::numbers::num;
use super::super::tables::{html_escape, verdict_class};
use super::super::verdict::{CheckResult, Group};
use repro_core::pipeline::claims::TestSpec;

/// Which side of its thresholds the claim puts the estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Side {
    Below,
    Above,
    /// Between the two thresholds (equivalence).
    Inside,
}

/// What the mini-plot draws for one check line.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// `early − none`, `mean`, `mean τ(…)`.
    pub label: String,
    pub point: f64,
    /// `None` with one seed (no variance estimate).
    pub interval: Option<(f64, f64)>,
    /// The interval's coverage, 1 − 2α.
    pub level: f64,
    /// The decision thresholds (one, or two for equivalence).
    pub thresholds: Vec<f64>,
    pub side: Side,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn var(v: &[f64]) -> f64 {
    let m = mean(v);
    v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() as f64 - 1.0)
}

/// The t quantile at `p` with `df` degrees of freedom (`None` for a degenerate df).
fn t_quantile(p: f64, df: f64) -> Option<f64> {
    StudentsT::new(0.0, 1.0, df).ok().map(|t| t.inverse_cdf(p))
}

/// mean(a) − mean(b) with Welch's interval at `level`.
fn difference(a: &Group, b: &Group, level: f64) -> Option<(f64, Option<(f64, f64)>)> {
    if a.values.is_empty() || b.values.is_empty() {
        return None;
    }
    let d = mean(&a.values) - mean(&b.values);
    if a.values.len() < 2 || b.values.len() < 2 {
        return Some((d, None));
    }
    let (sa, sb) = (
        var(&a.values) / a.values.len() as f64,
        var(&b.values) / b.values.len() as f64,
    );
    let se2 = sa + sb;
    if se2 == 0.0 {
        return Some((d, Some((d, d))));
    }
    let df = se2 * se2
        / (sa * sa / (a.values.len() as f64 - 1.0) + sb * sb / (b.values.len() as f64 - 1.0));
    let half = t_quantile(0.5 + level / 2.0, df)? * se2.sqrt();
    Some((d, Some((d - half, d + half))))
}

/// The mean of one group with its Student-t interval at `level`.
fn one_mean(g: &Group, level: f64) -> Option<(f64, Option<(f64, f64)>)> {
    let v = &g.values;
    if v.is_empty() {
        return None;
    }
    let m = mean(v);
    if v.len() < 2 {
        return Some((m, None));
    }
    let se = (var(v) / v.len() as f64).sqrt();
    let half = t_quantile(0.5 + level / 2.0, v.len() as f64 - 1.0)? * se;
    Some((m, Some((m - half, m + half))))
}

/// The estimate a check line's test decides on; `None` when it has no numbers.
pub fn estimate(test: &TestSpec, alpha: f64, c: &CheckResult) -> Option<Estimate> {
    let level = 1.0 - 2.0 * alpha;
    let two = |side: Side, thresholds: Vec<f64>| {
        let (a, b) = (c.groups.first()?, c.groups.get(1)?);
        let (point, interval) = difference(a, b, level)?;
        Some(Estimate {
            label: format!("{} − {}", a.label, b.label),
            point,
            interval,
            level,
            thresholds,
            side,
        })
    };
    let one = |threshold: f64, up: bool| {
        let g = c.groups.first()?;
        let (point, interval) = one_mean(g, level)?;
        Some(Estimate {
            label: format!("mean {}", g.label),
            point,
            interval,
            level,
            thresholds: vec![threshold],
            side: if up { Side::Above } else { Side::Below },
        })
    };
    match test {
        TestSpec::Less { margin, .. } => {
            let m = margin.unwrap_or(0.0);
            two(Side::Below, vec![m])
        }
        TestSpec::Greater { margin, .. } => {
            let m = margin.unwrap_or(0.0);
            two(Side::Above, vec![-m])
        }
        TestSpec::Equivalent { margin, .. } => two(Side::Inside, vec![-margin, *margin]),
        TestSpec::Above { value } => one(*value, true),
        TestSpec::Below { value } => one(*value, false),
        TestSpec::Increasing { .. } => one(0.0, true),
        TestSpec::Decreasing { .. } => one(0.0, false),
        TestSpec::RankAgreement { above, below, .. } => match (above, below) {
            (Some(t), _) => one(*t, true),
            (_, Some(t)) => one(*t, false),
            _ => one(0.0, true),
        },
    }
}

const WIDTH: f64 = 160.0;
const HEIGHT: f64 = 16.0;
const PAD: f64 = 6.0;

/// The estimate in words: the SVG's title (a tooltip) and its accessible name.
pub fn describe(e: &Estimate) -> String {
    let interval = match e.interval {
        Some((lo, hi)) => format!(
            "{}% interval [{}, {}]",
            (e.level * 100.0).round(),
            num(lo),
            num(hi)
        ),
        None => "one seed: no interval".into(),
    };
    let thresholds: Vec<String> = e.thresholds.iter().map(|t| num(*t)).collect();
    let claimed = match e.side {
        Side::Below => format!("claimed below {}", thresholds.join(", ")),
        Side::Above => format!("claimed above {}", thresholds.join(", ")),
        Side::Inside => format!("claimed between {}", thresholds.join(" and ")),
    };
    format!("{} = {}, {interval}; {claimed}", e.label, num(e.point))
}

/// The mini-plot as inline SVG; the dot takes the verdict's colour class.
pub fn svg(e: &Estimate, class: &str) -> String {
    let mut lo = e.point;
    let mut hi = e.point;
    let mut include = |x: f64| {
        if x.is_finite() {
            lo = lo.min(x);
            hi = hi.max(x);
        }
    };
    if let Some((a, b)) = e.interval {
        include(a);
        include(b);
    }
    e.thresholds.iter().for_each(|t| include(*t));
    include(0.0);
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        (lo, hi) = (lo - 1.0, hi + 1.0);
    }
    let x = |v: f64| PAD + (v - lo) / (hi - lo) * (WIDTH - 2.0 * PAD);
    let mid = HEIGHT / 2.0;
    let words = html_escape(&describe(e));
    let mut s = format!(
        "<svg class=\"est\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" \
         height=\"{HEIGHT}\" role=\"img\" aria-label=\"{words}\"><title>{words}</title>"
    );
    // Zero, then the thresholds over it.
    let _ = write!(
        s,
        "<line class=\"zero\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"1\" y2=\"{1}\"/>",
        x(0.0),
        HEIGHT - 1.0
    );
    for t in &e.thresholds {
        let _ = write!(
            s,
            "<line class=\"threshold\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"1\" y2=\"{1}\"/>",
            x(*t),
            HEIGHT - 1.0
        );
    }
    if let Some((a, b)) = e.interval {
        let _ = write!(
            s,
            "<line class=\"ci\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{mid}\" y2=\"{mid}\"/>",
            x(a),
            x(b)
        );
    }
    let _ = write!(
        s,
        "<circle class=\"dot {class}\" cx=\"{:.1}\" cy=\"{mid}\" r=\"3.5\"/></svg>",
        x(e.point)
    );
    s
}

/// The plots of a check's lines, each under its `experiment metric` label.
pub fn cell(lines: &[(&CheckResult, Option<Estimate>)]) -> String {
    let mut s = String::new();
    for (c, e) in lines {
        let Some(e) = e else { continue };
        let label = match (&c.experiment, &c.metric) {
            (Some(x), Some(m)) => format!("{x} {m}"),
            (Some(x), None) => x.clone(),
            _ => String::new(),
        };
        let _ = write!(
            s,
            "<div class=\"estimate\"><span>{}</span>{}</div>",
            html_escape(&label),
            svg(e, verdict_class(c.verdict))
        );
    }
    if s.is_empty() {
        s.push('—');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(label: &str, values: &[f64]) -> Group {
        Group {
            label: label.into(),
            seeds: (0..values.len() as i64).collect(),
            values: values.to_vec(),
            mean: None,
            ci95: None,
        }
    }

    #[test]
    fn the_difference_interval_is_welchs_at_the_level() {
        // scipy: ttest_ind([1,2,3],[0,0.5,1],equal_var=False).confidence_interval(0.9)
        // = (0.3104..., 2.6895...): diff 1.5, se sqrt(1/3+0.25/3), df 2.9412.
        let (d, ci) = difference(
            &group("a", &[1.0, 2.0, 3.0]),
            &group("b", &[0.0, 0.5, 1.0]),
            0.9,
        )
        .unwrap();
        assert!((d - 1.5).abs() < 1e-12);
        let (lo, hi) = ci.unwrap();
        assert!(
            (lo + hi - 3.0).abs() < 1e-9,
            "centred on the difference: {lo} {hi}"
        );
        let half = (hi - lo) / 2.0;
        let se = (1.0f64 / 3.0 + 0.25 / 3.0).sqrt();
        // t(0.95, 2.94) lies between t(0.95, 3) = 2.353 and t(0.95, 2) = 2.920.
        assert!(half / se > 2.353 && half / se < 2.920, "{}", half / se);
        let (_, none) = difference(&group("a", &[1.0]), &group("b", &[0.0, 1.0]), 0.9).unwrap();
        assert_eq!(none, None, "one seed on a side gives no interval");
        assert!(difference(&group("a", &[]), &group("b", &[1.0]), 0.9).is_none());
    }

    #[test]
    fn the_plot_puts_dot_interval_and_threshold_where_the_numbers_are() {
        let e = Estimate {
            label: "early − none".into(),
            point: 2.0,
            interval: Some((1.0, 3.0)),
            level: 0.9,
            thresholds: vec![4.0],
            side: Side::Below,
        };
        let s = svg(&e, "ok");
        // Domain [0, 4] over x from 6 to 154: 37 px per unit.
        assert!(s.contains("<circle class=\"dot ok\" cx=\"80.0\""), "{s}");
        assert!(s.contains("class=\"ci\" x1=\"43.0\" x2=\"117.0\""), "{s}");
        assert!(s.contains("class=\"threshold\" x1=\"154.0\""), "{s}");
        assert!(s.contains("class=\"zero\" x1=\"6.0\""), "{s}");
        assert!(
            describe(&e).contains("90% interval [1.000, 3.000]; claimed below 4.000"),
            "{}",
            describe(&e)
        );
    }
}
