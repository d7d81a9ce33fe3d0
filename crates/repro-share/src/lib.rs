//! Sharing a profile's results without training them again: `repro push`/`pull` between the
//! store and a remote laid out as a store is (`runs/<key>.json`, `objects/sha256/ab/cd…`,
//! `published/<profile>.json`, written last), and `repro export`/`import` of one self-describing
//! tar bundle. Both move exactly the records and objects a [`Publication`] names, verify every
//! object's sha256 before it enters a store, and write atomically.
//!
//! - [`remote`] opens a remote by URL (`file://`, `s3://`, `https://` read-only) through the
//!   `object_store` crate; [`config`] resolves `--remote NAME|URL` against pipeline.yaml's
//!   `remotes:` and the user's config file;
//! - [`transfer`] pushes and pulls (a set difference of content addresses; an interrupted pull
//!   resumes where it stopped, since every object lands whole or not at all);
//! - [`bundle`] writes and reads the tar bundle.
//!
//! No libtorch: the crate graph keeps it beside repro-report, under the command line.

pub mod bundle;
pub mod config;
pub mod remote;
pub mod transfer;

pub use repro_core::store::published::Publication;

/// What a push, pull, export or import moved, and what it found already there.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Run, dataset and report records written to the other side.
    pub records: usize,
    /// Objects copied, and their bytes.
    pub objects: usize,
    pub bytes: u64,
    /// Objects the other side already held intact (not copied), and their bytes.
    pub objects_present: usize,
    pub bytes_present: u64,
}

/// Where a transfer stands, for a progress bar: objects and bytes done of the total to copy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub objects_done: usize,
    pub objects_total: usize,
    pub bytes_done: u64,
    pub bytes_total: u64,
}
