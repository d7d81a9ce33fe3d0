//! `repro push` and `repro pull`.

use anyhow::Result;

use crate::remote::Remote;
use crate::{Progress, Publication, Stats};
use repro_core::store::Store;

/// Copy every record and object `publication` names from `store` to `remote`, skipping objects
/// the remote already holds, then the publication itself (last: a remote never names what it
/// lacks).
pub fn push(
    store: &Store,
    remote: &Remote,
    publication: &Publication,
    progress: &dyn Fn(Progress),
) -> Result<Stats> {
    let _ = (store, remote, publication, progress);
    anyhow::bail!("push is not implemented yet")
}

/// Bring `profile`'s publication from `remote` into `store`: every object it names that the
/// store lacks (each verified against its sha256 before it enters the store), then the records,
/// then the publication (`Store::write_publication`). `only`: just these run ids (and the
/// generated datasets; the report only comes with the whole profile).
pub fn pull(
    store: &Store,
    remote: &Remote,
    profile: &str,
    only: Option<&std::collections::BTreeSet<String>>,
    progress: &dyn Fn(Progress),
) -> Result<(Publication, Stats)> {
    let _ = (store, remote, profile, only, progress);
    anyhow::bail!("pull is not implemented yet")
}
