//! What divergence does to a verdict. A diverged run never enters a comparison (`select` leaves
//! its point without a value); this module decides when that leaves the check with nothing to
//! compare, the `diverged` verdict ("adaptive_decoupled diverged at (lr 1e-3, λ 1e-1) in 3 of 3
//! seeds"), and names the diverged cells the check skipped in its measured line.

use serde_json::{Map, Value};

use super::result::arm_text;
use crate::select::{DivergedCell, Mode, Point, Selection};
use crate::sweep::grid_text;
use repro_core::pipeline::claims::{Arm, TestSpec};

/// One group of points the test compares: an arm of a two-arm test, every point of a
/// one-sample test, or one cell of a trend or ranking.
struct Compared<'s> {
    /// The arm's name in sentences (`adamw`); none where the cell's coordinates say it all.
    label: Option<String>,
    /// The coordinates that select the group (the arm's keys are left out of cell texts).
    arm: Arm,
    points: Vec<&'s Point<'s>>,
}

fn compared<'s>(test: &TestSpec, sel: &'s Selection<'s>) -> Vec<Compared<'s>> {
    let arm_of = |a: &Arm| Compared {
        label: Some(arm_text(a)),
        arm: a.clone(),
        points: sel.points.iter().filter(|p| p.in_arm(a)).collect(),
    };
    match test {
        TestSpec::Less { a, b, .. }
        | TestSpec::Greater { a, b, .. }
        | TestSpec::Equivalent { a, b, .. } => vec![arm_of(a), arm_of(b)],
        TestSpec::Above { .. } | TestSpec::Below { .. } => vec![Compared {
            label: None,
            arm: Arm::new(),
            points: sel.points.iter().collect(),
        }],
        TestSpec::Increasing { .. }
        | TestSpec::Decreasing { .. }
        | TestSpec::RankAgreement { .. } => {
            let mut out: Vec<Compared> = Vec::new();
            for p in &sel.points {
                let arm: Arm = p
                    .coords
                    .iter()
                    .filter(|(k, _)| *k != "seed")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                match out.iter_mut().find(|g| g.arm == arm) {
                    Some(g) => g.points.push(p),
                    None => out.push(Compared {
                        label: None,
                        arm,
                        points: vec![p],
                    }),
                }
            }
            out
        }
    }
}

/// `(lr 1e-3, λ 1e-1)`: a cell's coordinates on the experiment's grid axes, those of the arm
/// left out; weight decay as λ, numbers as the sweep's ticks.
fn cell_text(coords: &Map<String, Value>, grid_axes: &[String], arm: &Arm) -> String {
    let parts: Vec<String> = grid_axes
        .iter()
        .filter(|a| !arm.contains_key(*a))
        .filter_map(|a| {
            let v = coords.get(a)?;
            let name = if a == "weight_decay" {
                "λ"
            } else {
                a.as_str()
            };
            let v = match v {
                Value::String(s) => s.clone(),
                _ => v.as_f64().map(grid_text).unwrap_or_else(|| v.to_string()),
            };
            Some(format!("{name} {v}"))
        })
        .collect();
    format!("({})", parts.join(", "))
}

fn in_arm(cell: &DivergedCell, arm: &Arm) -> bool {
    arm.iter().all(|(k, v)| {
        cell.coords
            .get(k)
            .is_some_and(|c| crate::observe::same_value(c, v))
    })
}

/// The arm's name and a space, or nothing where the cell's coordinates name it.
fn who(label: &Option<String>) -> String {
    label.as_ref().map(|l| format!("{l} ")).unwrap_or_default()
}

/// The coordinates a group's label already says (a two-arm test's arm), left out of its cells'
/// texts; a group without a label has its cells say every grid coordinate.
fn named_keys(g: &Compared) -> Arm {
    match g.label {
        Some(_) => g.arm.clone(),
        None => Arm::new(),
    }
}

fn seeds_text(seeds: &[i64]) -> String {
    let list: Vec<String> = seeds.iter().map(i64::to_string).collect();
    match seeds {
        [_] => format!("seed {}", list[0]),
        _ => format!("seeds {}", list.join(", ")),
    }
}

/// When a group the test compares has points and divergence left none of them a value: why,
/// naming the arm and its cells (the `diverged` verdict's explanation): `adamw diverged at
/// (lr 1e-3, λ 1e-1) in 3 of 3 seeds`, or for a tuned check `adam_l2 diverged in every cell it
/// is tuned over: (lr 1e-3, λ 0) in 1 of 3 seeds, …`.
pub(super) fn dead(test: &TestSpec, sel: &Selection, grid_axes: &[String]) -> Option<String> {
    let reasons: Vec<String> = compared(test, sel)
        .into_iter()
        .filter(|g| !g.points.is_empty() && g.points.iter().all(|p| p.diverged))
        .map(|g| {
            let cells: Vec<String> = sel
                .diverged
                .iter()
                .filter(|c| in_arm(c, &g.arm))
                .filter(|c| sel.mode == Mode::Best || c.every_seed())
                .map(|c| {
                    format!(
                        "{} in {} of {} seeds",
                        cell_text(&c.coords, grid_axes, &named_keys(&g)),
                        c.seeds.len(),
                        c.of
                    )
                })
                .collect();
            let cells = cells.join(", ");
            match sel.mode {
                Mode::Best => format!(
                    "{}diverged in every cell it is tuned over: {cells}",
                    who(&g.label)
                ),
                _ => format!("{}diverged at {cells}", who(&g.label)),
            }
        })
        .collect();
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// The diverged cells the compared groups skipped, for the measured line: the dropped seeds of
/// untuned runs, the partly diverged cells a tuning skipped (fully diverged ones counted), or how
/// many diverged runs a good-region fraction counted as not good. None without any.
pub(super) fn named(test: &TestSpec, sel: &Selection, grid_axes: &[String]) -> Option<String> {
    let mut dropped = Vec::new();
    let mut partly = Vec::new();
    let mut fully = 0;
    let mut runs = 0;
    for g in compared(test, sel) {
        let who = who(&g.label);
        for c in sel.diverged.iter().filter(|c| in_arm(c, &g.arm)) {
            let cell = cell_text(&c.coords, grid_axes, &named_keys(&g));
            runs += c.seeds.len();
            match sel.mode {
                Mode::Runs => dropped.push(format!("{who}{cell} {}", seeds_text(&c.seeds))),
                Mode::Best if c.every_seed() => fully += 1,
                Mode::Best => partly.push(format!(
                    "{who}{cell} in {} of {} seeds",
                    c.seeds.len(),
                    c.of
                )),
                Mode::Region => {}
            }
        }
    }
    let text = match sel.mode {
        Mode::Runs if !dropped.is_empty() => {
            format!("diverged, left out: {}", dropped.join("; "))
        }
        Mode::Best if !partly.is_empty() || fully > 0 => {
            let mut t = String::from("cells with a diverged seed skipped");
            if !partly.is_empty() {
                t += &format!(": {}", partly.join("; "));
            }
            if fully > 0 {
                let and = if partly.is_empty() { ": " } else { "; and " };
                let s = if fully == 1 { "" } else { "s" };
                t += &format!("{and}{fully} cell{s} diverged in every seed");
            }
            t
        }
        Mode::Region if runs > 0 => {
            let s = if runs == 1 { "" } else { "s" };
            format!("{runs} diverged run{s} counted as not good")
        }
        _ => return None,
    };
    Some(text)
}
