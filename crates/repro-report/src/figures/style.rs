//! How figures look: panel and figure sizes, the palette, font sizes and the embedded font's
//! family, and [`Plot`], which turns a plotters error into one saying what was drawn.

use anyhow::{Result, anyhow};
use plotters::prelude::*;

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
pub(super) const MAX_PIXELS: u64 = 1 << 27;

/// Font sizes in CSS pixels as they end up in the SVG. plotters writes `size / 1.24` as the SVG
/// font-size, and ab_glyph draws a slightly larger em in the PNG, so [`font`] scales by 1.24.
pub(super) const TICK_PX: f64 = 13.5;
pub(super) const LABEL_PX: f64 = 15.0;
pub(super) const PANEL_TITLE_PX: f64 = 16.0;
pub(super) const FIGURE_TITLE_PX: f64 = 19.0;

/// Text colour for secondary text (vline labels, "no data").
pub(super) const MUTED: RGBColor = RGBColor(90, 90, 90);

/// Palette colour for series (or bar) `i`.
pub(super) fn colour(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// The font family of all text. plotters writes it verbatim as the SVG font-family, so a browser
/// uses DejaVu Sans (whose metrics the layout was computed with) where it has it; the PNG and
/// plotters' text measuring use the embedded copy registered under this name.
pub(super) const FAMILY: &str = "DejaVu Sans, sans-serif";

/// The regular font at `css_px` (see [`TICK_PX`]).
pub(super) fn font(css_px: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), css_px * 1.24, FontStyle::Normal)
}

/// The bold font at `css_px`.
pub(super) fn bold(css_px: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), css_px * 1.24, FontStyle::Bold)
}

/// Turns a plotters error (not always `Send + Sync + 'static`) into anyhow, saying what was drawn.
pub(super) trait Plot<T> {
    fn plot(self, what: &str) -> Result<T>;
}

impl<T, E: std::fmt::Display> Plot<T> for std::result::Result<T, E> {
    fn plot(self, what: &str) -> Result<T> {
        self.map_err(|e| anyhow!("drawing {what}: {e}"))
    }
}
