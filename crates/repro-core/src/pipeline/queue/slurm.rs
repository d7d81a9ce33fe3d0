//! Slurm as a [`QueueBackend`]: `sbatch` submits (array jobs, `--dependency=afterok:`),
//! `squeue` polls, `scancel` cancels and `scontrol update` repoints dependencies. `sacct` needs
//! slurmdbd, which small clusters lack, so only `squeue`/`scontrol` are used (finished jobs stay
//! visible for the cluster's `MinJobAge`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{Batch, JobState, QueueBackend};
use crate::store::atomic::write_atomic;

/// `repro run --executor slurm` options.
#[derive(Debug, Clone, Default)]
pub struct Slurm {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// Wall-time limit per job (sbatch `--time`).
    pub time: Option<String>,
    pub gpus_per_run: u32,
    /// Passed to sbatch as they are.
    pub sbatch_args: Vec<String>,
}

impl QueueBackend for Slurm {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn submit(&self, dir: &Path, batch: &Batch, command: &str) -> Result<Vec<String>> {
        let n = batch.runs.len();
        let script = format!(
            "#!/bin/bash\n# repro: {n} run(s) of experiment {}; written by `repro run --executor slurm`.\n\
             {command} --index \"${{SLURM_ARRAY_TASK_ID:-0}}\"\n",
            batch.experiment,
        );
        let script_path = dir.join(format!("{}.sh", batch.tag));
        write_atomic(&script_path, script.as_bytes())?;
        let mut args = vec![
            "--parsable".to_string(),
            format!("--job-name={}", batch.job_name()),
            // Log files named like the job ids the engine reports (see `log_hint`).
            if n > 1 {
                format!("--output={}/logs/%A_%a.out", dir.display())
            } else {
                format!("--output={}/logs/%j.out", dir.display())
            },
            "--open-mode=append".into(),
            "--requeue".into(),
            format!("--cpus-per-task={}", batch.cpus_per_run),
        ];
        if n > 1 {
            args.push(format!("--array=0-{}", n - 1));
        }
        if !batch.after.is_empty() {
            let ids: Vec<&str> = batch.after.iter().map(String::as_str).collect();
            args.push(format!("--dependency=afterok:{}", ids.join(":")));
        }
        if self.gpus_per_run > 0 {
            args.push(format!("--gpus-per-task={}", self.gpus_per_run));
        }
        for (flag, v) in [
            ("--partition", &self.partition),
            ("--account", &self.account),
            ("--time", &self.time),
        ] {
            if let Some(v) = v {
                args.push(format!("{flag}={v}"));
            }
        }
        args.extend(self.sbatch_args.iter().cloned());
        let id = sbatch(&args, &script_path)?;
        Ok((0..n)
            .map(|i| {
                if n > 1 {
                    format!("{id}_{i}")
                } else {
                    id.clone()
                }
            })
            .collect())
    }

    fn poll(&self, jobs: &BTreeSet<String>) -> Result<BTreeMap<String, (JobState, String)>> {
        squeue(jobs)
    }

    fn cancel(&self, job: &str) -> Result<()> {
        let status = Command::new("scancel").arg(job).status()?;
        anyhow::ensure!(status.success(), "scancel {job}: {status}");
        Ok(())
    }

    fn set_dependencies(&self, job: &str, after: &[&str]) -> Result<()> {
        scontrol(&[
            "update",
            &format!("JobId={job}"),
            &format!("Dependency=afterok:{}", after.join(":")),
        ])
    }

    fn log_hint(&self, dir: &Path, job: &str) -> String {
        format!(
            "log: {}",
            dir.join("logs").join(format!("{job}.out")).display()
        )
    }
}

fn classify(state: &str, reason: &str) -> JobState {
    match state {
        "COMPLETED" => JobState::Completed,
        "TIMEOUT" | "NODE_FAIL" | "PREEMPTED" | "BOOT_FAIL" | "DEADLINE" => {
            JobState::Killed(state.into())
        }
        "FAILED" | "CANCELLED" | "OUT_OF_MEMORY" | "SPECIAL_EXIT" | "REVOKED" => {
            JobState::Failed(format!("{state} ({reason})"))
        }
        _ => JobState::Live {
            pending_on_failed_dependency: reason == "DependencyNeverSatisfied",
        },
    }
}

/// Parse `squeue -h -r -t all -o '%i|%T|%r|%j'` lines: job → (state, job name).
fn parse_squeue(text: &str) -> BTreeMap<String, (JobState, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().splitn(4, '|');
            let (id, state, reason) = (f.next()?, f.next()?, f.next().unwrap_or(""));
            let name = f.next().unwrap_or("").to_string();
            Some((id.to_string(), (classify(state, reason), name)))
        })
        .collect()
}

fn squeue(jobs: &BTreeSet<String>) -> Result<BTreeMap<String, (JobState, String)>> {
    if jobs.is_empty() {
        return Ok(BTreeMap::new());
    }
    // squeue takes array ids; their tasks come back one per line with -r.
    let ids: BTreeSet<&str> = jobs
        .iter()
        .map(|j| j.split('_').next().unwrap_or(j))
        .collect();
    let out = Command::new("squeue")
        .args(["-h", "-r", "-t", "all", "-o", "%i|%T|%r|%j", "-j"])
        .arg(ids.into_iter().collect::<Vec<_>>().join(","))
        .output()
        .context("cannot run squeue: is Slurm installed and SLURM_CONF set?")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() && text.trim().is_empty() {
        // Every id purged: squeue says "Invalid job id specified".
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.contains("Invalid job id") {
            bail!("squeue failed: {}", err.trim());
        }
    }
    let mut states = parse_squeue(&text);
    for j in jobs {
        states
            .entry(j.clone())
            .or_insert((JobState::Unknown, String::new()));
    }
    Ok(states)
}

fn sbatch(args: &[String], script: &Path) -> Result<String> {
    let out = Command::new("sbatch")
        .args(args)
        .arg(script)
        .output()
        .context("cannot run sbatch: is Slurm installed and SLURM_CONF set?")?;
    if !out.status.success() {
        bail!(
            "sbatch {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // --parsable prints `id` or `id;cluster`.
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    anyhow::ensure!(
        !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()),
        "sbatch printed {text:?}, not a job id"
    );
    Ok(id)
}

fn scontrol(args: &[&str]) -> Result<()> {
    let out = Command::new("scontrol").args(args).output()?;
    if !out.status.success() {
        bail!(
            "scontrol {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_states_are_classified() {
        let s: BTreeMap<String, JobState> = parse_squeue(
            "54_0|COMPLETED|None|repro:a\n54_1|TIMEOUT|TimeLimit|repro:a\n\
             55|PENDING|DependencyNeverSatisfied|repro:b|x\n56|RUNNING|None|repro:c\n\
             57|FAILED|NonZeroExitCode|repro:d\n58|NODE_FAIL|None|repro:e\n",
        )
        .into_iter()
        .map(|(id, (state, name))| {
            assert!(name.starts_with("repro:"), "{name}");
            (id, state)
        })
        .collect();
        assert_eq!(s["54_0"], JobState::Completed);
        assert_eq!(s["54_1"], JobState::Killed("TIMEOUT".into()));
        assert_eq!(
            s["55"],
            JobState::Live {
                pending_on_failed_dependency: true
            }
        );
        assert_eq!(
            s["56"],
            JobState::Live {
                pending_on_failed_dependency: false
            }
        );
        assert_eq!(s["57"], JobState::Failed("FAILED (NonZeroExitCode)".into()));
        assert_eq!(s["58"], JobState::Killed("NODE_FAIL".into()));
    }
}
