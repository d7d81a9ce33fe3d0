//! The pipeline engine: `pipeline.yaml` ([`spec`], read and checked by [`validate`]) → concrete
//! runs ([`plan`], some in fused groups: [`fuse`]) → content addresses ([`crate::store::key`]) → execution against the store,
//! locally ([`executor`]) or through a cluster's queue ([`queue`]), with datasets prepared by
//! [`datasets`], stage kinds declared in [`kinds`] (the engine↔worker protocol in [`stage`],
//! its progress ticks in [`progress`]), the paper's claims as checks in [`claims`], and the lock
//! and verification in [`lockfile`] and [`verify`], what a profile shares with others in
//! [`publish`].

pub mod claims;
pub mod datasets;
pub mod executor;
pub mod fuse;
pub mod kinds;
pub mod locate;
pub mod lockfile;
pub mod params;
pub mod placement;
pub mod plan;
pub mod problem;
pub mod progress;
pub mod publish;
pub mod queue;
pub mod spec;
pub mod stage;
pub mod target;
pub mod validate;
pub mod verify;
pub mod yaml_guard;
pub mod yaml_pos;
