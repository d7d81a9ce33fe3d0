//! The PNG backend: plotters' bitmap backend with our own text rasteriser. plotters' ab_glyph
//! text drops each glyph's side bearing, so glyphs sit unevenly ("0.07 8", "learnin g"); this
//! draws DejaVu Sans glyphs at their proper positions and leaves everything else to plotters.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use anyhow::{Result, anyhow};
use plotters::prelude::BitMapBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontStyle,
};
use std::sync::OnceLock;

/// The embedded DejaVu Sans faces.
struct Faces {
    regular: FontRef<'static>,
    bold: FontRef<'static>,
}

fn faces() -> Result<&'static Faces> {
    static FACES: OnceLock<Option<Faces>> = OnceLock::new();
    let faces = FACES.get_or_init(|| {
        let regular = FontRef::try_from_slice(dejavu::sans::regular()).ok()?;
        let bold = FontRef::try_from_slice(dejavu::sans::bold()).ok()?;
        Some(Faces { regular, bold })
    });
    faces
        .as_ref()
        .ok_or_else(|| anyhow!("cannot parse the embedded DejaVu Sans"))
}

/// A [`BitMapBackend`] whose text is drawn by [`Raster::draw_text`].
pub(super) struct Raster<'a> {
    inner: BitMapBackend<'a>,
    faces: &'static Faces,
}

impl<'a> Raster<'a> {
    pub fn new(inner: BitMapBackend<'a>) -> Result<Raster<'a>> {
        Ok(Raster {
            inner,
            faces: faces()?,
        })
    }
}

type Drawn<E> = std::result::Result<(), DrawingErrorKind<E>>;

impl DrawingBackend for Raster<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Drawn<Self::ErrorType> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Drawn<Self::ErrorType> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Drawn<Self::ErrorType> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Drawn<Self::ErrorType> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Drawn<Self::ErrorType> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    /// Lays the text out with kerning, places it by its anchor (in the box plotters estimates:
    /// the sum of advances wide, size / 1.24 high), rotates it as asked, and
    /// blends each glyph's coverage in the text colour.
    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Drawn<Self::ErrorType> {
        let colour = style.color();
        if colour.alpha == 0.0 {
            return Ok(());
        }
        let font = match style.style() {
            FontStyle::Bold => &self.faces.bold,
            _ => &self.faces.regular,
        };
        let scaled = font.as_scaled(PxScale::from(style.size() as f32));
        let (carets, width) = layout(&scaled, text);
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -width / 2.0,
            HPos::Right => -width,
        };
        // plotters reserves size / 1.24 of height for text; centre the glyph box on that.
        let height = style.size() as f32 / 1.24;
        let top = match anchor.v_pos {
            VPos::Top => 0.0,
            VPos::Center => -height / 2.0,
            VPos::Bottom => -height,
        };
        let baseline = top + height / 2.0 + (scaled.ascent() + scaled.descent()) / 2.0;
        let transform = style.transform();
        for (id, x) in carets {
            let glyph = id.with_scale_and_position(scaled.scale(), point(x + dx, baseline));
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            let mut coverage = Vec::new();
            outline.draw(|gx, gy, c| coverage.push((gx, gy, c)));
            for (gx, gy, c) in coverage {
                let offset = (
                    bounds.min.x as i32 + gx as i32,
                    bounds.min.y as i32 + gy as i32,
                );
                let (tx, ty) = transform.transform(offset.0, offset.1);
                let alpha = colour.alpha * f64::from(c.clamp(0.0, 1.0));
                self.inner
                    .draw_pixel((pos.0 + tx, pos.1 + ty), BackendColor { alpha, ..colour })?;
            }
        }
        Ok(())
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Drawn<Self::ErrorType> {
        self.inner.blit_bitmap(pos, size, src)
    }
}

/// Glyph ids with their x positions along the baseline, and the total advance.
fn layout<F: Font, S: ScaleFont<F>>(
    scaled: &S,
    text: &str,
) -> (Vec<(ab_glyph::GlyphId, f32)>, f32) {
    let mut caret = 0.0;
    let mut previous = None;
    let mut carets = Vec::new();
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = previous {
            caret += scaled.kern(p, id);
        }
        carets.push((id, caret));
        caret += scaled.h_advance(id);
        previous = Some(id);
    }
    (carets, caret)
}
