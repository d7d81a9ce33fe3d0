//! What a figure is: a title over a grid of [`Panel`]s, each a [`Chart`] of lines, bars,
//! scatter points or a heatmap. The callers (the report's exhibits) build these; the drawing is
//! the rest of `figures`'.

/// One line or point set. `band` (same length as `points`, (x, lo, hi)) is drawn as a translucent CI band.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub band: Option<Vec<(f64, f64, f64)>>,
}

/// One bar: mean with an optional 95% CI whisker; `values` are the per-seed values, drawn as dots.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub mean: f64,
    pub ci: Option<(f64, f64)>,
    pub values: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    /// Lines over x (epochs, λ, …); `vlines` are marked x positions with a label (e.g. "Tₛ").
    /// With `zero_slot` on a log x axis, points at x = 0 (λ = 0) are drawn in a slot left of
    /// the smallest positive x, behind a dashed break, unconnected to the line, with a CI
    /// whisker for their band entry and a tick labelled "0"; without it they are skipped.
    /// With `whole_x`, x counts whole steps (epochs, iterations: `x_label` names the unit) and is
    /// ticked at integers only.
    Lines {
        x_label: String,
        y_label: String,
        log_x: bool,
        log_y: bool,
        whole_x: bool,
        series: Vec<Series>,
        vlines: Vec<(f64, String)>,
        zero_slot: bool,
    },
    /// Bars with CI whiskers and per-seed dots, one bar per arm.
    Bars { y_label: String, bars: Vec<Bar> },
    /// Points only (no connecting lines), one colour per series.
    Scatter {
        x_label: String,
        y_label: String,
        log_x: bool,
        log_y: bool,
        series: Vec<Series>,
    },
    /// A grid of values (rows = y ticks, top to bottom as given; columns = x ticks), colour-mapped
    /// (a perceptual sequential map, e.g. viridis), value printed in each cell, None cells grey.
    Heatmap {
        x_label: String,
        y_label: String,
        x_ticks: Vec<String>,
        y_ticks: Vec<String>,
        values: Vec<Vec<Option<f64>>>,
        value_label: String,
        scale: ColourScale,
        /// The (row, column) outlined, e.g. the best cell.
        mark: Option<(usize, usize)>,
    },
}

/// How a heatmap maps values to colours.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ColourScale {
    /// Colour by log10 of the value (positive values only; others are drawn as missing).
    pub log: bool,
    /// The values at the two ends of the colour map, so several panels compare; values beyond
    /// take the end colour (and the bar's end label says so, "≥ 300"). `None`: the data's range.
    pub range: Option<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub chart: Chart,
}

/// A figure: a title and panels laid out in `columns` columns. The series of its line and
/// scatter panels share one legend below the panels, so a series label should name the same
/// arm (and keep its position, hence its colour) in every panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub title: String,
    pub panels: Vec<Panel>,
    pub columns: usize,
}
