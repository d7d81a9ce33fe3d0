//! Bar charts: one bar per arm at its mean, a 95% CI whisker, and the per-seed values as dots.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use plotters::style::text_anchor::HPos;

use super::axes::{self, Axis, Decor, Labels, Mesh, usable};
use super::model::Bar;
use super::style::{Plot, TICK_PX, colour};
use super::text::{self, Room};

/// Half the width of a bar, in slots (one slot per bar).
const HALF_WIDTH: f64 = 0.35;
/// Half the width of the spread of per-seed dots, and of a whisker cap.
const DOT_SPREAD: f64 = 0.2;
const CAP: f64 = 0.1;
/// Opacity of a bar's fill (its outline is the full palette colour).
const FILL_ALPHA: f64 = 0.45;
/// Room between the names of neighbouring bars, and the smallest size a name shrinks to (the
/// smallest text of a figure).
const NAME_GAP: i32 = 8;
const MIN_NAME_PX: f64 = 13.0;
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
    let labels = Labels {
        title,
        x_desc: "",
        y_desc: y_label,
        y_ticks: &y.labels(),
    };
    let decor = Decor::new(area, &labels, 20)?;
    let body = decor.body(area)?;
    let mut chart = decor
        .builder(&body)
        .build_cartesian_2d(axes::categories(bars.len()), y.linear())
        .plot("the chart")?;
    // The bars' names are drawn below by `draw_names`, wrapped to their slots.
    let x_fmt = |_: &f64| String::new();
    let y_fmt = |v: &f64| y.label(*v);
    let mesh = Mesh {
        x_fmt: &x_fmt,
        y_fmt: &y_fmt,
        x_grid: false,
        y_grid: true,
    };
    axes::draw_mesh(&mut chart, &mesh)?;
    decor.draw_descs(&body, &chart)?;
    for (i, bar) in bars.iter().enumerate() {
        draw_bar(&mut chart, i, bar)?;
    }
    draw_names(&body, &chart, bars)
}

/// Each bar's name under its slot, shrunk, wrapped onto two lines or cut to the slot's width.
fn draw_names<DB, X, Y>(
    body: &DrawingArea<DB, Shift>,
    chart: &Ctx<'_, DB, X, Y>,
    bars: &[Bar],
) -> Result<()>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let (bx, by) = body.get_base_pixel();
    let slot = (xr.end - xr.start) / bars.len().max(1) as i32;
    let room = Room {
        width: (slot - NAME_GAP).max(1) as u32,
        max_lines: 2,
        px: TICK_PX,
        min_px: MIN_NAME_PX,
        bold: false,
    };
    for (i, bar) in bars.iter().enumerate() {
        let name = text::fit(&bar.label, room)?;
        let centre = chart.backend_coord(&(i as f64, 0.0)).0 - bx;
        name.draw(body, (centre, yr.end - by + 8), HPos::Center, &BLACK)?;
    }
    Ok(())
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
