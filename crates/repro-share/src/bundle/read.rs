//! Import: the bundle read as hostile input. Members are classified by path and refused when
//! unsafe, unlisted, duplicated, oversized or mismatched; objects are staged in a scratch folder
//! of the store, and everything is committed to the store only once all of it is verified.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::{BUNDLE_FORMAT, BundleManifest, Hashing, LOCK, MANIFEST, MAX_METADATA, PIPELINE};
use crate::{Publication, Stats};
use repro_core::pipeline::lockfile::LockedProfile;
use repro_core::store::Store;
use repro_core::store::published::{is_sha256, layout};
use repro_core::store::record::{ObjectRef, RunRecord};

/// Paths no bundle member may have, whatever its type: they could name a place outside it.
fn unsafe_path(path: &str) -> Option<&'static str> {
    if path.starts_with('/') {
        Some("an absolute path")
    } else if path.split('/').any(|c| c == "..") {
        Some("a path with `..`, which leaves the bundle")
    } else if path.contains('\\') || path.contains('\0') {
        Some("a path with a backslash or NUL")
    } else {
        None
    }
}

/// What a member's path says it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Member {
    Manifest,
    Pipeline,
    Lock,
    Record(String),
    Object(String),
}

/// A (safe) member's path as one of the bundle's forms, or why it is not one. Directories are
/// not members: those of the layout are allowed (and skipped) by the caller.
fn classify(path: &str) -> Result<Member, String> {
    match path {
        MANIFEST => return Ok(Member::Manifest),
        PIPELINE => return Ok(Member::Pipeline),
        LOCK => return Ok(Member::Lock),
        _ => {}
    }
    if let Some(key) = path
        .strip_prefix("runs/")
        .and_then(|r| r.strip_suffix(".json"))
        && is_sha256(key)
    {
        return Ok(Member::Record(key.to_string()));
    }
    if let Some(rest) = path.strip_prefix("objects/sha256/")
        && let Some((a, b)) = rest.split_once('/')
        && a.len() == 2
        && is_sha256(&format!("{a}{b}"))
    {
        return Ok(Member::Object(format!("{a}{b}")));
    }
    Err(format!(
        "not a bundle path ({MANIFEST}, {PIPELINE}, {LOCK}, runs/<key>.json or \
         objects/sha256/ab/cd…)"
    ))
}

/// Whether a directory entry is one of the layout's folders (another tar may list them).
fn layout_dir(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    matches!(path, "runs" | "objects" | "objects/sha256")
        || path.strip_prefix("objects/sha256/").is_some_and(|a| {
            a.len() == 2
                && a.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

fn entry_kind(t: tar::EntryType) -> &'static str {
    use tar::EntryType as T;
    match t {
        T::Symlink => "a symbolic link",
        T::Link => "a hard link",
        T::Char => "a character device",
        T::Block => "a block device",
        T::Fifo => "a fifo",
        T::Directory => "a directory outside the bundle's layout",
        T::GNUSparse => "a sparse file",
        T::GNULongName | T::GNULongLink | T::XHeader | T::XGlobalHeader => {
            "an extension header (long names and PAX records are not part of a bundle)"
        }
        _ => "not a regular file",
    }
}

/// The member's path as UTF-8 (a refusal otherwise, which shows the bytes).
fn member_path<R: Read>(entry: &tar::Entry<'_, R>) -> Result<String> {
    let bytes = entry.path_bytes();
    match std::str::from_utf8(&bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(_) => bail!(
            "member {}: its path is not UTF-8",
            String::from_utf8_lossy(&bytes)
        ),
    }
}

/// Read the first member, which must be the manifest, and check what it lists.
pub(super) fn first_member<R: Read>(entries: &mut tar::Entries<'_, R>) -> Result<BundleManifest> {
    let mut entry = match entries.next() {
        None => bail!("the bundle is empty: its first member must be {MANIFEST}"),
        Some(e) => e.context("not a tar file")?,
    };
    let path = member_path(&entry)?;
    if path != MANIFEST || !entry.header().entry_type().is_file() {
        bail!(
            "the first member is {path:?}, not {MANIFEST}: not a repro bundle (or not one this \
             repro reads)"
        );
    }
    if entry.size() > MAX_METADATA {
        bail!(
            "member {MANIFEST}: {} bytes, more than the {MAX_METADATA} a manifest may have",
            entry.size()
        );
    }
    let mut bytes = Vec::new();
    (&mut entry)
        .take(MAX_METADATA)
        .read_to_end(&mut bytes)
        .with_context(|| format!("member {MANIFEST}: cannot be read"))?;
    let m: BundleManifest = serde_json::from_slice(&bytes)
        .with_context(|| format!("member {MANIFEST}: not a repro bundle manifest"))?;
    if m.bundle != BUNDLE_FORMAT {
        bail!(
            "member {MANIFEST}: bundle format {} is not supported (this repro reads \
             {BUNDLE_FORMAT})",
            m.bundle
        );
    }
    // The publication's own checks: every key and digest a sha256, a valid profile name.
    Publication::parse(&m.publication.to_json(), &format!("member {MANIFEST}"))?;
    let p = &m.publication;
    let named: BTreeSet<&str> = p.record_keys().into_iter().collect();
    let listed: BTreeSet<&str> = m.records.keys().map(String::as_str).collect();
    if let Some(k) = named.difference(&listed).next() {
        bail!("member {MANIFEST}: the publication names record {k}, which it does not list");
    }
    if let Some(k) = listed.difference(&named).next() {
        bail!("member {MANIFEST}: it lists record {k}, which the publication does not name");
    }
    for (key, r) in &m.records {
        if !is_sha256(&r.sha256) {
            bail!("member {MANIFEST}: record {key}'s digest is not a sha256");
        }
        if r.size > MAX_METADATA {
            bail!(
                "member {MANIFEST}: record {key} of {} bytes is larger than a record may be",
                r.size
            );
        }
    }
    for sha256 in m.objects.keys() {
        if !is_sha256(sha256) {
            bail!("member {MANIFEST}: object {sha256:?} is not named by a sha256");
        }
    }
    if m.objects.get(&p.pipeline.sha256) != Some(&p.pipeline.size) {
        bail!(
            "member {MANIFEST}: the pipeline object {} ({} bytes) is not listed with its size",
            p.pipeline.sha256,
            p.pipeline.size
        );
    }
    match (&p.lock, &m.lock_yaml) {
        (Some(_), None) => bail!("member {MANIFEST}: the publication has a lock entry, unlisted"),
        (None, Some(_)) => bail!("member {MANIFEST}: it lists {LOCK}, but there is no lock entry"),
        (_, Some(l)) if !is_sha256(&l.sha256) || l.size > MAX_METADATA => {
            bail!("member {MANIFEST}: {LOCK}'s digest or size is not valid")
        }
        _ => {}
    }
    Ok(m)
}

/// What an import has checked so far, before anything enters the store.
struct Staged {
    /// Objects staged in the scratch folder, by sha256 (their file there is named by it).
    copied: BTreeMap<String, u64>,
    /// Objects the store already holds intact.
    present: BTreeMap<String, u64>,
    records: BTreeMap<String, RunRecord>,
}

pub(super) fn import_inner(store: &Store, file: &Path) -> Result<(Publication, Stats)> {
    let _held = store.lock_shared()?;
    let f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, f));
    // Raw: extension headers (GNU long names, PAX) come back as members and are refused; no
    // bundle needs them, and the tar crate would read a hostile one whole into memory.
    let mut entries = archive.entries().context("not a tar file")?.raw(true);
    let manifest = first_member(&mut entries)?;
    let p = &manifest.publication;
    let scratch = store.scratch("import-")?;

    let mut seen: BTreeSet<Member> = BTreeSet::from([Member::Manifest]);
    let mut staged = Staged {
        copied: BTreeMap::new(),
        present: BTreeMap::new(),
        records: BTreeMap::new(),
    };
    let mut last = MANIFEST.to_string();
    for entry in entries {
        let mut entry = entry.with_context(|| format!("the tar is damaged after member {last}"))?;
        let path = member_path(&entry)?;
        let refuse = |why: &str| anyhow::anyhow!("member {path}: {why}");
        if let Some(why) = unsafe_path(&path) {
            return Err(refuse(why));
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            if layout_dir(&path) {
                last = path;
                continue;
            }
            return Err(refuse(entry_kind(kind)));
        }
        let member = classify(&path).map_err(|why| refuse(&why))?;
        if !kind.is_file() {
            return Err(refuse(entry_kind(kind)));
        }
        if !seen.insert(member.clone()) {
            return Err(refuse("a second member of this name"));
        }
        // The listed size and digest of the member.
        let (size, sha256) = match &member {
            Member::Manifest => return Err(refuse("a second manifest")),
            Member::Pipeline => (p.pipeline.size, p.pipeline.sha256.clone()),
            Member::Lock => match &manifest.lock_yaml {
                Some(l) => (l.size, l.sha256.clone()),
                None => return Err(refuse("not listed in the manifest")),
            },
            Member::Record(key) => match manifest.records.get(key) {
                Some(r) => (r.size, r.sha256.clone()),
                None => return Err(refuse("a record the manifest does not list")),
            },
            Member::Object(sha256) => match manifest.objects.get(sha256) {
                Some(size) => (*size, sha256.clone()),
                None => return Err(refuse("an object the manifest does not list")),
            },
        };
        if entry.size() != size {
            return Err(refuse(&format!(
                "{} bytes, but the manifest lists {size}",
                entry.size()
            )));
        }
        let mismatch = |found: &str| {
            refuse(&format!(
                "its bytes hash to sha256 {found}, but {sha256} was expected"
            ))
        };
        match &member {
            Member::Object(sha256) => {
                let o = ObjectRef {
                    sha256: sha256.clone(),
                    size,
                };
                let present = store.check_object(&o).is_intact();
                // An object the store holds intact is hashed, not written.
                let mut out: Box<dyn Write> = if present {
                    Box::new(io::sink())
                } else {
                    let dest = scratch.path().join(sha256);
                    Box::new(BufWriter::with_capacity(
                        1 << 20,
                        File::create(&dest)
                            .with_context(|| format!("cannot create {}", dest.display()))?,
                    ))
                };
                let mut reader = Hashing::new((&mut entry).take(size));
                io::copy(&mut reader, &mut out)
                    .with_context(|| format!("member {path}: cannot be read or staged"))?;
                out.flush()
                    .with_context(|| format!("member {path}: cannot be staged"))?;
                drop(out);
                let (n, found) = reader.finish();
                if n != size {
                    return Err(refuse(&format!("truncated: {n} of {size} bytes")));
                }
                if &found != sha256 {
                    return Err(mismatch(&found));
                }
                if present {
                    staged.present.insert(sha256.clone(), size);
                } else {
                    staged.copied.insert(sha256.clone(), size);
                }
            }
            Member::Pipeline => {
                let mut reader = Hashing::new((&mut entry).take(size));
                io::copy(&mut reader, &mut io::sink())
                    .with_context(|| format!("member {path}: cannot be read"))?;
                let (n, found) = reader.finish();
                if n != size || found != sha256 {
                    return Err(mismatch(&found));
                }
            }
            Member::Lock | Member::Record(_) => {
                let mut bytes = Vec::new();
                (&mut entry)
                    .take(size)
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("member {path}: cannot be read"))?;
                let found = hex::encode(Sha256::digest(&bytes));
                if bytes.len() as u64 != size || found != sha256 {
                    return Err(mismatch(&found));
                }
                if let Member::Record(key) = &member {
                    let r = RunRecord::parse_named(&bytes, key).map_err(|why| refuse(&why))?;
                    staged.records.insert(key.clone(), r);
                } else {
                    let lock: LockedProfile = serde_yaml::from_slice(&bytes)
                        .map_err(|e| refuse(&format!("not a pipeline.lock entry: {e}")))?;
                    if Some(&lock) != p.lock.as_ref() {
                        return Err(refuse("not the publication's lock entry"));
                    }
                }
            }
            // Refused above, before its bytes.
            Member::Manifest => {}
        }
        last = path;
    }

    // Everything listed must have been there.
    let mut listed: Vec<(Member, String)> = vec![(Member::Pipeline, PIPELINE.into())];
    if manifest.lock_yaml.is_some() {
        listed.push((Member::Lock, LOCK.into()));
    }
    listed.extend(
        manifest
            .records
            .keys()
            .map(|k| (Member::Record(k.clone()), layout::record(k))),
    );
    listed.extend(
        manifest
            .objects
            .keys()
            .map(|s| (Member::Object(s.clone()), layout::object(s))),
    );
    for (member, path) in &listed {
        if !seen.contains(member) {
            bail!("member {path}: listed in the manifest, but the bundle does not hold it");
        }
    }
    // Every record's outputs are in the bundle, and every object is some record's output (or
    // the pipeline): the store gets no record without its objects, and no stray object.
    let mut named: BTreeSet<&str> = BTreeSet::from([p.pipeline.sha256.as_str()]);
    for (key, r) in &staged.records {
        for (name, o) in &r.outputs {
            if manifest.objects.get(&o.sha256) != Some(&o.size) {
                bail!(
                    "member {}: output {name} is object {} of {} bytes, which the bundle does \
                     not hold",
                    layout::record(key),
                    o.sha256,
                    o.size
                );
            }
            named.insert(&o.sha256);
        }
    }
    if let Some(stray) = manifest
        .objects
        .keys()
        .find(|s| !named.contains(s.as_str()))
    {
        bail!(
            "member {}: no record of the bundle names this object",
            layout::object(stray)
        );
    }

    // Verified: now into the store, objects first, records next, the publication last.
    let mut stats = Stats::default();
    for (sha256, size) in &staged.copied {
        let o = ObjectRef {
            sha256: sha256.clone(),
            size: *size,
        };
        store.put_verified(&scratch.path().join(sha256), &o)?;
        stats.objects += 1;
        stats.bytes += size;
    }
    for size in staged.present.values() {
        stats.objects_present += 1;
        stats.bytes_present += size;
    }
    for (key, r) in &staged.records {
        // A record of the same key is kept: the store's own is not replaced by another
        // machine's (same key: same parameters, inputs and environment).
        match store.read_record(key) {
            Ok(Some(mine)) => {
                if mine.outputs != r.outputs {
                    tracing::warn!(
                        "record {key} ({}) is already in the store with other outputs: the \
                         store's is kept",
                        r.run_id
                    );
                }
            }
            _ => {
                store.write_record(r)?;
                stats.records += 1;
            }
        }
    }
    store.write_publication(p)?;
    let _ = store.save_stat();
    Ok((manifest.publication, stats))
}
