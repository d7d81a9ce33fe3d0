//! `repro export` and `repro import`: one tar bundle of a publication.
//!
//! A bundle is a plain (uncompressed) tar whose members are, in this order:
//! - `repro-bundle.json`: the [`BundleManifest`] — the bundle format, the [`Publication`], the
//!   sha256 and size of every record member and every object it holds, so a reader can list and
//!   check the bundle without a store;
//! - `pipeline.yaml`: the publication's pipeline object, for a human opening the tar;
//! - `pipeline.lock.yaml`: the profile's `pipeline.lock` entry, when the publication has one;
//! - `runs/<key>.json`: every record the publication names, as the store writes them;
//! - `objects/sha256/ab/cdef…`: every output of those records and the pipeline object, laid out
//!   as a store (and a remote) is.
//!
//! Uncompressed on purpose: the objects are mostly weights, which do not compress, and a plain
//! tar can be streamed, listed by any `tar`, and cannot expand beyond its own size on import
//! (no decompression bomb to guard against).
//!
//! Export is deterministic (sorted members, mtime 0, uid/gid 0, mode 0644, no user names): the
//! same publication exported twice gives the same bytes. It writes a temp file beside the target,
//! fsyncs it and renames it into place. Every object is checked intact in the store before it is
//! written, and hashed again as it is copied.
//!
//! Import treats the bundle as hostile input. The first member must be the manifest; every other
//! member must be a regular file at exactly one of the paths above and listed in the manifest,
//! once, with exactly its listed size (absolute paths, `..`, links, devices, extension headers,
//! unlisted and duplicate members are refused, naming the member). Objects are hashed as they
//! are staged into a scratch folder of the store; records must hash to their listed digest and
//! their manifest to their key. Nothing enters the store until every member has been checked:
//! then the objects, then the records, then the publication, last.
//!
//! This module holds the manifest, the bundle's constants, the entry points and what export and
//! import share (a hashing reader); `write` writes the tar (export), `read` checks and imports
//! it (import).

mod read;
mod write;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Publication, Stats};
use repro_core::store::Store;
use repro_core::store::record::ObjectRef;

/// The bundle format this repro writes and reads.
pub const BUNDLE_FORMAT: u32 = 1;

/// The first member: what the bundle holds.
pub const MANIFEST: &str = "repro-bundle.json";
const PIPELINE: &str = "pipeline.yaml";
const LOCK: &str = "pipeline.lock.yaml";

/// The most bytes a manifest, a record or the lock entry may have: they are read into memory.
const MAX_METADATA: u64 = 64 << 20;

/// `repro-bundle.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleManifest {
    /// [`BUNDLE_FORMAT`].
    pub bundle: u32,
    pub publication: Publication,
    /// The `pipeline.lock.yaml` member's digest and size, when the publication has a lock entry.
    #[serde(default)]
    pub lock_yaml: Option<ObjectRef>,
    /// Record key → the digest and size of its member `runs/<key>.json`.
    pub records: BTreeMap<String, ObjectRef>,
    /// Object sha256 → size: every member `objects/sha256/ab/cd…`.
    pub objects: BTreeMap<String, u64>,
}

/// Write `publication` with every record and object it names to the tar file `file`.
pub fn export(store: &Store, publication: &Publication, file: &Path) -> Result<Stats> {
    write::export_inner(store, publication, file)
        .with_context(|| format!("cannot export to {}", file.display()))
}

/// Read a bundle into `store`: every digest verified before anything enters the store.
pub fn import(store: &Store, file: &Path) -> Result<(Publication, Stats)> {
    read::import_inner(store, file).with_context(|| format!("cannot import {}", file.display()))
}

/// Read a bundle's manifest (its first member) without a store: what `import` would bring.
pub fn read_manifest(file: &Path) -> Result<BundleManifest> {
    let f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let mut archive = tar::Archive::new(BufReader::new(f));
    let mut entries = archive
        .entries()
        .with_context(|| format!("{} is not a tar file", file.display()))?
        .raw(true);
    read::first_member(&mut entries).with_context(|| format!("cannot read {}", file.display()))
}

/// A reader (or writer) that hashes and counts what passes through it.
struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    n: u64,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            n: 0,
        }
    }

    /// Bytes seen and their sha256 in hex.
    fn finish(self) -> (u64, String) {
        (self.n, hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}
