//! Text that fits the room it is given: measured with the embedded font (the same measure
//! plotters' backends use), then kept on one line, shrunk, wrapped at spaces and commas, or
//! finally cut with "…", and drawn as a block of lines (upright or rotated to read upwards).

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{Plot, bold, font};

/// Extra pixels between the lines of a wrapped block.
const LINE_GAP: i32 = 2;
/// How far a one-line text may shrink before wrapping is preferred (fraction of its size).
const ONE_LINE_SHRINK: f64 = 0.85;
/// Font size step while shrinking, in CSS pixels.
const SHRINK_STEP: f64 = 0.5;

/// The width and height in pixels of `text` at `css_px` (see [`super::style::font`]).
pub(super) fn measure(text: &str, css_px: f64, heavy: bool) -> Result<(u32, u32)> {
    let face = if heavy { bold(css_px) } else { font(css_px) };
    face.box_size(text).plot("measuring text")
}

/// What room a text has and how it may adapt to it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Room {
    /// Width in pixels each line must fit (its length along the text for rotated text).
    pub width: u32,
    pub max_lines: usize,
    /// Preferred and smallest font size, in CSS pixels.
    pub px: f64,
    pub min_px: f64,
    pub bold: bool,
}

/// A text laid out for its [`Room`]: its lines and the size they are drawn at.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Fitted {
    pub lines: Vec<String>,
    pub px: f64,
    pub bold: bool,
    /// Distance between the tops of consecutive lines, in pixels.
    pub line_height: i32,
}

impl Fitted {
    /// The height of the whole block in pixels (0 without lines).
    pub fn height(&self) -> i32 {
        self.lines.len() as i32 * self.line_height
    }

    fn style(&self) -> TextStyle<'static> {
        let face = if self.bold {
            bold(self.px)
        } else {
            font(self.px)
        };
        TextStyle::from(face)
    }

    /// Draws the block upright: line tops from `top` down, each placed at `x` by `h`.
    pub fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (x, top): (i32, i32),
        h: HPos,
        colour: &RGBColor,
    ) -> Result<()> {
        let style = self.style().color(colour).pos(Pos::new(h, VPos::Top));
        for (i, line) in self.lines.iter().enumerate() {
            let at = (x, top + i as i32 * self.line_height);
            area.draw(&Text::new(line.as_str(), at, style.clone()))
                .plot("a text")?;
        }
        Ok(())
    }

    /// Draws the block rotated to read upwards, centred on `centre_y`, line tops from `left`
    /// rightwards (a rotated line's top faces left).
    pub fn draw_upwards<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (left, centre_y): (i32, i32),
        colour: &RGBColor,
    ) -> Result<()> {
        let style = self
            .style()
            .transform(FontTransform::Rotate270)
            .color(colour)
            .pos(Pos::new(HPos::Center, VPos::Top));
        for (i, line) in self.lines.iter().enumerate() {
            let at = (left + i as i32 * self.line_height, centre_y);
            area.draw(&Text::new(line.as_str(), at, style.clone()))
                .plot("a text")?;
        }
        Ok(())
    }
}

/// Lays `text` out in `room`: one line at the preferred size, else one line somewhat smaller,
/// else wrapped onto up to `max_lines` lines shrinking down to `min_px`, else cut with "…".
pub(super) fn fit(text: &str, room: Room) -> Result<Fitted> {
    let sizes = |floor: f64| {
        let steps = ((room.px - floor.min(room.px)) / SHRINK_STEP).floor() as usize;
        (0..=steps).map(move |k| room.px - k as f64 * SHRINK_STEP)
    };
    let done = |lines: Vec<String>, px: f64| -> Result<Fitted> {
        let (_, h) = measure("Ag", px, room.bold)?;
        Ok(Fitted {
            lines,
            px,
            bold: room.bold,
            line_height: h as i32 + LINE_GAP,
        })
    };
    if text.is_empty() {
        return done(Vec::new(), room.px);
    }
    for px in sizes(room.px * ONE_LINE_SHRINK) {
        if measure(text, px, room.bold)?.0 <= room.width {
            return done(vec![text.to_string()], px);
        }
    }
    for px in sizes(room.min_px) {
        if let Some(lines) = wrap(text, room, px)?.filter(|l| l.len() <= room.max_lines) {
            return done(lines, px);
        }
    }
    done(cut(text, room, room.min_px)?, room.min_px)
}

/// The pieces a text may break after: each ends with a space, comma or slash (or the text).
fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if matches!(c, ' ' | ',' | '/') {
            let end = i + c.len_utf8();
            out.push(&text[start..end]);
            start = end;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Greedy wrapping at [`pieces`] within `room.width`; None when one piece alone is too wide.
fn wrap(text: &str, room: Room, px: f64) -> Result<Option<Vec<String>>> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for piece in pieces(text) {
        let longer = format!("{line}{piece}");
        if line.is_empty() || measure(longer.trim_end(), px, room.bold)?.0 <= room.width {
            line = longer;
        } else {
            lines.push(line.trim_end().to_string());
            line = piece.to_string();
        }
        if measure(line.trim_end(), px, room.bold)?.0 > room.width {
            return Ok(None);
        }
    }
    lines.push(line.trim_end().to_string());
    Ok(Some(lines))
}

/// `room.max_lines` lines at `px`, filled greedily (at [`pieces`] where a line holds at least
/// one, else character by character), the last ending in "…" where text is left over.
fn cut(text: &str, room: Room, px: f64) -> Result<Vec<String>> {
    let max_lines = room.max_lines.max(1);
    let fits = |s: &str| -> Result<bool> { Ok(measure(s, px, room.bold)?.0 <= room.width) };
    let mut lines = Vec::new();
    let mut rest: &str = text;
    while !rest.is_empty() && lines.len() < max_lines {
        if lines.len() + 1 == max_lines {
            lines.push(ellipsized(rest, &fits)?);
            break;
        }
        // The longest run of whole pieces that fits, else the longest run of characters.
        let mut end = 0;
        for piece in pieces(rest) {
            let next = end + piece.len();
            if !fits(rest[..next].trim_end())? {
                break;
            }
            end = next;
        }
        if end == 0 {
            end = rest
                .char_indices()
                .map(|(i, c)| i + c.len_utf8())
                .take_while(|&i| fits(&rest[..i]).unwrap_or(false))
                .last()
                .unwrap_or_else(|| rest.chars().next().map_or(rest.len(), char::len_utf8));
        }
        lines.push(rest[..end].trim_end().to_string());
        rest = rest[end..].trim_start();
    }
    Ok(lines)
}

/// `text` as it is when it fits, else its longest head that fits with "…" after it.
fn ellipsized(text: &str, fits: &dyn Fn(&str) -> Result<bool>) -> Result<String> {
    if fits(text)? {
        return Ok(text.to_string());
    }
    let mut ends: Vec<usize> = text.char_indices().map(|(i, _)| i).skip(1).collect();
    ends.reverse();
    for end in ends {
        let shown = format!("{}…", text[..end].trim_end());
        if fits(&shown)? {
            return Ok(shown);
        }
    }
    Ok("…".to_string())
}

/// `text` on one line within `width` at `px`: as it is, or cut with "…".
pub(super) fn one_line(text: &str, width: u32, px: f64) -> Result<String> {
    let room = Room {
        width,
        max_lines: 1,
        px,
        min_px: px,
        bold: false,
    };
    Ok(cut(text, room, px)?.pop().unwrap_or_default())
}
