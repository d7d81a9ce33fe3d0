//! The values a `where:` entry may take, and the `useful` selector among them: the "useful λ" of
//! docs/paper.md#c10 (C8–C10 are judged at the largest λ at which AdamW still trains about as
//! well as its own best, per seed; that reading is ours). This module owns the schema and its
//! parsing, with the YAML sub-path of each problem so validation can place it; `report::select`
//! resolves it on the runs.
//!
//! ```yaml
//! where:
//!   weight_decay: {useful: {of: {variant: adamw}, by: valid_loss@min, within: 0.05,
//!                           pick: min, worse: {variant: adam_l2}}}
//! ```

use serde_json::{Map, Value};

use super::arm::{Arm, Pick};

/// One `where:` entry's value.
#[derive(Debug, Clone, PartialEq)]
pub enum WhereValue {
    /// A coordinate value, read as written (`adam_l2`, `0.1`).
    Exact(Value),
    /// `max` / `min`: the largest / smallest value of a numeric axis among the observations.
    Extreme(Pick),
    /// `{useful: …}`: a value per seed, chosen on the runs (see [`UsefulSpec`]).
    Useful(UsefulSpec),
}

/// `useful: {of, by, within, pick?, worse?}` on a numeric axis (λ): per seed, among the
/// non-diverged runs of arm `of`, the best `by` value at each value of the axis (best over the
/// other axes `where` does not fix, normally lr); the useful value is the largest one whose best
/// is within `within` of the seed's best over all of them. A seed whose useful value is 0 is
/// dropped (no decay is no λ to judge decay at). With `worse`, that arm's best `by` at the useful
/// value, averaged over seeds, must be worse than `of`'s, else the check is not checkable (the
/// contrast it is about is absent).
///
/// `by` is a model-selection metric: it must never be a test-set metric (a choice made on the
/// test set would leak into every number read there). Nothing enforces that; the claims in
/// `pipeline.yaml` use validation metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct UsefulSpec {
    /// The arm whose runs choose the value (`{variant: adamw}`).
    pub of: Arm,
    /// `NAME@REDUCER`, a declared metric of the kind.
    pub by: String,
    pub within: Within,
    /// Which `by` value is best; default `min`.
    pub pick: Pick,
    /// An arm that must be worse than `of` at the chosen value for the check to mean anything.
    pub worse: Option<Arm>,
}

/// How far from a seed's best a value may be and still count as about as good.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Within {
    /// In the metric's units.
    Absolute(f64),
    /// A fraction of |best| (written `"10%"`, kept as 0.1).
    Relative(f64),
}

impl Within {
    /// The tolerance around `best`.
    pub fn tolerance(self, best: f64) -> f64 {
        match self {
            Within::Absolute(x) => x,
            Within::Relative(f) => f * best.abs(),
        }
    }
}

impl std::fmt::Display for Within {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Within::Absolute(x) => write!(f, "{x}"),
            Within::Relative(r) => write!(f, "{}%", r * 100.0),
        }
    }
}

impl UsefulSpec {
    /// The selector in words, for the measured line and the test column:
    /// `by valid_loss@min of variant=adamw within 0.05`.
    pub fn words(&self) -> String {
        let pick = match self.pick {
            Pick::Min => String::new(),
            Pick::Max => " (largest best)".into(),
        };
        format!(
            "by {}{pick} of {} within {}",
            self.by,
            arm_words(&self.of),
            self.within
        )
    }
}

/// `variant=adamw` (`k=v,…` in key order).
pub fn arm_words(a: &Arm) -> String {
    a.iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            _ => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A problem in a `where:` value: the YAML sub-path below the entry (`""`: the entry itself,
/// `"useful.within"`) and the message.
pub type Problem = (String, String);

const KEYS: &str = "of, by, within, pick, worse";

impl WhereValue {
    /// Read one `where:` value. Problems name their sub-path; the first one stops the parse.
    pub fn parse(v: &Value) -> Result<WhereValue, Problem> {
        match v {
            Value::String(s) if s == "max" => Ok(WhereValue::Extreme(Pick::Max)),
            Value::String(s) if s == "min" => Ok(WhereValue::Extreme(Pick::Min)),
            Value::Object(m) => {
                let bad_shape = || {
                    (
                        String::new(),
                        format!(
                            "a map in `where` must be `{{useful: {{{KEYS}}}}}`, got keys {}",
                            m.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    )
                };
                match (m.len(), m.get("useful")) {
                    (1, Some(Value::Object(u))) => parse_useful(u).map(WhereValue::Useful),
                    (1, Some(_)) => {
                        Err(("useful".into(), format!("`useful` takes a map of {KEYS}")))
                    }
                    _ => Err(bad_shape()),
                }
            }
            _ => Ok(WhereValue::Exact(v.clone())),
        }
    }

    /// The useful selector, if this is one.
    pub fn useful(&self) -> Option<&UsefulSpec> {
        match self {
            WhereValue::Useful(u) => Some(u),
            _ => None,
        }
    }
}

fn parse_useful(u: &Map<String, Value>) -> Result<UsefulSpec, Problem> {
    let at = |k: &str| format!("useful.{k}");
    for k in u.keys() {
        if !KEYS.split(", ").any(|x| x == k) {
            return Err((
                at(k),
                format!("unknown key `{k}` in `useful`; valid: {KEYS}"),
            ));
        }
    }
    let arm = |k: &str| -> Result<Option<Arm>, Problem> {
        match u.get(k) {
            None => Ok(None),
            Some(Value::Object(a)) if !a.is_empty() => Ok(Some(
                a.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            )),
            Some(_) => Err((
                at(k),
                format!("`useful.{k}` is an arm: a map of coordinates, e.g. {{variant: adamw}}"),
            )),
        }
    };
    let missing = |k: &str| (String::from("useful"), format!("`useful` needs `{k}`"));
    let of = arm("of")?.ok_or_else(|| missing("of"))?;
    let worse = arm("worse")?;
    let by = match u.get("by") {
        None => return Err(missing("by")),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err((
                at("by"),
                "`useful.by` is a metric, NAME@REDUCER (e.g. valid_loss@min)".into(),
            ));
        }
    };
    let within = match u.get("within") {
        None => return Err(missing("within")),
        Some(w) => parse_within(w).map_err(|msg| (at("within"), msg))?,
    };
    let pick = match u.get("pick").map(|p| p.as_str()) {
        None | Some(Some("min")) => Pick::Min,
        Some(Some("max")) => Pick::Max,
        Some(_) => return Err((at("pick"), "`useful.pick` is `min` or `max`".into())),
    };
    Ok(UsefulSpec {
        of,
        by,
        within,
        pick,
        worse,
    })
}

fn parse_within(w: &Value) -> Result<Within, String> {
    let bad = || {
        format!(
            "`useful.within` must be a finite number ≥ 0 in the metric's units, or a percentage \
             of the best like \"10%\"; got {w}"
        )
    };
    match w {
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => Ok(Within::Absolute(x)),
            _ => Err(bad()),
        },
        Value::String(s) => match s.trim().strip_suffix('%').map(|p| p.trim().parse::<f64>()) {
            Some(Ok(p)) if p.is_finite() && p >= 0.0 => Ok(Within::Relative(p / 100.0)),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn useful_parses_with_defaults_and_locates_problems() {
        let v = json!({"useful": {"of": {"variant": "adamw"}, "by": "valid_loss@min", "within": "10%"}});
        let WhereValue::Useful(u) = WhereValue::parse(&v).unwrap() else {
            panic!("not useful")
        };
        assert_eq!(u.within, Within::Relative(0.1));
        assert_eq!(u.pick, Pick::Min);
        assert_eq!(u.worse, None);
        assert!((u.within.tolerance(-4.0) - 0.4).abs() < 1e-12);
        assert_eq!(u.words(), "by valid_loss@min of variant=adamw within 10%");
        assert_eq!(
            WhereValue::parse(&json!("max")).unwrap(),
            WhereValue::Extreme(Pick::Max)
        );
        assert_eq!(
            WhereValue::parse(&json!(0.1)).unwrap(),
            WhereValue::Exact(json!(0.1))
        );
        let err = |v: Value| WhereValue::parse(&v).unwrap_err();
        let (p, m) = err(
            json!({"useful": {"of": {"variant": "adamw"}, "by": "x@min", "within": 1, "tol": 2}}),
        );
        assert_eq!(p, "useful.tol");
        assert!(m.contains("unknown key `tol`"), "{m}");
        let (p, m) =
            err(json!({"useful": {"of": {"variant": "adamw"}, "by": "x@min", "within": "ten"}}));
        assert_eq!(p, "useful.within");
        assert!(m.contains("\"10%\""), "{m}");
        let (p, _) =
            err(json!({"useful": {"of": {"variant": "adamw"}, "by": "x@min", "within": -1}}));
        assert_eq!(p, "useful.within");
        let (p, m) = err(json!({"useful": {"by": "x@min", "within": 1}}));
        assert_eq!((p.as_str(), m.as_str()), ("useful", "`useful` needs `of`"));
        let (p, _) = err(json!({"usefull": {}}));
        assert_eq!(p, "");
    }
}
