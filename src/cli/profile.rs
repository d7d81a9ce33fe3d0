//! Which profile a command works on: the one named (`--profile`, `REPRO_PROFILE`), else
//! pipeline.yaml's `default_profile` for this machine (CUDA or not); what running it costs; and
//! the confirmation a `confirm: true` profile (the paper's) needs before runs start.

use anyhow::Result;

use super::ctx::{Ctx, Failure};
use repro_core::pipeline::plan::Plan;
use repro_core::pipeline::spec::ProfileSpec;
use repro_core::runtime::{Device, DeviceChoice};

/// `--profile` and `--device`, which every command that reads a profile takes.
#[derive(clap::Args, Debug, Clone)]
pub(super) struct Selection {
    /// The profile; default: pipeline.yaml's `default_profile` for this machine.
    #[arg(long, env = "REPRO_PROFILE")]
    pub profile: Option<String>,
    /// Where runs execute (keys differ by device): auto (CUDA when found, else the CPU), cpu,
    /// cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
}

/// A profile and, when it was not named, why it was chosen.
pub(super) struct Chosen {
    pub name: String,
    pub why: Option<String>,
}

impl Ctx {
    /// The named profile, else the default for the device `choice` resolves to here.
    pub(super) fn profile(&self, on: &Selection) -> Result<Chosen> {
        let choice = on.device;
        if let Some(name) = &on.profile {
            return Ok(Chosen {
                name: name.to_string(),
                why: None,
            });
        }
        let Some(default) = &self.pipeline.default_profile else {
            return Err(Failure::Usage(format!(
                "no --profile given and {} declares no `default_profile`; profiles: {}",
                self.pipeline.path.display(),
                self.pipeline
                    .profiles
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        };
        let (name, why) = match self.device(choice)? {
            Device::Cuda { .. } => (&default.cuda, "a CUDA device is available"),
            Device::Cpu if choice == DeviceChoice::Cpu => (&default.cpu, "--device cpu"),
            Device::Cpu => (&default.cpu, "no CUDA device found"),
        };
        Ok(Chosen {
            name: name.clone(),
            why: Some(format!(
                "the default here ({why}; pipeline.yaml's default_profile)"
            )),
        })
    }

    /// The profile's name, saying on stderr (unless quiet) why when it was not named.
    pub(super) fn pick_profile(&self, on: &Selection) -> Result<String> {
        let chosen = self.profile(on)?;
        if let (Some(why), false) = (&chosen.why, self.quiet) {
            eprintln!(
                "profile {}: {why}; name another with --profile",
                chosen.name
            );
        }
        Ok(chosen.name)
    }

    /// Before `run` starts anything: a chosen profile is explained with the others' runs and
    /// costs; a `confirm: true` profile needs `yes`, else its runs and cost are listed and the
    /// command stops (exit 2). `plan` is the chosen profile's, so the profile exists.
    pub(super) fn before_running(&self, chosen: &Chosen, plan: &Plan, yes: bool) -> Result<()> {
        let Some(spec) = self.pipeline.profiles.get(&chosen.name) else {
            return Ok(());
        };
        if chosen.why.is_some() && !self.quiet {
            eprintln!("{}", self.explain(chosen, spec, plan.runs.len()));
        }
        if !spec.confirm || yes {
            return Ok(());
        }
        let mut per_experiment: Vec<(&str, usize)> = Vec::new();
        for r in &plan.runs {
            match per_experiment.last_mut() {
                Some((e, n)) if *e == r.experiment => *n += 1,
                _ => per_experiment.push((&r.experiment, 1)),
            }
        }
        let width = per_experiment
            .iter()
            .map(|(e, _)| e.len())
            .max()
            .unwrap_or(0);
        for (e, n) in &per_experiment {
            eprintln!("  {e:width$}  {n:>5} runs");
        }
        Err(Failure::Usage(format!(
            "profile `{}` runs only when confirmed: {} runs, {}. Start it with `repro run \
             --profile {} --yes` (or `make replicate PROFILE={} YES=1`)",
            chosen.name,
            plan.runs.len(),
            spec.cost
                .as_ref()
                .map_or("cost not stated".into(), ToString::to_string),
            chosen.name,
            chosen.name
        ))
        .into())
    }

    /// What was chosen and why, then the command, runs and cost of every other profile.
    fn explain(&self, chosen: &Chosen, spec: &ProfileSpec, runs: usize) -> String {
        let cost = spec
            .cost
            .as_ref()
            .map_or("cost not stated".into(), ToString::to_string);
        let mut out = format!(
            "profile {}: {}\n  {runs} runs, {cost}\nother profiles:",
            chosen.name,
            chosen.why.as_deref().unwrap_or("named"),
        );
        let rows: Vec<(String, String)> = self
            .pipeline
            .profiles
            .iter()
            .filter(|(name, _)| **name != chosen.name)
            .map(|(name, p)| {
                let yes = if p.confirm { " --yes" } else { "" };
                let runs = Plan::resolve(&self.pipeline, name, &[])
                    .map_or("?".into(), |plan| plan.runs.len().to_string());
                let cost = p
                    .cost
                    .as_ref()
                    .map_or("cost not stated".into(), ToString::to_string);
                (
                    format!("repro run --profile {name}{yes}"),
                    format!("{runs:>5} runs, {cost}"),
                )
            })
            .collect();
        let width = rows.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
        for (cmd, what) in rows {
            out.push_str(&format!("\n  {cmd:width$}  {what}"));
        }
        out
    }
}
