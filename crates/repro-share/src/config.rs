//! Which remote `--remote NAME|URL` means: a URL as it is, else a name from pipeline.yaml's
//! `remotes:` or the user's config file (`$XDG_CONFIG_HOME/repro/config.yaml`, `remotes:` in the
//! same form); with no `--remote`, the only remote declared.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::remote::RemoteSpec;
use repro_core::pipeline::spec::RemoteDecl;

/// Resolve `--remote` (`None`: not given) against the pipeline's remotes and the user's.
pub fn resolve(given: Option<&str>, declared: &BTreeMap<String, RemoteDecl>) -> Result<RemoteSpec> {
    let _ = (given, declared);
    anyhow::bail!("remotes are not implemented yet")
}
