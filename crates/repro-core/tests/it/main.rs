//! repro-core's tests, without libtorch: downloads and extraction, the IWSLT preparation and
//! its text tools (Moses, BPE) against their Python originals, BLEU against sacreBLEU, and the seed
//! statistics against scipy, and the executor's scheduling through a fake launcher.

mod bleu;
mod bpe;
mod fetch;
mod iwslt;
mod moses;
mod scheduler;
mod stats;
