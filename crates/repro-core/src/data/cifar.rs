//! Reader for the CIFAR-10 / CIFAR-100 "binary version" files as extracted from the upstream
//! tarballs (`cifar-10-batches-bin/`, `cifar-100-binary/`). This module owns the record layout
//! and the file names; the generator in `crate::data::generate` writes the same layout.
//!
//! Record layout: CIFAR-10: 1 label byte + 3072 pixel bytes; CIFAR-100: 1 coarse label byte, 1
//! fine label byte, 3072 pixel bytes. Pixels are 1024 red, 1024 green, 1024 blue, each a 32×32
//! row-major plane, i.e. CHW.

use std::fs;
use std::path::Path;

use anyhow::{Context, bail};

/// Image side in pixels.
pub const SIDE: usize = 32;
/// Bytes of pixel data per image (3 × 32 × 32).
pub const IMAGE_BYTES: usize = 3 * SIDE * SIDE;

/// Folder of the CIFAR-10 binary version inside the extraction folder.
pub const CIFAR10_DIR: &str = "cifar-10-batches-bin";
/// Folder of the CIFAR-100 binary version inside the extraction folder.
pub const CIFAR100_DIR: &str = "cifar-100-binary";
/// CIFAR-10 training batches, in order.
pub const CIFAR10_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// CIFAR-10 test batch.
pub const CIFAR10_TEST_FILE: &str = "test_batch.bin";
/// CIFAR-10 class names file (one name per line).
pub const CIFAR10_META_FILE: &str = "batches.meta.txt";
/// CIFAR-100 training file.
pub const CIFAR100_TRAIN_FILE: &str = "train.bin";
/// CIFAR-100 test file.
pub const CIFAR100_TEST_FILE: &str = "test.bin";
/// CIFAR-100 coarse class names file.
pub const CIFAR100_COARSE_NAMES_FILE: &str = "coarse_label_names.txt";
/// CIFAR-100 fine class names file.
pub const CIFAR100_FINE_NAMES_FILE: &str = "fine_label_names.txt";
/// Number of CIFAR-100 coarse classes.
pub const CIFAR100_COARSE_CLASSES: usize = 20;

/// Which CIFAR dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarVariant {
    Cifar10,
    Cifar100,
}

impl CifarVariant {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            CifarVariant::Cifar10 => "CIFAR-10",
            CifarVariant::Cifar100 => "CIFAR-100",
        }
    }

    /// Number of (fine) classes.
    pub fn classes(self) -> usize {
        match self {
            CifarVariant::Cifar10 => 10,
            CifarVariant::Cifar100 => 100,
        }
    }

    /// Label bytes before the pixels of each record.
    pub fn label_bytes(self) -> usize {
        match self {
            CifarVariant::Cifar10 => 1,
            CifarVariant::Cifar100 => 2,
        }
    }

    /// Bytes per record.
    pub fn record_len(self) -> usize {
        self.label_bytes() + IMAGE_BYTES
    }

    /// Folder inside the extraction folder.
    pub fn dir(self) -> &'static str {
        match self {
            CifarVariant::Cifar10 => CIFAR10_DIR,
            CifarVariant::Cifar100 => CIFAR100_DIR,
        }
    }

    /// Data files of a split, in reading order.
    pub fn files(self, train: bool) -> &'static [&'static str] {
        match (self, train) {
            (CifarVariant::Cifar10, true) => &CIFAR10_TRAIN_FILES,
            (CifarVariant::Cifar10, false) => &[CIFAR10_TEST_FILE],
            (CifarVariant::Cifar100, true) => &[CIFAR100_TRAIN_FILE],
            (CifarVariant::Cifar100, false) => &[CIFAR100_TEST_FILE],
        }
    }
}

/// One split, images as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CifarSplit {
    /// `len` × 3 × 32 × 32 bytes, CHW per image, as stored.
    pub images: Vec<u8>,
    /// `len` labels; fine labels for CIFAR-100.
    pub labels: Vec<u8>,
    /// Number of images.
    pub len: usize,
    /// Number of classes (10 or 100).
    pub classes: usize,
}

impl CifarSplit {
    /// Pixels of image `i` (3 × 32 × 32, CHW), if in range.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        self.images.get(i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES)
    }
}

/// Read the train or test split of a CIFAR dataset from its extraction folder `root` (the folder
/// containing `cifar-10-batches-bin/` or `cifar-100-binary/`).
pub fn read_cifar(root: &Path, variant: CifarVariant, train: bool) -> anyhow::Result<CifarSplit> {
    let classes = variant.classes();
    let record = variant.record_len();
    let split = if train { "training" } else { "test" };
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for name in variant.files(train) {
        let path = root.join(variant.dir()).join(name);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "missing {} {split} file {}: expected `{}/{name}` from the {} binary version \
                 under the extraction folder {}",
                variant.name(),
                path.display(),
                variant.dir(),
                variant.name(),
                root.display()
            ),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("reading {} file {}", variant.name(), path.display())
                });
            }
        };
        if bytes.is_empty() {
            bail!(
                "{} file {} is empty: expected records of {record} bytes",
                variant.name(),
                path.display()
            );
        }
        if bytes.len() % record != 0 {
            bail!(
                "{} file {} has size {} bytes, which is not a multiple of the record size {record} \
                 ({} label byte(s) + {IMAGE_BYTES} pixel bytes); the file is truncated or not a {} file",
                variant.name(),
                path.display(),
                bytes.len(),
                variant.label_bytes(),
                variant.name()
            );
        }
        let n = bytes.len() / record;
        images.reserve(n * IMAGE_BYTES);
        labels.reserve(n);
        for (index, rec) in bytes.chunks_exact(record).enumerate() {
            let (label_bytes, pixels) = rec.split_at(variant.label_bytes());
            let label = match variant {
                CifarVariant::Cifar10 => label_bytes[0],
                CifarVariant::Cifar100 => {
                    let coarse = label_bytes[0];
                    if usize::from(coarse) >= CIFAR100_COARSE_CLASSES {
                        bail!(
                            "{} file {}: record {index} has coarse label {coarse}, valid range 0..={}",
                            variant.name(),
                            path.display(),
                            CIFAR100_COARSE_CLASSES - 1
                        );
                    }
                    label_bytes[1]
                }
            };
            if usize::from(label) >= classes {
                bail!(
                    "{} file {}: record {index} has label {label}, valid range 0..={}",
                    variant.name(),
                    path.display(),
                    classes - 1
                );
            }
            labels.push(label);
            images.extend_from_slice(pixels);
        }
    }
    Ok(CifarSplit {
        len: labels.len(),
        images,
        labels,
        classes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, variant: CifarVariant, name: &str, bytes: &[u8]) {
        let dir = root.join(variant.dir());
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), bytes).unwrap();
    }

    fn records(variant: CifarVariant, labels: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, l) in labels.iter().enumerate() {
            out.extend_from_slice(l);
            out.extend(std::iter::repeat_n(i as u8, IMAGE_BYTES));
        }
        assert_eq!(out.len(), labels.len() * variant.record_len());
        out
    }

    #[test]
    fn reads_all_batches_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let v = CifarVariant::Cifar10;
        for (b, name) in CIFAR10_TRAIN_FILES.iter().enumerate() {
            write(dir.path(), v, name, &records(v, &[&[b as u8], &[9]]));
        }
        let split = read_cifar(dir.path(), v, true).unwrap();
        assert_eq!(split.len, 10);
        assert_eq!(split.classes, 10);
        assert_eq!(split.labels, [0, 9, 1, 9, 2, 9, 3, 9, 4, 9]);
        assert_eq!(split.images.len(), 10 * IMAGE_BYTES);
        assert!(split.image(1).unwrap().iter().all(|&p| p == 1));
        assert!(split.image(10).is_none());
    }

    #[test]
    fn missing_file_names_path_and_expectation() {
        let dir = tempfile::tempdir().unwrap();
        let err = format!(
            "{:#}",
            read_cifar(dir.path(), CifarVariant::Cifar100, false).unwrap_err()
        );
        assert!(err.contains("missing CIFAR-100 test file"), "{err}");
        assert!(err.contains("cifar-100-binary/test.bin"), "{err}");
    }

    #[test]
    fn truncated_file_is_reported_with_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let v = CifarVariant::Cifar10;
        let mut bytes = records(v, &[&[1], &[2]]);
        bytes.truncate(bytes.len() - 5);
        write(dir.path(), v, CIFAR10_TEST_FILE, &bytes);
        let err = format!("{:#}", read_cifar(dir.path(), v, false).unwrap_err());
        assert!(err.contains("test_batch.bin"), "{err}");
        assert!(
            err.contains(&format!("size {} bytes", 2 * 3073 - 5)),
            "{err}"
        );
        assert!(err.contains("record size 3073"), "{err}");

        write(dir.path(), v, CIFAR10_TEST_FILE, &[]);
        let err = format!("{:#}", read_cifar(dir.path(), v, false).unwrap_err());
        assert!(err.contains("is empty"), "{err}");
    }

    #[test]
    fn bad_labels_are_reported_with_record_and_range() {
        let dir = tempfile::tempdir().unwrap();
        let v = CifarVariant::Cifar10;
        write(
            dir.path(),
            v,
            CIFAR10_TEST_FILE,
            &records(v, &[&[3], &[4], &[10]]),
        );
        let err = format!("{:#}", read_cifar(dir.path(), v, false).unwrap_err());
        assert!(
            err.contains("test_batch.bin") && err.contains("record 2 has label 10"),
            "{err}"
        );
        assert!(err.contains("valid range 0..=9"), "{err}");

        let v = CifarVariant::Cifar100;
        write(
            dir.path(),
            v,
            CIFAR100_TEST_FILE,
            &records(v, &[&[19, 99], &[0, 100]]),
        );
        let err = format!("{:#}", read_cifar(dir.path(), v, false).unwrap_err());
        assert!(
            err.contains("record 1 has label 100") && err.contains("0..=99"),
            "{err}"
        );
        write(dir.path(), v, CIFAR100_TEST_FILE, &records(v, &[&[20, 99]]));
        let err = format!("{:#}", read_cifar(dir.path(), v, false).unwrap_err());
        assert!(
            err.contains("record 0 has coarse label 20") && err.contains("0..=19"),
            "{err}"
        );
        write(
            dir.path(),
            v,
            CIFAR100_TEST_FILE,
            &records(v, &[&[19, 99], &[0, 7]]),
        );
        let split = read_cifar(dir.path(), v, false).unwrap();
        assert_eq!(
            (split.labels.as_slice(), split.classes),
            (&[99u8, 7][..], 100)
        );
    }
}
