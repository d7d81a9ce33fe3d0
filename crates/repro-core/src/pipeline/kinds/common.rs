//! What the kinds' declarations share: the constructor of a plain metric declaration and the
//! Adam family's variant names.

use serde_json::{Map, Value};

use crate::pipeline::stage::MetricDecl;

pub const fn metric(
    name: &'static str,
    label: &'static str,
    table: Option<&'static str>,
) -> MetricDecl {
    MetricDecl {
        name,
        label,
        table,
        derived: None,
        curve: None,
    }
}

pub fn number(row: &Map<String, Value>, k: &str) -> Option<f64> {
    row.get(k).and_then(Value::as_f64)
}

/// Train minus test accuracy of an epoch row (train accuracy as measured during the epoch).
pub fn vision_gap(row: &Map<String, Value>) -> Option<f64> {
    Some(number(row, "train_acc")? - number(row, "test_acc")?)
}

/// The Adam family's variant names (`optim::adam::Variant::names`, which a test holds this list
/// equal to), shared with the translate and dqn kinds.
pub const VARIANTS: &[&str] = &[
    "adam_l2",
    "adamw",
    "l2_in_m",
    "l2_in_v",
    "adaptive_decoupled",
    "l2_out_of_m",
    "adaptive_decoupled_stable",
];
