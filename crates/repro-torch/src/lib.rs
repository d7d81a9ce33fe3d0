//! repro-torch: the worker side of repro, the only crate that links libtorch (through tch). It
//! owns the libtorch runtime switches and the C++ shim (`libtorch`), a checkpoint's contents
//! (`checkpoint`), models (`nn`), optimizers (`optim`), the stage implementations (`train`), RL
//! environments (`games`), the readers that turn datasets into tensors (`data`), the sharpness
//! measures, and the worker process's entry point (`worker`). It takes its inputs from repro-core's protocol types only.

pub mod checkpoint;
pub mod data;
pub mod games;
pub mod libtorch;
pub mod nn;
pub mod optim;
pub mod sharpness;
pub mod train;
pub mod worker;
