//! Shared axis machinery: data ranges with padding, tick positions and labels (linear, log and
//! categorical), the chart frame (caption, label areas, mesh) and the "no data" panel.

use anyhow::Result;
use plotters::coord::Shift;
use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{LABEL_PX, MUTED, PANEL_TITLE_PX, Plot, TICK_PX, bold, font};

/// Fraction of the data span added on each side of an axis.
const PAD: f64 = 0.05;
/// Values beyond this magnitude are treated like infinities (skipped), so spans stay finite.
const HUGE: f64 = 1e300;
/// Tick count a linear axis aims for at most.
const MAX_TICKS: usize = 6;
/// Height of the x label area (tick labels plus axis label).
const X_LABEL_AREA: u32 = 52;
/// Width of the y label area beyond the widest tick label (axis label, tick marks, gaps).
const Y_DESC_SPACE: u32 = 40;

/// Whether `v` can be placed on an axis (finite, not huge, and positive on a log axis).
pub(super) fn usable(v: f64, log: bool) -> bool {
    v.is_finite() && v.abs() <= HUGE && (!log || v >= 1.0 / HUGE)
}

/// One numeric axis: its padded range, tick positions and how ticks are labelled.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
    pub ticks: Vec<f64>,
    /// Decimals of linear tick labels (from the tick step).
    decimals: usize,
}

impl Axis {
    /// The axis covering the usable `values` with padding; None when no value is usable.
    pub fn fit(values: impl IntoIterator<Item = f64>, log: bool) -> Option<Axis> {
        let (lo, hi) = values.into_iter().filter(|v| usable(*v, log)).fold(
            None,
            |acc: Option<(f64, f64)>, v| match acc {
                None => Some((v, v)),
                Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
            },
        )?;
        let (lo, hi) = if log {
            pad_log(lo, hi)
        } else {
            pad_linear(lo, hi)
        };
        let (ticks, decimals) = if log {
            log_ticks(lo, hi)
        } else {
            linear_ticks(lo, hi, MAX_TICKS)
        };
        Some(Axis {
            lo,
            hi,
            log,
            ticks,
            decimals,
        })
    }

    /// The plotters coordinate of a linear axis with our ticks.
    pub fn linear(&self) -> Ticked<RangedCoordf64> {
        Ticked {
            inner: (self.lo..self.hi).into(),
            ticks: self.ticks.clone(),
        }
    }

    /// The plotters coordinate of a log axis with our ticks.
    pub fn logarithmic(&self) -> Ticked<LogCoord<f64>> {
        Ticked {
            inner: (self.lo..self.hi).log_scale().into(),
            ticks: self.ticks.clone(),
        }
    }

    /// The text of the tick at `v`.
    pub fn label(&self, v: f64) -> String {
        let big = self.lo.abs().max(self.hi.abs());
        if self.log || !(1e-3..1e5).contains(&big) {
            fmt_value(v)
        } else {
            format!("{:.*}", self.decimals, v + 0.0)
        }
    }

    /// Where `v` lies along the axis, 0 at `lo` and 1 at `hi` (in log space on a log axis).
    pub fn fraction(&self, v: f64) -> f64 {
        if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    /// The texts of all ticks.
    pub fn labels(&self) -> Vec<String> {
        self.ticks.iter().map(|v| self.label(*v)).collect()
    }
}

/// Pads a linear range by [`PAD`]; a (nearly) degenerate range is widened around its value.
fn pad_linear(lo: f64, hi: f64) -> (f64, f64) {
    let span = hi - lo;
    let scale = lo.abs().max(hi.abs());
    if span <= 1e-9 * scale || span <= 0.0 {
        let d = if scale == 0.0 {
            1.0
        } else {
            (scale * 0.1).max(1.0 / HUGE)
        };
        return (lo - d, hi + d);
    }
    (lo - PAD * span, hi + PAD * span)
}

/// Pads a log range by [`PAD`] of its decades (a degenerate one by ×2 each way), kept within
/// what f64 can hold.
fn pad_log(lo: f64, hi: f64) -> (f64, f64) {
    let (l, h) = (lo.log10(), hi.log10());
    let pad = if h - l < 1e-9 { 0.3 } else { PAD * (h - l) };
    (
        10f64.powf((l - pad).max(-305.0)),
        10f64.powf((h + pad).min(305.0)),
    )
}

/// At most about `max_n` ticks at a 1-2-5 step inside [lo, hi], and the decimals that step needs.
fn linear_ticks(lo: f64, hi: f64, max_n: usize) -> (Vec<f64>, usize) {
    let raw = (hi - lo) / max_n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let m = [1.0, 2.0, 5.0]
        .into_iter()
        .find(|m| m * mag >= raw)
        .unwrap_or(10.0);
    let step = m * mag;
    let (first, last) = ((lo / step).ceil() as i64, (hi / step).floor() as i64);
    let ticks = (first..=last).map(|k| k as f64 * step).collect();
    let decimals = (-(step.log10() + 1e-9).floor()).max(0.0) as usize;
    (ticks, decimals)
}

/// Ticks of a log axis: whole decades when there are at least three (every 2nd, 5th, 10th, …
/// when there are too many), else 1-3, 1-2-5 or 1-2-3-5-7 per decade, else (less than a decade)
/// linear ticks.
fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, usize) {
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let decades: Vec<i32> = (k0..=k1)
        .filter(|k| (lo..=hi).contains(&10f64.powi(*k)))
        .collect();
    if decades.len() >= 3 {
        let steps = [1, 2, 5, 10, 20, 50, 100, 200];
        let every = steps
            .into_iter()
            .find(|e| decades.len() / *e as usize <= MAX_TICKS)
            .unwrap_or(500);
        let kept = decades.into_iter().filter(|k| k.rem_euclid(every) == 0);
        return (kept.map(|k| 10f64.powi(k)).collect(), 0);
    }
    let sets: [&[f64]; 3] = [&[1.0, 3.0], &[1.0, 2.0, 5.0], &[1.0, 2.0, 3.0, 5.0, 7.0]];
    for mantissas in sets {
        let ticks: Vec<f64> = (k0..=k1)
            .flat_map(|k| mantissas.iter().map(move |m| m * 10f64.powi(k)))
            .filter(|v| (lo..=hi).contains(v))
            .collect();
        if ticks.len() >= 3 {
            return (ticks, 0);
        }
    }
    linear_ticks(lo, hi, MAX_TICKS)
}

/// A plotters coordinate with our tick positions and no light grid lines. (plotters' own
/// `WithKeyPoints` keeps `RangedCoordf64`'s lack of a default formatter, which its mesh needs.)
pub(super) struct Ticked<R> {
    inner: R,
    ticks: Vec<f64>,
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticked<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }

    fn axis_pixel_range(&self, limit: (i32, i32)) -> Range<i32> {
        self.inner.axis_pixel_range(limit)
    }
}

/// A categorical axis for `n` items at 0, 1, …, n−1 (with half a slot of room on each side).
pub(super) fn categories(n: usize) -> Ticked<RangedCoordf64> {
    Ticked {
        inner: (-0.5..n as f64 - 0.5).into(),
        ticks: (0..n).map(|i| i as f64).collect(),
    }
}

/// A value as short text with about three significant digits ("0.123", "12.5", "1e-4", "2.5e6").
pub(super) fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || !v.is_finite() {
        return format!("{}", v + 0.0);
    }
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.2e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        return format!("{}e{exp}", trim_zeros(mantissa));
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}")).to_string()
}

/// "1.500" → "1.5", "2.000" → "2", "120" → "120".
fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Starts a chart on `area`: the panel title as caption, an x label area and a y label area wide
/// enough for `y_labels`; `right` is the margin on the right (room for a colour bar).
pub(super) fn chart_builder<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    y_labels: &[String],
    right: u32,
) -> Result<ChartBuilder<'a, 'b, DB>> {
    let tick_font = TextStyle::from(font(TICK_PX));
    let mut widest = 0;
    for label in y_labels {
        widest = widest.max(
            area.estimate_text_size(label, &tick_font)
                .plot("a tick label")?
                .0,
        );
    }
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(10)
        .margin_right(right)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(widest + Y_DESC_SPACE);
    if !title.is_empty() {
        builder.caption(title, bold(PANEL_TITLE_PX));
    }
    Ok(builder)
}

/// How to draw the axes of a chart.
pub(super) struct Mesh<'a> {
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub x_fmt: &'a dyn Fn(&f64) -> String,
    pub y_fmt: &'a dyn Fn(&f64) -> String,
    /// Light grid lines at the x ticks (numeric x axes) and y ticks.
    pub x_grid: bool,
    pub y_grid: bool,
}

/// Draws axes, tick labels, axis labels and (optionally) grid lines.
pub(super) fn draw_mesh<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    m: &Mesh<'_>,
) -> Result<()>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(m.x_desc)
        .y_desc(m.y_desc)
        .axis_desc_style(font(LABEL_PX))
        .label_style(font(TICK_PX))
        .x_label_formatter(m.x_fmt)
        .y_label_formatter(m.y_fmt)
        .bold_line_style(BLACK.mix(0.1))
        .light_line_style(TRANSPARENT)
        .axis_style(BLACK.mix(0.6));
    if !m.x_grid {
        mesh.disable_x_mesh();
    }
    if !m.y_grid {
        mesh.disable_y_mesh();
    }
    mesh.draw().plot("the axes")
}

/// An empty panel: the title, a light frame and a centred "no data".
pub(super) fn no_data<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<()> {
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let top = TextStyle::from(bold(PANEL_TITLE_PX)).pos(Pos::new(HPos::Center, VPos::Top));
    area.draw(&Text::new(title, (w / 2, 10), top))
        .plot("the panel title")?;
    let frame = Rectangle::new([(20, 40), (w - 20, h - 20)], BLACK.mix(0.15));
    area.draw(&frame).plot("the panel frame")?;
    let centre = TextStyle::from(font(LABEL_PX))
        .color(&MUTED)
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new("no data", (w / 2, h / 2 + 10), centre))
        .plot("\"no data\"")
}
