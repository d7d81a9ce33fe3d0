//! Synthetic Tiny ImageNet in the upstream `tiny-imagenet-200.zip` layout:
//!
//! ```text
//! tiny-imagenet-200/wnids.txt                         one wnid per line
//! tiny-imagenet-200/words.txt                         wnid<TAB>names, more ids than used
//! tiny-imagenet-200/train/<wnid>/images/<wnid>_<i>.JPEG
//! tiny-imagenet-200/train/<wnid>/<wnid>_boxes.txt     file<TAB>x0<TAB>y0<TAB>x1<TAB>y1
//! tiny-imagenet-200/val/images/val_<i>.JPEG
//! tiny-imagenet-200/val/val_annotations.txt           file<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1
//! tiny-imagenet-200/test/images/test_<i>.JPEG         unlabelled
//! ```
//!
//! The wnids are generated (`n00000000`, `n00000001`, …), not real WordNet ids. Images are 64×64
//! RGB baseline JPEGs at quality 90 (stored uncompressed in the zip); boxes are the bounding box of
//! the class's main shape after the sample's translation.

use super::archive::ZipOut;
use super::draws::{Params, below, shuffled_labels, stream};
use super::images::ClassModel;

const GEN: &str = "tinyimagenet";
const ROOT: &str = "tiny-imagenet-200";
const SIZE: usize = 64;
const QUALITY: u8 = 90;
/// words.txt lists this many extra (unused) ids, as upstream lists far more synsets than it uses.
const EXTRA_WORDS: usize = 10;

fn wnid(class: usize) -> String {
    format!("n{class:08}")
}

/// Encode a CHW 64×64 image as JPEG.
fn jpeg(chw: &[u8]) -> anyhow::Result<Vec<u8>> {
    let plane = SIZE * SIZE;
    let mut hwc = vec![0u8; 3 * plane];
    for i in 0..plane {
        for c in 0..3 {
            hwc[3 * i + c] = chw[c * plane + i];
        }
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY).encode(
        &hwc,
        SIZE as u32,
        SIZE as u32,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

fn bbox_fields(b: [u32; 4]) -> String {
    format!("{}\t{}\t{}\t{}", b[0], b[1], b[2], b[3])
}

pub(super) fn generate(p: &Params) -> anyhow::Result<Vec<u8>> {
    let classes = p.usize("classes");
    let (seed, noise) = (p.get("seed"), p.get("noise") as u32);
    let models: Vec<ClassModel> = (0..classes)
        .map(|c| {
            ClassModel::new(
                SIZE,
                &mut stream(GEN, "texture", seed, c as u64),
                &mut stream(GEN, "class", seed, c as u64),
            )
        })
        .collect();
    let wnids: Vec<String> = (0..classes).map(wnid).collect();
    let mut pixels = vec![0u8; 3 * SIZE * SIZE];
    let mut zip = ZipOut::new();

    zip.dir(&format!("{ROOT}/"))?;
    let wnids_txt: String = wnids.iter().map(|w| format!("{w}\n")).collect();
    zip.file(&format!("{ROOT}/wnids.txt"), wnids_txt.as_bytes(), true)?;
    let mut words = String::new();
    for (c, id) in wnids.iter().enumerate() {
        words.push_str(&format!("{id}\tsynthetic class {c}, generated synset\n"));
    }
    for c in 0..EXTRA_WORDS {
        let id = 1000 + c;
        words.push_str(&format!("{}\tunused synthetic synset {id}\n", wnid(id)));
    }
    zip.file(&format!("{ROOT}/words.txt"), words.as_bytes(), true)?;

    zip.dir(&format!("{ROOT}/train/"))?;
    let train_per_class = p.usize("train_per_class");
    for (c, id) in wnids.iter().enumerate() {
        let mut rng = stream(GEN, "train", seed, c as u64);
        let dir = format!("{ROOT}/train/{id}");
        zip.dir(&format!("{dir}/"))?;
        zip.dir(&format!("{dir}/images/"))?;
        let mut boxes = String::new();
        for i in 0..train_per_class {
            let bbox = models[c].sample(&mut rng, noise, &mut pixels);
            let name = format!("{id}_{i}.JPEG");
            zip.file(&format!("{dir}/images/{name}"), &jpeg(&pixels)?, false)?;
            boxes.push_str(&format!("{name}\t{}\n", bbox_fields(bbox)));
        }
        zip.file(&format!("{dir}/{id}_boxes.txt"), boxes.as_bytes(), true)?;
    }

    zip.dir(&format!("{ROOT}/val/"))?;
    zip.dir(&format!("{ROOT}/val/images/"))?;
    let val_labels = shuffled_labels(
        &mut stream(GEN, "val-order", seed, 0),
        classes,
        p.usize("val_per_class"),
    );
    let mut rng = stream(GEN, "val", seed, 0);
    let mut annotations = String::new();
    for (i, &label) in val_labels.iter().enumerate() {
        let bbox = models[label].sample(&mut rng, noise, &mut pixels);
        let name = format!("val_{i}.JPEG");
        zip.file(&format!("{ROOT}/val/images/{name}"), &jpeg(&pixels)?, false)?;
        annotations.push_str(&format!(
            "{name}\t{}\t{}\n",
            wnids[label],
            bbox_fields(bbox)
        ));
    }
    zip.file(
        &format!("{ROOT}/val/val_annotations.txt"),
        annotations.as_bytes(),
        true,
    )?;

    zip.dir(&format!("{ROOT}/test/"))?;
    zip.dir(&format!("{ROOT}/test/images/"))?;
    let mut rng = stream(GEN, "test", seed, 0);
    for i in 0..p.usize("test_images") {
        let label = below(&mut rng, classes as u32) as usize;
        models[label].sample(&mut rng, noise, &mut pixels);
        zip.file(
            &format!("{ROOT}/test/images/test_{i}.JPEG"),
            &jpeg(&pixels)?,
            false,
        )?;
    }
    Ok(zip.finish()?)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::io::Read;

    use serde_json::{Map, Value, json};

    use super::super::generate;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    const TINY_SMALL_SHA256: &str =
        "517e6c6d5ea74e99a47380a45aae51ac464ab3cc0d8936f8746b1d5c1375260b";

    #[test]
    fn zip_layout_jpegs_and_annotations() {
        let dir = tempfile::tempdir().unwrap();
        let params = map(
            json!({"classes": 3, "train_per_class": 2, "val_per_class": 2, "test_images": 2, "seed": 4}),
        );
        let paths = generate("tinyimagenet", &params, dir.path()).unwrap();
        assert_eq!(paths, [dir.path().join("tiny-imagenet-200.zip")]);
        let again = tempfile::tempdir().unwrap();
        let paths2 = generate("tinyimagenet", &params, again.path()).unwrap();
        let bytes = std::fs::read(&paths[0]).unwrap();
        assert_eq!(bytes, std::fs::read(&paths2[0]).unwrap());
        // Locks the output format (including the JPEG encoder's bytes): must change exactly when
        // GENERATOR_VERSION is bumped.
        assert_eq!(crate::store::hash::sha256_bytes(&bytes), TINY_SMALL_SHA256);

        let mut zip = zip::ZipArchive::new(std::fs::File::open(&paths[0]).unwrap()).unwrap();
        let names: Vec<String> = zip.file_names().map(str::to_string).collect();
        let r = "tiny-imagenet-200";
        let mut expected = vec![
            format!("{r}/"),
            format!("{r}/wnids.txt"),
            format!("{r}/words.txt"),
            format!("{r}/train/"),
        ];
        for w in ["n00000000", "n00000001", "n00000002"] {
            expected.push(format!("{r}/train/{w}/"));
            expected.push(format!("{r}/train/{w}/images/"));
            expected.push(format!("{r}/train/{w}/images/{w}_0.JPEG"));
            expected.push(format!("{r}/train/{w}/images/{w}_1.JPEG"));
            expected.push(format!("{r}/train/{w}/{w}_boxes.txt"));
        }
        expected.push(format!("{r}/val/"));
        expected.push(format!("{r}/val/images/"));
        expected.extend((0..6).map(|i| format!("{r}/val/images/val_{i}.JPEG")));
        expected.push(format!("{r}/val/val_annotations.txt"));
        expected.push(format!("{r}/test/"));
        expected.push(format!("{r}/test/images/"));
        expected.extend((0..2).map(|i| format!("{r}/test/images/test_{i}.JPEG")));
        assert_eq!(names, expected);

        let mut read = |name: &str| {
            let mut bytes = Vec::new();
            zip.by_name(name).unwrap().read_to_end(&mut bytes).unwrap();
            bytes
        };
        let wnids = String::from_utf8(read(&format!("{r}/wnids.txt"))).unwrap();
        let wnids: Vec<&str> = wnids.lines().collect();
        assert_eq!(wnids, ["n00000000", "n00000001", "n00000002"]);
        let words = String::from_utf8(read(&format!("{r}/words.txt"))).unwrap();
        for w in &wnids {
            assert!(
                words.lines().any(|l| l.starts_with(&format!("{w}\t"))),
                "{w} missing in words.txt"
            );
        }

        for name in names.iter().filter(|n| n.ends_with(".JPEG")) {
            let img =
                image::load_from_memory_with_format(&read(name), image::ImageFormat::Jpeg).unwrap();
            assert_eq!((img.width(), img.height()), (64, 64), "{name}");
            assert_eq!(img.color(), image::ColorType::Rgb8, "{name}");
        }

        let name_set: BTreeSet<&str> = names.iter().map(String::as_str).collect();
        let ann = String::from_utf8(read(&format!("{r}/val/val_annotations.txt"))).unwrap();
        let mut per_class = [0; 3];
        for line in ann.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 6, "{line}");
            assert!(
                name_set.contains(format!("{r}/val/images/{}", f[0]).as_str()),
                "{line}"
            );
            let class = wnids
                .iter()
                .position(|w| *w == f[1])
                .expect("annotation wnid in wnids.txt");
            per_class[class] += 1;
            let b: Vec<u32> = f[2..].iter().map(|v| v.parse().unwrap()).collect();
            assert!(
                b[0] <= b[2] && b[1] <= b[3] && b[2] < 64 && b[3] < 64,
                "{line}"
            );
        }
        assert_eq!(per_class, [2, 2, 2]);

        let boxes =
            String::from_utf8(read(&format!("{r}/train/n00000001/n00000001_boxes.txt"))).unwrap();
        let lines: Vec<&str> = boxes.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("n00000001_0.JPEG\t") && lines[0].split('\t').count() == 5);
    }
}
