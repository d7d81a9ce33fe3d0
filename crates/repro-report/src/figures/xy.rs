//! Lines and scatter charts: numeric x and y axes (linear or log, x in whole steps where it
//! counts epochs or iterations), CI bands, marked x positions and a slot for x = 0 left of a
//! log x axis. Series are told apart by the figure's one legend (`legend.rs`), outside the plot.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axes::{self, Axis, Decor, Labels, Mesh, usable};
use super::model::Series;
use super::style::{MUTED, Plot, TICK_PX, colour, font};
use super::text;

/// Lines with at most this many points also get a marker at each point.
const MARKER_MAX: usize = 40;
/// Opacity of a CI band.
const BAND_ALPHA: f64 = 0.18;
/// The zero slot sits one grid ratio left of the smallest positive x (the ratio of the two
/// smallest), kept within these ratios so it is neither crowded nor far off.
const ZERO_RATIO: (f64, f64) = (3.0, 10.0);

/// A Lines or Scatter chart, borrowed from [`super::Chart`].
#[derive(Clone, Copy)]
pub(super) struct Xy<'a> {
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub log_x: bool,
    pub log_y: bool,
    /// x counts whole steps: integer ticks only.
    pub whole_x: bool,
    pub series: &'a [Series],
    pub vlines: &'a [(f64, String)],
    /// Whether points at x = 0 get a slot left of a log x axis (see [`super::Chart::Lines`]).
    pub zero_slot: bool,
    /// Where that slot is, once [`draw`] has placed it.
    pub zero: Option<ZeroSlot>,
}

/// The slot for x = 0 on a log x axis: drawn at `at`, separated from the positive x by a
/// dashed break at `cut`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ZeroSlot {
    pub at: f64,
    pub cut: f64,
}

/// The zero slot for these series: None when no point at x = 0 has a y that can be drawn.
fn zero_slot(series: &[Series], log_y: bool) -> Option<ZeroSlot> {
    let points = || series.iter().flat_map(|s| s.points.iter());
    if !points().any(|p| p.0 == 0.0 && usable(p.1, log_y)) {
        return None;
    }
    let xs = || points().map(|p| p.0);
    let mut positive: Vec<f64> = xs().filter(|x| usable(*x, true)).collect();
    positive.sort_by(f64::total_cmp);
    positive.dedup();
    let at = match positive[..] {
        [] => 1.0,
        [p] => p / ZERO_RATIO.1,
        [p, q, ..] => p / (q / p).clamp(ZERO_RATIO.0, ZERO_RATIO.1),
    };
    let first = positive.first().copied().unwrap_or(at * ZERO_RATIO.1);
    Some(ZeroSlot {
        at,
        cut: (at * first).sqrt(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Lines,
    Scatter,
}

/// Draws a Lines chart (bands, marked x positions, lines with markers when short).
pub(super) fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    xy: &Xy<'_>,
) -> Result<()> {
    draw(area, title, xy, Kind::Lines)
}

/// Draws a Scatter chart (points only; bands and vlines are not part of it).
pub(super) fn draw_scatter<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    xy: &Xy<'_>,
) -> Result<()> {
    draw(area, title, xy, Kind::Scatter)
}

impl Xy<'_> {
    fn point_ok(&self, (x, y): (f64, f64)) -> bool {
        usable(x, self.log_x) && usable(y, self.log_y)
    }

    /// Where x is drawn: x = 0 in the zero slot, when there is one.
    fn place(&self, x: f64) -> f64 {
        match self.zero {
            Some(z) if x == 0.0 => z.at,
            _ => x,
        }
    }

    /// Whether a placed x is the zero slot's.
    fn in_slot(&self, x: f64) -> bool {
        self.zero.is_some_and(|z| z.at == x)
    }

    /// The drawable points of `s`, in order, placed.
    fn points<'s>(&'s self, s: &'s Series) -> impl Iterator<Item = (f64, f64)> + 's {
        s.points
            .iter()
            .map(|p| (self.place(p.0), p.1))
            .filter(|p| self.point_ok(*p))
    }

    /// The drawable runs of `s`: a point that cannot be drawn breaks the line, and a point in
    /// the zero slot is a run of its own (the axis is broken between it and the rest).
    fn segments(&self, s: &Series) -> Vec<Vec<(f64, f64)>> {
        let mut runs = vec![Vec::new()];
        for p in &s.points {
            let p = (self.place(p.0), p.1);
            let ok = self.point_ok(p);
            let Some(run) = runs.last_mut() else { break };
            if ok && self.in_slot(p.0) {
                if !run.is_empty() {
                    runs.push(Vec::new());
                }
                runs.extend([vec![p], Vec::new()]);
            } else if ok {
                run.push(p);
            } else if !run.is_empty() {
                runs.push(Vec::new());
            }
        }
        runs.retain(|run| !run.is_empty());
        runs
    }

    /// The drawable band entries of `s` as (x, lo, hi) with lo ≤ hi, placed.
    fn band(&self, s: &Series) -> Vec<(f64, f64, f64)> {
        let entries = s.band.iter().flatten();
        let ok = |(x, lo, hi): (f64, f64, f64)| {
            usable(x, self.log_x) && usable(lo, self.log_y) && usable(hi, self.log_y)
        };
        entries
            .map(|&(x, a, b)| (self.place(x), a, b))
            .filter(|b| ok(*b))
            .map(|(x, a, b)| (x, a.min(b), a.max(b)))
            .collect()
    }
}

/// Fits the axes to the data and draws with the coordinate types the log flags call for.
fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    xy: &Xy<'_>,
    kind: Kind,
) -> Result<()> {
    let with_bands = kind == Kind::Lines;
    let zero = (xy.zero_slot && xy.log_x && with_bands)
        .then(|| zero_slot(xy.series, xy.log_y))
        .flatten();
    let xy = &Xy { zero, ..*xy };
    let bands = |s| if with_bands { xy.band(s) } else { Vec::new() };
    let xs = xy.series.iter().flat_map(|s| {
        let band_xs = bands(s).into_iter().map(|b| b.0);
        xy.points(s).map(|p| p.0).chain(band_xs).collect::<Vec<_>>()
    });
    let vline_xs = xy.vlines.iter().map(|v| v.0).filter(|_| with_bands);
    let ys = xy.series.iter().flat_map(|s| {
        let band_ys = bands(s).into_iter().flat_map(|b| [b.1, b.2]);
        xy.points(s).map(|p| p.1).chain(band_ys).collect::<Vec<_>>()
    });
    let y = Axis::fit(ys, xy.log_y);
    let x = Axis::fit_steps(xs.chain(vline_xs), xy.log_x, xy.whole_x);
    let (Some(mut x), Some(y)) = (x, y) else {
        return axes::no_data(area, title);
    };
    if let Some(z) = xy.zero {
        // Left of the break only the slot's own tick, labelled 0 (see `Frame::plot`).
        x.ticks.retain(|t| *t > z.cut);
        x.ticks.insert(0, z.at);
    }
    let chart = Frame {
        area,
        title,
        xy,
        kind,
        x: &x,
        y: &y,
    };
    match (xy.log_x, xy.log_y) {
        (false, false) => chart.plot(x.linear(), y.linear()),
        (false, true) => chart.plot(x.linear(), y.logarithmic()),
        (true, false) => chart.plot(x.logarithmic(), y.linear()),
        (true, true) => chart.plot(x.logarithmic(), y.logarithmic()),
    }
}

/// Everything one chart needs besides the plotters coordinate types.
struct Frame<'a, 'b, DB: DrawingBackend> {
    area: &'a DrawingArea<DB, Shift>,
    title: &'a str,
    xy: &'a Xy<'b>,
    kind: Kind,
    x: &'a Axis,
    y: &'a Axis,
}

type Ctx<'c, DB, X, Y> = ChartContext<'c, DB, Cartesian2d<X, Y>>;

impl<DB: DrawingBackend> Frame<'_, '_, DB> {
    fn plot<X, Y>(&self, xc: X, yc: Y) -> Result<()>
    where
        X: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let labels = Labels {
            title: self.title,
            x_desc: self.xy.x_label,
            y_desc: self.xy.y_label,
            y_ticks: &self.y.labels(),
        };
        let decor = Decor::new(self.area, &labels, 20)?;
        let body = decor.body(self.area)?;
        let mut chart = decor
            .builder(&body)
            .build_cartesian_2d(xc, yc)
            .plot("the chart")?;
        let x_fmt = |v: &f64| {
            if self.xy.in_slot(*v) {
                "0".to_string()
            } else {
                self.x.label(*v)
            }
        };
        let y_fmt = |v: &f64| self.y.label(*v);
        let mesh = Mesh {
            x_fmt: &x_fmt,
            y_fmt: &y_fmt,
            x_grid: true,
            y_grid: true,
        };
        axes::draw_mesh(&mut chart, &mesh)?;
        decor.draw_descs(&body, &chart)?;
        if self.kind == Kind::Lines {
            self.draw_bands(&mut chart)?;
            self.draw_vlines(&mut chart)?;
            self.draw_break(&mut chart)?;
        }
        for (i, s) in self.xy.series.iter().enumerate() {
            match self.kind {
                Kind::Lines => self.draw_line(&mut chart, i, s)?,
                Kind::Scatter => self.draw_points(&mut chart, i, s)?,
            }
        }
        Ok(())
    }

    fn draw_bands<X, Y>(&self, chart: &mut Ctx<'_, DB, X, Y>) -> Result<()>
    where
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        for (i, s) in self.xy.series.iter().enumerate() {
            let (slot, band): (Vec<_>, Vec<_>) = self
                .xy
                .band(s)
                .into_iter()
                .partition(|b| self.xy.in_slot(b.0));
            self.draw_whiskers(chart, i, &slot)?;
            if band.len() < 2 {
                continue;
            }
            let upper = band.iter().map(|b| (b.0, b.2));
            let outline: Vec<_> = upper.chain(band.iter().rev().map(|b| (b.0, b.1))).collect();
            let fill = colour(i).mix(BAND_ALPHA).filled();
            chart
                .draw_series(std::iter::once(Polygon::new(outline, fill)))
                .plot("a CI band")?;
        }
        Ok(())
    }

    /// CI whiskers with caps for band entries in the zero slot (a band needs two x).
    fn draw_whiskers<X, Y>(
        &self,
        chart: &mut Ctx<'_, DB, X, Y>,
        i: usize,
        entries: &[(f64, f64, f64)],
    ) -> Result<()>
    where
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        let style = colour(i).mix(0.7).stroke_width(2);
        for &(x, lo, hi) in entries {
            let cap =
                |y: f64| EmptyElement::at((x, y)) + PathElement::new([(-5, 0), (5, 0)], style);
            chart
                .draw_series([PathElement::new(vec![(x, lo), (x, hi)], style)])
                .plot("a CI whisker")?;
            chart
                .draw_series([cap(lo), cap(hi)])
                .plot("a CI whisker cap")?;
        }
        Ok(())
    }

    /// The dashed break between the zero slot and the positive x.
    fn draw_break<X, Y>(&self, chart: &mut Ctx<'_, DB, X, Y>) -> Result<()>
    where
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        let Some(z) = self.xy.zero else {
            return Ok(());
        };
        let line = vec![(z.cut, self.y.lo), (z.cut, self.y.hi)];
        chart
            .draw_series(DashedLineSeries::new(line, 3, 3, MUTED.stroke_width(1)))
            .plot("the axis break")?;
        Ok(())
    }

    /// Dashed vertical lines at the marked x positions, labelled at the top.
    fn draw_vlines<X, Y>(&self, chart: &mut Ctx<'_, DB, X, Y>) -> Result<()>
    where
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        let (x_axis, y_axis) = (self.x, self.y);
        for (x, label) in self.xy.vlines.iter().filter(|v| usable(v.0, x_axis.log)) {
            let line = vec![(*x, y_axis.lo), (*x, y_axis.hi)];
            let style = MUTED.stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(line, 6, 4, style))
                .plot("a marked x")?;
            let right_half = x_axis.fraction(*x) > 0.75;
            let (dx, h) = if right_half {
                (-5, HPos::Right)
            } else {
                (5, HPos::Left)
            };
            let style = font(TICK_PX).color(&MUTED).pos(Pos::new(h, VPos::Top));
            // A light backing so the label reads where a line passes under it.
            let (w, th) = text::measure(label, TICK_PX, false)?;
            let (w, th) = (w as i32, th as i32);
            let (x0, x1) = if right_half {
                (dx - w - 2, dx + 2)
            } else {
                (dx - 2, dx + w + 2)
            };
            let backing = Rectangle::new([(x0, 3), (x1, 5 + th)], WHITE.mix(0.8).filled());
            let text = EmptyElement::at((*x, y_axis.hi))
                + backing
                + Text::new(label.clone(), (dx, 4), style);
            chart
                .draw_series(std::iter::once(text))
                .plot("a marked x label")?;
        }
        Ok(())
    }

    fn draw_line<X, Y>(&self, chart: &mut Ctx<'_, DB, X, Y>, i: usize, s: &Series) -> Result<()>
    where
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        let style = colour(i).stroke_width(2);
        let runs = self.xy.segments(s);
        let lines = runs.iter().map(|run| PathElement::new(run.clone(), style));
        chart.draw_series(lines).plot("a line")?;
        // Long lines get no markers, except a point in the zero slot, which has no line.
        let all = runs.iter().map(Vec::len).sum::<usize>() <= MARKER_MAX;
        let markers = runs
            .iter()
            .flatten()
            .filter(|p| all || self.xy.in_slot(p.0))
            .map(|p| Circle::new(*p, 3, colour(i).filled()));
        chart.draw_series(markers).plot("line markers")?;
        Ok(())
    }

    fn draw_points<X, Y>(&self, chart: &mut Ctx<'_, DB, X, Y>, i: usize, s: &Series) -> Result<()>
    where
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        let fill = colour(i).filled();
        let points = self.xy.points(s).map(|p| Circle::new(p, 4, fill));
        chart.draw_series(points).plot("points")?;
        Ok(())
    }
}
