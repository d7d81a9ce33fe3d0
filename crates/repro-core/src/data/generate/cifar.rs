//! Synthetic CIFAR-10 / CIFAR-100 in the upstream "binary version" tarball layout.
//!
//! `cifar-10-binary.tar.gz`: `cifar-10-batches-bin/` with `batches.meta.txt` (the upstream class
//! names), `data_batch_1.bin` … `data_batch_5.bin` (the shuffled training records split evenly,
//! batch `b` holding records `b·N/5 .. (b+1)·N/5`), `test_batch.bin` and `readme.html`.
//!
//! `cifar-100-binary.tar.gz`: `cifar-100-binary/` with `coarse_label_names.txt`,
//! `fine_label_names.txt`, `train.bin`, `test.bin`. The 100 fine classes are grouped as
//! coarse = fine / 5; this grouping and the names (`coarse_00`…, `fine_00`…) are generated, not
//! upstream's. Fine classes of one coarse class share their stripe texture.

use super::archive::TarGz;
use super::draws::{Params, shuffled_labels, stream};
use super::images::ClassModel;
use crate::data::cifar::{
    CIFAR10_DIR, CIFAR10_META_FILE, CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES,
    CIFAR100_COARSE_CLASSES, CIFAR100_COARSE_NAMES_FILE, CIFAR100_DIR, CIFAR100_FINE_NAMES_FILE,
    CIFAR100_TEST_FILE, CIFAR100_TRAIN_FILE, IMAGE_BYTES, SIDE,
};

/// Upstream CIFAR-10 class names, in label order.
const CIFAR10_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

const README: &str = "<html><body><p>Synthetic stand-in for the CIFAR binary version, written by \
                      the repro dataset generator. Same file layout and record format as upstream; \
                      the images are generated, not photographs.</p></body></html>\n";

/// Render `labels.len()` records: label bytes from `prefix(label)`, then the sample's pixels.
fn records(
    models: &[ClassModel],
    labels: &[usize],
    generator: &str,
    split: &str,
    seed: u64,
    noise: u32,
    prefix: impl Fn(usize) -> Vec<u8>,
) -> Vec<u8> {
    let mut rng = stream(generator, split, seed, 0);
    let mut out = Vec::with_capacity(labels.len() * (IMAGE_BYTES + 2));
    let mut pixels = vec![0u8; IMAGE_BYTES];
    for &label in labels {
        models[label].sample(&mut rng, noise, &mut pixels);
        out.extend_from_slice(&prefix(label));
        out.extend_from_slice(&pixels);
    }
    out
}

fn models(generator: &str, seed: u64, classes: usize, group_size: usize) -> Vec<ClassModel> {
    (0..classes)
        .map(|c| {
            let mut texture = stream(generator, "texture", seed, (c / group_size) as u64);
            let mut shapes = stream(generator, "class", seed, c as u64);
            ClassModel::new(SIDE, &mut texture, &mut shapes)
        })
        .collect()
}

fn names_file<S: AsRef<str>>(names: &[S]) -> Vec<u8> {
    names
        .iter()
        .flat_map(|n| format!("{}\n", n.as_ref()).into_bytes())
        .collect()
}

pub(super) fn generate_cifar10(p: &Params) -> anyhow::Result<Vec<u8>> {
    const GEN: &str = "cifar10";
    let (seed, noise) = (p.get("seed"), p.get("noise") as u32);
    let classes = CIFAR10_NAMES.len();
    let models = models(GEN, seed, classes, 1);
    let prefix = |label: usize| vec![label as u8];
    let train_labels = shuffled_labels(
        &mut stream(GEN, "train-order", seed, 0),
        classes,
        p.usize("train_per_class"),
    );
    let test_labels = shuffled_labels(
        &mut stream(GEN, "test-order", seed, 0),
        classes,
        p.usize("test_per_class"),
    );
    let train = records(&models, &train_labels, GEN, "train", seed, noise, prefix);
    let test = records(&models, &test_labels, GEN, "test", seed, noise, prefix);

    let record = 1 + IMAGE_BYTES;
    let n = train_labels.len();
    let mut tar = TarGz::new();
    tar.dir(&format!("{CIFAR10_DIR}/"))?;
    tar.file(
        &format!("{CIFAR10_DIR}/{CIFAR10_META_FILE}"),
        &names_file(&CIFAR10_NAMES),
    )?;
    for (b, name) in CIFAR10_TRAIN_FILES.iter().enumerate() {
        let (lo, hi) = (b * n / 5, (b + 1) * n / 5);
        tar.file(
            &format!("{CIFAR10_DIR}/{name}"),
            &train[lo * record..hi * record],
        )?;
    }
    tar.file(&format!("{CIFAR10_DIR}/{CIFAR10_TEST_FILE}"), &test)?;
    tar.file(&format!("{CIFAR10_DIR}/readme.html"), README.as_bytes())?;
    Ok(tar.finish()?)
}

pub(super) fn generate_cifar100(p: &Params) -> anyhow::Result<Vec<u8>> {
    const GEN: &str = "cifar100";
    const FINE: usize = 100;
    let group = FINE / CIFAR100_COARSE_CLASSES;
    let (seed, noise) = (p.get("seed"), p.get("noise") as u32);
    let models = models(GEN, seed, FINE, group);
    let prefix = |label: usize| vec![(label / group) as u8, label as u8];
    let train_labels = shuffled_labels(
        &mut stream(GEN, "train-order", seed, 0),
        FINE,
        p.usize("train_per_class"),
    );
    let test_labels = shuffled_labels(
        &mut stream(GEN, "test-order", seed, 0),
        FINE,
        p.usize("test_per_class"),
    );
    let train = records(&models, &train_labels, GEN, "train", seed, noise, prefix);
    let test = records(&models, &test_labels, GEN, "test", seed, noise, prefix);

    let coarse: Vec<String> = (0..CIFAR100_COARSE_CLASSES)
        .map(|c| format!("coarse_{c:02}"))
        .collect();
    let fine: Vec<String> = (0..FINE).map(|c| format!("fine_{c:02}")).collect();
    let mut tar = TarGz::new();
    tar.dir(&format!("{CIFAR100_DIR}/"))?;
    tar.file(
        &format!("{CIFAR100_DIR}/{CIFAR100_COARSE_NAMES_FILE}"),
        &names_file(&coarse),
    )?;
    tar.file(
        &format!("{CIFAR100_DIR}/{CIFAR100_FINE_NAMES_FILE}"),
        &names_file(&fine),
    )?;
    tar.file(&format!("{CIFAR100_DIR}/{CIFAR100_TRAIN_FILE}"), &train)?;
    tar.file(&format!("{CIFAR100_DIR}/{CIFAR100_TEST_FILE}"), &test)?;
    Ok(tar.finish()?)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::{Map, Value, json};

    use super::super::generate;
    use crate::data::cifar::{CifarSplit, CifarVariant, read_cifar};

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    /// Extract a `.tar.gz` with the `tar` crate (stand-in for the project's extractor).
    fn extract(archive: &Path, to: &Path) -> Vec<String> {
        std::fs::create_dir_all(to).unwrap();
        let file = std::fs::File::open(archive).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut names = Vec::new();
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.mtime().unwrap(), 0);
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
            let mode = if header.entry_type().is_dir() {
                0o755
            } else {
                0o644
            };
            assert_eq!(header.mode().unwrap(), mode);
            names.push(entry.path().unwrap().to_string_lossy().into_owned());
            entry.unpack_in(to).unwrap();
        }
        names
    }

    fn generate_and_read(
        generator: &str,
        params: Value,
        variant: CifarVariant,
    ) -> (CifarSplit, CifarSplit) {
        let dir = tempfile::tempdir().unwrap();
        let paths = generate(generator, &map(params), dir.path()).unwrap();
        let root = dir.path().join("x");
        extract(&paths[0], &root);
        (
            read_cifar(&root, variant, true).unwrap(),
            read_cifar(&root, variant, false).unwrap(),
        )
    }

    fn class_counts(split: &CifarSplit) -> Vec<usize> {
        let mut counts = vec![0; split.classes];
        for &l in &split.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// Nearest-class-mean accuracy on raw pixels: a learnability proxy that needs no torch.
    fn ncm_accuracy(train: &CifarSplit, test: &CifarSplit) -> f64 {
        let d = super::IMAGE_BYTES;
        let mut sums = vec![0u64; train.classes * d];
        let counts = class_counts(train);
        for i in 0..train.len {
            let l = usize::from(train.labels[i]);
            for (s, &p) in sums[l * d..(l + 1) * d]
                .iter_mut()
                .zip(train.image(i).unwrap())
            {
                *s += u64::from(p);
            }
        }
        let means: Vec<f64> = sums
            .iter()
            .enumerate()
            .map(|(j, &s)| s as f64 / counts[j / d].max(1) as f64)
            .collect();
        let mut correct = 0;
        for i in 0..test.len {
            let img = test.image(i).unwrap();
            let best = (0..train.classes)
                .map(|c| {
                    let dist: f64 = means[c * d..(c + 1) * d]
                        .iter()
                        .zip(img)
                        .map(|(m, &p)| (m - f64::from(p)).powi(2))
                        .sum();
                    (dist, c)
                })
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .unwrap()
                .1;
            correct += usize::from(best == usize::from(test.labels[i]));
        }
        correct as f64 / test.len as f64
    }

    // Locks the output format: must change exactly when GENERATOR_VERSION is bumped.
    const CIFAR10_SMALL_SHA256: &str =
        "1e98ca89d29ed4c38f7d3e76ae7a0fcd3ffe6319a03a2ac0d931cf2ef01213d7";

    #[test]
    fn cifar10_is_deterministic_and_stable() {
        let params = map(json!({"train_per_class": 5, "test_per_class": 2, "seed": 1}));
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let pa = generate("cifar10", &params, a.path()).unwrap();
        let pb = generate("cifar10", &params, b.path()).unwrap();
        assert_eq!(pa, [a.path().join("cifar-10-binary.tar.gz")]);
        let bytes = std::fs::read(&pa[0]).unwrap();
        assert_eq!(bytes, std::fs::read(&pb[0]).unwrap());
        assert_eq!(
            crate::store::hash::sha256_bytes(&bytes),
            CIFAR10_SMALL_SHA256
        );
        let c = tempfile::tempdir().unwrap();
        let other = map(json!({"train_per_class": 5, "test_per_class": 2, "seed": 2}));
        let pc = generate("cifar10", &other, c.path()).unwrap();
        assert_ne!(bytes, std::fs::read(&pc[0]).unwrap());
    }

    #[test]
    fn cifar10_layout_and_contents() {
        let dir = tempfile::tempdir().unwrap();
        let params = map(json!({"train_per_class": 7, "test_per_class": 3}));
        let paths = generate("cifar10", &params, dir.path()).unwrap();
        let root = dir.path().join("x");
        let names = extract(&paths[0], &root);
        assert_eq!(
            names,
            [
                "cifar-10-batches-bin/",
                "cifar-10-batches-bin/batches.meta.txt",
                "cifar-10-batches-bin/data_batch_1.bin",
                "cifar-10-batches-bin/data_batch_2.bin",
                "cifar-10-batches-bin/data_batch_3.bin",
                "cifar-10-batches-bin/data_batch_4.bin",
                "cifar-10-batches-bin/data_batch_5.bin",
                "cifar-10-batches-bin/test_batch.bin",
                "cifar-10-batches-bin/readme.html",
            ]
        );
        let meta =
            std::fs::read_to_string(root.join("cifar-10-batches-bin/batches.meta.txt")).unwrap();
        assert_eq!(meta.lines().collect::<Vec<_>>(), super::CIFAR10_NAMES);
        // 70 train records over 5 batches: 14 each.
        for b in 1..=5 {
            let len =
                std::fs::metadata(root.join(format!("cifar-10-batches-bin/data_batch_{b}.bin")))
                    .unwrap()
                    .len();
            assert_eq!(len, 14 * 3073);
        }
        let train = read_cifar(&root, CifarVariant::Cifar10, true).unwrap();
        let test = read_cifar(&root, CifarVariant::Cifar10, false).unwrap();
        assert_eq!((train.len, test.len, train.classes), (70, 30, 10));
        assert_eq!(class_counts(&train), [7; 10]);
        assert_eq!(class_counts(&test), [3; 10]);
        assert!(train.labels.iter().all(|&l| l < 10));
        // Shuffled, not sorted by class.
        assert!(train.labels.windows(2).any(|w| w[0] > w[1]));
        // Images differ from each other, also within a class.
        let first = train.image(0).unwrap();
        assert!((1..train.len).all(|i| train.image(i).unwrap() != first));
        let distinct: std::collections::BTreeSet<u8> = first.iter().copied().collect();
        assert!(
            distinct.len() > 32,
            "image has little variety: {} values",
            distinct.len()
        );
    }

    #[test]
    fn cifar100_layout_and_label_relation() {
        let dir = tempfile::tempdir().unwrap();
        let params = map(json!({"train_per_class": 2, "test_per_class": 1, "seed": 5}));
        let paths = generate("cifar100", &params, dir.path()).unwrap();
        assert_eq!(paths, [dir.path().join("cifar-100-binary.tar.gz")]);
        let root = dir.path().join("x");
        let names = extract(&paths[0], &root);
        assert_eq!(
            names,
            [
                "cifar-100-binary/",
                "cifar-100-binary/coarse_label_names.txt",
                "cifar-100-binary/fine_label_names.txt",
                "cifar-100-binary/train.bin",
                "cifar-100-binary/test.bin",
            ]
        );
        let fine =
            std::fs::read_to_string(root.join("cifar-100-binary/fine_label_names.txt")).unwrap();
        let coarse =
            std::fs::read_to_string(root.join("cifar-100-binary/coarse_label_names.txt")).unwrap();
        assert_eq!((fine.lines().count(), coarse.lines().count()), (100, 20));
        let raw = std::fs::read(root.join("cifar-100-binary/train.bin")).unwrap();
        assert_eq!(raw.len(), 200 * 3074);
        for rec in raw.chunks_exact(3074) {
            assert_eq!(rec[0], rec[1] / 5, "coarse must be fine / 5");
        }
        let train = read_cifar(&root, CifarVariant::Cifar100, true).unwrap();
        let test = read_cifar(&root, CifarVariant::Cifar100, false).unwrap();
        assert_eq!((train.len, test.len, train.classes), (200, 100, 100));
        assert_eq!(class_counts(&train), [2; 100]);
        assert_eq!(class_counts(&test), [1; 100]);
        let fine_labels: Vec<u8> = raw.chunks_exact(3074).map(|r| r[1]).collect();
        assert_eq!(train.labels, fine_labels);
    }

    /// Tuning aid: `cargo test sweep -- --ignored --nocapture` prints the nearest-class-mean
    /// accuracy over noise levels.
    #[test]
    #[ignore]
    fn sweep() {
        for noise in [0, 24, 48, 96, 160, 255] {
            let (train, test) = generate_and_read(
                "cifar10",
                json!({"train_per_class": 100, "test_per_class": 50, "noise": noise}),
                CifarVariant::Cifar10,
            );
            eprintln!(
                "cifar10 noise {noise}: ncm {:.3}",
                ncm_accuracy(&train, &test)
            );
        }
        let (train, test) = generate_and_read(
            "cifar100",
            json!({"train_per_class": 20, "test_per_class": 10}),
            CifarVariant::Cifar100,
        );
        eprintln!("cifar100: ncm {:.3}", ncm_accuracy(&train, &test));
    }

    #[test]
    fn cifar10_is_learnable_but_not_trivial() {
        let sizes = json!({"train_per_class": 50, "test_per_class": 30});
        let (mut train, test) = generate_and_read("cifar10", sizes.clone(), CifarVariant::Cifar10);
        let acc = ncm_accuracy(&train, &test);

        let mut noisy_params = sizes;
        noisy_params["noise"] = json!(255);
        let (noisy_train, noisy_test) =
            generate_and_read("cifar10", noisy_params, CifarVariant::Cifar10);
        let noisy = ncm_accuracy(&noisy_train, &noisy_test);

        // Random labels (a fixed derangement-like relabelling of the training set) destroy it.
        for (i, l) in train.labels.iter_mut().enumerate() {
            *l = ((i * 7 + 3) % 10) as u8;
        }
        let random = ncm_accuracy(&train, &test);
        eprintln!(
            "ncm accuracy: default {acc:.3}, noise 255 {noisy:.3}, random train labels {random:.3}"
        );
        assert!(acc > 0.5 && acc < 0.98, "nearest-class-mean accuracy {acc}");
        assert!(noisy < acc - 0.1, "noise 255 should hurt: {noisy} vs {acc}");
        assert!(
            random < 0.25,
            "random labels should leave chance accuracy: {random}"
        );
    }
}
