//! Text preprocessing for translation, as fairseq's `prepare-iwslt14.sh` runs it: Moses'
//! tokenizer, lowercasing and corpus cleaning (`moses`), and subword-nmt's joint BPE (`bpe`).

pub mod bpe;
pub mod moses;
