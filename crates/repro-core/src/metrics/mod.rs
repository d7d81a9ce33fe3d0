//! Metrics series written by stages: one JSON object per line (per epoch), appended and flushed
//! as training goes, so a partial series is readable while a run is in progress.

pub mod bleu;
pub mod bootstrap;
pub mod stats;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

pub struct JsonLines {
    out: BufWriter<File>,
}

impl JsonLines {
    pub fn create(path: &Path) -> Result<JsonLines> {
        let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(JsonLines {
            out: BufWriter::new(f),
        })
    }

    /// [`JsonLines::create`], or when `resuming` open the series for appending: a run resumed
    /// from a checkpoint continues the rows the checkpoint saw.
    pub fn open(path: &Path, resuming: bool) -> Result<JsonLines> {
        if !resuming {
            return JsonLines::create(path);
        }
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("cannot reopen {} to resume", path.display()))?;
        Ok(JsonLines {
            out: BufWriter::new(f),
        })
    }

    pub fn write<T: Serialize>(&mut self, row: &T) -> Result<()> {
        serde_json::to_writer(&mut self.out, row)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(())
    }

    /// Flush and fsync.
    pub fn finish(mut self) -> Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        Ok(())
    }
}
