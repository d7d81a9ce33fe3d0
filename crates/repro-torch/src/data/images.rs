//! Image datasets as the vision stages read them: a dataset's extracted files, by format, turned
//! into uint8 tensors ([`ImageSet`]) for the training and test splits.

use anyhow::{Context, Result, bail};
use tch::{Kind, Tensor};

use super::loader::ImageSet;
use repro_core::data::cifar::{CifarVariant, read_cifar};
use repro_core::data::tinyimagenet;
use repro_core::data::{DatasetView, Format};

/// The training and test splits of `ds` (for Tiny-ImageNet the validation split is the test set,
/// a default of ours, docs/paper.md#e1).
pub fn load(ds: &DatasetView) -> Result<(ImageSet, ImageSet)> {
    let cifar = |variant| -> Result<(ImageSet, ImageSet)> {
        let split = |train: bool| -> Result<ImageSet> {
            let s = read_cifar(&ds.root, variant, train)
                .with_context(|| format!("reading dataset `{}`", ds.name))?;
            Ok(image_set(&s.images, &s.labels, s.classes, 32))
        };
        Ok((split(true)?, split(false)?))
    };
    match ds.format {
        Format::Cifar10Binary => cifar(CifarVariant::Cifar10),
        Format::Cifar100Binary => cifar(CifarVariant::Cifar100),
        Format::TinyimagenetFolder => {
            let (train, val) = tinyimagenet::load(&ds.root)
                .with_context(|| format!("reading dataset `{}`", ds.name))?;
            let set = |s: &tinyimagenet::TinySplit| {
                image_set(&s.images, &s.labels, s.classes, tinyimagenet::SIZE as i64)
            };
            Ok((set(&train), set(&val)))
        }
        f @ (Format::WikitextTokens | Format::Iwslt14DeEn | Format::AtariRoms) => bail!(
            "dataset `{}` has format `{f}`, which no image reader handles \
             (cifar10-binary, cifar100-binary, tinyimagenet-folder)",
            ds.name
        ),
    }
}

fn image_set(images: &[u8], labels: &[u8], classes: usize, size: i64) -> ImageSet {
    let n = labels.len() as i64;
    ImageSet {
        images: Tensor::from_slice(images).view([n, 3, size, size]),
        labels: Tensor::from_slice(labels).to_kind(Kind::Int64),
        classes: classes as i64,
    }
}
