//! `repro checkout RUN DIR`: a finished run's outputs under their own names in DIR — hard links
//! to the store objects where DIR is on the store's filesystem, else copies — each file placed
//! atomically, an existing different file kept unless `--force`. A `.safetensors` output is
//! written with its header's `__metadata__` naming the run (id, experiment, key, kind,
//! parameters), so weights carry where they came from; the store object stays as it is.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use safetensors::SafeTensors;
use serde_json::{Map, Value};

use super::ctx::{Ctx, Failure};
use super::pick::one_run;
use repro_core::pipeline::executor::RunState;
use repro_core::runtime::DeviceChoice;
use repro_core::store::atomic::{rename_durable, write_atomic};
use repro_core::store::hash::{sha256_bytes, sha256_file};

pub(super) struct CheckoutArgs<'a> {
    pub profile: &'a str,
    pub device: DeviceChoice,
    pub target: &'a str,
    pub dir: &'a Path,
    pub force: bool,
}

/// What one output becomes in DIR.
enum Content {
    /// The store object as it is: linked, else copied.
    Object(PathBuf),
    /// New bytes (a weights file with the run in its header).
    Bytes(Vec<u8>),
}

struct Placed {
    dest: PathBuf,
    sha256: String,
    content: Content,
}

pub(super) fn checkout_cmd(ctx: &Ctx, a: &CheckoutArgs) -> Result<()> {
    let one = one_run(ctx, a.profile, a.device, a.target)?;
    let node = one.node();
    let Some(record) = &one.record else {
        let why = match one.state() {
            RunState::WillRun { reasons, .. } if !reasons.is_empty() => reasons.join("; "),
            _ => "it has not run".into(),
        };
        return Err(Failure::Usage(format!(
            "run `{}` is not finished ({why}); run it first: `repro run --profile {} '{}'`",
            node.id, a.profile, node.id
        ))
        .into());
    };
    let metadata = BTreeMap::from([
        ("repro.run_id".to_string(), node.id.clone()),
        ("repro.experiment".to_string(), node.experiment.clone()),
        ("repro.key".to_string(), record.key.clone()),
        ("repro.kind".to_string(), node.kind.name.to_string()),
        (
            "repro.params".to_string(),
            Value::Object(node.params.clone()).to_string(),
        ),
    ]);
    let mut placed = Vec::new();
    for (name, obj) in &record.outputs {
        let dest = a.dir.join(safe_relative(name)?);
        let object = ctx
            .store
            .verify_object(obj)
            .with_context(|| format!("output {name} of run {}", node.id))?;
        placed.push(if name.ends_with(".safetensors") {
            let bytes =
                fs::read(&object).with_context(|| format!("cannot read {}", object.display()))?;
            let bytes = with_metadata(&bytes, &metadata)
                .with_context(|| format!("output {name} of run {}", node.id))?;
            Placed {
                dest,
                sha256: sha256_bytes(&bytes),
                content: Content::Bytes(bytes),
            }
        } else {
            Placed {
                dest,
                sha256: obj.sha256.clone(),
                content: Content::Object(object),
            }
        });
    }
    // Every conflict is found before anything is written.
    let mut todo = Vec::new();
    let mut conflicts = Vec::new();
    for p in placed {
        match fs::symlink_metadata(&p.dest) {
            Err(_) => todo.push(p),
            Ok(m) if m.is_file() && sha256_file(&p.dest).is_ok_and(|s| s == p.sha256) => {
                println!("{}: up to date", p.dest.display());
            }
            Ok(_) if a.force => todo.push(p),
            Ok(_) => conflicts.push(p.dest.display().to_string()),
        }
    }
    if !conflicts.is_empty() {
        return Err(Failure::Usage(format!(
            "{} already exist(s) with other contents: {}; give --force to replace them",
            conflicts.len(),
            conflicts.join(", ")
        ))
        .into());
    }
    for p in todo {
        let how = place(&p)?;
        println!("{}: {how}", p.dest.display());
    }
    Ok(())
}

/// An output name as a path inside DIR: relative, without `..` (a record is data, not trust).
fn safe_relative(name: &str) -> Result<PathBuf> {
    let path = PathBuf::from(name);
    if path.components().all(|c| matches!(c, Component::Normal(_))) {
        Ok(path)
    } else {
        bail!("output name `{name}` is not a plain relative path; refusing to write it")
    }
}

/// Put one file in place atomically; says how.
fn place(p: &Placed) -> Result<&'static str> {
    let dir = p.dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let fail = |what: &str| format!("cannot {what} {}", p.dest.display());
    match &p.content {
        Content::Bytes(bytes) => {
            write_atomic(&p.dest, bytes).with_context(|| fail("write"))?;
            Ok("written with the run in its metadata")
        }
        Content::Object(object) => {
            let name = p.dest.file_name().map(|n| n.to_string_lossy().into_owned());
            let tmp = dir.join(format!(
                ".{}.checkout-{}",
                name.unwrap_or_default(),
                std::process::id()
            ));
            let _ = fs::remove_file(&tmp);
            let linked = fs::hard_link(object, &tmp).is_ok();
            if !linked {
                fs::copy(object, &tmp).with_context(|| fail("copy to"))?;
                // Store objects are read-only; a copy is the user's own file.
                fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644))
                    .with_context(|| fail("set the permissions of"))?;
            }
            rename_durable(&tmp, &p.dest).with_context(|| fail("move into place"))?;
            Ok(if linked {
                "hard link to the store object (read-only)"
            } else {
                "copied"
            })
        }
    }
}

/// A safetensors file with `entries` added to its header's `__metadata__` (others kept), the
/// tensor bytes as they were. safetensors checks the file; the header is written with
/// serde_json because safetensors' own serializer orders metadata by a hash map, which would
/// give different bytes on every checkout.
fn with_metadata(bytes: &[u8], entries: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    SafeTensors::deserialize(bytes)
        .map_err(|e| anyhow::anyhow!("not a safetensors file: {e:?}"))?;
    let n = u64::from_le_bytes(bytes[..8].try_into()?) as usize;
    let mut header: Map<String, Value> = serde_json::from_slice(&bytes[8..8 + n])?;
    let mut metadata: BTreeMap<String, String> = match header.shift_remove("__metadata__") {
        Some(m) => serde_json::from_value(m).context("its __metadata__ is not strings")?,
        None => BTreeMap::new(),
    };
    metadata.extend(entries.clone());
    let mut out = Map::new();
    out.insert("__metadata__".into(), serde_json::to_value(&metadata)?);
    out.extend(header);
    let mut text = serde_json::to_vec(&out)?;
    // The data section starts 8-byte aligned, as safetensors writes it.
    text.resize(text.len().div_ceil(8) * 8, b' ');
    let mut file = (text.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&text);
    file.extend_from_slice(&bytes[8 + n..]);
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::{Dtype, TensorView};

    fn weights() -> Vec<u8> {
        let a: Vec<u8> = [1.0f32, 2.0, 3.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let b: Vec<u8> = [7i64].iter().flat_map(|x| x.to_le_bytes()).collect();
        let tensors = [
            ("w", TensorView::new(Dtype::F32, vec![3], &a).unwrap()),
            ("step", TensorView::new(Dtype::I64, vec![1], &b).unwrap()),
        ];
        let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
        safetensors::serialize(tensors, &Some(meta)).unwrap()
    }

    #[test]
    fn metadata_is_added_and_tensors_are_unchanged() {
        let original = weights();
        let entries = BTreeMap::from([
            ("repro.run_id".to_string(), "e/seed=0".to_string()),
            ("repro.params".to_string(), r#"{"seed":0}"#.to_string()),
        ]);
        let out = with_metadata(&original, &entries).unwrap();
        assert_eq!(
            out,
            with_metadata(&original, &entries).unwrap(),
            "same bytes twice"
        );
        let (_, meta) = SafeTensors::read_metadata(&out).unwrap();
        let m = meta.metadata().clone().unwrap();
        assert_eq!(m["repro.run_id"], "e/seed=0");
        assert_eq!(m["repro.params"], r#"{"seed":0}"#);
        assert_eq!(m["format"], "pt", "existing entries are kept");
        let (before, after) = (
            SafeTensors::deserialize(&original).unwrap(),
            SafeTensors::deserialize(&out).unwrap(),
        );
        for name in ["w", "step"] {
            let (x, y) = (before.tensor(name).unwrap(), after.tensor(name).unwrap());
            assert_eq!(
                (x.dtype(), x.shape(), x.data()),
                (y.dtype(), y.shape(), y.data())
            );
        }
        // Checking out again updates the entries rather than stacking them.
        let again = with_metadata(&out, &entries).unwrap();
        assert_eq!(again, out);
        assert!(with_metadata(b"not weights at all", &entries).is_err());
    }
}
