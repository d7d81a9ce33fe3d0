//! Processes as `/proc` shows them, for the tests that kill or freeze runs at chosen moments:
//! what a test does to a run is decided while the run is frozen (SIGSTOP), so it cannot race
//! the run however fast the machine is.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One process.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    /// Its process group.
    pub pgrp: i32,
    pub argv: Vec<String>,
    /// Its working folder (relative paths in `argv` are relative to it).
    pub cwd: Option<PathBuf>,
}

impl Proc {
    /// For `repro-worker exec WORK/task.json WORK/outcome.json`: WORK, the run's work folder
    /// (absolute when the process's working folder could be read).
    pub fn worker_dir(&self) -> Option<PathBuf> {
        let is_worker = self
            .argv
            .first()
            .is_some_and(|a| a.ends_with("repro-worker"))
            && self.argv.get(1).is_some_and(|a| a == "exec");
        if !is_worker {
            return None;
        }
        let dir = Path::new(self.argv.get(2)?).parent()?;
        Some(match &self.cwd {
            Some(cwd) => cwd.join(dir),
            None => dir.to_path_buf(),
        })
    }
}

/// `(state, pgrp)` from `/proc/PID/stat`; comm may hold spaces, so split after the last ')'.
fn stat(path: &Path) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(path).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let pgrp = fields.nth(1)?.parse().ok()?;
    Some((state, pgrp))
}

/// Every process alive now (zombies left out).
pub fn all() -> Vec<Proc> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Some((state, pgrp)) = stat(&e.path().join("stat")) else {
            continue;
        };
        if matches!(state, 'Z' | 'X') {
            continue;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let argv = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let cwd = std::fs::read_link(e.path().join("cwd")).ok();
        out.push(Proc {
            pid,
            pgrp,
            argv,
            cwd,
        });
    }
    out
}

/// The `repro-worker` processes running a stage in a work folder under `work`
/// (`<store>/work`), with those folders.
pub fn workers_under(work: &Path) -> Vec<(i32, PathBuf)> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let work = canon(work);
    all()
        .into_iter()
        .filter_map(|p| {
            let dir = p.worker_dir()?;
            (canon(dir.parent()?) == work).then_some((p.pid, dir))
        })
        .collect()
}

/// Send `sig` to `pid` (a negative pid names a process group); false when nothing was there.
pub fn signal(pid: i32, sig: i32) -> bool {
    // SAFETY: sending a signal has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Whether every thread of `pid` is stopped; `None` once it is gone or a zombie.
pub fn stopped(pid: i32) -> Option<bool> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut all = true;
    let mut any = false;
    for t in tasks.flatten() {
        let Some((state, _)) = stat(&t.path().join("stat")) else {
            continue;
        };
        any = true;
        match state {
            'T' => {}
            'Z' | 'X' => return None,
            _ => all = false,
        }
    }
    any.then_some(all)
}

/// Stop `pids` (SIGSTOP) and wait until each is stopped or gone; returns those stopped.
/// Panics if one is still running after a minute (a thread in uninterruptible sleep that long).
pub fn freeze(pids: &[i32]) -> Vec<i32> {
    for &pid in pids {
        signal(pid, libc::SIGSTOP);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    for &pid in pids {
        loop {
            match stopped(pid) {
                None => break,
                Some(true) => {
                    out.push(pid);
                    break;
                }
                Some(false) => {
                    assert!(
                        Instant::now() < deadline,
                        "process {pid} did not stop within a minute of SIGSTOP"
                    );
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    out
}

/// The processes of process group `pgid`.
pub fn group(pgid: i32) -> Vec<i32> {
    all()
        .into_iter()
        .filter(|p| p.pgrp == pgid)
        .map(|p| p.pid)
        .collect()
}

/// Stop every process of group `pgid` and wait until they are stopped. A process the group
/// forks meanwhile is stopped too (the group signal is sent again until no member runs).
pub fn freeze_group(pgid: i32) {
    loop {
        signal(-pgid, libc::SIGSTOP);
        let members = group(pgid);
        freeze(&members);
        if group(pgid).iter().all(|&p| stopped(p) != Some(false)) {
            return;
        }
    }
}
