//! The E8 drown-out diagnostic of [`super::drown_out`] for [`super::stacked::StackedAdam`]: the
//! same shadow moving averages, moved every step over the stacked parameters (they are
//! elementwise, so a stacked shadow is every member's shadow), and the same sums reduced per
//! member at a sampled step ([`super::drown_out::member_step_sums`]), so member i's diagnostic is
//! what a solo run of it reports.

use tch::{Kind, Tensor};

use super::drown_out::{DrownOut, MemberStepView, SUMS, Shadow, StabilityBound, member_step_sums};
use crate::checkpoint::State;

/// The diagnostic's state in a stacked optimizer while it is tracked.
pub(super) struct Tracker {
    /// Sample every this many steps (the shadows move every step).
    every: u64,
    /// Steps since tracking began.
    steps: u64,
    shadows: Vec<Option<Shadow>>,
    /// The last sampled step's per-member sums, `[N, SUMS]` f64, added over parameters.
    sums: Option<Tensor>,
    /// This step's sums so far (while sampling).
    pending: Option<Tensor>,
    /// The last sampled step's `[N, SUMS]` rows of each parameter (its index, in step order),
    /// for the per-group diagnostic; not checkpointed (a sample is read right after its step).
    rows: Vec<(usize, Tensor)>,
    /// This step's rows so far (while sampling).
    pending_rows: Vec<(usize, Tensor)>,
}

/// What one parameter's step was, for [`Tracker::observe`].
pub(super) struct Observed<'a> {
    pub g: &'a Tensor,
    /// The step's starting w (a copy taken before the step moved it).
    pub w0: &'a Tensor,
    /// Per-member λ broadcast over the parameter (`[N, 1, …]`; frozen members 0).
    pub wd: &'a Tensor,
    pub m: &'a Tensor,
    pub denom: &'a Tensor,
    pub lr_wd: &'a [f64],
    pub bounds: &'a [StabilityBound],
    pub betas: (f64, f64),
    pub eps: f64,
    /// Whether any member's λ is non-zero (else r is absent, as the solo's at λ = 0).
    pub any_wd: bool,
}

impl Tracker {
    pub fn new(every: u64, params: usize) -> Tracker {
        Tracker {
            every,
            steps: 0,
            shadows: (0..params).map(|_| None).collect(),
            sums: None,
            pending: None,
            rows: Vec::new(),
            pending_rows: Vec::new(),
        }
    }

    /// Before a step: whether this one is sampled.
    pub fn begin_step(&mut self) -> bool {
        self.steps += 1;
        self.pending = None;
        self.pending_rows.clear();
        self.steps.is_multiple_of(self.every)
    }

    /// Parameter `i`'s shadows (zeros at its first step) with their step count advanced: the
    /// caller moves them by this step's g and r, member chunk by member chunk
    /// ([`super::drown_out::move_shadows`]), before [`Tracker::observe`].
    pub fn shadows(&mut self, i: usize, like: &Tensor) -> (Tensor, Tensor, Tensor) {
        let sh = self.shadows[i].get_or_insert_with(|| Shadow::zeros_like(like));
        sh.steps += 1;
        (
            sh.mg.shallow_clone(),
            sh.mr.shallow_clone(),
            sh.vg.shallow_clone(),
        )
    }

    /// After parameter `i` stepped on a sampled step (its shadows moved): add its sums.
    pub fn observe(&mut self, i: usize, o: &Observed) {
        let sh = self.shadows[i]
            .as_ref()
            .expect("moved before it is observed");
        let r = o.any_wd.then(|| o.w0 * o.wd);
        let view = MemberStepView {
            g: o.g,
            r: r.as_ref(),
            m: o.m,
            denom: o.denom,
            lr_wd: o.lr_wd,
            betas: o.betas,
            eps: o.eps,
            bounds: o.bounds,
        };
        let row = member_step_sums(sh, &view);
        self.pending_rows.push((i, row.shallow_clone()));
        self.pending = Some(match self.pending.take() {
            Some(acc) => acc + row,
            None => row,
        });
    }

    /// After a step: a sampled step's sums become the last ones.
    pub fn end_step(&mut self) {
        if let Some(p) = self.pending.take() {
            self.sums = Some(p);
            self.rows = std::mem::take(&mut self.pending_rows);
        }
    }

    /// Per member, the last sampled step's diagnostic (`None` before one, and for `skip[i]`).
    pub fn drown_out(&self, skip: &[bool]) -> Vec<Option<DrownOut>> {
        let Some(sums) = &self.sums else {
            return vec![None; skip.len()];
        };
        let flat = Vec::<f64>::try_from(
            &sums
                .to_kind(Kind::Double)
                .to_device(tch::Device::Cpu)
                .view([-1]),
        )
        .expect("an [N, SUMS] f64 tensor");
        flat.chunks_exact(SUMS)
            .zip(skip)
            .map(|(row, &skip)| {
                let row: &[f64; SUMS] = row.try_into().expect("SUMS values per member");
                (!skip).then(|| DrownOut::from_sums(row))
            })
            .collect()
    }

    /// Per member, per layer group, the last sampled step's diagnostic over the parameters
    /// `group_of` maps to that group (`None` for a group without any, for `skip[i]`, and before
    /// a sample), summed in parameter order as the solo
    /// [`super::adam::Adam::drown_out_by_group`] sums them.
    pub fn drown_out_by_group(
        &self,
        group_of: &[usize],
        groups: usize,
        skip: &[bool],
    ) -> Vec<Vec<Option<DrownOut>>> {
        let n = skip.len();
        if self.rows.is_empty() {
            return vec![vec![None; groups]; n];
        }
        let stacked: Vec<Tensor> = self.rows.iter().map(|(_, t)| t.shallow_clone()).collect();
        let flat = Vec::<f64>::try_from(
            &Tensor::stack(&stacked, 0)
                .to_kind(Kind::Double)
                .to_device(tch::Device::Cpu)
                .view([-1]),
        )
        .expect("a [P, N, SUMS] f64 tensor");
        let mut acc = vec![vec![None::<[f64; SUMS]>; groups]; n];
        for ((param, _), rows) in self.rows.iter().zip(flat.chunks_exact(n * SUMS)) {
            let Some(&g) = group_of.get(*param).filter(|&&g| g < groups) else {
                continue;
            };
            for (member, row) in rows.chunks_exact(SUMS).enumerate() {
                let sum = acc[member][g].get_or_insert([0.0; SUMS]);
                for (a, x) in sum.iter_mut().zip(row) {
                    *a += x;
                }
            }
        }
        acc.into_iter()
            .zip(skip)
            .map(|(member, &skip)| {
                member
                    .into_iter()
                    .map(|s| s.filter(|_| !skip).map(|s| DrownOut::from_sums(&s)))
                    .collect()
            })
            .collect()
    }

    /// Into a checkpoint under `prefix`: the shadows, their step counts and the tracker's.
    pub fn save(&self, st: &mut State, prefix: &str) -> anyhow::Result<()> {
        let steps: Vec<Option<u64>> = self
            .shadows
            .iter()
            .map(|s| s.as_ref().map(|s| s.steps))
            .collect();
        st.put(&format!("{prefix}.drown_out"), &(self.steps, steps))?;
        for (i, s) in self.shadows.iter().enumerate() {
            if let Some(s) = s {
                st.put_tensor(format!("{prefix}.mg.{i}"), &s.mg);
                st.put_tensor(format!("{prefix}.mr.{i}"), &s.mr);
                st.put_tensor(format!("{prefix}.vg.{i}"), &s.vg);
            }
        }
        if let Some(sums) = &self.sums {
            st.put_tensor(format!("{prefix}.drown_sums"), sums);
        }
        Ok(())
    }

    /// What [`Tracker::save`] saved, onto `device`.
    pub fn load(
        &mut self,
        st: &mut State,
        prefix: &str,
        device: tch::Device,
    ) -> anyhow::Result<()> {
        let (steps, shadow_steps): (u64, Vec<Option<u64>>) =
            st.get(&format!("{prefix}.drown_out"))?;
        anyhow::ensure!(
            shadow_steps.len() == self.shadows.len(),
            "the checkpoint's diagnostic has {} parameters, this optimizer {}",
            shadow_steps.len(),
            self.shadows.len()
        );
        self.steps = steps;
        for (i, s) in shadow_steps.into_iter().enumerate() {
            self.shadows[i] = match s {
                Some(steps) => Some(Shadow {
                    mg: st.tensor(&format!("{prefix}.mg.{i}"), device)?,
                    mr: st.tensor(&format!("{prefix}.mr.{i}"), device)?,
                    vg: st.tensor(&format!("{prefix}.vg.{i}"), device)?,
                    steps,
                }),
                None => None,
            };
        }
        let name = format!("{prefix}.drown_sums");
        self.sums = st
            .has_tensor(&name)
            .then(|| st.tensor(&name, device))
            .transpose()?;
        Ok(())
    }
}
