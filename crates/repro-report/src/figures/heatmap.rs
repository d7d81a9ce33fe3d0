//! Heatmaps: a grid of cells colour-mapped with viridis (linearly or by log10, over the data's
//! range or a given one shared by several panels), the value printed in each cell, missing cells
//! grey, one cell optionally outlined, and a colour bar on the right labelled with the value's
//! name.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axes::{self, Decor, Labels, Mesh, fmt_value, usable};
use super::model::ColourScale;
use super::style::{LABEL_PX, Plot, TICK_PX, font};
use super::text::{self, Room};

/// Fill of a cell without a value.
pub(super) const MISSING: RGBColor = RGBColor(190, 190, 190);
/// Viridis at t = 0, 1/8, …, 1 (matplotlib's table); colours in between are interpolated.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];
/// Colour bar geometry in pixels: gap to the plot, bar width, gap to its tick labels.
const BAR_GAP: i32 = 12;
const BAR_WIDTH: i32 = 14;
const BAR_LABEL_GAP: i32 = 6;
/// Room on the right of the colour bar's tick labels for the rotated value label.
const VALUE_LABEL_SPACE: u32 = 28;
/// Outline of the marked cell (vermillion, seen on every viridis colour).
const MARK: RGBColor = RGBColor(213, 94, 0);
/// The widest a y tick (a row's name) may be, as a share of the panel's width.
const Y_TICK_SHARE: f64 = 0.3;
/// Cell value text is shrunk to fit a cell, but not below this size.
const MIN_CELL_PX: f64 = 9.0;

/// A Heatmap chart, borrowed from [`super::Chart`].
pub(super) struct Grid<'a> {
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x_ticks: &'a [String],
    pub y_ticks: &'a [String],
    pub values: &'a [Vec<Option<f64>>],
    pub value_label: &'a str,
    pub scale: ColourScale,
    /// The (row, column) outlined, e.g. the best cell.
    pub mark: Option<(usize, usize)>,
}

impl Grid<'_> {
    fn rows(&self) -> usize {
        self.values.len().max(self.y_ticks.len())
    }

    fn columns(&self) -> usize {
        self.values
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .max(self.x_ticks.len())
    }

    /// The drawable value at row `r` (0 = top) and column `c`.
    fn value(&self, r: usize, c: usize) -> Option<f64> {
        self.values
            .get(r)?
            .get(c)
            .copied()
            .flatten()
            .filter(|v| usable(*v, self.scale.log))
    }

    /// The drawable values.
    fn drawable(&self) -> impl Iterator<Item = f64> + '_ {
        let log = self.scale.log;
        let all = self.values.iter().flatten().copied().flatten();
        all.filter(move |v| usable(*v, log))
    }

    /// The smallest and largest drawable value.
    fn data_extent(&self) -> Option<(f64, f64)> {
        self.drawable().fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
        })
    }

    /// The values at the ends of the colour map: the given range, else the data's; None
    /// without drawable data (or with an unusable range).
    fn extent(&self) -> Option<(f64, f64)> {
        let data = self.data_extent()?;
        let log = self.scale.log;
        match self.scale.range {
            None => Some(data),
            Some((lo, hi)) if usable(lo, log) && usable(hi, log) && lo <= hi => Some((lo, hi)),
            Some(_) => None,
        }
    }

    /// Where `v` falls on the colour map, 0 at `vmin` and 1 at `vmax` (beyond: clamped when
    /// coloured).
    fn fraction(&self, v: f64, (vmin, vmax): (f64, f64)) -> f64 {
        let f = |x: f64| if self.scale.log { x.log10() } else { x };
        if vmax > vmin {
            (f(v) - f(vmin)) / (f(vmax) - f(vmin))
        } else {
            0.5
        }
    }
}

/// Viridis at `t` in [0, 1].
pub(super) fn viridis(t: f64) -> RGBColor {
    let pos = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let k = (pos.floor() as usize).min(VIRIDIS.len() - 2);
    let f = pos - k as f64;
    let (a, b) = (VIRIDIS[k], VIRIDIS[k + 1]);
    let mix = |p: u8, q: u8| (f64::from(p) + (f64::from(q) - f64::from(p)) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Black or white, whichever reads better on `bg`.
fn ink_on(bg: RGBColor) -> &'static RGBColor {
    let luma = 0.299 * f64::from(bg.0) + 0.587 * f64::from(bg.1) + 0.114 * f64::from(bg.2);
    if luma > 140.0 { &BLACK } else { &WHITE }
}

/// The tick text at category position `v` (row `rows - 1 - v` for the y axis).
fn tick(ticks: &[String], i: Option<usize>) -> String {
    i.and_then(|i| ticks.get(i)).cloned().unwrap_or_default()
}

fn slot(v: f64) -> Option<usize> {
    (v >= -0.5).then(|| v.round() as usize)
}

/// Draws the heatmap; one without any finite value is a "no data" panel.
pub(super) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    grid: &Grid<'_>,
) -> Result<()> {
    let (rows, columns) = (grid.rows(), grid.columns());
    let Some((vmin, vmax)) = grid.extent().filter(|_| rows > 0 && columns > 0) else {
        return axes::no_data(area, title);
    };
    let bar_ticks = bar_ticks(grid, (vmin, vmax));
    let right = colour_bar_space(area, &bar_ticks)?;
    let (w, _) = area.dim_in_pixel();
    // Tick texts cut to their room: a y tick to a share of the panel, an x tick to its column.
    let y_ticks = grid
        .y_ticks
        .iter()
        .map(|t| text::one_line(t, (w as f64 * Y_TICK_SHARE) as u32, TICK_PX))
        .collect::<Result<Vec<_>>>()?;
    let labels = Labels {
        title,
        x_desc: grid.x_label,
        y_desc: grid.y_label,
        y_ticks: &y_ticks,
    };
    let decor = Decor::new(area, &labels, right)?;
    let body = decor.body(area)?;
    let (xc, yc) = (axes::categories(columns), axes::categories(rows));
    let mut chart = decor
        .builder(&body)
        .build_cartesian_2d(xc, yc)
        .plot("the chart")?;
    let column_w = chart.plotting_area().dim_in_pixel().0 / columns as u32;
    let x_ticks = grid
        .x_ticks
        .iter()
        .map(|t| text::one_line(t, column_w.saturating_sub(4), TICK_PX))
        .collect::<Result<Vec<_>>>()?;
    let x_fmt = |v: &f64| tick(&x_ticks, slot(*v));
    let y_fmt = |v: &f64| tick(&y_ticks, slot(*v).and_then(|i| (rows - 1).checked_sub(i)));
    let mesh = Mesh {
        x_fmt: &x_fmt,
        y_fmt: &y_fmt,
        x_grid: false,
        y_grid: false,
    };
    axes::draw_mesh(&mut chart, &mesh)?;
    decor.draw_descs(&body, &chart)?;
    let norm = |v: f64| grid.fraction(v, (vmin, vmax));
    let text_px = cell_text_px(area, &chart, grid, columns)?;
    for r in 0..rows {
        for c in 0..columns {
            let y = (rows - 1 - r) as f64;
            draw_cell(&mut chart, (c as f64, y), grid.value(r, c), &norm, text_px)?;
        }
    }
    if let Some((r, c)) = grid.mark.filter(|(r, c)| *r < rows && *c < columns) {
        let (x, y) = (c as f64, (rows - 1 - r) as f64);
        let corners = [(x - 0.5, y + 0.5), (x + 0.5, y - 0.5)];
        chart
            .draw_series([Rectangle::new(corners, MARK.stroke_width(3))])
            .plot("the marked cell")?;
    }
    draw_colour_bar(&body, &chart, &bar_ticks, &norm, grid.value_label)
}

type Ctx<'c, DB, X, Y> = ChartContext<'c, DB, Cartesian2d<X, Y>>;

/// One cell: its colour (grey without a value) and the value as text.
fn draw_cell<DB, X, Y>(
    chart: &mut Ctx<'_, DB, X, Y>,
    (x, y): (f64, f64),
    value: Option<f64>,
    norm: &dyn Fn(f64) -> f64,
    text_px: f64,
) -> Result<()>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let bg = value.map_or(MISSING, |v| viridis(norm(v)));
    let corners = [(x - 0.5, y + 0.5), (x + 0.5, y - 0.5)];
    let cell = [
        Rectangle::new(corners, bg.filled()),
        Rectangle::new(corners, WHITE.stroke_width(1)),
    ];
    chart.draw_series(cell).plot("a heatmap cell")?;
    if let Some(v) = value {
        let style = font(text_px)
            .color(ink_on(bg))
            .pos(Pos::new(HPos::Center, VPos::Center));
        chart
            .draw_series([Text::new(fmt_value(v), (x, y), style)])
            .plot("a cell value")?;
    }
    Ok(())
}

/// The size of the cell value text: [`TICK_PX`], shrunk so the widest value fits its cell.
fn cell_text_px<DB, X, Y>(
    area: &DrawingArea<DB, Shift>,
    chart: &Ctx<'_, DB, X, Y>,
    grid: &Grid<'_>,
    columns: usize,
) -> Result<f64>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let cell_w = chart.plotting_area().dim_in_pixel().0 as f64 / columns as f64;
    let mut widest = 0u32;
    for v in grid
        .values
        .iter()
        .flatten()
        .copied()
        .flatten()
        .filter(|v| usable(*v, false))
    {
        widest = widest.max(
            area.estimate_text_size(&fmt_value(v), &TextStyle::from(font(TICK_PX)))
                .plot("a cell value")?
                .0,
        );
    }
    let fit = TICK_PX * (cell_w - 6.0) / f64::from(widest.max(1));
    Ok(fit.clamp(MIN_CELL_PX, TICK_PX))
}

/// The values labelled on the colour bar with their text: its ends and, when they differ, the
/// middle (the geometric middle on a log scale). An end that data lie beyond says so ("≥ 300").
fn bar_ticks(grid: &Grid<'_>, (vmin, vmax): (f64, f64)) -> Vec<(f64, String)> {
    if vmax <= vmin {
        return vec![(vmin, fmt_value(vmin))];
    }
    let mid = if grid.scale.log {
        (vmin * vmax).sqrt()
    } else {
        (vmin + vmax) / 2.0
    };
    let below = grid.drawable().any(|v| v < vmin);
    let above = grid.drawable().any(|v| v > vmax);
    let end = |v: f64, beyond: bool, sign: &str| match beyond {
        true => format!("{sign} {}", fmt_value(v)),
        false => fmt_value(v),
    };
    vec![
        (vmin, end(vmin, below, "≤")),
        (mid, fmt_value(mid)),
        (vmax, end(vmax, above, "≥")),
    ]
}

/// Right margin that fits the colour bar, its tick labels and the rotated value label.
fn colour_bar_space<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    ticks: &[(f64, String)],
) -> Result<u32> {
    let mut widest = 0;
    for (_, text) in ticks {
        widest = widest.max(
            area.estimate_text_size(text, &TextStyle::from(font(TICK_PX)))
                .plot("a colour bar label")?
                .0,
        );
    }
    Ok((BAR_GAP + BAR_WIDTH + BAR_LABEL_GAP) as u32 + widest + VALUE_LABEL_SPACE)
}

/// The colour bar right of the plot, from the colour map's low end (bottom) to its high end
/// (top), with its labels placed by `norm`.
fn draw_colour_bar<DB, X, Y>(
    area: &DrawingArea<DB, Shift>,
    chart: &Ctx<'_, DB, X, Y>,
    ticks: &[(f64, String)],
    norm: &dyn Fn(f64) -> f64,
    value_label: &str,
) -> Result<()>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let (bx, by) = area.get_base_pixel();
    let (x0, top, bottom) = (xr.end - bx + BAR_GAP, yr.start - by, yr.end - by);
    let steps = 64;
    let height = bottom - top;
    for k in 0..steps {
        let (y0, y1) = (
            bottom - height * k / steps,
            bottom - height * (k + 1) / steps,
        );
        let fill = viridis((f64::from(k) + 0.5) / f64::from(steps)).filled();
        area.draw(&Rectangle::new([(x0, y0), (x0 + BAR_WIDTH, y1)], fill))
            .plot("the colour bar")?;
    }
    let frame = Rectangle::new([(x0, top), (x0 + BAR_WIDTH, bottom)], BLACK.mix(0.5));
    area.draw(&frame).plot("the colour bar")?;
    let label_x = x0 + BAR_WIDTH + BAR_LABEL_GAP;
    for (v, text) in ticks {
        let y = bottom - (norm(*v) * f64::from(height)).round() as i32;
        let style = TextStyle::from(font(TICK_PX)).pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new(text.as_str(), (label_x, y), style))
            .plot("a colour bar label")?;
    }
    let (w, _) = area.dim_in_pixel();
    let room = Room {
        width: height.max(1) as u32,
        max_lines: 1,
        px: LABEL_PX,
        min_px: TICK_PX,
        bold: false,
    };
    let label = text::fit(value_label, room)?;
    let left =
        w as i32 - VALUE_LABEL_SPACE as i32 + (VALUE_LABEL_SPACE as i32 - 8 - label.height()) / 2;
    label.draw_upwards(area, (left, (top + bottom) / 2), &BLACK)
}
