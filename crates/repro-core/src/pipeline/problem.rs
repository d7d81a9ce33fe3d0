//! A problem found in `pipeline.yaml`, located as `FILE:LINE:COL`, and the checker that
//! collects them by YAML path while the file is read and validated.

use std::fmt;
use std::path::PathBuf;

use serde::de::DeserializeOwned;

use super::yaml_pos::{Pos, PosIndex, child};

/// One validation problem with its position.
#[derive(Debug, Clone)]
pub struct Problem {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Every problem found in a pipeline file.
#[derive(Debug)]
pub struct SpecErrors {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "{} has {n} problem{}:",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                p.line,
                p.col,
                p.message
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// Collects problems, locating each by its YAML path.
pub(crate) struct Checker<'a> {
    pub pos: &'a PosIndex,
    pub problems: Vec<Problem>,
}

impl Checker<'_> {
    pub fn at(&mut self, path: &str, message: impl Into<String>) {
        let p = self.pos.nearest(path).unwrap_or(Pos { line: 1, col: 1 });
        self.problems.push(Problem {
            line: p.line,
            col: p.col,
            message: message.into(),
        });
    }

    pub fn at_key(&mut self, path: &str, message: impl Into<String>) {
        match self.pos.key(path) {
            Some(p) => self.problems.push(Problem {
                line: p.line,
                col: p.col,
                message: message.into(),
            }),
            None => self.at(path, message),
        }
    }

    /// Deserialize one section with serde, turning its error into a located problem.
    pub fn parse<T: DeserializeOwned>(&mut self, path: &str, v: &serde_yaml::Value) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(v.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                let mut full = path.to_string();
                for seg in e.path().iter() {
                    use serde_path_to_error::Segment::*;
                    match seg {
                        Seq { index } => full = format!("{full}[{index}]"),
                        Map { key } => full = child(&full, key),
                        Enum { variant } => full = child(&full, variant),
                        Unknown => {}
                    }
                }
                let msg = e.inner().to_string();
                // serde names unknown fields in the message; point at that key when we can.
                let unknown = msg
                    .strip_prefix("unknown field `")
                    .and_then(|r| r.split('`').next());
                match unknown {
                    Some(k) => {
                        // The path ends at the unknown key when serde read it as a map key.
                        let key_path = match e.path().iter().next_back() {
                            Some(serde_path_to_error::Segment::Map { key }) if key == k => {
                                full.clone()
                            }
                            _ => child(&full, k),
                        };
                        self.at_key(&key_path, format!("{key_path}: {msg}"))
                    }
                    None => self.at(
                        &full,
                        format!(
                            "{}: {msg}",
                            if full.is_empty() {
                                "(top level)"
                            } else {
                                &full
                            }
                        ),
                    ),
                }
                None
            }
        }
    }
}
