//! The figure's one legend, in a strip below the grid of panels, so it never covers data or a
//! marked x: one entry per series label with its palette colour, in as many equal columns as
//! the widest entry allows within the figure's width; an entry too long for a row is cut with
//! "…".

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

use super::model::{Chart, Figure};
use super::style::{Plot, TICK_PX, colour};
use super::text::{self, Fitted, Room};

/// Width of an entry's sample (a short line, or a dot), the gap to its text, and the gap
/// between entries.
const SAMPLE: i32 = 24;
const SAMPLE_GAP: i32 = 6;
const ENTRY_GAP: i32 = 22;
/// Padding of the strip around its rows, and its left and right margin.
const PAD: i32 = 8;
const MARGIN: i32 = 16;

/// One legend entry: a series' label, its palette index and whether it is drawn as a line.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    label: String,
    index: usize,
    line: bool,
}

/// The entries of `fig`: each (index, label) of the series in charts with more than one
/// series, in first-seen order. A chart with one series is explained by its axis labels.
fn entries(fig: &Figure) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for panel in &fig.panels {
        let (series, line) = match &panel.chart {
            Chart::Lines { series, .. } => (series, true),
            Chart::Scatter { series, .. } => (series, false),
            Chart::Bars { .. } | Chart::Heatmap { .. } => continue,
        };
        if series.len() < 2 {
            continue;
        }
        for (index, s) in series.iter().enumerate() {
            if !out.iter().any(|e| e.index == index && e.label == s.label) {
                out.push(Entry {
                    label: s.label.clone(),
                    index,
                    line,
                });
            }
        }
    }
    out
}

/// The legend laid out for a figure `width` pixels wide: entries placed in rows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Legend {
    /// Each entry with its text and its left x and top y within the strip.
    placed: Vec<(Entry, Fitted, (i32, i32))>,
    height: u32,
}

impl Legend {
    /// Lays out the legend of `fig`; None when it has no entries.
    pub fn of(fig: &Figure, width: u32) -> Result<Option<Legend>> {
        let entries = entries(fig);
        if entries.is_empty() {
            return Ok(None);
        }
        let usable = (width as i32 - 2 * MARGIN).max(SAMPLE * 3);
        let room = Room {
            width: (usable - SAMPLE - SAMPLE_GAP).max(1) as u32,
            max_lines: 1,
            px: TICK_PX,
            min_px: TICK_PX,
            bold: false,
        };
        let mut fitted = Vec::new();
        for entry in entries {
            let text = text::fit(&entry.label, room)?;
            let width = match text.lines.first() {
                Some(line) => text::measure(line, text.px, false)?.0 as i32,
                None => 0,
            };
            fitted.push((entry, text, SAMPLE + SAMPLE_GAP + width));
        }
        // Entries in equal columns, as many as the widest entry allows, filled row by row.
        let widest = fitted.iter().map(|f| f.2).max().unwrap_or(0);
        let columns = ((usable + ENTRY_GAP) / (widest + ENTRY_GAP)).max(1) as usize;
        let column_width = widest + ENTRY_GAP;
        let mut placed = Vec::new();
        let (mut y, mut row_height) = (PAD, 0);
        for (i, (entry, text, _)) in fitted.into_iter().enumerate() {
            if i > 0 && i % columns == 0 {
                (y, row_height) = (y + row_height, 0);
            }
            let x = MARGIN + (i % columns) as i32 * column_width;
            row_height = row_height.max(text.height() + 4);
            placed.push((entry, text, (x, y)));
        }
        let height = (y + row_height + PAD) as u32;
        Ok(Some(Legend { placed, height }))
    }

    /// Height of the strip in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Draws the entries into `strip` (the area below the panels).
    pub fn draw<DB: DrawingBackend>(&self, strip: &DrawingArea<DB, Shift>) -> Result<()> {
        let (w, _) = strip.dim_in_pixel();
        let rule = PathElement::new([(MARGIN, 1), (w as i32 - MARGIN, 1)], BLACK.mix(0.15));
        strip.draw(&rule).plot("the legend's rule")?;
        for (entry, fitted, (x, y)) in &self.placed {
            let mid = y + fitted.line_height / 2;
            let c = colour(entry.index);
            if entry.line {
                let line = PathElement::new([(*x, mid), (x + SAMPLE, mid)], c.stroke_width(2));
                strip.draw(&line).plot("a legend sample")?;
            }
            strip
                .draw(&Circle::new((x + SAMPLE / 2, mid), 4, c.filled()))
                .plot("a legend sample")?;
            fitted.draw(strip, (x + SAMPLE + SAMPLE_GAP, *y), HPos::Left, &BLACK)?;
        }
        Ok(())
    }
}
