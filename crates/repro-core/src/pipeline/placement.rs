//! Where the parallel runs of `repro run --jobs N` execute: one slot per scheduling loop, each
//! slot a GPU (`--gpus 0,1 --runs-per-gpu K` packs K runs on a card, seen by the worker as
//! `CUDA_VISIBLE_DEVICES=<gpu>`) or, on the CPU, a disjoint set of cores when the runs' threads
//! fit the machine. Placement never enters a run's key: the key holds the device class and the
//! thread count, which placement does not change; it is recorded in the run record.

use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::{Result, bail};
use serde_json::{Value, json};

/// One slot's placement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placement {
    pub slot: usize,
    /// The GPU the slot's runs see (as their device 0).
    pub gpu: Option<usize>,
    /// The cores the slot's worker is pinned to.
    pub cpus: Option<Vec<usize>>,
}

/// The slots of a run: `jobs` of them; with `gpus`, `runs_per_gpu` per GPU in order (and then
/// as many slots as that, whatever `jobs` says). CPU slots get `threads` cores each when
/// `jobs × threads` fits in `cores`.
pub fn slots(
    jobs: usize,
    gpus: &[usize],
    runs_per_gpu: usize,
    threads: usize,
    cores: usize,
) -> Result<Vec<Placement>> {
    if runs_per_gpu == 0 {
        bail!("--runs-per-gpu must be at least 1");
    }
    if !gpus.is_empty() {
        return Ok(gpus
            .iter()
            .flat_map(|&g| std::iter::repeat_n(g, runs_per_gpu))
            .enumerate()
            .map(|(slot, g)| Placement {
                slot,
                gpu: Some(g),
                cpus: None,
            })
            .collect());
    }
    let pin = jobs > 1 && jobs * threads <= cores;
    Ok((0..jobs.max(1))
        .map(|slot| Placement {
            slot,
            gpu: None,
            cpus: pin.then(|| (slot * threads..(slot + 1) * threads).collect()),
        })
        .collect())
}

impl Placement {
    /// Apply to the worker's command: its visible GPU, its cores.
    pub fn apply(&self, cmd: &mut Command) {
        if let Some(g) = self.gpu {
            cmd.env("CUDA_VISIBLE_DEVICES", g.to_string());
        }
        if let Some(cpus) = self.cpus.clone() {
            // SAFETY: the closure runs in the forked child before exec and only calls
            // async-signal-safe libc functions on a stack-local cpu_set_t.
            unsafe {
                cmd.pre_exec(move || {
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    for &c in &cpus {
                        libc::CPU_SET(c, &mut set);
                    }
                    if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
    }

    /// What the run record says of it.
    pub fn describe(&self) -> Value {
        json!({"slot": self.slot, "gpu": self.gpu, "cpus": self.cpus})
    }
}

/// Parse `--gpus 0,1,3`.
pub fn parse_gpus(s: &str) -> Result<Vec<usize>, String> {
    s.split(',')
        .map(|g| {
            g.trim().parse::<usize>().map_err(|_| {
                format!("invalid --gpus {s:?}: expected GPU indices separated by commas, e.g. 0,1")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_are_packed_in_order() {
        let s = slots(1, &[0, 2], 2, 4, 16).unwrap();
        let gpus: Vec<Option<usize>> = s.iter().map(|p| p.gpu).collect();
        assert_eq!(gpus, [Some(0), Some(0), Some(2), Some(2)]);
        assert!(s.iter().all(|p| p.cpus.is_none()));
        assert!(slots(1, &[0], 0, 1, 1).is_err());
    }

    #[test]
    fn cpu_slots_get_disjoint_cores_only_when_they_fit() {
        let s = slots(2, &[], 1, 1, 2).unwrap();
        assert_eq!(s[0].cpus, Some(vec![0]));
        assert_eq!(s[1].cpus, Some(vec![1]));
        // 2 runs × 2 threads on 2 cores: pinning would only crowd them, so none.
        assert!(
            slots(2, &[], 1, 2, 2)
                .unwrap()
                .iter()
                .all(|p| p.cpus.is_none())
        );
        assert!(slots(1, &[], 1, 2, 2).unwrap()[0].cpus.is_none());
    }

    #[test]
    fn gpu_lists_parse_or_say_what_is_valid() {
        assert_eq!(parse_gpus("0, 1,3").unwrap(), [0, 1, 3]);
        assert!(parse_gpus("0,x").unwrap_err().contains("e.g. 0,1"));
    }

    #[test]
    fn pinning_takes_effect_in_the_child() {
        let p = Placement {
            slot: 0,
            gpu: Some(3),
            cpus: Some(vec![0]),
        };
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo $CUDA_VISIBLE_DEVICES; grep Cpus_allowed_list /proc/self/status",
        ]);
        p.apply(&mut cmd);
        let out = String::from_utf8(cmd.output().unwrap().stdout).unwrap();
        assert!(out.starts_with("3\n"), "{out}");
        assert!(out.trim_end().ends_with("\t0"), "{out}");
    }
}
