//! Run keys: the sha256 of a canonical JSON manifest holding everything that determines a run's
//! result (stage kind and version, resolved parameters, input digests, the key-relevant
//! environment, the pipeline salt), and plain-language diffs between two manifests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::hash::sha256_bytes;

/// What a run key is made of. Things that do not change results (log level, progress bars,
/// output paths, host name) are deliberately absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub salt: String,
    pub kind: String,
    pub kind_version: u32,
    pub params: Map<String, Value>,
    /// Input name (`dataset:NAME`, `run:RUN_ID`) → file name → sha256.
    pub inputs: BTreeMap<String, BTreeMap<String, String>>,
    /// Key-relevant environment: libtorch version, device class, threads, determinism flags.
    pub env: BTreeMap<String, Value>,
}

impl Manifest {
    /// The run key: sha256 of the canonical JSON.
    pub fn key(&self) -> String {
        let v = serde_json::to_value(self).unwrap_or(Value::Null);
        sha256_bytes(canonical_json(&v).as_bytes())
    }
}

/// JSON with object keys sorted at every level and no insignificant white space.
pub fn canonical_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            _ => v.clone(),
        }
    }
    sorted(v).to_string()
}

/// Why `new` differs from `old`, one line per changed component, e.g.
/// "parameter lr 0.1→0.05", "input dataset:cifar10 changed", "libtorch 2.11.0→2.13.0".
pub fn diff(old: &Manifest, new: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    if old.salt != new.salt {
        out.push(format!("salt {:?}→{:?}", old.salt, new.salt));
    }
    if old.kind != new.kind || old.kind_version != new.kind_version {
        out.push(format!(
            "stage {} v{}→{} v{}",
            old.kind, old.kind_version, new.kind, new.kind_version
        ));
    }
    for (k, change) in map_changes(&old.params, &new.params) {
        out.push(format!("parameter {k} {change}"));
    }
    let names: std::collections::BTreeSet<&String> =
        old.inputs.keys().chain(new.inputs.keys()).collect();
    for n in names {
        match (old.inputs.get(n), new.inputs.get(n)) {
            (Some(a), Some(b)) if a != b => out.push(format!("input {n} changed")),
            (None, Some(_)) => out.push(format!("input {n} added")),
            (Some(_), None) => out.push(format!("input {n} removed")),
            _ => {}
        }
    }
    let old_env: Map<String, Value> = old.env.clone().into_iter().collect();
    let new_env: Map<String, Value> = new.env.clone().into_iter().collect();
    for (k, change) in map_changes(&old_env, &new_env) {
        out.push(format!("{k} {change}"));
    }
    out
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        _ => v.to_string(),
    }
}

fn map_changes(a: &Map<String, Value>, b: &Map<String, Value>) -> Vec<(String, String)> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) if x != y => Some((k.clone(), format!("{}→{}", show(x), show(y)))),
            (None, Some(y)) => Some((k.clone(), format!("(unset)→{}", show(y)))),
            (Some(x), None) => Some((k.clone(), format!("{}→(unset)", show(x)))),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest() -> Manifest {
        let mut inputs = BTreeMap::new();
        inputs.insert(
            "dataset:cifar10".to_string(),
            BTreeMap::from([("a.tar.gz".to_string(), "00".repeat(32))]),
        );
        Manifest {
            salt: "s".into(),
            kind: "vision".into(),
            kind_version: 1,
            params: json!({"lr": 0.1, "seed": 0}).as_object().unwrap().clone(),
            inputs,
            env: BTreeMap::from([
                ("libtorch".to_string(), json!("2.11.0")),
                ("threads".to_string(), json!(2)),
            ]),
        }
    }

    #[test]
    fn key_ignores_map_order_but_not_values() {
        let a = manifest();
        let mut b = manifest();
        b.params = json!({"seed": 0, "lr": 0.1}).as_object().unwrap().clone();
        assert_eq!(a.key(), b.key());
        b.params.insert("lr".into(), json!(0.05));
        assert_ne!(a.key(), b.key());
        assert_eq!(diff(&a, &b), vec!["parameter lr 0.1→0.05"]);
    }

    #[test]
    fn each_component_changes_key_with_reason() {
        let a = manifest();
        let mut b = manifest();
        b.env.insert("libtorch".into(), json!("2.13.0"));
        assert_ne!(a.key(), b.key());
        assert_eq!(diff(&a, &b), vec!["libtorch 2.11.0→2.13.0"]);
        let mut c = manifest();
        c.inputs
            .get_mut("dataset:cifar10")
            .unwrap()
            .insert("a.tar.gz".into(), "11".repeat(32));
        assert_ne!(a.key(), c.key());
        assert_eq!(diff(&a, &c), vec!["input dataset:cifar10 changed"]);
        let mut d = manifest();
        d.kind_version = 2;
        assert_ne!(a.key(), d.key());
        assert_eq!(diff(&a, &d), vec!["stage vision v1→vision v2"]);
        let mut e = manifest();
        e.salt = "t".into();
        assert_ne!(a.key(), e.key());
    }

    #[test]
    fn canonical_json_sorts_nested() {
        assert_eq!(
            canonical_json(&json!({"b": {"d": 1, "c": [2, {"f": 1, "e": 0}]}, "a": 0})),
            r#"{"a":0,"b":{"c":[2,{"e":0,"f":1}],"d":1}}"#
        );
    }
}
