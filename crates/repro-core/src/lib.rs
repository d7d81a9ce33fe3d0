//! repro-core: the engine of repro, with no libtorch in its crate graph. It owns the schema of
//! `pipeline.yaml` and its checks, planning and content-address keys, the store, datasets
//! (fetch, extraction, offline generators, the torch-free readers), the engine↔worker protocol
//! (`pipeline::stage`), the executors that start workers, and the seed statistics the report
//! uses. See ARCHITECTURE.md for the code map.

pub mod choice;
pub mod data;
pub mod metrics;
pub mod pipeline;
pub mod runtime;
pub mod store;
