//! Source positions for YAML nodes, so validation errors can say `pipeline.yaml:LINE:COL`.
//!
//! serde_yaml gives values without positions; this walks the same text with yaml-rust2's event
//! parser and records where every key and value starts, indexed by a dotted path such as
//! `experiments.cifar10.grid.seed[1]`.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// Where each path's key and value start.
#[derive(Debug, Default)]
pub struct PosIndex {
    keys: HashMap<String, Pos>,
    values: HashMap<String, Pos>,
}

impl PosIndex {
    /// Index `text`; a text that does not parse yields an empty index (the caller reports the
    /// syntax error through serde_yaml, which carries its own position).
    pub fn build(text: &str) -> PosIndex {
        let mut recv = Recv {
            index: PosIndex::default(),
            stack: Vec::new(),
        };
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut recv, false);
        recv.index
    }

    /// Position of the key at `path` (for "unknown key" errors), else of its value.
    pub fn key(&self, path: &str) -> Option<Pos> {
        self.keys
            .get(path)
            .or_else(|| self.values.get(path))
            .copied()
    }

    /// Position of the value at `path`, else of its key.
    pub fn value(&self, path: &str) -> Option<Pos> {
        self.values
            .get(path)
            .or_else(|| self.keys.get(path))
            .copied()
    }

    /// The nearest position at `path` or, failing that, at one of its ancestors.
    pub fn nearest(&self, path: &str) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(pos) = self.value(p) {
                return Some(pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

struct Recv {
    index: PosIndex,
    stack: Vec<Frame>,
}

fn pos(m: Marker) -> Pos {
    // yaml-rust2 lines are 1-based, columns 0-based.
    Pos {
        line: m.line(),
        col: m.col() + 1,
    }
}

/// Join a parent path and a map key.
pub fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Recv {
    /// Path of the node that starts now; `None` when it is a mapping key (recorded here).
    fn node_path(&mut self, ev: &Event, mark: Marker) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                Some(p)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                Some(k) => Some(child(path, &k)),
                None => {
                    let k = match ev {
                        Event::Scalar(s, ..) => s.clone(),
                        _ => "<complex key>".to_string(),
                    };
                    let full = child(path, &k);
                    self.index.keys.entry(full).or_insert(pos(mark));
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some(k);
                    }
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for Recv {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(..) | Event::Alias(_) => {
                if let Some(p) = self.node_path(&ev, mark) {
                    self.index.values.entry(p).or_insert(pos(mark));
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                // A collection used as a mapping key is not supported by the schema; give it a
                // placeholder path so the walk stays aligned.
                let p = self
                    .node_path(&ev, mark)
                    .unwrap_or_else(|| "<complex key>".to_string());
                self.index.values.entry(p.clone()).or_insert(pos(mark));
                self.stack.push(if is_map {
                    Frame::Map { path: p, key: None }
                } else {
                    Frame::Seq { path: p, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_values_and_items() {
        let text = "a:\n  b: 1\n  list:\n    - x\n    - {k: v}\nc: [1, 2]\n";
        let ix = PosIndex::build(text);
        assert_eq!(ix.key("a.b"), Some(Pos { line: 2, col: 3 }));
        assert_eq!(ix.value("a.b"), Some(Pos { line: 2, col: 6 }));
        assert_eq!(ix.value("a.list[1].k"), Some(Pos { line: 5, col: 11 }));
        assert_eq!(ix.value("c[1]"), Some(Pos { line: 6, col: 8 }));
        assert_eq!(
            ix.nearest("a.list[1].missing.deeper"),
            Some(Pos { line: 5, col: 7 })
        );
    }
}
