//! repro-core's tests, without libtorch: downloads and extraction, the IWSLT preparation and
//! its text tools (Moses, BPE) against their Python originals, BLEU against sacreBLEU, and the seed
//! statistics against scipy, target selection and the pipeline file's lookup, the executor's
//! scheduling through a fake launcher, and the queue executor's loop through a fake backend.

mod bleu;
mod bpe;
mod fetch;
mod fixture;
mod iwslt;
mod moses;
mod queue;
mod scheduler;
mod stats;
mod targets;
