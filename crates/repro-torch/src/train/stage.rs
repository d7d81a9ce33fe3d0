//! What a stage implementation sees and is: the [`StageContext`] it runs in and the [`Stage`]
//! trait that pairs a kind's declaration, parameter struct and `run` by type; for a kind that
//! trains fused groups, the [`Fused`] trait and what each member is ([`MemberContext`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use repro_core::data::DatasetView;
use repro_core::pipeline::stage::{Outcome, StageDecl, UpstreamRun};

/// Everything a stage may read while it runs.
pub struct StageContext<'a> {
    pub run_id: &'a str,
    pub params: &'a Map<String, Value>,
    pub datasets: &'a BTreeMap<String, DatasetView>,
    pub upstream: &'a [UpstreamRun],
    /// Empty folder for the outputs; every file left here becomes an output.
    pub out_dir: PathBuf,
    pub device: tch::Device,
    /// The profile's precision options this kind applies (see [`repro_core::runtime::Precision`]).
    pub precision: repro_core::runtime::Precision,
    /// Where progress ticks go (see [`super::progress::Ticker`]).
    pub progress: super::progress::ProgressOut<'a>,
    /// Where the run's checkpoints go (see [`super::checkpoint`]); `None`: the stage does not save any.
    pub checkpoints: Option<repro_core::store::work::Checkpoints>,
}

/// A stage kind's implementation, paired with its declaration by type: the declaration in
/// repro-core's `kinds`, the parameter struct declared beside it, and `run`.
pub trait Stage {
    /// The kind's parameters (`kinds::X::XParams`), deserialized once from the resolved map.
    type Params: serde::de::DeserializeOwned;
    /// The kind's declaration.
    const DECL: &'static StageDecl;
    /// Run one stage.
    fn run(ctx: &StageContext, p: &Self::Params) -> anyhow::Result<Outcome>;
}

/// One run of a fused group, as the group's implementation sees it.
pub struct MemberContext<'a> {
    pub run_id: &'a str,
    /// Its own empty folder for its outputs (inside the group's `out_dir`).
    pub out_dir: PathBuf,
}

/// A kind that can train several runs as one stacked model (its declaration's `fusable`).
pub trait Fused: Stage {
    /// Train `members` (in position order, each with its parameters) together. `ctx` is the
    /// group's: its checkpoints hold the whole group's state, its `out_dir` holds the members'
    /// folders, its `params` and `run_id` are the first member's. One outcome per member.
    fn run_fused(
        ctx: &StageContext,
        members: &[(MemberContext, Self::Params)],
    ) -> anyhow::Result<Vec<Outcome>>;
}
