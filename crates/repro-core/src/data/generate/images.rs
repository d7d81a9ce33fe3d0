//! Synthetic images shared by the CIFAR and Tiny-ImageNet generators: per-class layers of a
//! stripe texture and two shapes, composited over random backgrounds with noise (see the
//! parent module's doc for the design), all in integer arithmetic.

use rand::RngCore;

use super::draws::{below, between};

/// A class: its layer (stripes and shapes, with opacity) rendered on a canvas padded by `pad`
/// pixels on every side (so that a translated crop never leaves it), and the box of its main
/// shape in image coordinates. Samples composite the layer over a random background.
pub(super) struct ClassModel {
    size: usize,
    pad: usize,
    /// 3 × (size + 2 pad)², channel-major.
    colour: Vec<u8>,
    /// (size + 2 pad)² opacities in 0..=256.
    alpha: Vec<u16>,
    /// x0, y0, x1, y1 (inclusive) of the main shape, untranslated, image coordinates.
    main_box: [i32; 4],
}

#[derive(Clone, Copy)]
pub(super) enum ShapeKind {
    Rect,
    Disc,
    Ring,
    Triangle,
}

#[derive(Clone, Copy)]
pub(super) struct Shape {
    kind: ShapeKind,
    cx: i32,
    cy: i32,
    rx: i32,
    ry: i32,
    colour: [i32; 3],
}

impl Shape {
    pub(super) fn random(
        rng: &mut impl RngCore,
        size: i32,
        r_lo: i32,
        r_hi: i32,
        margin: i32,
    ) -> Shape {
        let kind = match below(rng, 4) {
            0 => ShapeKind::Rect,
            1 => ShapeKind::Disc,
            2 => ShapeKind::Ring,
            _ => ShapeKind::Triangle,
        };
        let rx = between(rng, r_lo, r_hi);
        let ry = match kind {
            ShapeKind::Rect => between(rng, (rx / 2).max(1), rx),
            _ => rx,
        };
        Shape {
            kind,
            cx: between(rng, margin, size - 1 - margin),
            cy: between(rng, margin, size - 1 - margin),
            rx,
            ry,
            colour: random_colour(rng),
        }
    }

    pub(super) fn contains(&self, x: i32, y: i32) -> bool {
        let dx = x - self.cx;
        let dy = y - self.cy;
        match self.kind {
            ShapeKind::Rect => dx.abs() <= self.rx && dy.abs() <= self.ry,
            ShapeKind::Disc => dx * dx + dy * dy <= self.rx * self.rx,
            ShapeKind::Ring => {
                let d2 = dx * dx + dy * dy;
                d2 <= self.rx * self.rx && 4 * d2 >= self.rx * self.rx
            }
            ShapeKind::Triangle => dy.abs() <= self.ry && 2 * dx.abs() <= dy + self.ry,
        }
    }

    pub(super) fn bbox(&self) -> [i32; 4] {
        [
            self.cx - self.rx,
            self.cy - self.ry,
            self.cx + self.rx,
            self.cy + self.ry,
        ]
    }
}

pub(super) fn random_colour(rng: &mut impl RngCore) -> [i32; 3] {
    [
        below(rng, 256) as i32,
        below(rng, 256) as i32,
        below(rng, 256) as i32,
    ]
}

impl ClassModel {
    /// Build the layer of one class. `texture` seeds the stripe pattern (CIFAR-100 shares it
    /// within a coarse class); `rng` seeds the shapes.
    pub(super) fn new(
        size: usize,
        texture: &mut impl RngCore,
        rng: &mut impl RngCore,
    ) -> ClassModel {
        let pad = size / 8;
        let side = size + 2 * pad;
        let s = size as i32;
        let p = pad as i32;
        let n = side as i32;

        // Stripes: orientation, period, phase, colour, opacity, region.
        let (fx, fy) = [(1, 0), (0, 1), (1, 1), (1, -1)][below(texture, 4) as usize];
        let period = between(texture, 4, 10) * s / 32;
        let phase = between(texture, 0, period - 1);
        let stripe_colour = random_colour(texture);
        let stripe_alpha = between(texture, 96, 176) as u16;
        let region = below(texture, 5);
        // Two shapes inside the image, the first being the "object" (its box is reported).
        let shapes = [
            Shape::random(rng, s, s / 8, s / 4, s / 5),
            Shape::random(rng, s, s / 10, s / 6, s / 6),
        ];

        let mut colour = vec![0u8; 3 * side * side];
        let mut alpha = vec![0u16; side * side];
        for cy in 0..n {
            for cx in 0..n {
                let (x, y) = (cx - p, cy - p);
                let i = cy as usize * side + cx as usize;
                let mut rgb = None;
                for shape in &shapes {
                    if shape.contains(x, y) {
                        rgb = Some((shape.colour, 256));
                        break;
                    }
                }
                if rgb.is_none() {
                    let in_region = match region {
                        0 => true,
                        1 => x < s / 2,
                        2 => x >= s / 2,
                        3 => y < s / 2,
                        _ => y >= s / 2,
                    };
                    if in_region && (fx * x + fy * y + phase).rem_euclid(period) < period / 2 {
                        rgb = Some((stripe_colour, stripe_alpha));
                    }
                }
                if let Some((rgb, a)) = rgb {
                    alpha[i] = a;
                    for c in 0..3 {
                        colour[c * side * side + i] = rgb[c] as u8;
                    }
                }
            }
        }
        ClassModel {
            size,
            pad,
            colour,
            alpha,
            main_box: shapes[0].bbox(),
        }
    }

    /// Draw one sample into `out` (3 × size², channel-major) and return the main shape's box
    /// (x0, y0, x1, y1, inclusive, clipped to the image).
    pub(super) fn sample(&self, rng: &mut impl RngCore, noise: u32, out: &mut [u8]) -> [u32; 4] {
        let size = self.size;
        let side = size + 2 * self.pad;
        let s = size as i32;
        let p = self.pad as i32;
        // Nuisance: a random gradient background, translation, brightness, colour cast.
        let c0 = [
            between(rng, 64, 192),
            between(rng, 64, 192),
            between(rng, 64, 192),
        ];
        let c1 = [
            between(rng, 64, 192),
            between(rng, 64, 192),
            between(rng, 64, 192),
        ];
        let direction = below(rng, 4);
        let dx = between(rng, -p, p);
        let dy = between(rng, -p, p);
        let brightness = between(rng, -32, 32);
        let jitter = [
            between(rng, -16, 16),
            between(rng, -16, 16),
            between(rng, -16, 16),
        ];
        let distractor = (below(rng, 2) == 0).then(|| Shape::random(rng, s, s / 10, s / 6, 0));
        // Noise: half per pixel, half per block of (size/4)² pixels, so that it does not simply
        // average out over the image.
        let (fine, coarse) = (noise / 2, noise - noise / 2);
        let cell = size / 4;
        let blocks = size.div_ceil(cell);
        let mut block_noise = vec![0i32; 3 * blocks * blocks];
        for v in &mut block_noise {
            *v = below(rng, 2 * coarse + 1) as i32 - coarse as i32;
        }
        for c in 0..3 {
            let plane = &self.colour[c * side * side..(c + 1) * side * side];
            let shift = brightness + jitter[c];
            for y in 0..s {
                let row = (y + p + dy) as usize * side;
                for x in 0..s {
                    let (t, tmax) = match direction {
                        0 => (x, s - 1),
                        1 => (y, s - 1),
                        2 => (x + y, 2 * (s - 1)),
                        _ => (x + (s - 1 - y), 2 * (s - 1)),
                    };
                    let background = c0[c] + (c1[c] - c0[c]) * t / tmax;
                    let j = row + (x + p + dx) as usize;
                    let a = i32::from(self.alpha[j]);
                    let mut v = (i32::from(plane[j]) * a + background * (256 - a)) >> 8;
                    if let Some(d) = &distractor
                        && d.contains(x, y)
                    {
                        v = d.colour[c];
                    }
                    let n = below(rng, 2 * fine + 1) as i32 - fine as i32
                        + block_noise
                            [(c * blocks + y as usize / cell) * blocks + x as usize / cell];
                    out[c * size * size + y as usize * size + x as usize] =
                        (v + shift + n).clamp(0, 255) as u8;
                }
            }
        }
        let [x0, y0, x1, y1] = self.main_box;
        let clip = |v: i32| v.clamp(0, s - 1) as u32;
        [clip(x0 - dx), clip(y0 - dy), clip(x1 - dx), clip(y1 - dy)]
    }
}
