//! The report: figures (and, later, the pages that hold them) drawn from finished runs.

pub mod figures;
