//! Export: the deterministic tar writer. Every object is checked intact in the store, then each
//! member is written with a fixed header, in order, to a temp file renamed into place.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::{BUNDLE_FORMAT, BundleManifest, Hashing, LOCK, MANIFEST, PIPELINE};
use crate::{Publication, Stats};
use repro_core::store::atomic::sync_dir;
use repro_core::store::published::{is_sha256, layout};
use repro_core::store::record::ObjectRef;
use repro_core::store::{ObjectState, Store};

/// Who names an object, for error messages: "run e1/seed=0: output weights.bin".
fn owner_label(publication: &Publication) -> BTreeMap<&str, String> {
    let mut label = BTreeMap::new();
    for (id, key) in &publication.runs {
        label.insert(key.as_str(), format!("run {id}"));
    }
    for (name, key) in &publication.generated {
        label.insert(key.as_str(), format!("dataset {name}"));
    }
    if let Some(key) = &publication.report {
        label.insert(key.as_str(), "the report".to_string());
    }
    label
}

pub(super) fn export_inner(store: &Store, publication: &Publication, file: &Path) -> Result<Stats> {
    let labels = owner_label(publication);
    // Records, as the store writes them (pretty JSON: deterministic for the same record).
    let mut records: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    // sha256 → (size, who names it).
    let mut objects: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut add_object = |o: &ObjectRef, who: String| -> Result<()> {
        match objects.get(&o.sha256) {
            Some((size, first)) if *size != o.size => bail!(
                "{who} names object {} of {} bytes, but {first} names it with {size} bytes",
                o.sha256,
                o.size
            ),
            Some(_) => {}
            None => {
                objects.insert(o.sha256.clone(), (o.size, who));
            }
        }
        Ok(())
    };
    for key in publication.record_keys() {
        let label = labels.get(key).cloned().unwrap_or_else(|| key.to_string());
        if !is_sha256(key) {
            bail!("{label}: {key:?} is not a record key");
        }
        let record = store
            .read_record(key)?
            .with_context(|| format!("{label}: record {key} is not in the store"))?;
        for (name, o) in &record.outputs {
            if !is_sha256(&o.sha256) {
                bail!("{label}: output {name} names {:?}, not a sha256", o.sha256);
            }
            add_object(o, format!("{label}: output {name}"))?;
        }
        records.insert(key.to_string(), serde_json::to_vec_pretty(&record)?);
    }
    if !is_sha256(&publication.pipeline.sha256) {
        bail!("the publication's pipeline object is not named by a sha256");
    }
    add_object(&publication.pipeline, "pipeline.yaml".to_string())?;

    // A damaged object is refused before a byte is written.
    for (sha256, (size, who)) in &objects {
        let o = ObjectRef {
            sha256: sha256.clone(),
            size: *size,
        };
        match store.check_object(&o) {
            ObjectState::Intact => {}
            ObjectState::Missing => bail!(
                "{who} (sha256 {sha256}) is missing from the store ({}); `repro run` rebuilds it",
                store.object_path(sha256).display()
            ),
            ObjectState::Corrupt(what) => bail!(
                "{who} (sha256 {sha256}) is corrupt in the store ({what}: {}); `repro run` \
                 rebuilds it",
                store.object_path(sha256).display()
            ),
            ObjectState::Unreadable(e) => bail!(
                "{who} (sha256 {sha256}) cannot be read ({e}: {})",
                store.object_path(sha256).display()
            ),
        }
    }

    let lock_yaml = publication
        .lock
        .as_ref()
        .map(serde_yaml::to_string)
        .transpose()?
        .map(String::into_bytes);
    let manifest = BundleManifest {
        bundle: BUNDLE_FORMAT,
        publication: publication.clone(),
        lock_yaml: lock_yaml.as_deref().map(object_ref),
        records: records
            .iter()
            .map(|(k, b)| (k.clone(), object_ref(b)))
            .collect(),
        objects: objects.iter().map(|(s, (n, _))| (s.clone(), *n)).collect(),
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;

    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, tmp));

    append_bytes(&mut tar, MANIFEST, &manifest_bytes)?;
    let pipeline = &publication.pipeline;
    append_object(&mut tar, store, PIPELINE, pipeline, "pipeline.yaml")?;
    if let Some(bytes) = &lock_yaml {
        append_bytes(&mut tar, LOCK, bytes)?;
    }
    for (key, bytes) in &records {
        append_bytes(&mut tar, &layout::record(key), bytes)?;
    }
    let mut stats = Stats {
        records: records.len(),
        ..Stats::default()
    };
    for (sha256, (size, who)) in &objects {
        let o = ObjectRef {
            sha256: sha256.clone(),
            size: *size,
        };
        append_object(&mut tar, store, &layout::object(sha256), &o, who)?;
        stats.objects += 1;
        stats.bytes += size;
    }

    let tmp = tar
        .into_inner()
        .context("cannot finish the tar")?
        .into_inner()
        .map_err(|e| e.into_error())
        .context("cannot write the bundle")?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.as_file().sync_all()?;
    tmp.persist(file)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot rename the bundle into {}", file.display()))?;
    sync_dir(dir)?;
    Ok(stats)
}

fn object_ref(bytes: &[u8]) -> ObjectRef {
    ObjectRef {
        sha256: hex::encode(Sha256::digest(bytes)),
        size: bytes.len() as u64,
    }
}

/// A member's header: a regular file, fixed owner, mode and time (deterministic bytes).
fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> Result<()> {
    tar.append_data(&mut header(bytes.len() as u64), path, bytes)
        .with_context(|| format!("cannot write member {path}"))
}

/// Copy object `o` from the store as member `path`, hashing it on the way: an object changed
/// since it was checked fails the export instead of shipping.
fn append_object<W: Write>(
    tar: &mut tar::Builder<W>,
    store: &Store,
    path: &str,
    o: &ObjectRef,
    who: &str,
) -> Result<()> {
    let src = store.object_path(&o.sha256);
    let f =
        File::open(&src).with_context(|| format!("{who}: cannot open object {}", src.display()))?;
    let mut reader = Hashing::new(BufReader::with_capacity(1 << 20, f).take(o.size));
    tar.append_data(&mut header(o.size), path, &mut reader)
        .with_context(|| format!("{who}: cannot copy object {} into the bundle", o.sha256))?;
    let (n, found) = reader.finish();
    if n != o.size || found != o.sha256 {
        bail!(
            "{who}: object {} changed while it was exported ({n} bytes hashing to {found}, \
             {} bytes expected)",
            o.sha256,
            o.size
        );
    }
    Ok(())
}
