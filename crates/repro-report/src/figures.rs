//! Figure rendering: turns a [`Figure`] (a title over a grid of line, bar, scatter and heatmap
//! panels) into PNG or SVG bytes with plotters. This module owns the drawing only: the embedded
//! DejaVu Sans font (text looks the same on every machine), the colour-blind-friendly palette,
//! axis ranges and ticks, and deterministic output. What goes into a figure is the caller's.

mod axes;
mod bars;
mod heatmap;
mod model;
mod raster;
mod style;
#[cfg(test)]
mod tests;
mod xy;

use std::io::Cursor;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, bail};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub use model::{Bar, Chart, ColourScale, Figure, Panel, Series};
use style::{FAMILY, FIGURE_TITLE_PX, MAX_PIXELS, Plot, bold};
pub use style::{PALETTE, PANEL_SIZE, TITLE_STRIP};

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
