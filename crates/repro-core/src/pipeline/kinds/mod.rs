//! The stage kinds this build knows, as the engine needs them: name, implementation version,
//! parameter schema and results. Kept apart from the implementations (in `repro-torch`'s `train`,
//! run by the worker) so the `repro` binary links no libtorch and starts in milliseconds.

mod common;
mod lm;
mod rl;
mod sharpness;
mod translate;
mod vision;

pub use common::VARIANTS;
pub use lm::LM;
pub use rl::DQN;
pub use sharpness::SHARPNESS;
pub use translate::TRANSLATE;
pub use vision::VISION;

use super::stage::StageDecl;

/// Every kind, for lookup by name.
pub static ALL: &[&StageDecl] = &[&VISION, &SHARPNESS, &LM, &DQN, &TRANSLATE];

/// Look a kind up by name.
pub fn kind(name: &str) -> Option<&'static StageDecl> {
    ALL.iter().copied().find(|k| k.name == name)
}
