//! Dataset readers that build tensors: image datasets by format (`images`), the batch loader
//! with its augmentation (`loader`) and the word-LM's bptt windows over a WikiText
//! token stream (`bptt`). File formats,
//! fetching and extraction are repro-core's (`repro_core::data`).

pub mod bptt;
pub mod images;
pub mod loader;
