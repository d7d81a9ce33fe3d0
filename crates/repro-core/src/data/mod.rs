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

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

crate::choice::choice! {
    /// The on-disk layouts the readers understand, as `format:` names them in pipeline.yaml.
    /// Adding one: a variant here, its reader, and the kinds that read it list it in
    /// `dataset_formats`.
    pub enum Format ("dataset format") {
        /// CIFAR-10's binary version (`cifar`).
        Cifar10Binary = "cifar10-binary",
        /// CIFAR-100's binary version (`cifar`).
        Cifar100Binary = "cifar100-binary",
        /// Tiny-ImageNet's folders (`tinyimagenet`).
        TinyimagenetFolder = "tinyimagenet-folder",
        /// WikiText's tokenized splits (`wikitext`).
        WikitextTokens = "wikitext-tokens",
        /// IWSLT'14 de-en as fairseq's prepare-iwslt14.sh leaves it (`iwslt`).
        Iwslt14DeEn = "iwslt14-de-en",
        /// Atari ROMs in an extracted ale-py wheel (`atari_roms`).
        AtariRoms = "atari-roms",
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An extracted dataset as a run reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetView {
    pub name: String,
    pub format: Format,
    /// Folder holding the extracted upstream layout.
    pub root: PathBuf,
}

/// One file of a dataset as published upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetFile {
    /// File name as stored under `datasets/<dataset>/` and as looked up on a mirror.
    pub name: String,
    /// URLs tried in order (the upstream one first, then its copies), after any `--mirror` or
    /// `REPRO_MIRROR` folder or base URL.
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

#[cfg(test)]
mod tests {
    use super::Format;

    #[test]
    fn format_names_are_their_serde_names() {
        for f in Format::ALL {
            let json = serde_json::to_value(f).unwrap();
            assert_eq!(json, f.name(), "{f:?}");
            assert_eq!(serde_json::from_value::<Format>(json).unwrap(), f);
        }
        assert_eq!(Format::parse("iwslt14-de-en").unwrap(), Format::Iwslt14DeEn);
    }
}
