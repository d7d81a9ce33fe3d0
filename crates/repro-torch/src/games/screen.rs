//! Dopamine's Atari frame preprocessing (`dopamine/discrete_domains/atari_lib.py`,
//! `AtariPreprocessing._pool_and_resize`) on plain grayscale buffers, so it is testable without
//! ALE: the element-wise max of the last two raw frames, then `cv2.resize(..., (84, 84),
//! interpolation=cv2.INTER_AREA)`.
//!
//! [`AreaResize`] is OpenCV's INTER_AREA for a non-integer shrink (`cv::resizeArea_` with the
//! weights of `computeResizeAreaTab`, accumulated in f32 in OpenCV's order, rounded half to even
//! like `saturate_cast<uchar>`): every output pixel is the average of the source rectangle it
//! covers, border pixels weighted by the fraction of them inside. 210×160 → 84×84 shrinks by 2.5
//! rows and 1.905 columns, so OpenCV takes this general path, not its integer-factor fast path.
//! The integer-factor case is not implemented ([`AreaResize::new`] refuses it).

/// Element-wise maximum of `a` and `b`, written into `a` (dopamine pools in place into
/// `screen_buffer[0]`).
pub fn max_pool_into(a: &mut [u8], b: &[u8]) {
    assert_eq!(a.len(), b.len(), "max-pool of frames of different sizes");
    for (x, &y) in a.iter_mut().zip(b) {
        *x = (*x).max(y);
    }
}

/// One source index and its weight for one destination index.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tap {
    dst: usize,
    src: usize,
    alpha: f32,
}

/// `computeResizeAreaTab` (OpenCV 4, imgproc/src/resize.cpp).
fn area_taps(ssize: usize, dsize: usize) -> Vec<Tap> {
    let scale = 1.0 / (dsize as f64 / ssize as f64);
    let mut taps = Vec::new();
    for dx in 0..dsize {
        let fsx1 = dx as f64 * scale;
        let fsx2 = fsx1 + scale;
        let cell = scale.min(ssize as f64 - fsx1);
        let mut sx1 = fsx1.ceil() as usize;
        let sx2 = (fsx2.floor() as usize).min(ssize - 1);
        sx1 = sx1.min(sx2);
        if sx1 as f64 - fsx1 > 1e-3 {
            taps.push(Tap {
                dst: dx,
                src: sx1 - 1,
                alpha: ((sx1 as f64 - fsx1) / cell) as f32,
            });
        }
        for sx in sx1..sx2 {
            taps.push(Tap {
                dst: dx,
                src: sx,
                alpha: (1.0 / cell) as f32,
            });
        }
        if fsx2 - sx2 as f64 > 1e-3 {
            taps.push(Tap {
                dst: dx,
                src: sx2,
                alpha: ((fsx2 - sx2 as f64).min(1.0).min(cell) / cell) as f32,
            });
        }
    }
    taps
}

/// A precomputed INTER_AREA shrink of single-channel u8 images from `src_hw` to `dst_hw`.
#[derive(Debug, Clone)]
pub struct AreaResize {
    src: (usize, usize),
    dst: (usize, usize),
    xtab: Vec<Tap>,
    ytab: Vec<Tap>,
}

impl AreaResize {
    /// `src_hw` and `dst_hw` as (height, width). Panics unless it is a shrink along both axes
    /// with a non-integer factor on at least one (the only case OpenCV sends down this path).
    pub fn new(src_hw: (usize, usize), dst_hw: (usize, usize)) -> Self {
        let (sh, sw) = src_hw;
        let (dh, dw) = dst_hw;
        assert!(
            dh > 0 && dw > 0 && dh <= sh && dw <= sw,
            "INTER_AREA here only shrinks"
        );
        assert!(
            sh % dh != 0 || sw % dw != 0,
            "integer-factor INTER_AREA (OpenCV's resizeAreaFast) is not implemented"
        );
        AreaResize {
            src: src_hw,
            dst: dst_hw,
            xtab: area_taps(sw, dw),
            ytab: area_taps(sh, dh),
        }
    }

    /// Resize `src` (row-major, `src_hw`) into `dst` (row-major, `dst_hw`).
    pub fn apply(&self, src: &[u8], dst: &mut [u8]) {
        let (sh, sw) = self.src;
        let (dh, dw) = self.dst;
        assert_eq!(src.len(), sh * sw, "source frame size");
        assert_eq!(dst.len(), dh * dw, "destination frame size");
        let mut buf = vec![0f32; dw];
        let mut sum = vec![0f32; dw];
        let mut prev_dy = self.ytab[0].dst;
        for t in &self.ytab {
            let row = &src[t.src * sw..(t.src + 1) * sw];
            buf.iter_mut().for_each(|b| *b = 0.0);
            for x in &self.xtab {
                buf[x.dst] += row[x.src] as f32 * x.alpha;
            }
            if t.dst != prev_dy {
                let out = &mut dst[prev_dy * dw..(prev_dy + 1) * dw];
                for ((o, s), b) in out.iter_mut().zip(sum.iter_mut()).zip(&buf) {
                    *o = saturate_u8(*s);
                    *s = t.alpha * b;
                }
                prev_dy = t.dst;
            } else {
                for (s, b) in sum.iter_mut().zip(&buf) {
                    *s += t.alpha * b;
                }
            }
        }
        let out = &mut dst[prev_dy * dw..(prev_dy + 1) * dw];
        for (o, s) in out.iter_mut().zip(&sum) {
            *o = saturate_u8(*s);
        }
    }
}

/// `saturate_cast<uchar>(float)`: round half to even, then clamp.
fn saturate_u8(v: f32) -> u8 {
    v.round_ties_even().clamp(0.0, 255.0) as u8
}
