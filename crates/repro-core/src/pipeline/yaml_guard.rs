//! The gate in front of the YAML parsers: one linear pass over `pipeline.yaml`'s text, before
//! serde_yaml builds any tree, that refuses what would make loading slow or huge — bytes that
//! are not UTF-8, characters YAML forbids, collections nested deeper than [`Limits::depth`],
//! more than [`Limits::aliases`] alias references, aliases that would expand the document past
//! [`Limits::nodes`] nodes or [`Limits::bytes`] bytes of scalar text ("billion laughs"), and
//! aliases to a collection that contains them — each as a [`Problem`] at the line and column
//! where the limit is crossed. The same pass builds the [`PosIndex`] validation reports with.
//!
//! The pass is yaml-rust2's pull parser, which is linear in the text (libyaml, under serde_yaml,
//! is quadratic in flow nesting depth and replays every alias in full), so a text it rejects is
//! reported with its message and never reaches serde_yaml.

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, ScanError};

use super::problem::Problem;
use super::yaml_pos::{Indexer, PosIndex};

/// What a pipeline file may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Collections inside collections (the top-level mapping is the first). The real pipeline
    /// nests 7 deep; 64 leaves nine times that, and stays under serde_yaml's own 128 so this
    /// check, with its clearer message, always comes first.
    pub depth: usize,
    /// `*alias` references (the real pipeline has 101).
    pub aliases: usize,
    /// Nodes of the document with every alias replaced by its anchor's nodes (the real pipeline:
    /// 2,567). A document of a million nodes still loads in about 0.3 s and 330 MB.
    pub nodes: u64,
    /// Bytes of scalar text with every alias expanded (the real pipeline: 25 KB).
    pub bytes: u64,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        depth: 64,
        aliases: 10_000,
        nodes: 1_000_000,
        bytes: 64 << 20,
    };
}

/// Decode a pipeline file's bytes, or say where the first byte that is not UTF-8 is.
pub fn decode(bytes: &[u8]) -> Result<&str, Problem> {
    std::str::from_utf8(bytes).map_err(|e| {
        let mut at = Cursor::default();
        // The bytes before the error are valid UTF-8.
        for c in String::from_utf8_lossy(&bytes[..e.valid_up_to()]).chars() {
            at.advance(c);
        }
        let message = match e.error_len() {
            Some(_) => format!(
                "not valid UTF-8: byte 0x{:02X} starts no complete UTF-8 character; \
                 YAML files must be UTF-8 (save the file as UTF-8)",
                bytes[e.valid_up_to()]
            ),
            None => "not valid UTF-8: the file ends inside a multi-byte character".to_string(),
        };
        at.problem(message)
    })
}

/// Check `text` against [`Limits::DEFAULT`] and index its positions.
pub fn check(text: &str) -> Result<PosIndex, Problem> {
    check_with(text, &Limits::DEFAULT)
}

/// Check `text` against `limits` and index its positions.
pub fn check_with(text: &str, limits: &Limits) -> Result<PosIndex, Problem> {
    check_chars(text)?;
    let mut pass = Pass {
        limits,
        open: Vec::new(),
        sizes: Vec::new(),
        nodes: 0,
        bytes: 0,
        aliases: 0,
        index: Indexer::default(),
    };
    let mut parser = Parser::new_from_str(text);
    loop {
        let (ev, mark) = parser.next_token().map_err(|e| scan_problem(&e, limits))?;
        if ev == Event::StreamEnd {
            return Ok(pass.index.finish());
        }
        pass.event(&ev, mark)?;
        pass.index.on_event(&ev, mark);
    }
}

/// Line and column (1-based, in characters) while walking a text.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    line: usize,
    col: usize,
    after_cr: bool,
}

impl Default for Cursor {
    fn default() -> Self {
        Cursor {
            line: 1,
            col: 1,
            after_cr: false,
        }
    }
}

impl Cursor {
    /// Step over `c`; `\n`, `\r\n` and a lone `\r` end a line, as in YAML.
    fn advance(&mut self, c: char) {
        match c {
            '\n' if self.after_cr => {}
            '\n' | '\r' => {
                self.line += 1;
                self.col = 1;
            }
            _ => self.col += 1,
        }
        self.after_cr = c == '\r';
    }

    fn problem(self, message: impl Into<String>) -> Problem {
        Problem {
            line: self.line,
            col: self.col,
            message: message.into(),
        }
    }
}

/// YAML 1.2's printable characters (what libyaml's reader also accepts).
fn printable(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{A0}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn check_chars(text: &str) -> Result<(), Problem> {
    let mut at = Cursor::default();
    for c in text.chars() {
        if !printable(c) {
            let what = if c.is_control() {
                "a control character"
            } else {
                "a noncharacter"
            };
            let code = c as u32;
            return Err(at.problem(format!(
                "character U+{code:04X} ({what}) is not allowed in YAML; \
                 inside a double-quoted string write it as \\u{code:04X}"
            )));
        }
        at.advance(c);
    }
    Ok(())
}

fn at(mark: Marker, message: impl Into<String>) -> Problem {
    // yaml-rust2 lines are 1-based, columns 0-based.
    Problem {
        line: mark.line(),
        col: mark.col() + 1,
        message: message.into(),
    }
}

fn scan_problem(e: &ScanError, limits: &Limits) -> Problem {
    // yaml-rust2 reads a flow collection to its end before giving events, and stops at 255
    // levels: this is the depth limit, met before any event could show it.
    if e.info() == "recursion limit exceeded" {
        at(
            *e.marker(),
            format!("{} (here more than 255)", depth_message(limits)),
        )
    } else {
        at(*e.marker(), format!("not valid YAML: {}", e.info()))
    }
}

fn depth_message(limits: &Limits) -> String {
    format!(
        "collections nest deeper than {} levels, the limit for a pipeline file",
        limits.depth
    )
}

/// An open collection.
struct Open {
    /// Its anchor id (0: none).
    anchor: usize,
    /// [`Pass::nodes`] and [`Pass::bytes`] before it started.
    nodes: u64,
    bytes: u64,
}

struct Pass<'a> {
    limits: &'a Limits,
    open: Vec<Open>,
    /// Nodes and scalar bytes of each finished anchor, by yaml-rust2's anchor id.
    sizes: Vec<Option<(u64, u64)>>,
    /// The expanded document so far.
    nodes: u64,
    bytes: u64,
    aliases: usize,
    index: Indexer,
}

impl Pass<'_> {
    fn event(&mut self, ev: &Event, mark: Marker) -> Result<(), Problem> {
        match ev {
            Event::Scalar(s, _, anchor, _) => {
                self.grow(1, s.len() as u64, mark, None)?;
                self.finish_anchor(*anchor, 1, s.len() as u64);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.open.len() >= self.limits.depth {
                    return Err(at(mark, depth_message(self.limits)));
                }
                self.open.push(Open {
                    anchor: *anchor,
                    nodes: self.nodes,
                    bytes: self.bytes,
                });
                self.grow(1, 0, mark, None)?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(o) = self.open.pop() {
                    self.finish_anchor(o.anchor, self.nodes - o.nodes, self.bytes - o.bytes);
                }
            }
            Event::Alias(id) => {
                self.aliases += 1;
                if self.aliases > self.limits.aliases {
                    return Err(at(
                        mark,
                        format!(
                            "more than {} alias references (`*name`), the limit for a pipeline file",
                            self.limits.aliases
                        ),
                    ));
                }
                // yaml-rust2 refuses aliases to undefined anchors, so an anchor without a size
                // is still open: the alias is inside the collection it names.
                let Some((nodes, bytes)) = self.sizes.get(*id).copied().flatten() else {
                    return Err(at(
                        mark,
                        "this alias refers to a collection that contains it; \
                         a recursive structure cannot be loaded",
                    ));
                };
                self.grow(nodes, bytes, mark, Some(nodes))?;
            }
            _ => {}
        }
        Ok(())
    }

    fn finish_anchor(&mut self, anchor: usize, nodes: u64, bytes: u64) {
        if anchor == 0 {
            return;
        }
        if self.sizes.len() <= anchor {
            self.sizes.resize(anchor + 1, None);
        }
        self.sizes[anchor] = Some((nodes, bytes));
    }

    /// Add a node (or an alias's expansion) to the expanded document, within the limits.
    fn grow(
        &mut self,
        nodes: u64,
        bytes: u64,
        mark: Marker,
        alias: Option<u64>,
    ) -> Result<(), Problem> {
        self.nodes += nodes;
        self.bytes += bytes;
        let exceeded = if self.nodes > self.limits.nodes {
            format!("{} nodes", self.limits.nodes)
        } else if self.bytes > self.limits.bytes {
            match self.limits.bytes {
                b if b % (1 << 20) == 0 => format!("{} MiB of text", b >> 20),
                b => format!("{b} bytes of text"),
            }
        } else {
            return Ok(());
        };
        let message = match alias {
            Some(n) => format!(
                "aliases expand the document past {exceeded}, the limit for a pipeline file \
                 (this alias repeats {n} node{})",
                if n == 1 { "" } else { "s" }
            ),
            None => format!("the document has more than {exceeded}, the limit for a pipeline file"),
        };
        Err(at(mark, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Limits = Limits {
        depth: 3,
        aliases: 4,
        nodes: 40,
        bytes: 100,
    };

    /// `line:col: message` of the refusal under `SMALL`.
    fn refusal(text: &str) -> String {
        let p = check_with(text, &SMALL).expect_err("refused");
        format!("{}:{}: {}", p.line, p.col, p.message)
    }

    #[test]
    fn within_the_limits_the_positions_are_indexed() {
        let ix = check_with("a: &x [1, 2]\nb:\n  c: *x\n", &SMALL).expect("within limits");
        assert_eq!(ix.key("b.c").map(|p| (p.line, p.col)), Some((3, 3)));
        assert_eq!(ix.value("a[1]").map(|p| (p.line, p.col)), Some((1, 11)));
    }

    #[test]
    fn depth_is_counted_in_collections() {
        assert!(check_with("a: [[1]]\n", &SMALL).is_ok());
        assert_eq!(
            refusal("a:\n  b: [[1]]\n"),
            "2:7: collections nest deeper than 3 levels, the limit for a pipeline file"
        );
    }

    #[test]
    fn aliases_are_counted_and_expanded() {
        let refs = "a: &x 1\nb: [*x, *x, *x, *x, *x]\n";
        assert_eq!(
            refusal(refs),
            "2:21: more than 4 alias references (`*name`), the limit for a pipeline file"
        );
        // 1 (top) + 2 (`a`, its list) + 10 items + 1 (`b`) + 1 (list): 15, then 11 per alias.
        let big = "a: &x [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: [*x, *x, *x]\n";
        assert_eq!(
            refusal(big),
            "2:13: aliases expand the document past 40 nodes, the limit for a pipeline file \
             (this alias repeats 11 nodes)"
        );
        // Anchors within anchors expand in full: 16 nodes to the end of `b`, 2 for `c` and its
        // list, then 10 per alias of `y`.
        let nested = "a: &x [1, 2]\nb: &y [*x, *x, *x]\nc: [*y, *y, *y]\n";
        let many = Limits {
            aliases: 100,
            ..SMALL
        };
        let p = check_with(nested, &many).expect_err("refused");
        assert_eq!((p.line, p.col), (3, 13), "{}", p.message);
        assert!(p.message.ends_with("(this alias repeats 10 nodes)"));
        let text = format!("a: &s {}\nb: [*s, *s]\n", "t".repeat(40));
        assert_eq!(
            refusal(&text),
            "2:9: aliases expand the document past 100 bytes of text, the limit for a pipeline \
             file (this alias repeats 1 node)"
        );
    }

    #[test]
    fn an_alias_inside_its_own_anchor_is_refused() {
        assert_eq!(
            refusal("a: &x [1, *x]\n"),
            "1:11: this alias refers to a collection that contains it; a recursive structure \
             cannot be loaded"
        );
    }

    #[test]
    fn characters_and_bytes_are_located_in_lines_and_characters() {
        assert_eq!(
            refusal("a: 1\r\nb: \"é\u{1b}\"\n"),
            "2:6: character U+001B (a control character) is not allowed in YAML; inside a \
             double-quoted string write it as \\u001B"
        );
        assert!(refusal("a: \u{FFFE}\n").starts_with("1:4: character U+FFFE (a noncharacter)"));
        assert!(check_with("a: \"\t\u{85}\u{A0}\u{1F600}\"\n", &SMALL).is_ok());
        let p = decode(b"a: 1\rb: \xc3\xa9\xff\n").expect_err("not UTF-8");
        assert_eq!((p.line, p.col), (2, 5), "{}", p.message);
        assert!(p.message.starts_with("not valid UTF-8: byte 0xFF"));
        let p = decode(b"a: \xe2\x82").expect_err("cut short");
        assert_eq!((p.line, p.col), (1, 4));
        assert!(p.message.contains("ends inside a multi-byte character"));
    }

    #[test]
    fn syntax_errors_are_reported_with_their_position() {
        assert_eq!(
            refusal("a: [1, 2\n"),
            "2:1: not valid YAML: while parsing a flow sequence, expected ',' or ']'"
        );
    }
}
