//! The words a check selects runs with: an [`Arm`] (grid coordinates) and which extreme is
//! best ([`Pick`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Grid coordinates selecting one arm (`{schedule: early}`); seeds are the replicates.
pub type Arm = BTreeMap<String, Value>;

/// Whether the smallest or the largest value is best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    Min,
    Max,
}

impl Pick {
    pub fn word(self) -> &'static str {
        match self {
            Pick::Min => "min",
            Pick::Max => "max",
        }
    }
}
