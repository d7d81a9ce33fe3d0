//! Tables for a terminal: [`terminal`] renders a report [`Table`] (title, box-drawn grid, note)
//! and [`grid`] any rows, fitted to a width: short columns keep their width, long ones share
//! what is left and wrap at word boundaries; the claims table becomes one entry per claim
//! where seven columns cannot fit. `None` for a width prints every column unwrapped.

use tabled::builder::Builder;
use tabled::settings::Style;
use textwrap::core::display_width;

use super::{Cell, Table};
use crate::verdict::Verdict;

/// Below this many columns the claims table is one entry per claim: seven columns of prose
/// squeezed narrower wrap to a word a line.
pub const CLAIMS_TABLE_MIN_WIDTH: usize = 100;

/// A column is made as wide as its longest word up to this; longer words (ids, paths) break.
const LONGEST_UNBROKEN_WORD: usize = 24;

/// Columns this narrow (a verdict, a count, a short id) are not wrapped while prose can give way.
const SHORT_COLUMN: usize = 16;

/// Terminal columns a grid column takes beyond its text: the border before it and a space
/// either side.
const COLUMN_OVERHEAD: usize = 3;

/// Text narrower than this is never asked for, however narrow the terminal claims to be.
const NARROWEST_TEXT: usize = 20;

/// The table for a terminal; `colour` adds ANSI colours to verdicts. `width`: the columns it
/// may take, or `None` for every column unwrapped.
pub fn terminal(t: &Table, colour: bool, width: Option<usize>) -> String {
    let mut rows = vec![t.headers.clone()];
    rows.extend(t.rows.iter().map(|r| {
        r.iter()
            .map(|c| match c {
                Cell::Verdict(v) if colour => paint(*v, v.text()),
                _ => c.text(),
            })
            .collect()
    }));
    let fits = width.is_none_or(|w| w >= CLAIMS_TABLE_MIN_WIDTH && widths(&rows, w).is_some());
    let body = if t.id == "claims" && !fits {
        claims_lines(t, colour, width.unwrap_or(CLAIMS_TABLE_MIN_WIDTH))
    } else {
        grid(rows, width)
    };
    let mut out = wrap_text(&t.title, width);
    out.push('\n');
    out += &body;
    if let Some(n) = &t.note {
        out.push('\n');
        out += &wrap_text(n, width);
    }
    out
}

/// `rows` (the first is the header) as a box-drawn grid at most `width` columns wide when
/// given; where even the narrowest sensible columns do not fit, each column gets an equal share.
pub fn grid(rows: Vec<Vec<String>>, width: Option<usize>) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let limits = width.map(|w| {
        widths(&rows, w).unwrap_or_else(|| {
            let room = w.saturating_sub(COLUMN_OVERHEAD * columns + 1);
            vec![(room / columns.max(1)).max(1); columns]
        })
    });
    let mut b = Builder::default();
    for row in rows {
        b.push_record(row.into_iter().enumerate().map(|(i, cell)| {
            match limits.as_ref().and_then(|l| l.get(i)) {
                Some(&limit) if natural_width(&cell) > limit => wrap_lines(&cell, limit),
                _ => cell,
            }
        }));
    }
    let mut table = b.build();
    table.with(Style::sharp());
    table.to_string()
}

/// Text wrapped at word boundaries to `width` columns (unchanged without one).
pub fn wrap_text(text: &str, width: Option<usize>) -> String {
    match width {
        Some(w) => textwrap::fill(text, w.max(NARROWEST_TEXT)),
        None => text.to_string(),
    }
}

/// Each line of a cell wrapped to `width` on its own (a cell's lines are separate items).
fn wrap_lines(cell: &str, width: usize) -> String {
    cell.lines()
        .map(|l| textwrap::fill(l, width.max(1)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn natural_width(cell: &str) -> usize {
    cell.lines().map(display_width).max().unwrap_or(0)
}

/// What a column cannot do with less: its longest word (capped).
fn word_width(cell: &str) -> usize {
    cell.split_whitespace()
        .map(display_width)
        .max()
        .unwrap_or(0)
        .min(LONGEST_UNBROKEN_WORD)
}

/// The text width of each column so that the grid takes at most `width` terminal columns, or
/// `None` when the columns' longest words alone do not fit. Every column first gets what it
/// needs whole if that is short ([`SHORT_COLUMN`]), else its longest word; where that is too
/// much, only its longest word. The room left goes to the columns whose text is wider, in
/// proportion to what each lacks, so ids, verdicts and counts are not wrapped to make room for
/// prose.
pub(crate) fn widths(rows: &[Vec<String>], width: usize) -> Option<Vec<usize>> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let column = |i: usize| rows.iter().filter_map(move |r| r.get(i));
    let natural: Vec<usize> = (0..columns)
        .map(|i| column(i).map(|c| natural_width(c)).max().unwrap_or(0))
        .collect();
    let words: Vec<usize> = (0..columns)
        .map(|i| column(i).map(|c| word_width(c)).max().unwrap_or(0).max(1))
        .collect();
    let room = width.checked_sub(COLUMN_OVERHEAD * columns + 1)?;
    let short: Vec<usize> = (0..columns)
        .map(|i| natural[i].min(SHORT_COLUMN).max(words[i]))
        .collect();
    let mut out = if short.iter().sum::<usize>() <= room {
        short
    } else {
        words
    };
    let mut left = room.checked_sub(out.iter().sum())?;
    while left > 0 {
        let lacking: Vec<(usize, usize)> = (0..columns)
            .filter(|&i| natural[i] > out[i])
            .map(|i| (i, natural[i] - out[i]))
            .collect();
        let total: usize = lacking.iter().map(|(_, lack)| lack).sum();
        if total == 0 {
            break;
        }
        let mut given = 0;
        for &(i, lack) in &lacking {
            let share = (left * lack / total).min(lack);
            out[i] += share;
            given += share;
        }
        if given == 0 {
            // Shares rounded down to nothing: the column lacking most takes one more.
            if let Some(&(i, _)) = lacking.iter().max_by_key(|(_, lack)| *lack) {
                out[i] += 1;
                given = 1;
            }
        }
        left -= given;
    }
    Some(out)
}

fn paint(v: Verdict, s: &str) -> String {
    let code = match v {
        Verdict::Reproduced => "32",
        Verdict::NotReproduced => "31",
        Verdict::Inconclusive => "33",
        Verdict::Diverged => "35",
        Verdict::NotRun | Verdict::NotCheckable => "2",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// A mark for each verdict, for the one-entry-per-claim form.
fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Reproduced => "✓",
        Verdict::NotReproduced => "✗",
        Verdict::Inconclusive => "?",
        Verdict::Diverged => "!",
        Verdict::NotRun | Verdict::NotCheckable => "–",
    }
}

/// The claims table as one entry per claim, for narrow terminals: "C1-… ✓ reproduced — C1:
/// measured…", wrapped to `width` with the continuation lines indented.
fn claims_lines(t: &Table, colour: bool, width: usize) -> String {
    let column = |name: &str| t.headers.iter().position(|h| h == name);
    let text_of = |row: &[Cell], name: &str| {
        column(name)
            .and_then(|i| row.get(i))
            .map(Cell::text)
            .unwrap_or_default()
    };
    let options = textwrap::Options::new(width.max(NARROWEST_TEXT)).subsequent_indent("    ");
    let mut out = Vec::new();
    for row in &t.rows {
        let verdict = column("verdict").and_then(|i| match row.get(i) {
            Some(Cell::Verdict(v)) => Some(*v),
            _ => None,
        });
        let verdict_text = match verdict {
            Some(v) => format!("{} {}", mark(v), v.text()),
            None => "–".to_string(),
        };
        let mut entry = format!(
            "{} {verdict_text} — {}: {}",
            text_of(row, "check"),
            text_of(row, "claim"),
            text_of(row, "measured").replace('\n', "; ")
        );
        let seeds = text_of(row, "seeds");
        if !seeds.is_empty() {
            entry += &format!(" (seeds {seeds})");
        }
        let mut lines = textwrap::fill(&entry, &options);
        // Painted after wrapping, so escape codes never count towards the width.
        if let (true, Some(v)) = (colour, verdict) {
            lines = lines.replacen(&verdict_text, &paint(v, &verdict_text), 1);
        }
        out.push(lines);
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn short_columns_keep_their_width_and_prose_takes_the_rest() {
        let prose = "the measured difference between the two arms ".repeat(6);
        let rows = vec![
            row(&["check", "verdict", "measured"]),
            row(&["C1", "reproduced", &prose]),
        ];
        let w = widths(&rows, 80).expect("fits");
        assert_eq!(&w[..2], &[5, 10], "{w:?}");
        assert_eq!(w.iter().sum::<usize>() + 3 * 3 + 1, 80, "{w:?}");
        for line in grid(rows, Some(80)).lines() {
            assert!(display_width(line) <= 80, "{line}");
        }
    }

    #[test]
    fn a_table_that_fits_is_left_alone() {
        let rows = vec![row(&["a", "b"]), row(&["one", "two"])];
        assert_eq!(widths(&rows, 80), Some(vec![3, 3]));
        assert_eq!(grid(rows.clone(), Some(80)), grid(rows, None));
    }

    #[test]
    fn columns_whose_words_cannot_fit_give_none() {
        let rows = vec![row(&["aaaaaaaaaaaaaaaaaaaa"; 6])];
        assert_eq!(widths(&rows, 80), None);
        // The grid still keeps to the width, breaking words.
        for line in grid(rows, Some(80)).lines() {
            assert!(display_width(line) <= 80, "{line}");
        }
    }
}
