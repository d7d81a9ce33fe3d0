//! Image batches for training and evaluation (docs/paper.md#e1: per-channel normalisation;
//! 4-pixel zero-pad random crop and horizontal flip; label noise for E4).
//!
//! Randomness never comes from torch's generator: the permutation, crop offsets and flips of an
//! epoch are drawn from a ChaCha8 stream fixed by `(seed, epoch)` ([`epoch_rng`]), so the batches
//! of an epoch are bitwise the same on any machine, thread count and device, and do not depend on
//! what happened in earlier epochs. Augmentation is applied to whole uint8 batches with a row and
//! a column gather ([`apply_augmentation`]); a background thread prepares the next batches
//! (gather, augment, transfer, normalise) while the caller trains on the current one.

use anyhow::{Result, bail, ensure};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use tch::{Device, Kind, Tensor};

/// A split in memory: uint8 images [N, 3, H, W] on the CPU, int64 labels [N].
pub struct ImageSet {
    pub images: Tensor,
    pub labels: Tensor,
    pub classes: i64,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.size().first().copied().unwrap_or(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same storage, shared (no copy).
    pub fn shallow_clone(&self) -> ImageSet {
        ImageSet {
            images: self.images.shallow_clone(),
            labels: self.labels.shallow_clone(),
            classes: self.classes,
        }
    }

    /// The rows at `idx` (int64 indices).
    pub fn select(&self, idx: &Tensor) -> ImageSet {
        let idx = idx.to_device(self.images.device());
        ImageSet {
            images: self.images.index_select(0, &idx),
            labels: self
                .labels
                .index_select(0, &idx.to_device(self.labels.device())),
            classes: self.classes,
        }
    }

    /// Shapes, dtypes and label range checked, errors naming what is wrong.
    pub fn validate(&self) -> Result<()> {
        let (im, lb) = (&self.images, &self.labels);
        let shape = im.size();
        ensure!(
            shape.len() == 4 && shape[1] == 3,
            "images must be [N, 3, H, W], got shape {shape:?}"
        );
        ensure!(
            im.kind() == Kind::Uint8,
            "images must be uint8, got {:?}",
            im.kind()
        );
        ensure!(
            im.device() == Device::Cpu,
            "images must be on the CPU, got {:?}",
            im.device()
        );
        ensure!(
            lb.dim() == 1,
            "labels must be [N], got shape {:?}",
            lb.size()
        );
        ensure!(
            lb.kind() == Kind::Int64,
            "labels must be int64, got {:?}",
            lb.kind()
        );
        ensure!(
            lb.size()[0] == shape[0],
            "{} labels for {} images",
            lb.size()[0],
            shape[0]
        );
        ensure!(
            self.classes > 0,
            "classes must be > 0, got {}",
            self.classes
        );
        if !self.is_empty() {
            let (lo, hi) = (lb.min().int64_value(&[]), lb.max().int64_value(&[]));
            ensure!(
                lo >= 0 && hi < self.classes,
                "labels must lie in [0, {}), found labels in [{lo}, {hi}]",
                self.classes
            );
        }
        Ok(())
    }
}

/// Random crop after zero padding by `pad` pixels on every side, and a horizontal flip with
/// probability 1/2 when `flip` (torchvision's `RandomCrop(H, padding=pad)` then
/// `RandomHorizontalFlip()`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    pub pad: i64,
    pub flip: bool,
}

impl Augment {
    pub const CIFAR: Augment = Augment { pad: 4, flip: true };
}

/// One image's augmentation: `(dy, dx, flip)`, the crop's top-left corner in the padded image
/// (each in `0..=2·pad`) and whether the crop is then mirrored left–right.
pub type Draw = (i64, i64, bool);

/// The RNG of one epoch: ChaCha8 seeded by the run seed, on stream `epoch`.
pub fn epoch_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch as u64);
    rng
}

/// Draws for `n` images in order: `dy`, `dx` uniform in `0..=2·pad`, then a fair coin for the flip
/// (not drawn when `augment.flip` is false).
pub fn draw_augmentation<R: Rng + ?Sized>(rng: &mut R, n: usize, augment: Augment) -> Vec<Draw> {
    assert!(augment.pad >= 0, "negative padding {}", augment.pad);
    let span = 2 * augment.pad;
    (0..n)
        .map(|_| {
            let dy = rng.random_range(0..=span);
            let dx = rng.random_range(0..=span);
            let flip = augment.flip && rng.random_bool(0.5);
            (dy, dx, flip)
        })
        .collect()
}

/// What one epoch does: the order in which images are visited, and (when augmenting) the draw of
/// each visited image (`draws[k]` belongs to image `order[k]`). Both come from
/// [`epoch_rng`]`(seed, epoch)`: first the permutation (Fisher–Yates), then the draws.
pub fn epoch_plan(
    seed: u64,
    epoch: usize,
    n: usize,
    augment: Option<Augment>,
) -> (Vec<i64>, Vec<Draw>) {
    let mut rng = epoch_rng(seed, epoch);
    let mut order: Vec<i64> = (0..n as i64).collect();
    order.shuffle(&mut rng);
    let draws = match augment {
        Some(a) => draw_augmentation(&mut rng, n, a),
        None => Vec::new(),
    };
    (order, draws)
}

/// Crop (after zero padding by `pad`) and flip a batch `x` [B, C, H, W] (any dtype and device) with
/// one draw per image: `out[b, c, i, j] = padded[b, c, dy + i, dx + j']` where `j' = W−1−j` when
/// flipped, else `j`. Two whole-batch ops: the rows of every crop are picked with one
/// `index_select` (row copies), then the columns (offset and mirror) with one `gather`; the Rust
/// loop only builds index vectors (B·C·H + B·W entries), never touches pixels.
pub fn apply_augmentation(x: &Tensor, draws: &[Draw], pad: i64) -> Tensor {
    let size = x.size();
    assert_eq!(size.len(), 4, "a batch [B, C, H, W], got {size:?}");
    let (b, c, h, w) = (size[0], size[1], size[2], size[3]);
    assert_eq!(draws.len() as i64, b, "one draw per image");
    assert!(pad >= 0, "negative padding {pad}");
    let (hp, wp) = (h + 2 * pad, w + 2 * pad);
    let mut rows = Vec::with_capacity((b * c * h) as usize);
    let mut cols = Vec::with_capacity((b * w) as usize);
    for (bi, &(dy, dx, flip)) in draws.iter().enumerate() {
        assert!(
            (0..=2 * pad).contains(&dy) && (0..=2 * pad).contains(&dx),
            "offset ({dy}, {dx}) outside 0..={}",
            2 * pad
        );
        for ci in 0..c {
            let first = (bi as i64 * c + ci) * hp + dy;
            rows.extend(first..first + h);
        }
        cols.extend((0..w).map(|j| dx + if flip { w - 1 - j } else { j }));
    }
    let dev = x.device();
    // Padded rows as one [B·C·Hp, Wp] matrix: row (b, c, r) is at (b·C + c)·Hp + r.
    let padded = x
        .constant_pad_nd([pad, pad, pad, pad])
        .contiguous()
        .view([b * c * hp, wp]);
    let rows = Tensor::from_slice(&rows).to_device(dev);
    let picked = padded.index_select(0, &rows).view([b, c * h, wp]);
    let cols = Tensor::from_slice(&cols)
        .to_device(dev)
        .view([b, 1, w])
        .expand([b, c * h, w], false);
    picked.gather(2, &cols, false).view([b, c, h, w])
}

/// Per-channel normalisation: `(x/255 − mean) / std`.
#[derive(Debug, Clone)]
pub struct Normalize {
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

impl Normalize {
    /// Per-channel mean and std of a uint8 set, in [0,1] units (computed in f64, deterministic).
    ///
    /// Population std (numpy's `std`, ddof 0). Sums of pixels and of their squares are exact
    /// integers, so the result does not depend on the order of summation or on threads. A constant
    /// channel gets std 1 so that [`Normalize::apply`] stays finite.
    pub fn fit(set: &ImageSet) -> Normalize {
        const CHUNK: i64 = 1024;
        let n = set.len() as i64;
        let (mut s, mut ss) = ([0i128; 3], [0i128; 3]);
        let mut start = 0;
        while start < n {
            let len = CHUNK.min(n - start);
            let x = set
                .images
                .narrow(0, start, len)
                .to_device(Device::Cpu)
                .to_kind(Kind::Int64);
            let sum =
                Vec::<i64>::try_from(x.sum_dim_intlist(&[0i64, 2, 3][..], false, Kind::Int64))
                    .expect("sums as i64");
            let sq = Vec::<i64>::try_from((&x * &x).sum_dim_intlist(
                &[0i64, 2, 3][..],
                false,
                Kind::Int64,
            ))
            .expect("sums of squares as i64");
            for c in 0..3 {
                s[c] += sum[c] as i128;
                ss[c] += sq[c] as i128;
            }
            start += len;
        }
        let size = set.images.size();
        let count = n as i128
            * size.get(2).copied().unwrap_or(0) as i128
            * size.get(3).copied().unwrap_or(0) as i128;
        let (mut mean, mut std) = ([0.0; 3], [1.0; 3]);
        if count > 0 {
            for c in 0..3 {
                mean[c] = s[c] as f64 / count as f64 / 255.0;
                // count²·var = count·Σx² − (Σx)², exact in integers.
                let v = (count * ss[c] - s[c] * s[c]) as f64 / (count as f64 * count as f64);
                let sd = v.sqrt() / 255.0;
                std[c] = if sd > 0.0 { sd } else { 1.0 };
            }
        }
        Normalize { mean, std }
    }

    /// uint8 batch (any device) → float32 normalised batch on that device.
    pub fn apply(&self, x: &Tensor) -> Tensor {
        let dev = x.device();
        let shift: Vec<f32> = self.mean.iter().map(|m| (m * 255.0) as f32).collect();
        let scale: Vec<f32> = self
            .std
            .iter()
            .map(|s| (1.0 / (s * 255.0)) as f32)
            .collect();
        let shift = Tensor::from_slice(&shift).to_device(dev).view([1, 3, 1, 1]);
        let scale = Tensor::from_slice(&scale).to_device(dev).view([1, 3, 1, 1]);
        (x.to_kind(Kind::Float) - shift) * scale
    }
}

/// How many prepared batches may wait in the channel.
const PREFETCH: usize = 2;

/// Batches of a training set, one seeded epoch at a time.
pub struct Loader {
    set: ImageSet,
    batch: usize,
    augment: Option<Augment>,
    normalize: Normalize,
    dev: Device,
    seed: u64,
}

impl Loader {
    pub fn new(
        set: ImageSet,
        batch: usize,
        augment: Option<Augment>,
        normalize: Normalize,
        dev: Device,
        seed: u64,
    ) -> Loader {
        assert!(batch > 0, "batch size must be > 0");
        Loader {
            set,
            batch,
            augment,
            normalize,
            dev,
            seed,
        }
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.set.len().div_ceil(self.batch)
    }

    /// One epoch: a permutation and augmentation drawn from (seed, epoch) only, batches (x float32 normalised [B,3,H,W], y int64 [B]) on `dev`; the last partial batch kept (torch DataLoader drop_last=False); a background thread prepares the next batch (bounded channel).
    pub fn epoch(&self, epoch: usize) -> Batches {
        let (tx, rx) = sync_channel(PREFETCH);
        let job = EpochJob {
            set: self.set.shallow_clone(),
            batch: self.batch,
            augment: self.augment,
            normalize: self.normalize.clone(),
            dev: self.dev,
            seed: self.seed,
            epoch,
        };
        let handle = std::thread::Builder::new()
            .name(format!("loader-epoch-{epoch}"))
            .spawn(move || job.run(tx))
            .expect("spawn the loader thread");
        Batches {
            rx: Some(rx),
            handle: Some(handle),
            remaining: self.batches_per_epoch(),
        }
    }

    /// In-order, unaugmented batches for evaluation.
    pub fn eval<'a>(
        set: &'a ImageSet,
        batch: usize,
        normalize: &'a Normalize,
        dev: Device,
    ) -> impl Iterator<Item = (Tensor, Tensor)> + 'a {
        assert!(batch > 0, "batch size must be > 0");
        let n = set.len() as i64;
        (0..n).step_by(batch).map(move |start| {
            let len = (batch as i64).min(n - start);
            let x = set.images.narrow(0, start, len).to_device(dev);
            let y = set.labels.narrow(0, start, len).to_device(dev);
            (normalize.apply(&x), y)
        })
    }
}

/// What the prefetch thread owns.
struct EpochJob {
    set: ImageSet,
    batch: usize,
    augment: Option<Augment>,
    normalize: Normalize,
    dev: Device,
    seed: u64,
    epoch: usize,
}

impl EpochJob {
    fn run(self, tx: SyncSender<(Tensor, Tensor)>) {
        let (order, draws) = epoch_plan(self.seed, self.epoch, self.set.len(), self.augment);
        for (k, idx) in order.chunks(self.batch).enumerate() {
            let idx_t = Tensor::from_slice(idx);
            let mut x = self.set.images.index_select(0, &idx_t);
            let y = self.set.labels.index_select(0, &idx_t);
            if let Some(a) = self.augment {
                let start = k * self.batch;
                x = apply_augmentation(&x, &draws[start..start + idx.len()], a.pad);
            }
            let x = self.normalize.apply(&x.to_device(self.dev));
            let y = y.to_device(self.dev);
            if tx.send((x, y)).is_err() {
                return; // the consumer stopped early
            }
        }
    }
}

/// The batches of one epoch, prepared ahead by a background thread. Dropping it early stops the
/// thread; a panic in the thread is raised again in the consumer.
pub struct Batches {
    rx: Option<Receiver<(Tensor, Tensor)>>,
    handle: Option<JoinHandle<()>>,
    remaining: usize,
}

impl Iterator for Batches {
    type Item = (Tensor, Tensor);

    fn next(&mut self) -> Option<(Tensor, Tensor)> {
        let got = self.rx.as_ref()?.recv();
        match got {
            Ok(b) => {
                self.remaining = self.remaining.saturating_sub(1);
                Some(b)
            }
            Err(_) => {
                self.rx = None;
                if let Some(h) = self.handle.take()
                    && let Err(panic) = h.join()
                {
                    std::panic::resume_unwind(panic);
                }
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Batches {}

impl Drop for Batches {
    fn drop(&mut self) {
        // Closing the channel makes the thread's next send fail, and it returns.
        self.rx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Stream of the label-noise RNG, apart from the epochs' streams.
const LABEL_NOISE_STREAM: u64 = u64::MAX;

/// Labels with a fraction p replaced by uniform random labels in [0, classes) (the replaced indices and the new labels both chosen by seed; a replaced label may coincide with the true one, as in Zhang et al.); error unless 0 ≤ p ≤ 1.
///
/// Exactly `round(p·N)` labels are replaced (Zhang et al. flip a coin per label; a fixed count
/// gives the same expectation with no variance): the indices are a uniform sample without
/// replacement, the new labels are drawn after them, both from ChaCha8 seeded by `seed`.
pub fn with_label_noise(labels: &Tensor, classes: i64, p: f64, seed: u64) -> Result<Tensor> {
    if !(0.0..=1.0).contains(&p) {
        bail!("label noise must lie in [0, 1], got {p}");
    }
    ensure!(classes > 0, "classes must be > 0, got {classes}");
    ensure!(
        labels.dim() == 1,
        "labels must be [N], got shape {:?}",
        labels.size()
    );
    let mut v = Vec::<i64>::try_from(labels.to_device(Device::Cpu).to_kind(Kind::Int64))?;
    let n = v.len();
    let k = ((p * n as f64).round() as usize).min(n);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(LABEL_NOISE_STREAM);
    let chosen = rand::seq::index::sample(&mut rng, n, k);
    for i in chosen.iter() {
        v[i] = rng.random_range(0..classes);
    }
    Ok(Tensor::from_slice(&v).to_device(labels.device()))
}
