//! The stage kinds this build knows, as the engine needs them: name, implementation version,
//! parameter schema and results. Kept apart from the implementations (in `repro-torch`'s `train`,
//! run by the worker) so the `repro` binary links no libtorch and starts in milliseconds.

mod common;
mod lm;
mod rl;
mod sharpness;
mod translate;
mod vision;

pub use common::{
    AdamParams, AdamVariant, Arch, LrSchedule, QNetArch, SeqModel, Suite, UnknownChoice, VARIANTS,
    WdSchedule,
};
pub use lm::{LM, LmParams};
pub use rl::{DQN, DqnParams};
pub use sharpness::{SHARPNESS, SharpnessParams};
pub use translate::{TRANSLATE, TranslateParams};
pub use vision::{VISION, VisionParams};

use common::choice;

use super::stage::StageDecl;

choice! {
    /// Every kind this build knows by name: the worker dispatches on it with an exhaustive
    /// match, so a kind declared here without an implementation does not compile.
    pub enum KindName ("stage kind") {
        Vision = "vision",
        Sharpness = "sharpness",
        Lm = "lm",
        Dqn = "dqn",
        Translate = "translate",
    }
}

impl KindName {
    /// The kind's declaration.
    pub fn decl(self) -> &'static StageDecl {
        match self {
            KindName::Vision => &VISION,
            KindName::Sharpness => &SHARPNESS,
            KindName::Lm => &LM,
            KindName::Dqn => &DQN,
            KindName::Translate => &TRANSLATE,
        }
    }
}

/// Every kind, for lookup by name.
pub static ALL: &[&StageDecl] = &[&VISION, &SHARPNESS, &LM, &DQN, &TRANSLATE];

/// Look a kind up by name.
pub fn kind(name: &str) -> Option<&'static StageDecl> {
    ALL.iter().copied().find(|k| k.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_name_and_its_declaration() {
        let names: Vec<&str> = ALL.iter().map(|k| k.name).collect();
        assert_eq!(names, KindName::NAMES);
        for k in KindName::ALL {
            assert_eq!(k.decl().name, k.name());
            assert!(std::ptr::eq(kind(k.name()).unwrap(), k.decl()));
        }
    }

    /// Every kind's declared defaults, with the required parameters a pipeline must give,
    /// deserialize into its parameter struct, and an undeclared parameter is refused.
    #[test]
    fn declared_defaults_deserialize_into_each_kind_struct() {
        use serde_json::{Map, Value};
        for k in ALL {
            let mut m = Map::new();
            for s in k.params {
                let v = s.default_value().unwrap_or_else(|| match s.ty {
                    crate::pipeline::params::ParamType::Choice(names) => Value::from(names[0]),
                    crate::pipeline::params::ParamType::Str => Value::from("breakout"),
                    other => panic!("{}: no example for required {other:?}", s.name),
                });
                m.insert(s.name.to_string(), s.check(&v).unwrap());
            }
            (k.check_params)(&m).unwrap_or_else(|e| panic!("kind {}: {e}", k.name));
            let mut extra = m.clone();
            extra.insert("not_a_param".into(), Value::from(1));
            assert!((k.check_params)(&extra).is_err(), "kind {}", k.name);
            for s in k.params {
                let mut missing = m.clone();
                missing.remove(s.name);
                assert!(
                    (k.check_params)(&missing).is_err(),
                    "kind {}: the struct does not read `{}`",
                    k.name,
                    s.name
                );
            }
        }
    }

    #[test]
    fn choices_parse_their_names_and_list_them_in_errors() {
        for a in Arch::ALL {
            assert_eq!(Arch::parse(a.name()).unwrap(), a);
            assert_eq!(serde_json::to_value(a).unwrap(), a.name());
        }
        let e = Arch::parse("resnet34").unwrap_err().to_string();
        assert!(
            e.contains("resnet34") && e.contains("small_cnn, resnet18"),
            "{e}"
        );
        assert_eq!(VARIANTS.len(), AdamVariant::ALL.len());
        assert!(WdSchedule::Early.active(1, 2) && !WdSchedule::Late.active(1, 2));
    }
}
