//! repro: replicates "Understanding Decoupled and Early Weight Decay" (Bjorck, Weinberger, Gomes,
//! AAAI 2021) as a declarative, content-addressed pipeline. See ARCHITECTURE.md for the code map.

pub mod cli;
pub mod data;
pub mod env;
pub mod metrics;
pub mod nn;
pub mod optim;
pub mod pipeline;
pub mod report;
pub mod runtime;
pub mod store;
pub mod train;
pub mod worker;
