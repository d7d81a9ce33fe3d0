mod bleu;
mod bpe;
mod fetch;
mod iwslt;
mod moses;
mod stats;
