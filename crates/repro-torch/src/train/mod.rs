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

pub use self::stage::{Fused, MemberContext, Stage, StageContext};
use repro_core::pipeline::kinds::KindName;
use repro_core::pipeline::stage::{Member, Outcome, StageDecl};

/// What the worker runs for one kind: its declaration and its typed entry points.
#[derive(Clone, Copy)]
pub struct Implementation {
    pub decl: &'static StageDecl,
    pub run: fn(&StageContext) -> anyhow::Result<Outcome>,
    /// A fused group's entry point, for a kind whose declaration is `fusable`.
    pub run_fused: Option<RunFused>,
}

/// A fused group's typed entry point: the group's context and its members.
pub type RunFused = fn(&StageContext, &[Member]) -> anyhow::Result<Vec<Outcome>>;

/// The implementation of every kind: an exhaustive match, so a kind declared in
/// `repro_core::pipeline::kinds::KindName` without one here does not compile.
pub fn implementation(kind: KindName) -> Implementation {
    fn of<S: Stage>() -> Implementation {
        Implementation {
            decl: S::DECL,
            run: run_typed::<S>,
            run_fused: None,
        }
    }
    fn fusable<S: Fused>() -> Implementation {
        Implementation {
            run_fused: Some(run_fused_typed::<S>),
            ..of::<S>()
        }
    }
    match kind {
        KindName::Vision => of::<vision::Vision>(),
        KindName::Sharpness => of::<sharpness::Sharpness>(),
        KindName::Lm => fusable::<lm::Lm>(),
        KindName::Dqn => fusable::<rl::Dqn>(),
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

/// Deserialize each member's parameters into the kind's struct and run the group.
fn run_fused_typed<S: Fused>(
    ctx: &StageContext,
    members: &[Member],
) -> anyhow::Result<Vec<Outcome>> {
    use anyhow::Context;
    let mut typed = Vec::new();
    for m in members {
        let p: S::Params = serde_json::from_value(Value::Object(m.params.clone()))
            .with_context(|| format!("the parameters of `{}` run {}", S::DECL.name, m.run_id))?;
        let member = MemberContext {
            run_id: &m.run_id,
            out_dir: m.out_dir.clone(),
        };
        typed.push((member, p));
    }
    S::run_fused(ctx, &typed)
}

/// Run the implementation of stage kind `kind`: one run, or with `members` a fused group
/// (one outcome per run either way).
pub fn run_stage(
    kind: &str,
    ctx: &StageContext,
    members: &[Member],
) -> anyhow::Result<Vec<Outcome>> {
    let name = KindName::parse(kind)
        .map_err(|e| anyhow::anyhow!("this build has no implementation of stage kind: {e}"))?;
    let imp = implementation(name);
    if members.is_empty() {
        return Ok(vec![(imp.run)(ctx)?]);
    }
    let fused = imp.run_fused.ok_or_else(|| {
        anyhow::anyhow!(
            "this build cannot train `{kind}` runs as a fused group (run with --fuse 1)"
        )
    })?;
    fused(ctx, members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_implementation() {
        for kind in KindName::ALL {
            let imp = implementation(kind);
            assert!(std::ptr::eq(imp.decl, kind.decl()), "{}", kind.name());
            // The engine groups runs only of kinds the worker can train fused.
            assert_eq!(
                imp.decl.fusable.is_some(),
                imp.run_fused.is_some(),
                "{}",
                kind.name()
            );
        }
    }
}
