//! Typed parameters of stage kinds: each kind declares its parameters, their types, ranges and
//! defaults; pipeline values are checked and normalised against that schema before planning.

use serde_json::Value;

/// The type of one parameter.
#[derive(Debug, Clone, Copy)]
pub enum ParamType {
    Int { min: i64, max: i64 },
    Float { min: f64, max: f64 },
    Bool,
    Str,
    Choice(&'static [&'static str]),
}

impl ParamType {
    pub const fn int(min: i64, max: i64) -> ParamType {
        ParamType::Int { min, max }
    }
    pub const fn float(min: f64, max: f64) -> ParamType {
        ParamType::Float { min, max }
    }
}

/// A default value, or none when the pipeline must give the parameter.
#[derive(Debug, Clone, Copy)]
pub enum Lit {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(&'static str),
    Required,
}

/// One declared parameter.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    pub default: Lit,
    pub doc: &'static str,
}

impl ParamSpec {
    /// Check a value and normalise it (ints given for floats become floats, so `lr: 1` and
    /// `lr: 1.0` give the same key).
    pub fn check(&self, v: &Value) -> Result<Value, String> {
        match self.ty {
            ParamType::Int { min, max } => match v.as_i64() {
                Some(i) if (min..=max).contains(&i) => Ok(Value::from(i)),
                Some(i) => Err(format!("{i} is out of range {min}..={max}")),
                None => Err(format!("expected an integer, got {}", describe(v))),
            },
            ParamType::Float { min, max } => match v.as_f64() {
                Some(f) if f.is_finite() && f >= min && f <= max => Ok(Value::from(f)),
                Some(f) => Err(format!("{f} is out of range [{min}, {max}]")),
                None => Err(format!("expected a number, got {}", describe(v))),
            },
            ParamType::Bool => match v {
                Value::Bool(_) => Ok(v.clone()),
                _ => Err(format!("expected true or false, got {}", describe(v))),
            },
            ParamType::Str => match v {
                Value::String(_) => Ok(v.clone()),
                _ => Err(format!("expected a string, got {}", describe(v))),
            },
            ParamType::Choice(options) => match v.as_str() {
                Some(s) if options.contains(&s) => Ok(v.clone()),
                _ => Err(format!(
                    "expected one of {}, got {}",
                    options.join(", "),
                    describe(v)
                )),
            },
        }
    }

    /// The default as a JSON value, if there is one.
    pub fn default_value(&self) -> Option<Value> {
        match self.default {
            Lit::Int(i) => Some(Value::from(i)),
            Lit::Float(f) => Some(Value::from(f)),
            Lit::Bool(b) => Some(Value::from(b)),
            Lit::Str(s) => Some(Value::from(s)),
            Lit::Required => None,
        }
    }
}

/// A short description of a value for error messages.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("{n}"),
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalises_and_rejects() {
        let lr = ParamSpec {
            name: "lr",
            ty: ParamType::Float {
                min: 0.0,
                max: 10.0,
            },
            default: Lit::Float(0.1),
            doc: "",
        };
        assert_eq!(lr.check(&json!(1)).unwrap(), json!(1.0));
        assert!(lr.check(&json!(-1.0)).unwrap_err().contains("out of range"));
        assert!(
            lr.check(&json!("x"))
                .unwrap_err()
                .contains("expected a number")
        );
        let s = ParamSpec {
            name: "schedule",
            ty: ParamType::Choice(&["none", "early"]),
            default: Lit::Required,
            doc: "",
        };
        assert!(s.check(&json!("late")).unwrap_err().contains("none, early"));
        assert!(s.default_value().is_none());
    }
}
