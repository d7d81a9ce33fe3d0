//! Source positions for YAML nodes, so validation errors can say `pipeline.yaml:LINE:COL`.
//!
//! serde_yaml gives values without positions; this walks the same text with yaml-rust2's event
//! parser and records where every key and value starts, indexed by a dotted path such as
//! `experiments.cifar10.grid.seed[1]`. Paths are kept as 128-bit FNV-1a hashes of their text,
//! extended key by key on the way down, so indexing costs the length of each key once rather
//! than of every full path (a long key near the top would otherwise be copied into every path
//! below it: quadratic in the file size).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
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
    keys: HashMap<u128, Pos>,
    values: HashMap<u128, Pos>,
}

impl PosIndex {
    /// Index `text`; a text that does not parse yields the index of what came before the error
    /// (the caller reports the syntax error with its own position). Loading indexes through
    /// [`Indexer`] in the pass of [`super::yaml_guard`] instead.
    pub fn build(text: &str) -> PosIndex {
        let mut ix = Indexer::default();
        let mut parser = Parser::new_from_str(text);
        while let Ok((ev, mark)) = parser.next_token() {
            if ev == Event::StreamEnd {
                break;
            }
            ix.on_event(&ev, mark);
        }
        ix.finish()
    }

    /// Position of the key at `path` (for "unknown key" errors), else of its value.
    pub fn key(&self, path: &str) -> Option<Pos> {
        let h = PathHash::of(path);
        self.keys.get(&h).or_else(|| self.values.get(&h)).copied()
    }

    /// Position of the value at `path`, else of its key.
    pub fn value(&self, path: &str) -> Option<Pos> {
        let h = PathHash::of(path);
        self.values.get(&h).or_else(|| self.keys.get(&h)).copied()
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

/// A path's text as a running FNV-1a hash (128-bit: collisions are out of reach for the few
/// thousand paths of a pipeline, and one would only misplace an error message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PathHash {
    hash: u128,
    /// The path so far is the empty string (the document root).
    empty: bool,
}

impl PathHash {
    const ROOT: PathHash = PathHash {
        hash: 0x6c62272e07bb014262b821756295c58d,
        empty: true,
    };

    fn push(mut self, bytes: &[u8]) -> PathHash {
        for &b in bytes {
            self.hash ^= u128::from(b);
            self.hash = self.hash.wrapping_mul(0x0000000001000000000000000000013B);
        }
        self.empty &= bytes.is_empty();
        self
    }

    /// The hash of `path` as a whole.
    fn of(path: &str) -> u128 {
        PathHash::ROOT.push(path.as_bytes()).hash
    }

    /// As [`child`] joins a parent path and a key.
    fn child(self, key: &str) -> PathHash {
        if self.empty {
            self.push(key.as_bytes())
        } else {
            self.push(b".").push(key.as_bytes())
        }
    }

    /// `parent[i]`.
    fn item(self, i: usize) -> PathHash {
        self.push(format!("[{i}]").as_bytes())
    }
}

enum Frame {
    Map {
        path: PathHash,
        key: Option<PathHash>,
    },
    Seq {
        path: PathHash,
        next: usize,
    },
}

/// Builds a [`PosIndex`] from parser events, fed one at a time.
#[derive(Default)]
pub struct Indexer {
    index: PosIndex,
    stack: Vec<Frame>,
    /// The first document is indexed; events after its end are ignored.
    done: bool,
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

impl Indexer {
    /// Path of the node that starts now; `None` when it is a mapping key (recorded here).
    fn node_path(&mut self, ev: &Event, mark: Marker) -> Option<PathHash> {
        match self.stack.last_mut() {
            None => Some(PathHash::ROOT),
            Some(Frame::Seq { path, next }) => {
                let p = path.item(*next);
                *next += 1;
                Some(p)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                Some(k) => Some(k),
                None => {
                    let k = match ev {
                        Event::Scalar(s, ..) => s.as_str(),
                        _ => "<complex key>",
                    };
                    let full = path.child(k);
                    self.index.keys.entry(full.hash).or_insert(pos(mark));
                    *key = Some(full);
                    None
                }
            },
        }
    }

    /// Record one event.
    pub fn on_event(&mut self, ev: &Event, mark: Marker) {
        if self.done {
            return;
        }
        match ev {
            Event::Scalar(..) | Event::Alias(_) => {
                if let Some(p) = self.node_path(ev, mark) {
                    self.index.values.entry(p.hash).or_insert(pos(mark));
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                // A collection used as a mapping key is not supported by the schema; give it a
                // placeholder path so the walk stays aligned.
                let p = self
                    .node_path(ev, mark)
                    .unwrap_or_else(|| PathHash::ROOT.child("<complex key>"));
                self.index.values.entry(p.hash).or_insert(pos(mark));
                self.stack.push(if is_map {
                    Frame::Map { path: p, key: None }
                } else {
                    Frame::Seq { path: p, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::DocumentEnd => self.done = true,
            _ => {}
        }
    }

    pub fn finish(self) -> PosIndex {
        self.index
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

    #[test]
    fn paths_join_as_child_joins_them() {
        let text = "\"a.b\": {\"\": 1}\n\"\": {x: [2]}\n? [k]\n: v\n";
        let ix = PosIndex::build(text);
        assert_eq!(ix.key("a.b"), Some(Pos { line: 1, col: 1 }));
        assert_eq!(ix.value(&child("a.b", "")), Some(Pos { line: 1, col: 13 }));
        assert_eq!(ix.value(&child("", "x")), Some(Pos { line: 2, col: 9 }));
        assert_eq!(ix.value("x[0]"), Some(Pos { line: 2, col: 10 }));
        assert_eq!(ix.key("<complex key>"), Some(Pos { line: 3, col: 3 }));
    }

    #[test]
    fn a_long_key_is_not_copied_into_every_path_below_it() {
        // 60 KB key over 8,000 entries: 480 MB of path text with string paths (2.8 s).
        let key = "k".repeat(60_000);
        let mut text = format!("? {key}\n:\n");
        for i in 0..8_000 {
            text.push_str(&format!("  a{i}: 1\n"));
        }
        let t = std::time::Instant::now();
        let ix = PosIndex::build(&text);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(
            ix.key(&format!("{key}.a7999")),
            Some(Pos { line: 8002, col: 3 })
        );
    }
}
