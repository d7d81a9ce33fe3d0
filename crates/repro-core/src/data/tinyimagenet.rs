//! Tiny-ImageNet-200 from its extracted folder layout (`tiny-imagenet-200/…`, see
//! `generate::tinyimagenet` for the layout): JPEG decoding with the `image` crate, class indices by
//! sorted wnid (torchvision's `ImageFolder` convention), and the validation split as test set.
//!
//! Decoding 110,000 JPEGs takes a while, so the decoded uint8 pixels are cached once beside the
//! extraction folder (`<extracted>.decoded-v1.bin`, written atomically, checked by sha256 on load);
//! the extraction folder is content-addressed, so the cache never goes stale.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::store::atomic::write_atomic;

/// Images are 64×64 RGB.
pub const SIZE: usize = 64;
const IMAGE_BYTES: usize = 3 * SIZE * SIZE;
const ROOT: &str = "tiny-imagenet-200";
const CACHE_MAGIC: &[u8] = b"repro-tinyimagenet-u8-v1\n";

/// One split, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TinySplit {
    /// `len` × 3 × 64 × 64 bytes, CHW per image.
    pub images: Vec<u8>,
    /// `len` labels, indices into the sorted wnids.
    pub labels: Vec<u8>,
    pub len: usize,
    pub classes: usize,
}

/// The training and validation (= test) splits of the dataset extracted under `root`, decoded once
/// and cached.
pub fn load(root: &Path) -> Result<(TinySplit, TinySplit)> {
    let cache = cache_path(root);
    if let Ok(bytes) = fs::read(&cache) {
        match decode_cache(&bytes) {
            Ok(splits) => return Ok(splits),
            Err(e) => tracing::warn!("ignoring the decode cache {}: {e:#}", cache.display()),
        }
    }
    let splits = read(root)?;
    write_atomic(&cache, &encode_cache(&splits.0, &splits.1))
        .with_context(|| format!("writing the decode cache {}", cache.display()))?;
    Ok(splits)
}

fn cache_path(root: &Path) -> PathBuf {
    let mut name = root.file_name().unwrap_or_default().to_os_string();
    name.push(".decoded-v1.bin");
    root.with_file_name(name)
}

/// Read and decode both splits from the folder layout, without the cache.
pub fn read(root: &Path) -> Result<(TinySplit, TinySplit)> {
    let dir = root.join(ROOT);
    let wnids_file = dir.join("wnids.txt");
    let text = fs::read_to_string(&wnids_file).with_context(|| {
        format!(
            "reading {}: expected the Tiny-ImageNet-200 layout ({ROOT}/wnids.txt) under {}",
            wnids_file.display(),
            root.display()
        )
    })?;
    let mut wnids: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    wnids.sort_unstable();
    wnids.dedup();
    if wnids.is_empty() || wnids.len() > 256 {
        bail!(
            "{} lists {} wnids: expected 1 to 256 (Tiny-ImageNet has 200)",
            wnids_file.display(),
            wnids.len()
        );
    }
    let class_of = |wnid: &str, place: &dyn Fn() -> String| -> Result<u8> {
        match wnids.binary_search(&wnid) {
            Ok(i) => Ok(i as u8),
            Err(_) => bail!(
                "{}: wnid {wnid:?} is not in {}",
                place(),
                wnids_file.display()
            ),
        }
    };

    let mut train = Vec::new();
    for (class, wnid) in wnids.iter().enumerate() {
        let images = dir.join("train").join(wnid).join("images");
        for file in sorted_files(&images)? {
            train.push((file, class as u8));
        }
    }

    let annotations = dir.join("val/val_annotations.txt");
    let text = fs::read_to_string(&annotations)
        .with_context(|| format!("reading the validation labels {}", annotations.display()))?;
    let mut val = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let place = || format!("{}:{}", annotations.display(), i + 1);
        let mut fields = line.split('\t');
        let (Some(file), Some(wnid)) = (fields.next(), fields.next()) else {
            bail!(
                "{}: expected `file<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1`",
                place()
            );
        };
        if file.contains('/') || file.starts_with('.') {
            bail!(
                "{}: file name {file:?} must be a plain name in val/images",
                place()
            );
        }
        val.push((dir.join("val/images").join(file), class_of(wnid, &place)?));
    }
    val.sort();
    let classes = wnids.len();
    Ok((decode_all(&train, classes)?, decode_all(&val, classes)?))
}

fn sorted_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("listing {}", dir.display()))?;
    files.retain(|p| {
        p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("jpeg"))
    });
    files.sort();
    Ok(files)
}

/// Decode in parallel, one contiguous chunk per core; the result does not depend on the split.
fn decode_all(items: &[(PathBuf, u8)], classes: usize) -> Result<TinySplit> {
    let mut images = vec![0u8; items.len() * IMAGE_BYTES];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let jobs: Vec<_> = items
            .chunks(per)
            .zip(images.chunks_mut(per * IMAGE_BYTES))
            .map(|(items, out)| {
                s.spawn(move || {
                    for ((path, _), out) in items.iter().zip(out.chunks_mut(IMAGE_BYTES)) {
                        decode_into(path, out)?;
                    }
                    Ok::<(), anyhow::Error>(())
                })
            })
            .collect();
        jobs.into_iter()
            .try_for_each(|j| j.join().expect("decoder thread panicked"))
    })?;
    Ok(TinySplit {
        images,
        labels: items.iter().map(|(_, l)| *l).collect(),
        len: items.len(),
        classes,
    })
}

/// Decode one JPEG (RGB or grayscale, as upstream has both) into CHW bytes.
fn decode_into(path: &Path, out: &mut [u8]) -> Result<()> {
    let img = image::open(path)
        .with_context(|| format!("decoding {}", path.display()))?
        .to_rgb8();
    if img.width() as usize != SIZE || img.height() as usize != SIZE {
        bail!(
            "{} is {}×{}: Tiny-ImageNet images are {SIZE}×{SIZE}",
            path.display(),
            img.width(),
            img.height()
        );
    }
    let plane = SIZE * SIZE;
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = px.0[c];
        }
    }
    Ok(())
}

fn encode_cache(train: &TinySplit, val: &TinySplit) -> Vec<u8> {
    let mut payload = Vec::with_capacity(train.images.len() + val.images.len() + 1024);
    for s in [train, val] {
        payload.extend_from_slice(&(s.len as u64).to_le_bytes());
        payload.extend_from_slice(&(s.classes as u64).to_le_bytes());
        payload.extend_from_slice(&s.images);
        payload.extend_from_slice(&s.labels);
    }
    let mut out = CACHE_MAGIC.to_vec();
    out.extend_from_slice(&Sha256::digest(&payload));
    out.extend_from_slice(&payload);
    out
}

fn decode_cache(bytes: &[u8]) -> Result<(TinySplit, TinySplit)> {
    let Some(rest) = bytes.strip_prefix(CACHE_MAGIC) else {
        bail!("not a decode cache of this version")
    };
    if rest.len() < 32 || Sha256::digest(&rest[32..])[..] != rest[..32] {
        bail!("checksum mismatch (truncated or corrupted)");
    }
    let mut p = &rest[32..];
    let mut split = || -> Result<TinySplit> {
        let mut take = |n: usize| -> Result<&[u8]> {
            if p.len() < n {
                bail!("truncated");
            }
            let (a, b) = p.split_at(n);
            p = b;
            Ok(a)
        };
        let len = u64::from_le_bytes(take(8)?.try_into()?) as usize;
        let classes = u64::from_le_bytes(take(8)?.try_into()?) as usize;
        let images = take(len.checked_mul(IMAGE_BYTES).context("bad length")?)?.to_vec();
        let labels = take(len)?.to_vec();
        Ok(TinySplit {
            images,
            labels,
            len,
            classes,
        })
    };
    let train = split()?;
    let val = split()?;
    Ok((train, val))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::generate;

    fn generated(dir: &Path) -> PathBuf {
        let params = serde_json::json!({
            "classes": 3, "train_per_class": 4, "val_per_class": 2, "test_images": 1, "seed": 0
        });
        let serde_json::Value::Object(params) = params else {
            unreachable!()
        };
        let files = generate::generate("tinyimagenet", &params, dir).unwrap();
        let root = dir.join("extracted");
        crate::data::extract::extract(
            &files[0],
            crate::data::ArchiveKind::Zip,
            &root,
            &Default::default(),
        )
        .unwrap();
        root
    }

    #[test]
    fn reads_generated_layout_and_caches_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = generated(dir.path());
        let (train, val) = load(&root).unwrap();
        assert_eq!((train.len, val.len, train.classes), (12, 6, 3));
        assert_eq!(train.images.len(), 12 * IMAGE_BYTES);
        assert_eq!(train.labels, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
        let mut counts = [0; 3];
        val.labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(counts, [2, 2, 2]);
        // The second load comes from the cache and equals a fresh decode.
        assert!(cache_path(&root).exists());
        assert_eq!(load(&root).unwrap(), read(&root).unwrap());
        // A corrupted cache is ignored, not trusted.
        let cache = cache_path(&root);
        let mut bytes = fs::read(&cache).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&cache, &bytes).unwrap();
        assert!(decode_cache(&bytes).is_err());
        assert_eq!(load(&root).unwrap().0, train);
    }

    #[test]
    fn unknown_wnid_in_annotations_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let root = generated(dir.path());
        let ann = root.join(ROOT).join("val/val_annotations.txt");
        let text = fs::read_to_string(&ann).unwrap();
        let bad = text.replacen("n00000001", "n99999999", 1);
        fs::write(&ann, bad).unwrap();
        let err = format!("{:#}", read(&root).unwrap_err());
        assert!(
            err.contains("val_annotations.txt:") && err.contains("n99999999"),
            "{err}"
        );
    }
}
