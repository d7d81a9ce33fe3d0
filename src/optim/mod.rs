//! Optimizers over tch tensors, written out so their semantics are ours to state and test against
//! torch.optim: SGD with momentum, and the Adam family of docs/paper.md#e7 (Adam with l2, AdamW and
//! three variants of where the l2 gradient enters) with the E8 drown-out diagnostic.

pub mod adam;
pub mod sgd;
