//! repro-torch's tests, the one integration binary that links libtorch: models, optimizers,
//! the loader, the sharpness measures and the RL environments against PyTorch and the reference
//! packages (tests/python/), and the Atari preprocessing and ROM checks.

mod alone;
mod atari;
mod drown_out;
mod fused_dqn;
mod fused_lm;
mod lm_model;
mod loader;
mod minatar;
mod models;
mod mt_model;
mod optim;
mod rl;
mod sharpness;
mod stacked_adam;
mod stacked_dqn;
mod stacked_lm;
mod wikitext;
