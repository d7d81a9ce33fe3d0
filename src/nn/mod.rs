//! Models, built with tch's `nn` modules.

pub mod small_cnn;
