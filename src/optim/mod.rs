//! Optimizers over tch tensors, written out so their semantics are ours to state and test
//! against torch.optim: SGD with momentum now, the Adam family (SPEC.md E7) beside it.

pub mod sgd;
