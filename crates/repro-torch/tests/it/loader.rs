//! The training loader: augmentation against a per-pixel reference, seeded determinism, epoch
//! coverage, normalisation statistics, label noise, evaluation order, validation.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use repro_torch::data::loader::{
    Augment, Draw, ImageSet, Loader, Normalize, apply_augmentation, draw_augmentation, epoch_plan,
    with_label_noise,
};
use tch::{Device, Kind, Tensor};

/// Deterministic pseudo-random bytes (no torch RNG), values in 1..=255 so that the zero padding
/// is recognisable.
fn bytes(n: usize, salt: u64) -> Vec<u8> {
    let mut s = salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 255) as u8 + 1
        })
        .collect()
}

/// A set of `n` images 3×h×w whose label is the image's index (classes = n), so a label names
/// the image it came with.
fn indexed_set(n: i64, h: i64, w: i64) -> ImageSet {
    let px = bytes((n * 3 * h * w) as usize, 7);
    ImageSet {
        images: Tensor::from_slice(&px).view([n, 3, h, w]),
        labels: Tensor::arange(n, (Kind::Int64, Device::Cpu)),
        classes: n,
    }
}

/// Per-pixel reference of crop-after-zero-pad then flip, on plain bytes.
fn reference_augment(x: &Tensor, draws: &[Draw], pad: i64) -> Tensor {
    let s = x.size();
    let (b, c, h, w) = (s[0], s[1], s[2], s[3]);
    let src = Vec::<u8>::try_from(x.contiguous().view([-1])).unwrap();
    let mut out = vec![0u8; src.len()];
    for bi in 0..b {
        let (dy, dx, flip) = draws[bi as usize];
        for ci in 0..c {
            for i in 0..h {
                for j in 0..w {
                    let jj = if flip { w - 1 - j } else { j };
                    // Coordinates in the original image of padded pixel (dy + i, dx + jj).
                    let (r, q) = (dy + i - pad, dx + jj - pad);
                    let v = if (0..h).contains(&r) && (0..w).contains(&q) {
                        src[(((bi * c + ci) * h + r) * w + q) as usize]
                    } else {
                        0
                    };
                    out[(((bi * c + ci) * h + i) * w + j) as usize] = v;
                }
            }
        }
    }
    Tensor::from_slice(&out).view([b, c, h, w])
}

#[test]
fn augmentation_matches_a_per_pixel_reference_including_borders() {
    let set = indexed_set(40, 6, 9); // not square: rows and columns cannot be swapped unnoticed
    for (pad, flip) in [(4, true), (2, false), (0, true)] {
        let aug = Augment { pad, flip };
        let mut rng = ChaCha8Rng::seed_from_u64(pad as u64);
        let mut draws = draw_augmentation(&mut rng, 36, aug);
        // Plus the extremes: both corners, identity, identity flipped.
        let s = 2 * pad;
        draws.extend([
            (0, 0, false),
            (s, s, flip),
            (pad, pad, false),
            (pad, pad, flip),
        ]);
        let got = apply_augmentation(&set.images, &draws, pad);
        assert_eq!(got.kind(), Kind::Uint8);
        let want = reference_augment(&set.images, &draws, pad);
        assert!(got.equal(&want), "pad {pad} flip {flip}");
        // The identity draws give the image itself, or mirrored.
        assert!(got.get(38).equal(&set.images.get(38)));
        let last = if flip {
            set.images.get(39).flip([2])
        } else {
            set.images.get(39)
        };
        assert!(got.get(39).equal(&last));
        if pad > 0 {
            // Corner (0, 0): the top `pad` rows and left `pad` columns are zero padding, the rest
            // (from 1..=255 data) is not.
            let corner = got.get(36);
            assert_eq!(corner.narrow(1, 0, pad).max().int64_value(&[]), 0);
            assert_eq!(corner.narrow(2, 0, pad).max().int64_value(&[]), 0);
            assert!(
                corner
                    .narrow(1, pad, 6 - pad)
                    .narrow(2, pad, 9 - pad)
                    .min()
                    .int64_value(&[])
                    > 0
            );
        }
    }
}

#[test]
fn draws_cover_the_offsets_and_flips() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let draws = draw_augmentation(&mut rng, 4000, Augment::CIFAR);
    for k in 0..=8 {
        assert!(draws.iter().any(|d| d.0 == k) && draws.iter().any(|d| d.1 == k));
    }
    assert!(
        draws
            .iter()
            .all(|d| (0..=8).contains(&d.0) && (0..=8).contains(&d.1))
    );
    let flips = draws.iter().filter(|d| d.2).count();
    assert!((1800..2200).contains(&flips), "{flips} flips of 4000");
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let no_flip = draw_augmentation(
        &mut rng,
        500,
        Augment {
            pad: 4,
            flip: false,
        },
    );
    assert!(no_flip.iter().all(|d| !d.2));
}

#[test]
fn an_augmented_epoch_is_its_plan_applied() {
    let set = indexed_set(300, 8, 8);
    let norm = Normalize::fit(&set);
    let (seed, epoch, batch) = (11, 3, 64);
    let loader = Loader::new(
        set.shallow_clone(),
        batch,
        Some(Augment::CIFAR),
        norm.clone(),
        Device::Cpu,
        seed,
    );
    let (order, draws) = epoch_plan(seed, epoch, 300, Some(Augment::CIFAR));
    let batches: Vec<_> = loader.epoch(epoch).collect();
    assert_eq!(batches.len(), 5);
    for (k, (x, y)) in batches.iter().enumerate() {
        let lo = k * batch;
        let hi = (lo + batch).min(300);
        let idx = Tensor::from_slice(&order[lo..hi]);
        assert!(y.equal(&idx), "batch {k}: labels are the planned images");
        let raw = set.images.index_select(0, &idx);
        let want = norm.apply(&reference_augment(&raw, &draws[lo..hi], 4));
        assert_eq!(x.kind(), Kind::Float);
        assert!(x.equal(&want), "batch {k}: augmented pixels");
    }
}

#[test]
fn same_seed_and_epoch_give_bitwise_the_same_batches() {
    let set = indexed_set(150, 8, 8);
    let norm = Normalize::fit(&set);
    let mk = |seed| {
        Loader::new(
            set.shallow_clone(),
            32,
            Some(Augment::CIFAR),
            norm.clone(),
            Device::Cpu,
            seed,
        )
    };
    let run = |l: &Loader, e| l.epoch(e).collect::<Vec<_>>();
    let same = |a: &[(Tensor, Tensor)], b: &[(Tensor, Tensor)]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(p, q)| p.0.equal(&q.0) && p.1.equal(&q.1))
    };
    let (a, b) = (mk(5), mk(5));
    let a2 = run(&a, 2);
    // Unaffected by what was iterated before (epochs are not a running stream).
    let _ = run(&b, 0);
    let _ = run(&b, 1);
    assert!(same(&a2, &run(&b, 2)));
    assert!(same(&a2, &run(&a, 2)));
    assert!(!same(&a2, &run(&a, 3)), "another epoch, another order");
    assert!(!same(&a2, &run(&mk(6), 2)), "another seed, another order");
    // Same order but different crops would also differ: same plan order, check the pixels.
    let (o2, d2) = epoch_plan(5, 2, 150, Some(Augment::CIFAR));
    let (o3, d3) = epoch_plan(5, 3, 150, Some(Augment::CIFAR));
    assert_ne!(o2, o3);
    assert_ne!(d2, d3);
}

#[test]
fn an_epoch_visits_every_image_once_and_keeps_the_last_partial_batch() {
    let set = indexed_set(300, 4, 4);
    let norm = Normalize::fit(&set);
    let loader = Loader::new(set.shallow_clone(), 64, None, norm.clone(), Device::Cpu, 0);
    assert_eq!(loader.batches_per_epoch(), 5);
    let it = loader.epoch(0);
    assert_eq!(it.len(), 5);
    let batches: Vec<_> = it.collect();
    let sizes: Vec<i64> = batches.iter().map(|b| b.1.size()[0]).collect();
    assert_eq!(sizes, [64, 64, 64, 64, 44]);
    let mut seen: Vec<i64> = batches
        .iter()
        .flat_map(|b| Vec::<i64>::try_from(&b.1).unwrap())
        .collect();
    assert_ne!(seen, (0..300).collect::<Vec<_>>(), "shuffled");
    seen.sort();
    assert_eq!(seen, (0..300).collect::<Vec<_>>());
    // Unaugmented: each image exactly as stored (normalised), shape [B, 3, H, W] float32.
    for (x, y) in &batches {
        assert_eq!(x.size()[1..], [3, 4, 4]);
        assert!(x.equal(&norm.apply(&set.images.index_select(0, y))));
    }
    // Exact multiple: no empty batch at the end.
    let loader = Loader::new(
        set.select(&Tensor::arange(256, (Kind::Int64, Device::Cpu))),
        64,
        None,
        norm,
        Device::Cpu,
        0,
    );
    assert_eq!(loader.epoch(1).count(), 4);
}

#[test]
fn an_epoch_dropped_early_stops_its_thread() {
    let set = indexed_set(2000, 8, 8);
    let loader = Loader::new(
        set.shallow_clone(),
        10,
        Some(Augment::CIFAR),
        Normalize::fit(&set),
        Device::Cpu,
        0,
    );
    for e in 0..20 {
        let first = loader.epoch(e).next().unwrap();
        assert_eq!(first.0.size(), [10, 3, 8, 8]);
    }
}

#[test]
fn normalize_fit_matches_a_direct_computation_and_apply_standardises() {
    let (n, h, w) = (70i64, 5i64, 7i64);
    let px = bytes((n * 3 * h * w) as usize, 3);
    // Make the channels differ: channel 1 halved, channel 2 squashed into 100..=150.
    let px: Vec<u8> = px
        .iter()
        .enumerate()
        .map(|(i, &v)| match (i as i64 / (h * w)) % 3 {
            0 => v,
            1 => v / 2,
            _ => 100 + v % 51,
        })
        .collect();
    let set = ImageSet {
        images: Tensor::from_slice(&px).view([n, 3, h, w]),
        labels: Tensor::zeros([n], (Kind::Int64, Device::Cpu)),
        classes: 1,
    };
    let fit = Normalize::fit(&set);
    for c in 0..3i64 {
        let vals: Vec<f64> = px
            .iter()
            .enumerate()
            .filter(|(i, _)| (*i as i64 / (h * w)) % 3 == c)
            .map(|(_, &v)| v as f64 / 255.0)
            .collect();
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        let sd = (vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / vals.len() as f64).sqrt();
        let c = c as usize;
        assert!(
            (fit.mean[c] - m).abs() < 1e-12,
            "mean {c}: {} vs {m}",
            fit.mean[c]
        );
        assert!(
            (fit.std[c] - sd).abs() < 1e-12,
            "std {c}: {} vs {sd}",
            fit.std[c]
        );
    }
    // Hand case: half 0, half 255 → mean 0.5, std 0.5.
    let half = ImageSet {
        images: Tensor::cat(
            &[
                Tensor::zeros([2, 3, 2, 2], (Kind::Uint8, Device::Cpu)),
                Tensor::full([2, 3, 2, 2], 255, (Kind::Uint8, Device::Cpu)),
            ],
            0,
        ),
        labels: Tensor::zeros([4], (Kind::Int64, Device::Cpu)),
        classes: 1,
    };
    let f = Normalize::fit(&half);
    assert_eq!((f.mean, f.std), ([0.5; 3], [0.5; 3]));

    let x = fit.apply(&set.images);
    assert_eq!(x.kind(), Kind::Float);
    assert_eq!(x.size(), [n, 3, h, w]);
    let xd = x.to_kind(Kind::Double);
    let mean = Vec::<f64>::try_from(xd.mean_dim(&[0i64, 2, 3][..], false, Kind::Double)).unwrap();
    let std = Vec::<f64>::try_from(xd.std_dim(&[0i64, 2, 3][..], false, false)).unwrap();
    for c in 0..3 {
        assert!(mean[c].abs() < 1e-5, "channel {c} mean {}", mean[c]);
        assert!((std[c] - 1.0).abs() < 1e-5, "channel {c} std {}", std[c]);
    }
}

#[test]
fn label_noise_replaces_a_fraction_p_by_seed() {
    let n = 20_000;
    let classes = 10;
    let labels = Tensor::from_slice(&(0..n).map(|i| i % classes).collect::<Vec<i64>>());
    let changed =
        |t: &Tensor| labels.ne_tensor(t).sum(Kind::Int64).int64_value(&[]) as f64 / n as f64;

    assert!(
        with_label_noise(&labels, classes, 0.0, 1)
            .unwrap()
            .equal(&labels)
    );
    for p in [0.2, 0.5, 1.0] {
        let noisy = with_label_noise(&labels, classes, p, 3).unwrap();
        assert_eq!(noisy.kind(), Kind::Int64);
        assert!(noisy.min().int64_value(&[]) >= 0 && noisy.max().int64_value(&[]) < classes);
        let expect = p * (1.0 - 1.0 / classes as f64);
        let got = changed(&noisy);
        assert!(
            (got - expect).abs() < 0.015,
            "p {p}: changed {got}, expected ≈ {expect}"
        );
        assert!(
            with_label_noise(&labels, classes, p, 3)
                .unwrap()
                .equal(&noisy),
            "deterministic"
        );
        assert!(
            !with_label_noise(&labels, classes, p, 4)
                .unwrap()
                .equal(&noisy),
            "seeded"
        );
    }
    // p = 1: every label redrawn, so the result no longer carries the original labels at all:
    // uniform over classes and independent of the original pattern.
    let all = with_label_noise(&labels, classes, 1.0, 9).unwrap();
    let counts = Vec::<i64>::try_from(all.bincount::<Tensor>(None, classes)).unwrap();
    assert!(
        counts.iter().all(|&k| (1800..2200).contains(&k)),
        "{counts:?}"
    );
    let constant = Tensor::zeros([n], (Kind::Int64, Device::Cpu));
    let redrawn = with_label_noise(&constant, classes, 1.0, 9).unwrap();
    assert!(
        redrawn.equal(&all),
        "with p = 1 the original labels do not matter"
    );

    for bad in [1.5, -0.1, f64::NAN] {
        let e = with_label_noise(&labels, classes, bad, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("label noise"), "{e}");
    }
}

#[test]
fn eval_is_in_order_and_unaugmented() {
    let set = indexed_set(130, 8, 8);
    let norm = Normalize::fit(&set);
    let batches: Vec<_> = Loader::eval(&set, 50, &norm, Device::Cpu).collect();
    let sizes: Vec<i64> = batches.iter().map(|b| b.1.size()[0]).collect();
    assert_eq!(sizes, [50, 50, 30]);
    let y = Tensor::cat(
        &batches
            .iter()
            .map(|b| b.1.shallow_clone())
            .collect::<Vec<_>>(),
        0,
    );
    assert!(y.equal(&set.labels));
    let x = Tensor::cat(
        &batches
            .iter()
            .map(|b| b.0.shallow_clone())
            .collect::<Vec<_>>(),
        0,
    );
    assert!(x.equal(&norm.apply(&set.images)));
}

#[test]
fn select_and_validate() {
    let set = indexed_set(10, 4, 4);
    assert_eq!((set.len(), set.is_empty()), (10, false));
    set.validate().unwrap();
    let sub = set.select(&Tensor::from_slice(&[7i64, 2, 2]));
    assert_eq!(sub.len(), 3);
    assert_eq!(Vec::<i64>::try_from(&sub.labels).unwrap(), [7, 2, 2]);
    assert!(sub.images.get(0).equal(&set.images.get(7)));

    let err = |s: ImageSet| s.validate().unwrap_err().to_string();
    let mut s = set.shallow_clone();
    s.images = s.images.to_kind(Kind::Float);
    assert!(err(s).contains("uint8"));
    let mut s = set.shallow_clone();
    s.images = s.images.narrow(1, 0, 1);
    assert!(err(s).contains("[N, 3, H, W]"));
    let mut s = set.shallow_clone();
    s.labels = s.labels.narrow(0, 0, 9);
    assert!(err(s).contains("9 labels for 10 images"));
    let mut s = set.shallow_clone();
    s.labels = s.labels.to_kind(Kind::Int);
    assert!(err(s).contains("int64"));
    let mut s = set.shallow_clone();
    s.classes = 5;
    assert!(err(s).contains("[0, 9]"));
}
