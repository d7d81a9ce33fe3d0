//! Figure rendering: turns a [`Figure`] (a title over a grid of line, bar, scatter and heatmap
//! panels) into PNG or SVG bytes with plotters. This module owns the drawing only: the embedded
//! DejaVu Sans font (text looks the same on every machine), the colour-blind-friendly palette,
//! axis ranges and ticks, and deterministic output. What goes into a figure is the caller's.

mod axes;
mod bars;
mod heatmap;
mod raster;
#[cfg(test)]
mod tests;
mod xy;

use std::io::Cursor;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, bail};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

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
    Lines {
        x_label: String,
        y_label: String,
        log_x: bool,
        log_y: bool,
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

/// A figure: a title and panels laid out in `columns` columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub title: String,
    pub panels: Vec<Panel>,
    pub columns: usize,
}

/// Size of one panel in pixels (width, height); the figure is columns×rows of these plus a title strip.
pub const PANEL_SIZE: (u32, u32) = (480, 360);

/// Height in pixels of the strip above the panels that holds the figure title.
pub const TITLE_STRIP: u32 = 44;

/// The Okabe–Ito colour-blind-friendly palette, reordered so the first colours read well as thin
/// lines on white (yellow last). Series `i` (bar `i` in a bar chart) gets `PALETTE[i % 8]` in
/// every chart kind, so an arm keeps its colour across panels when callers keep the order.
pub const PALETTE: [(u8, u8, u8); 8] = [
    (0, 114, 178),   // blue
    (213, 94, 0),    // vermillion
    (0, 158, 115),   // bluish green
    (204, 121, 167), // reddish purple
    (230, 159, 0),   // orange
    (86, 180, 233),  // sky blue
    (0, 0, 0),       // black
    (240, 228, 66),  // yellow
];

/// A figure larger than this many pixels is refused rather than allocated.
const MAX_PIXELS: u64 = 1 << 27;

/// Font sizes in CSS pixels as they end up in the SVG. plotters writes `size / 1.24` as the SVG
/// font-size, and ab_glyph draws a slightly larger em in the PNG, so [`font`] scales by 1.24.
const TICK_PX: f64 = 13.5;
const LABEL_PX: f64 = 15.0;
const PANEL_TITLE_PX: f64 = 16.0;
const FIGURE_TITLE_PX: f64 = 19.0;

/// Text colour for secondary text (vline labels, "no data").
const MUTED: RGBColor = RGBColor(90, 90, 90);

/// Palette colour for series (or bar) `i`.
fn colour(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// The font family of all text. plotters writes it verbatim as the SVG font-family, so a browser
/// uses DejaVu Sans (whose metrics the layout was computed with) where it has it; the PNG and
/// plotters' text measuring use the embedded copy registered under this name.
const FAMILY: &str = "DejaVu Sans, sans-serif";

/// The regular font at `css_px` (see [`TICK_PX`]).
fn font(css_px: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), css_px * 1.24, FontStyle::Normal)
}

/// The bold font at `css_px`.
fn bold(css_px: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), css_px * 1.24, FontStyle::Bold)
}

/// Turns a plotters error (not always `Send + Sync + 'static`) into anyhow, saying what was drawn.
trait Plot<T> {
    fn plot(self, what: &str) -> Result<T>;
}

impl<T, E: std::fmt::Display> Plot<T> for std::result::Result<T, E> {
    fn plot(self, what: &str) -> Result<T> {
        self.map_err(|e| anyhow!("drawing {what}: {e}"))
    }
}

/// Registers the embedded DejaVu Sans (regular and bold) as [`FAMILY`] and as plotters'
/// default "sans-serif", once per process.
fn ensure_fonts() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<(), &'static str>> = OnceLock::new();
    let registered = REGISTERED.get_or_init(|| {
        let faces = [
            (FontStyle::Normal, dejavu::sans::regular(), "DejaVu Sans"),
            (FontStyle::Bold, dejavu::sans::bold(), "DejaVu Sans Bold"),
        ];
        for name in [FAMILY, "sans-serif"] {
            for (style, bytes, face) in faces {
                plotters::style::register_font(name, style, bytes).map_err(|_| face)?;
            }
        }
        Ok(())
    });
    registered.map_err(|face| anyhow!("cannot load the embedded font {face}"))
}

/// Columns and rows of the panel grid (at least one of each).
fn grid(fig: &Figure) -> (usize, usize) {
    let columns = fig.columns.max(1);
    (columns, fig.panels.len().div_ceil(columns).max(1))
}

/// The figure's size in pixels: the panel grid plus the title strip.
fn figure_size(fig: &Figure) -> Result<(u32, u32)> {
    let (columns, rows) = grid(fig);
    let w = columns as u64 * u64::from(PANEL_SIZE.0);
    let h = rows as u64 * u64::from(PANEL_SIZE.1) + u64::from(TITLE_STRIP);
    if w * h > MAX_PIXELS {
        bail!("figure of {columns}×{rows} panels is too large ({w}×{h} pixels)");
    }
    Ok((u32::try_from(w)?, u32::try_from(h)?))
}

/// Renders the figure as a standalone SVG document.
pub fn render_svg(fig: &Figure) -> Result<String> {
    ensure_fonts()?;
    let size = figure_size(fig)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw_figure(&root, fig)?;
        root.present().plot("the SVG document")?;
    }
    Ok(svg)
}

/// Renders the figure as PNG bytes (8-bit RGB).
pub fn render_png(fig: &Figure) -> Result<Vec<u8>> {
    ensure_fonts()?;
    let (w, h) = figure_size(fig)?;
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let backend = raster::Raster::new(BitMapBackend::with_buffer(&mut rgb, (w, h)))?;
        let root = backend.into_drawing_area();
        draw_figure(&root, fig)?;
        root.present().plot("the bitmap")?;
    }
    let img = image::RgbImage::from_raw(w, h, rgb).context("bitmap size does not match figure")?;
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .context("encoding the figure as PNG")?;
    Ok(png)
}

/// Draws the title strip and every panel into its grid cell.
fn draw_figure<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, fig: &Figure) -> Result<()> {
    root.fill(&WHITE).plot("the background")?;
    let (strip, body) = root.split_vertically(TITLE_STRIP);
    let (w, h) = strip.dim_in_pixel();
    let style = TextStyle::from(bold(FIGURE_TITLE_PX)).pos(Pos::new(HPos::Center, VPos::Center));
    let centre = (w as i32 / 2, h as i32 / 2);
    strip
        .draw(&Text::new(fig.title.as_str(), centre, style))
        .plot("the figure title")?;
    let (columns, rows) = grid(fig);
    let cells = body.split_evenly((rows, columns));
    if let (true, Some(cell)) = (fig.panels.is_empty(), cells.first()) {
        axes::no_data(cell, "")?;
    }
    for (panel, cell) in fig.panels.iter().zip(&cells) {
        draw_panel(cell, panel).with_context(|| format!("panel {:?}", panel.title))?;
    }
    Ok(())
}

/// Draws one panel with the drawing function of its chart kind.
fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel) -> Result<()> {
    let title = panel.title.as_str();
    match &panel.chart {
        Chart::Lines {
            x_label,
            y_label,
            log_x,
            log_y,
            series,
            vlines,
            zero_slot,
        } => {
            let xy = xy::Xy {
                x_label,
                y_label,
                log_x: *log_x,
                log_y: *log_y,
                series,
                vlines,
                zero_slot: *zero_slot,
                zero: None,
            };
            xy::draw_lines(area, title, &xy)
        }
        Chart::Scatter {
            x_label,
            y_label,
            log_x,
            log_y,
            series,
        } => {
            let xy = xy::Xy {
                x_label,
                y_label,
                log_x: *log_x,
                log_y: *log_y,
                series,
                vlines: &[],
                zero_slot: false,
                zero: None,
            };
            xy::draw_scatter(area, title, &xy)
        }
        Chart::Bars { y_label, bars } => bars::draw(area, title, y_label, bars),
        Chart::Heatmap {
            x_label,
            y_label,
            x_ticks,
            y_ticks,
            values,
            value_label,
            scale,
            mark,
        } => {
            let grid = heatmap::Grid {
                x_label,
                y_label,
                x_ticks,
                y_ticks,
                values,
                value_label,
                scale: *scale,
                mark: *mark,
            };
            heatmap::draw(area, title, &grid)
        }
    }
}
