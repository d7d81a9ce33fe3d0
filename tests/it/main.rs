//! The end-to-end tests: each runs the `repro` binary (and through it `repro-worker`) on a small
//! project in a temporary folder. One test binary, torch-free itself; see `common` for the helpers.

mod adam_stages;
mod binaries;
mod cli;
mod cli_manners;
mod common;
mod engine;
mod gpu_check;
mod inspect_runs;
mod kinds;
mod lm_stage;
mod profiles;
mod progress;
mod readme;
mod report;
mod resume;
mod share;
mod share_bundle;
mod slurm;
mod spec_errors;
mod store_trust;
mod vision;
