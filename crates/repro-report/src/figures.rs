//! Figure rendering: turns a [`Figure`] (a title over a grid of line, bar, scatter and heatmap
//! panels, and one legend below them) into PNG or SVG bytes with plotters. This module owns the
//! drawing only: the embedded DejaVu Sans font (text looks the same on every machine), the
//! colour-blind-friendly palette, axis ranges and ticks, text measured and fitted to its room
//! (`text.rs`) so no text leaves the canvas or lies on another, and deterministic output. What
//! goes into a figure is the caller's.

mod axes;
mod bars;
mod heatmap;
#[cfg(test)]
mod layout_tests;
mod legend;
mod model;
mod raster;
mod style;
#[cfg(test)]
mod tests;
mod text;
mod xy;

use std::io::Cursor;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, bail};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

use legend::Legend;
pub use model::{Bar, Chart, ColourScale, Figure, Panel, Series};
use style::{FAMILY, FIGURE_TITLE_PX, MAX_PIXELS, Plot, TICK_PX};
pub use style::{PALETTE, PANEL_SIZE, TITLE_STRIP};
use text::{Fitted, Room};

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

/// A figure's parts placed on its canvas: the title (fitted to the width), the height of the
/// strip that holds it, the grid of panels, and the legend below them.
struct Layout {
    size: (u32, u32),
    title: Fitted,
    title_strip: u32,
    legend: Option<Legend>,
}

/// Margin left and right of the figure title.
const TITLE_MARGIN: u32 = 16;

impl Layout {
    fn of(fig: &Figure) -> Result<Layout> {
        let (columns, rows) = grid(fig);
        let w = columns as u64 * u64::from(PANEL_SIZE.0);
        let width = u32::try_from(w.min(MAX_PIXELS))?;
        let room = Room {
            width: width.saturating_sub(2 * TITLE_MARGIN),
            max_lines: 2,
            px: FIGURE_TITLE_PX,
            min_px: TICK_PX,
            bold: true,
        };
        let title = text::fit(&fig.title, room)?;
        let extra_lines = title.lines.len().saturating_sub(1) as u32;
        let title_strip = TITLE_STRIP + extra_lines * title.line_height as u32;
        let legend = Legend::of(fig, width)?;
        let h = rows as u64 * u64::from(PANEL_SIZE.1)
            + u64::from(title_strip)
            + u64::from(legend.as_ref().map_or(0, Legend::height));
        if w * h > MAX_PIXELS {
            bail!("figure of {columns}×{rows} panels is too large ({w}×{h} pixels)");
        }
        Ok(Layout {
            size: (width, u32::try_from(h)?),
            title,
            title_strip,
            legend,
        })
    }
}

/// Renders the figure as a standalone SVG document.
pub fn render_svg(fig: &Figure) -> Result<String> {
    ensure_fonts()?;
    let layout = Layout::of(fig)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, layout.size).into_drawing_area();
        draw_figure(&root, fig, &layout)?;
        root.present().plot("the SVG document")?;
    }
    Ok(svg)
}

/// Renders the figure as PNG bytes (8-bit RGB).
pub fn render_png(fig: &Figure) -> Result<Vec<u8>> {
    ensure_fonts()?;
    let layout = Layout::of(fig)?;
    let (w, h) = layout.size;
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let backend = raster::Raster::new(BitMapBackend::with_buffer(&mut rgb, (w, h)))?;
        let root = backend.into_drawing_area();
        draw_figure(&root, fig, &layout)?;
        root.present().plot("the bitmap")?;
    }
    let img = image::RgbImage::from_raw(w, h, rgb).context("bitmap size does not match figure")?;
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .context("encoding the figure as PNG")?;
    Ok(png)
}

/// Draws the title strip, every panel into its grid cell, and the legend strip.
fn draw_figure<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    fig: &Figure,
    layout: &Layout,
) -> Result<()> {
    root.fill(&WHITE).plot("the background")?;
    let (strip, body) = root.split_vertically(layout.title_strip);
    let (w, h) = strip.dim_in_pixel();
    let top = (h as i32 - layout.title.height()) / 2;
    layout
        .title
        .draw(&strip, (w as i32 / 2, top), HPos::Center, &BLACK)?;
    let (columns, rows) = grid(fig);
    let (body, legend_strip) = body.split_vertically(rows as u32 * PANEL_SIZE.1);
    let cells = body.split_evenly((rows, columns));
    if let (true, Some(cell)) = (fig.panels.is_empty(), cells.first()) {
        axes::no_data(cell, "")?;
    }
    for (panel, cell) in fig.panels.iter().zip(&cells) {
        draw_panel(cell, panel).with_context(|| format!("panel {:?}", panel.title))?;
    }
    if let Some(legend) = &layout.legend {
        legend.draw(&legend_strip)?;
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
            whole_x,
            series,
            vlines,
            zero_slot,
        } => {
            let xy = xy::Xy {
                x_label,
                y_label,
                log_x: *log_x,
                log_y: *log_y,
                whole_x: *whole_x,
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
                whole_x: false,
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
