//! How `repro run` shows the executor's events: on a terminal an overall bar and one bar per
//! running run, with each event's line printed above them; otherwise plain lines on stderr
//! (`--quiet`: none).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use repro_core::pipeline::executor::{At, Reporter, RunEvent};

pub struct Terminal {
    quiet: bool,
    /// Bars, not lines: stderr is a terminal and not `--quiet`.
    fancy: bool,
    multi: MultiProgress,
    overall: Mutex<Option<ProgressBar>>,
    /// Bars of the runs in progress, by plan position.
    bars: Mutex<BTreeMap<usize, ProgressBar>>,
}

impl Terminal {
    pub fn new(quiet: bool) -> Terminal {
        Terminal {
            quiet,
            fancy: !quiet && std::io::stderr().is_terminal(),
            multi: MultiProgress::new(),
            overall: Mutex::new(None),
            bars: Mutex::new(BTreeMap::new()),
        }
    }

    fn say(&self, line: String) {
        if self.fancy {
            let _ = self.multi.println(line);
        } else if !self.quiet {
            eprintln!("{line}");
        }
    }

    fn bar(&self, template: &str, len: u64) -> ProgressBar {
        let pb = self.multi.add(ProgressBar::new(len));
        pb.set_style(
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    }

    /// The run's bar is done with; the overall bar counts it.
    fn finished(&self, n: usize) {
        if let Some(pb) = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&n)
        {
            pb.finish_and_clear();
        }
        if let Some(pb) = &*self.overall.lock().unwrap_or_else(|e| e.into_inner()) {
            pb.inc(1);
        }
    }
}

impl Reporter for Terminal {
    fn begin(&self, runs: usize) {
        if self.fancy {
            let pb = self.bar(
                "{prefix:>8} [{bar:30}] {pos}/{len} runs {elapsed}",
                runs as u64,
            );
            pb.set_prefix("overall");
            *self.overall.lock().unwrap_or_else(|e| e.into_inner()) = Some(pb);
        }
    }

    fn note(&self, line: &str) {
        self.say(line.to_string());
    }

    fn event(&self, at: At, event: RunEvent) {
        let (n, total, run) = (at.n, at.total, at.run);
        match event {
            RunEvent::Cached { key } => {
                self.say(format!("[{n}/{total}] {run} cached ({})", &key[..12]));
                self.finished(n);
            }
            RunEvent::CachedByOther => {
                self.say(format!(
                    "[{n}/{total}] {run} cached (finished by another process)"
                ));
                self.finished(n);
            }
            RunEvent::Started { key, reasons } => {
                self.say(format!(
                    "[{n}/{total}] {run} running ({}): {}",
                    &key[..12],
                    reasons.join("; ")
                ));
                if self.fancy {
                    let pb = self.bar("{prefix:>8} [{bar:30}] {pos}/{len} {msg}", 1);
                    pb.set_prefix(format!("{n}/{total}"));
                    self.bars
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(n, pb);
                }
            }
            RunEvent::Progress { pos, len, message } => {
                let bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
                match bars.get(&n) {
                    Some(pb) => {
                        pb.set_length(len);
                        pb.set_position(pos);
                        pb.set_message(format!("{run} {message}"));
                    }
                    None if !self.quiet => eprintln!("[{n}/{total}] {run} {pos}/{len} {message}"),
                    None => {}
                }
            }
            RunEvent::Done { seconds } => {
                self.finished(n);
                self.say(format!("[{n}/{total}] {run} done in {seconds:.1} s"));
            }
            RunEvent::Failed { error } => {
                self.finished(n);
                self.say(format!("[{n}/{total}] {run} FAILED: {error}"));
            }
            RunEvent::Skipped { why } => {
                self.finished(n);
                self.say(format!("[{n}/{total}] {run} skipped: {why}"));
            }
        }
    }

    fn end(&self) {
        if let Some(pb) = self
            .overall
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            pb.finish_and_clear();
        }
    }

    fn interactive(&self) -> bool {
        self.fancy
    }
}
