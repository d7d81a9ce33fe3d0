//! Optimizers over tch tensors, written out so their semantics are ours to state and test against
//! torch.optim: SGD with momentum, and the Adam family of docs/paper.md#e7 (Adam with l2, AdamW and
//! five variants of where the l2 gradient enters) and, in `drown_out`, the E8 drown-out diagnostic;
//! `stacked` is the same family for a fused group's stacked parameters (with its diagnostic in
//! `stacked_drown_out`).

pub mod adam;
pub mod drown_out;
pub mod sgd;
pub mod stacked;
mod stacked_drown_out;
