//! Training: the stage implementations (run inside the worker process) and their registry,
//! [`implementation`]. `stage` holds what an implementation sees and is (`StageContext`, the
//! `Stage` trait), `common` what they share (the lr and weight-decay schedules, the Adam family
//! from a kind's parameters, norms), `progress` the ticks their loops send; the kinds: `vision` (with the norm statistics of `norms`),
//! `sharpness`, `lm` (language modelling with the Adam family), `rl` (DQN on MinAtar and Atari
//! with the Adam family) and `translate` (IWSLT'14 De→En with the Adam family). The kinds import
//! `stage` and `common`, never this file, so no file imports one that imports it.

pub mod checkpoint;
pub mod common;
pub mod epochs;
pub mod lm;
pub mod norms;
pub mod progress;
pub mod rl;
pub mod sharpness;
pub mod stage;
pub mod translate;
pub mod vision;

use serde_json::Value;

pub use self::stage::{Stage, StageContext};
use repro_core::pipeline::kinds::KindName;
use repro_core::pipeline::stage::{Outcome, StageDecl};

/// What the worker runs for one kind: its declaration and its typed entry point.
#[derive(Clone, Copy)]
pub struct Implementation {
    pub decl: &'static StageDecl,
    pub run: fn(&StageContext) -> anyhow::Result<Outcome>,
}

/// The implementation of every kind: an exhaustive match, so a kind declared in
/// `repro_core::pipeline::kinds::KindName` without one here does not compile.
pub fn implementation(kind: KindName) -> Implementation {
    fn of<S: Stage>() -> Implementation {
        Implementation {
            decl: S::DECL,
            run: run_typed::<S>,
        }
    }
    match kind {
        KindName::Vision => of::<vision::Vision>(),
        KindName::Sharpness => of::<sharpness::Sharpness>(),
        KindName::Lm => of::<lm::Lm>(),
        KindName::Dqn => of::<rl::Dqn>(),
        KindName::Translate => of::<translate::Translate>(),
    }
}

/// Deserialize the run's parameters into the kind's struct and run it.
fn run_typed<S: Stage>(ctx: &StageContext) -> anyhow::Result<Outcome> {
    use anyhow::Context;
    let p: S::Params = serde_json::from_value(Value::Object(ctx.params.clone()))
        .with_context(|| format!("the parameters of a `{}` run", S::DECL.name))?;
    S::run(ctx, &p)
}

/// Run the implementation of stage kind `kind`.
pub fn run_stage(kind: &str, ctx: &StageContext) -> anyhow::Result<Outcome> {
    let name = KindName::parse(kind)
        .map_err(|e| anyhow::anyhow!("this build has no implementation of stage kind: {e}"))?;
    (implementation(name).run)(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_implementation() {
        for kind in KindName::ALL {
            let imp = implementation(kind);
            assert!(std::ptr::eq(imp.decl, kind.decl()), "{}", kind.name());
        }
    }
}
