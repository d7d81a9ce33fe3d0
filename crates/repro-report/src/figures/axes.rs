//! Shared axis machinery: data ranges with padding, tick positions (linear, whole steps, log
//! and categorical) and tick texts precise enough that neighbours differ, the panel's frame
//! ([`Decor`]: its title and axis labels fitted to the panel, the label areas they leave, the
//! mesh) and the "no data" panel.

use anyhow::Result;
use plotters::coord::Shift;
use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{LABEL_PX, MUTED, PANEL_TITLE_PX, Plot, TICK_PX, font};
use super::text::{self, Fitted, Room};

/// Fraction of the data span added on each side of an axis.
const PAD: f64 = 0.05;
/// Values beyond this magnitude are treated like infinities (skipped), so spans stay finite.
const HUGE: f64 = 1e300;
/// Tick count a linear axis aims for at most.
const MAX_TICKS: usize = 6;
/// Height of the x label area (tick labels plus axis label).
pub(super) const X_LABEL_AREA: u32 = 52;
/// Width in the y label area for tick marks and the gaps around tick labels.
const TICK_SPACE: u32 = 14;
/// Gap between the y label and the tick labels.
const DESC_GAP: u32 = 4;
/// A panel's margin (left, bottom, each side of the title), its top margin under the title
/// band, and the title's distance from the panel's top.
const MARGIN: u32 = 10;
const TOP: u32 = 6;
const TITLE_TOP: i32 = 8;
/// Titles and axis labels shrink to this size, in CSS pixels, before they wrap or are cut.
const MIN_PX: f64 = 13.0;

/// Whether `v` can be placed on an axis (finite, not huge, and positive on a log axis).
pub(super) fn usable(v: f64, log: bool) -> bool {
    v.is_finite() && v.abs() <= HUGE && (!log || v >= 1.0 / HUGE)
}

/// How tick labels are written: fixed decimals, or significant digits (log axes, and values
/// too large or small for decimals).
#[derive(Debug, Clone, Copy, PartialEq)]
enum TickText {
    Decimals(usize),
    Significant(usize),
}

impl TickText {
    fn write(self, v: f64) -> String {
        match self {
            TickText::Decimals(d) => format!("{:.*}", d, v + 0.0),
            TickText::Significant(s) => fmt_significant(v, s),
        }
    }

    fn finer(self) -> TickText {
        match self {
            TickText::Decimals(d) => TickText::Decimals(d + 1),
            TickText::Significant(s) => TickText::Significant(s + 1),
        }
    }
}

/// One numeric axis: its padded range, tick positions and how ticks are labelled.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
    pub ticks: Vec<f64>,
    /// The coarsest writing of tick labels in which neighbouring ticks read differently.
    text: TickText,
}

/// Digits a tick label may gain so that neighbours differ (beyond, f64 has no more to show).
const MAX_EXTRA_DIGITS: usize = 12;

impl Axis {
    /// The axis covering the usable `values` with padding; None when no value is usable.
    pub fn fit(values: impl IntoIterator<Item = f64>, log: bool) -> Option<Axis> {
        Axis::fit_steps(values, log, false)
    }

    /// [`Axis::fit`]; with `whole`, a linear axis is ticked at integers only (x counts whole
    /// epochs or iterations).
    pub fn fit_steps(
        values: impl IntoIterator<Item = f64>,
        log: bool,
        whole: bool,
    ) -> Option<Axis> {
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
        let (ticks, decimals) = match (log, whole) {
            (true, _) => log_ticks(lo, hi),
            (false, false) => linear_ticks(lo, hi, MAX_TICKS, 0.0),
            (false, true) => linear_ticks(lo, hi, MAX_TICKS, 1.0),
        };
        let big = lo.abs().max(hi.abs());
        let text = match decimals {
            Some(d) if (1e-3..1e5).contains(&big) => TickText::Decimals(d),
            _ => TickText::Significant(3),
        };
        let mut axis = Axis {
            lo,
            hi,
            log,
            ticks,
            text,
        };
        for _ in 0..MAX_EXTRA_DIGITS {
            let labels = axis.labels();
            if labels.windows(2).all(|w| w[0] != w[1]) {
                break;
            }
            axis.text = axis.text.finer();
        }
        Some(axis)
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
        self.text.write(v)
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

/// At most about `max_n` ticks at a 1-2-5 step of at least `min_step` inside [lo, hi], and
/// the decimals that step needs.
fn linear_ticks(lo: f64, hi: f64, max_n: usize, min_step: f64) -> (Vec<f64>, Option<usize>) {
    let raw = ((hi - lo) / max_n as f64).max(min_step);
    let mag = 10f64.powf(raw.log10().floor());
    let m = [1.0, 2.0, 5.0]
        .into_iter()
        .find(|m| m * mag >= raw)
        .unwrap_or(10.0);
    let step = m * mag;
    let (first, last) = ((lo / step).ceil() as i64, (hi / step).floor() as i64);
    let ticks = (first..=last).map(|k| k as f64 * step).collect();
    let decimals = (-(step.log10() + 1e-9).floor()).max(0.0) as usize;
    (ticks, Some(decimals))
}

/// Ticks of a log axis: whole decades when there are at least three (every 2nd, 5th, 10th, …
/// when there are too many), else 1-3, 1-2-5 or 1-2-3-5-7 per decade, else (less than a decade)
/// linear ticks.
fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Option<usize>) {
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
        return (kept.map(|k| 10f64.powi(k)).collect(), None);
    }
    let sets: [&[f64]; 3] = [&[1.0, 3.0], &[1.0, 2.0, 5.0], &[1.0, 2.0, 3.0, 5.0, 7.0]];
    for mantissas in sets {
        let ticks: Vec<f64> = (k0..=k1)
            .flat_map(|k| mantissas.iter().map(move |m| m * 10f64.powi(k)))
            .filter(|v| (lo..=hi).contains(v))
            .collect();
        if ticks.len() >= 3 {
            return (ticks, None);
        }
    }
    linear_ticks(lo, hi, MAX_TICKS, 0.0)
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
    fmt_significant(v, 3)
}

/// A value with about `digits` significant digits, trailing zeros dropped; exponent notation
/// outside [1e-3, 1e5).
fn fmt_significant(v: f64, digits: usize) -> String {
    let a = v.abs();
    if v == 0.0 || !v.is_finite() {
        return format!("{}", v + 0.0);
    }
    let digits = digits.max(1);
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.*e}", digits - 1);
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        return format!("{}e{exp}", trim_zeros(mantissa));
    }
    let decimals = (digits as i32 - 1 - a.log10().floor() as i32).max(0) as usize;
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

/// How to draw the axes of a chart.
pub(super) struct Mesh<'a> {
    pub x_fmt: &'a dyn Fn(&f64) -> String,
    pub y_fmt: &'a dyn Fn(&f64) -> String,
    /// Light grid lines at the x ticks (numeric x axes) and y ticks.
    pub x_grid: bool,
    pub y_grid: bool,
}

/// Draws axes, tick labels and (optionally) grid lines; the axis labels are [`Decor`]'s.
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
    mesh.label_style(font(TICK_PX))
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
    let decor = Decor::new(area, &Labels::titled(title), 0)?;
    let body = decor.body(area)?;
    let (w, h) = body.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let frame = Rectangle::new([(20, 6), (w - 20, h - 20)], BLACK.mix(0.15));
    body.draw(&frame).plot("the panel frame")?;
    let centre = TextStyle::from(font(LABEL_PX))
        .color(&MUTED)
        .pos(Pos::new(HPos::Center, VPos::Center));
    body.draw(&Text::new("no data", (w / 2, h / 2), centre))
        .plot("\"no data\"")
}

/// The texts around a chart: its title, its axis labels and its y tick labels (which set how
/// wide the room left of the plot is).
pub(super) struct Labels<'a> {
    pub title: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub y_ticks: &'a [String],
}

impl<'a> Labels<'a> {
    /// Only a title (a panel without axes).
    pub fn titled(title: &'a str) -> Labels<'a> {
        Labels {
            title,
            x_desc: "",
            y_desc: "",
            y_ticks: &[],
        }
    }
}

/// A panel's title and axis labels fitted to the panel (shrunk, wrapped onto two lines or cut,
/// never past the panel's edges), and the room they leave the plot.
pub(super) struct Decor {
    title: Fitted,
    x_desc: Fitted,
    y_desc: Fitted,
    /// Width of the room left of the plot: tick labels, tick marks and the y label.
    y_area: u32,
    /// Margin right of the plot (room for a colour bar).
    right: u32,
}

impl Decor {
    /// Fits the labels to `area`, with `right` pixels kept free right of the plot.
    pub fn new<DB: DrawingBackend>(
        area: &DrawingArea<DB, Shift>,
        labels: &Labels<'_>,
        right: u32,
    ) -> Result<Decor> {
        let (w, h) = area.dim_in_pixel();
        let title = text::fit(
            labels.title,
            Room {
                width: w.saturating_sub(2 * MARGIN),
                max_lines: 2,
                px: PANEL_TITLE_PX,
                min_px: MIN_PX,
                bold: true,
            },
        )?;
        let band = title_band(&title) as u32;
        let plot_h = h.saturating_sub(band + TOP + MARGIN + X_LABEL_AREA);
        let y_desc = text::fit(
            labels.y_desc,
            Room {
                width: plot_h.max(1),
                max_lines: 2,
                px: LABEL_PX,
                min_px: MIN_PX,
                bold: false,
            },
        )?;
        let mut widest = 0;
        for label in labels.y_ticks {
            widest = widest.max(text::measure(label, TICK_PX, false)?.0);
        }
        let y_area = widest + TICK_SPACE + y_desc.height().max(0) as u32 + DESC_GAP;
        let plot_w = w.saturating_sub(MARGIN + y_area + right);
        let x_desc = text::fit(
            labels.x_desc,
            Room {
                width: plot_w.max(1),
                max_lines: 1,
                px: LABEL_PX,
                min_px: MIN_PX,
                bold: false,
            },
        )?;
        Ok(Decor {
            title,
            x_desc,
            y_desc,
            y_area,
            right,
        })
    }

    /// Draws the title at the top of `area` and gives the area below it.
    pub fn body<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<DrawingArea<DB, Shift>> {
        let (w, _) = area.dim_in_pixel();
        self.title
            .draw(area, (w as i32 / 2, TITLE_TOP), HPos::Center, &BLACK)?;
        Ok(area.split_vertically(title_band(&self.title)).1)
    }

    /// The chart builder on the body: margins and label areas as fitted.
    pub fn builder<'a, 'b, DB: DrawingBackend>(
        &self,
        body: &'a DrawingArea<DB, Shift>,
    ) -> ChartBuilder<'a, 'b, DB> {
        let mut builder = ChartBuilder::on(body);
        builder
            .margin(MARGIN)
            .margin_top(TOP)
            .margin_right(self.right)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(self.y_area);
        builder
    }

    /// Draws the axis labels of `chart` (built on `body` by [`Decor::builder`]): the x label
    /// at the bottom under the plot's middle, the y label reading upwards at the left edge.
    pub fn draw_descs<DB, X, Y>(
        &self,
        body: &DrawingArea<DB, Shift>,
        chart: &ChartContext<'_, DB, Cartesian2d<X, Y>>,
    ) -> Result<()>
    where
        DB: DrawingBackend,
        X: Ranged,
        Y: Ranged,
    {
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let (bx, by) = body.get_base_pixel();
        let (_, h) = body.dim_in_pixel();
        let x_mid = (xr.start + xr.end) / 2 - bx;
        let bottom = h as i32 - MARGIN as i32 + 4;
        self.x_desc.draw(
            body,
            (x_mid, bottom - self.x_desc.height()),
            HPos::Center,
            &BLACK,
        )?;
        let y_mid = (yr.start + yr.end) / 2 - by;
        self.y_desc
            .draw_upwards(body, (MARGIN as i32 + 1, y_mid), &BLACK)
    }
}

/// Height of the band above a panel's plot that holds its title.
fn title_band(title: &Fitted) -> i32 {
    match title.lines.is_empty() {
        true => TITLE_TOP,
        false => TITLE_TOP + title.height() + 2,
    }
}
