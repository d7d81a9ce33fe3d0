//! Datasets: what a dataset is (files, digests, format), how it is fetched from upstream or a
//! mirror, how archives are safely extracted, generators that write the same upstream formats for
//! offline use, and the torch-free readers of extracted files (the CIFAR binary format, IWSLT'14
//! as fairseq prepares it, Tiny-ImageNet's folders); the readers that build tensors live in
//! `repro-torch`.

pub mod atari_roms;
pub mod cifar;
pub mod extract;
pub mod fetch;
pub mod generate;
pub mod iwslt;
pub mod text;
pub mod tinyimagenet;
pub mod wikitext;

use serde::{Deserialize, Serialize};

/// One file of a dataset as published upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetFile {
    /// File name as stored under `datasets/<dataset>/` and as looked up on a mirror.
    pub name: String,
    /// Upstream URL first, then mirrors, tried in order.
    #[serde(default)]
    pub urls: Vec<String>,
    /// Published md5 (hex), if any.
    #[serde(default)]
    pub md5: Option<String>,
    /// Published or first-verified sha256 (hex), if any.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Size in bytes, if published.
    #[serde(default)]
    pub size: Option<u64>,
}

/// Archive formats the extractor understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArchiveKind {
    /// `.tar.gz` / `.tgz`
    #[serde(rename = "tar.gz")]
    TarGz,
    /// `.zip`
    #[serde(rename = "zip")]
    Zip,
    /// Not an archive: used as is.
    #[serde(rename = "none")]
    None,
}
