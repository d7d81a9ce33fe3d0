//! Bar charts: one bar per arm at its mean, a 95% CI whisker, and the per-seed values as dots.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::axes::{self, Axis, Mesh, usable};
use super::model::Bar;
use super::style::{Plot, colour};

/// Half the width of a bar, in slots (one slot per bar).
const HALF_WIDTH: f64 = 0.35;
/// Half the width of the spread of per-seed dots, and of a whisker cap.
const DOT_SPREAD: f64 = 0.2;
const CAP: f64 = 0.1;
/// Opacity of a bar's fill (its outline is the full palette colour).
const FILL_ALPHA: f64 = 0.45;
/// Dots and whiskers.
const INK: RGBColor = RGBColor(30, 30, 30);

/// Draws the bars; a chart without any finite mean or value is a "no data" panel.
pub(super) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    bars: &[Bar],
) -> Result<()> {
    let data = bars.iter().flat_map(|b| {
        let ci = b.ci.into_iter().flat_map(|(lo, hi)| [lo, hi]);
        [b.mean]
            .into_iter()
            .chain(ci)
            .chain(b.values.iter().copied())
            .collect::<Vec<_>>()
    });
    let data: Vec<f64> = data.filter(|v| usable(*v, false)).collect();
    if data.is_empty() {
        return axes::no_data(area, title);
    }
    let Some(y) = Axis::fit(data.into_iter().chain([0.0]), false) else {
        return axes::no_data(area, title);
    };
    let mut builder = axes::chart_builder(area, title, &y.labels(), 20)?;
    let mut chart = builder
        .build_cartesian_2d(axes::categories(bars.len()), y.linear())
        .plot("the chart")?;
    let x_fmt = |v: &f64| bar_label(bars, *v);
    let y_fmt = |v: &f64| y.label(*v);
    let mesh = Mesh {
        x_desc: "",
        y_desc: y_label,
        x_fmt: &x_fmt,
        y_fmt: &y_fmt,
        x_grid: false,
        y_grid: true,
    };
    axes::draw_mesh(&mut chart, &mesh)?;
    for (i, bar) in bars.iter().enumerate() {
        draw_bar(&mut chart, i, bar)?;
    }
    Ok(())
}

/// The label of the bar whose slot is at `v`.
fn bar_label(bars: &[Bar], v: f64) -> String {
    let i = v.round();
    let bar = if i >= 0.0 { bars.get(i as usize) } else { None };
    bar.map(|b| b.label.clone()).unwrap_or_default()
}

type Ctx<'c, DB, X, Y> = ChartContext<'c, DB, Cartesian2d<X, Y>>;

/// One bar: the filled bar to the mean, the CI whisker with caps, the per-seed dots.
fn draw_bar<DB, X, Y>(chart: &mut Ctx<'_, DB, X, Y>, i: usize, bar: &Bar) -> Result<()>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let x = i as f64;
    if usable(bar.mean, false) {
        let corners = [
            (x - HALF_WIDTH, bar.mean.max(0.0)),
            (x + HALF_WIDTH, bar.mean.min(0.0)),
        ];
        let fill = Rectangle::new(corners, colour(i).mix(FILL_ALPHA).filled());
        let outline = Rectangle::new(corners, colour(i).stroke_width(2));
        chart.draw_series([fill, outline]).plot("a bar")?;
    }
    if let Some((lo, hi)) = bar
        .ci
        .filter(|(lo, hi)| usable(*lo, false) && usable(*hi, false))
    {
        let style = INK.stroke_width(2);
        let whisker = [
            vec![(x, lo), (x, hi)],
            vec![(x - CAP, lo), (x + CAP, lo)],
            vec![(x - CAP, hi), (x + CAP, hi)],
        ];
        chart
            .draw_series(whisker.map(|path| PathElement::new(path, style)))
            .plot("a CI whisker")?;
    }
    let values: Vec<f64> = bar
        .values
        .iter()
        .copied()
        .filter(|v| usable(*v, false))
        .collect();
    let dots = values
        .iter()
        .enumerate()
        .map(|(j, v)| Circle::new((x + spread(j, values.len()), *v), 4, INK.mix(0.8).filled()));
    chart.draw_series(dots).plot("per-seed dots")?;
    Ok(())
}

/// Horizontal offset of dot `j` of `n`, spread evenly over ±[`DOT_SPREAD`].
fn spread(j: usize, n: usize) -> f64 {
    if n < 2 {
        0.0
    } else {
        -DOT_SPREAD + 2.0 * DOT_SPREAD * j as f64 / (n - 1) as f64
    }
}
