//! How wide the tables the CLI prints may be: none with `--wide`, else `$COLUMNS`, else the
//! terminal's width when stdout is one, else [`PIPED_WIDTH`] (output piped to a file or a pager).

/// Columns for tables whose stdout is not a terminal and `$COLUMNS` is unset.
pub(super) const PIPED_WIDTH: usize = 100;

/// Narrower than this, wrapping no longer helps; `$COLUMNS` below it is read as this.
const NARROWEST: usize = 40;

/// The columns a table may take, or `None` for every column unwrapped (`--wide`).
pub(super) fn table_width(wide: bool) -> Option<usize> {
    if wide {
        return None;
    }
    let from_env = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0);
    // None when stdout is not a terminal.
    let from_terminal =
        || terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| usize::from(w.0));
    Some(
        from_env
            .or_else(from_terminal)
            .unwrap_or(PIPED_WIDTH)
            .max(NARROWEST),
    )
}

/// `rows` as text, the header first, for [`repro_report::tables::grid`].
pub(super) fn grid_rows<T: tabled::Tabled>(rows: &[T]) -> Vec<Vec<String>> {
    let mut out = vec![T::headers().into_iter().map(|h| h.into_owned()).collect()];
    out.extend(
        rows.iter()
            .map(|r| r.fields().into_iter().map(|f| f.into_owned()).collect()),
    );
    out
}
