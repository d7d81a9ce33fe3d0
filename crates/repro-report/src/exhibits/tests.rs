//! Tests of the exhibits on contrived observations: an Adam-variant × lr × λ sweep of the `lm`
//! kind (5 variants × λ {0, 1e-4, 1e-2} × lr {1e-3, 3e-3} × 2 seeds, one diverged run, one
//! blown-up but finite run) and a vision experiment, whose figures must stay the per-arm ones.

use serde_json::{Map, Value, json};

use super::sweep::COLOUR_CAP;
use super::*;
use crate::figures;
use crate::tables::{self, Cell};

const VARIANTS: [&str; 5] = [
    "adam_l2",
    "adamw",
    "l2_in_m",
    "l2_in_v",
    "adaptive_decoupled",
];
const LAMBDAS: [f64; 3] = [0.0, 1e-4, 1e-2];
const LRS: [f64; 2] = [1e-3, 3e-3];

/// The best validation perplexity of seed 0 of a cell; seed s adds 2·s. l2 in m (adam_l2,
/// l2_in_m) degrades at λ = 1e-2 and wants the larger lr there; the decoupled ones improve.
fn ppl(variant: &str, lr: f64, lambda: f64) -> f64 {
    let coupled = matches!(variant, "adam_l2" | "l2_in_m");
    let small_lr = lr == 1e-3;
    match (lambda, coupled, small_lr) {
        (0.0, _, true) => 200.0,
        (0.0, _, false) => 220.0,
        (1e-4, true, true) => 190.0,
        (1e-4, true, false) => 210.0,
        (1e-4, false, true) => 195.0,
        (1e-4, false, false) => 215.0,
        (_, true, true) => 400.0,
        (_, true, false) => 350.0,
        (_, false, true) => 185.0,
        (_, false, false) => 180.0,
    }
}

fn obs(coords: Map<String, Value>, seed: i64, rows: Vec<Map<String, Value>>) -> Observation {
    Observation::contrived(coords, seed, rows)
}

fn row(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// Three epochs ending at `best` (or, for `diverged`, null perplexities throughout).
fn lm_rows(best: Option<f64>, lambda: f64, coupled: bool) -> Vec<Map<String, Value>> {
    (0..3)
        .map(|epoch| {
            let p = best.map(|b| b * (1.0 + 0.5 * f64::from(2 - epoch)));
            row(json!({
                "epoch": epoch,
                "valid_ppl": p,
                "train_ppl": p.map(|p| p * 0.8),
                "train_loss": p.map(|p| (p * 0.8).ln()),
                "test_ppl": p.map(|p| p * 1.05),
                "weight_norm": 50.0 + f64::from(epoch),
                "l2_share_of_m": if coupled { lambda * 50.0 } else { 0.0 },
                "l2_over_grad": lambda * lambda * 1e5,
            }))
        })
        .collect()
}

/// The sweep, observations in a shuffled order (λ descending, variants reversed).
fn sweep_experiment() -> ExperimentData {
    let kind = repro_core::pipeline::kinds::kind("lm").expect("the lm kind");
    let mut observations = Vec::new();
    for lambda in LAMBDAS.iter().rev() {
        for variant in VARIANTS.iter().rev() {
            for lr in LRS {
                for seed in 0..2 {
                    let coupled = matches!(*variant, "adam_l2" | "l2_in_m");
                    let mut best = Some(ppl(variant, lr, *lambda) + 2.0 * seed as f64);
                    let blows_up =
                        *variant == "adam_l2" && lr == 3e-3 && *lambda == 1e-2 && seed == 1;
                    if *variant == "l2_in_m" && lr == 3e-3 && *lambda == 1e-2 && seed == 0 {
                        best = Some(1e12); // blew up but stayed finite
                    }
                    let coords = row(json!({
                        "variant": variant, "lr": lr, "weight_decay": lambda, "seed": seed,
                        "epochs": 3,
                    }));
                    let mut rows = lm_rows(best, *lambda, coupled);
                    if blows_up {
                        // Training loss stopped being finite in the last epoch; its validation
                        // perplexity (and the earlier epochs') is finite, yet the run diverged.
                        let last = rows.last_mut().unwrap();
                        last.insert("train_loss".into(), Value::Null);
                        last.insert("train_ppl".into(), Value::Null);
                    }
                    observations.push(obs(coords, seed, rows));
                }
            }
        }
    }
    ExperimentData {
        name: "wikitext2_adam_variants".into(),
        description: None,
        kind,
        observations,
        missing: Vec::new(),
        planned: 60,
        arm_axes: ["weight_decay", "variant", "lr"].map(String::from).to_vec(),
        data: Vec::new(),
    }
}

fn vision_experiment() -> ExperimentData {
    let kind = repro_core::pipeline::kinds::kind("vision").expect("the vision kind");
    let mut observations = Vec::new();
    for schedule in ["none", "early"] {
        for seed in 0..2 {
            let rows = (0..3)
                .map(|epoch| {
                    row(json!({"epoch": epoch, "test_acc": 0.5, "train_acc": 0.6,
                               "weight_norm": 10.0, "lr": 0.1}))
                })
                .collect();
            let coords = row(json!({"schedule": schedule, "seed": seed, "switch_epoch": 1}));
            observations.push(obs(coords, seed, rows));
        }
    }
    ExperimentData {
        name: "small".into(),
        description: None,
        kind,
        observations,
        missing: Vec::new(),
        planned: 4,
        arm_axes: vec!["schedule".into()],
        data: Vec::new(),
    }
}

fn inputs(experiments: Vec<ExperimentData>) -> Inputs {
    Inputs {
        profile: "test".into(),
        experiments,
        digests: Default::default(),
    }
}

fn find<'a>(xs: &'a [Exhibit], id: &str) -> &'a Exhibit {
    xs.iter()
        .find(|x| x.id == id)
        .unwrap_or_else(|| panic!("no exhibit {id}: {:?}", ids(xs)))
}

fn ids(xs: &[Exhibit]) -> Vec<&str> {
    xs.iter().map(|x| x.id.as_str()).collect()
}

fn lines_of(p: &Panel) -> (&[Series], bool, bool, bool) {
    match &p.chart {
        Chart::Lines {
            series,
            log_x,
            log_y,
            zero_slot,
            ..
        } => (series, *log_x, *log_y, *zero_slot),
        other => panic!("not lines: {other:?}"),
    }
}

fn y_at(s: &Series, x: f64) -> f64 {
    s.points.iter().find(|p| p.0 == x).expect("a point at x").1
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn the_sweep_is_recognised_with_variants_in_declared_order() {
    let e = sweep_experiment();
    let sw = Sweep::detect(&e).expect("a sweep");
    assert_eq!(sw.variants, VARIANTS);
    assert_eq!(sw.lrs, LRS);
    assert_eq!(sw.lambdas, LAMBDAS);
    assert!(Sweep::detect(&vision_experiment()).is_none());
    // Another varying axis (here: a model) is not a sweep: best-over-lr would mix models.
    let mut other = sweep_experiment();
    other.arm_axes.push("d_model".into());
    assert!(Sweep::detect(&other).is_none());
    // Without a varying λ it is not one either.
    let mut fixed = sweep_experiment();
    fixed.arm_axes.retain(|a| a != "weight_decay");
    assert!(Sweep::detect(&fixed).is_none());
}

#[test]
fn best_over_lr_is_per_seed_min_then_mean_and_skips_diverged_runs() {
    let e = sweep_experiment();
    let sw = Sweep::detect(&e).unwrap();
    // adam_l2 at λ 1e-2: seed 0 min(400, 350) = 350; seed 1 min(402, diverged) = 402.
    assert_eq!(
        sw.best_over_lr_by_seed("adam_l2", 1e-2),
        [(0, 350.0), (1, 402.0)]
    );
    assert!(close(sw.best_over_lr("adam_l2", 1e-2).unwrap().mean, 376.0));
    // That run has finite validation perplexities, but its training loss stopped being finite.
    let cell = sw.cell("adam_l2", 3e-3, 1e-2);
    let run = cell.iter().find(|o| o.seed == 1).unwrap();
    assert!(close(run.value(e.kind, &sw.score).unwrap(), 352.0));
    assert!(sw.diverged(run));
    assert!(!sw.diverged(cell.iter().find(|o| o.seed == 0).unwrap()));
    // l2_in_m seed 0's blown-up run loses the minimum to lr 1e-3.
    assert_eq!(
        sw.best_over_lr_by_seed("l2_in_m", 1e-2),
        [(0, 400.0), (1, 352.0)]
    );
    // A cell with a diverged seed has no mean; the cell's best lr is then the other.
    assert!(sw.cell_score("adam_l2", 3e-3, 1e-2).is_none());
    assert_eq!(sw.best_lr("adam_l2", 1e-2), Some(1e-3));
    assert_eq!(sw.best_lr("adamw", 1e-2), Some(3e-3));
    let (lr, l, s) = sw.best_cell("adamw").unwrap();
    assert_eq!((lr, l), (3e-3, 1e-2));
    assert!(close(s.mean, 181.0));
    assert_eq!(
        sw.best_cell("adam_l2").map(|b| (b.0, b.1)),
        Some((1e-3, 1e-4))
    );
    assert_eq!(sw.runs("adam_l2"), (12, 1));
}

#[test]
fn the_sweep_replaces_the_per_arm_figures() {
    let xs = exhibits(&inputs(vec![sweep_experiment(), vision_experiment()]));
    let n = "wikitext2_adam_variants";
    assert_eq!(
        ids(&xs),
        [
            format!("{n}-best-over-lr"),
            format!("{n}-heatmaps"),
            format!("{n}-drown-out"),
            format!("{n}-curves"),
            "small-curves".into(),
            "small-final".into(),
            "small-growth".into(),
        ]
    );
}

#[test]
fn best_over_lr_figure_has_a_line_per_variant_over_lambda() {
    let e = sweep_experiment();
    let xs = exhibits(&inputs(vec![e]));
    let x = find(&xs, "wikitext2_adam_variants-best-over-lr");
    assert_eq!(x.figure.panels.len(), 2);
    let (series, log_x, log_y, zero_slot) = lines_of(&x.figure.panels[0]);
    assert!(log_x && log_y && zero_slot);
    let labels: Vec<&str> = series.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, VARIANTS);
    for s in series {
        let xs: Vec<f64> = s.points.iter().map(|p| p.0).collect();
        assert_eq!(xs, LAMBDAS, "{}", s.label);
    }
    assert!(close(y_at(&series[0], 1e-2), 376.0));
    assert!(close(y_at(&series[1], 1e-2), 181.0));
    assert!(close(y_at(&series[1], 0.0), 201.0));
    // Two seeds: a CI band entry at every λ, around the mean.
    let band = series[1].band.as_ref().unwrap();
    assert_eq!(band.len(), 3);
    assert!(
        band.iter()
            .all(|(x, lo, hi)| lo < &y_at(&series[1], *x) && hi > lo)
    );
    // The best lr, dodged by 2% per variant around the middle one (index 2 of 5).
    let (lr, ..) = lines_of(&x.figure.panels[1]);
    let undodged = |i: usize, l: f64| y_at(&lr[i], l) / 1.02f64.powi(i as i32 - 2);
    assert!(
        close(undodged(0, 1e-2), 1e-3),
        "adam_l2's 3e-3 cell diverged in a seed"
    );
    assert!(close(undodged(1, 1e-2), 3e-3));
    assert!(close(undodged(3, 0.0), 1e-3));
    assert!(x.caption.contains("1e-3, 3e-3"), "{}", x.caption);
}

#[test]
fn heatmaps_share_one_capped_log_scale_and_outline_the_best_cell() {
    let xs = exhibits(&inputs(vec![sweep_experiment()]));
    let x = find(&xs, "wikitext2_adam_variants-heatmaps");
    assert_eq!(x.figure.panels.len(), 5);
    assert_eq!(x.figure.columns, 3);
    let titles: Vec<&str> = x.figure.panels.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(titles, VARIANTS);
    for (p, variant) in x.figure.panels.iter().zip(VARIANTS) {
        let Chart::Heatmap {
            x_ticks,
            y_ticks,
            values,
            scale,
            mark,
            ..
        } = &p.chart
        else {
            panic!("not a heatmap");
        };
        assert_eq!(x_ticks, &["1e-3", "3e-3"]);
        assert_eq!(y_ticks, &["1e-2", "1e-4", "0"], "largest λ on top");
        assert!(scale.log);
        let (lo, hi) = scale.range.unwrap();
        assert!(
            close(lo, 181.0) && close(hi, 181.0 * COLOUR_CAP),
            "{scale:?}"
        );
        let expected_mark = match variant {
            "adam_l2" | "l2_in_m" => (1, 0),
            _ => (0, 1),
        };
        assert_eq!(*mark, Some(expected_mark), "{variant}");
        // Row 2 is λ = 0, column 0 lr 1e-3: seeds 200 and 202.
        assert!(close(values[2][0].unwrap(), 201.0));
    }
    let cell = |v: usize, r: usize, c: usize| match &x.figure.panels[v].chart {
        Chart::Heatmap { values, .. } => values[r][c],
        _ => unreachable!(),
    };
    assert_eq!(
        cell(0, 0, 1),
        None,
        "adam_l2 diverged in a seed at 3e-3, 1e-2"
    );
    assert!(
        x.caption
            .ends_with("Diverged: adam_l2 lr 3e-3 λ 1e-2 (1 of 2 seeds)."),
        "{}",
        x.caption
    );
    assert!(
        cell(2, 0, 1).unwrap() > 1e11,
        "the blown-up cell keeps its value"
    );
}

#[test]
fn drown_out_is_at_the_best_lr_of_each_lambda() {
    let xs = exhibits(&inputs(vec![sweep_experiment()]));
    let x = find(&xs, "wikitext2_adam_variants-drown-out");
    let titles: Vec<&str> = x.figure.panels.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "l2 share of m: ‖mʳ‖/(‖mᵍ‖+‖mʳ‖)",
            "‖λw‖/‖∇L‖, mean over sampled steps"
        ]
    );
    let (share, _, share_log, _) = lines_of(&x.figure.panels[0]);
    assert!(!share_log, "the share spans [0, 0.5]: linear");
    assert!(close(y_at(&share[0], 1e-2), 0.5));
    assert_eq!(y_at(&share[1], 1e-2), 0.0);
    let (ratio, _, ratio_log, _) = lines_of(&x.figure.panels[1]);
    assert!(ratio_log, "1e-3 … 10 spans four decades");
    assert!(close(y_at(&ratio[1], 1e-4), 1e-3));
}

#[test]
fn curves_show_each_variants_best_cell_and_lambda_zero() {
    let xs = exhibits(&inputs(vec![sweep_experiment()]));
    let x = find(&xs, "wikitext2_adam_variants-curves");
    let (series, ..) = lines_of(&x.figure.panels[0]);
    let labels: Vec<&str> = series.iter().map(|s| s.label.as_str()).collect();
    let mut expected = VARIANTS.to_vec();
    expected.push("λ = 0");
    assert_eq!(labels, expected);
    // adamw's best cell (3e-3, 1e-2): epoch 3's mean is 181 (seeds 180, 182).
    assert_eq!(series[1].points.len(), 3);
    assert!(close(series[1].points[2].1, 181.0));
    assert!(
        x.caption.contains("adamw at lr 3e-3, λ 1e-2"),
        "{}",
        x.caption
    );
    assert!(x.caption.contains("λ = 0: adam_l2's runs at lr 1e-3"));
    // Every curve metric the kind declares and the runs wrote.
    assert_eq!(x.figure.panels.len(), 5);
}

#[test]
fn grid_values_print_in_exponent_form() {
    use crate::sweep::grid_text;
    let cases = [
        (0.0, "0"),
        (3e-4, "3e-4"),
        (1e-3, "1e-3"),
        (0.1, "1e-1"),
        (2.5e-5, "2.5e-5"),
    ];
    for (x, text) in cases {
        assert_eq!(grid_text(x), text);
    }
    assert_eq!(grid_text(1.0 / 3.0 * 1e-4), "3.33e-5");
    assert_eq!(grid_text(3.0), "3");
    assert_eq!(grid_text(10.0), "10");
    assert_eq!(grid_text(2.5), "2.5");
    assert_eq!(grid_text(1000.0), "1000");
    assert_eq!(grid_text(1.0 + 1e-9), "1e0");
}

#[test]
fn the_sweep_table_has_a_row_per_variant() {
    let t = crate::per_experiment::tables(&inputs(vec![sweep_experiment()]));
    let t = &t[0];
    assert_eq!(
        t.headers,
        [
            "variant",
            "runs",
            "diverged",
            "best lr",
            "best λ",
            "valid_ppl@min at best",
            "test_ppl@final at best",
            "valid_ppl@min at λ = 0, best lr",
            "valid_ppl@min at λ = 1e-2, best lr",
        ]
    );
    let text: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| r.iter().map(Cell::text).collect())
        .collect();
    assert_eq!(text.len(), 5);
    assert_eq!(text[0][..5], ["adam_l2", "12", "1", "1e-3", "1e-4"]);
    assert_eq!(text[1][..5], ["adamw", "12", "0", "3e-3", "1e-2"]);
    assert_eq!(text[2][..5], ["l2_in_m", "12", "0", "1e-3", "1e-4"]);
    // adamw: best cell 180, 182 → 181 ± t(0.975, 1)·√2/√2·… (two seeds: a CI).
    let Cell::Stat(Some(best)) = &t.rows[1][5] else {
        panic!("no stat");
    };
    assert!(close(best.mean, 181.0) && best.ci95.is_some());
    let stat = |r: usize, c: usize| match &t.rows[r][c] {
        Cell::Stat(s) => s.map(|s| s.mean),
        other => panic!("{other:?}"),
    };
    assert!(
        close(stat(1, 6).unwrap(), 181.0 * 1.05),
        "test ppl at the best cell"
    );
    assert!(close(stat(0, 7).unwrap(), 201.0), "λ = 0, best lr per seed");
    assert!(
        close(stat(0, 8).unwrap(), 376.0),
        "largest λ, best lr per seed"
    );
    assert!(close(stat(1, 8).unwrap(), 181.0));
    // The CSV splits each statistic into mean and CI bounds.
    let csv = tables::csv(t).unwrap();
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .contains("valid_ppl@min at best_ci_low")
    );
}

#[test]
fn other_experiments_keep_their_per_arm_table() {
    let t = crate::per_experiment::tables(&inputs(vec![vision_experiment()]));
    assert_eq!(t[0].headers[0], "schedule");
    assert_eq!(t[0].rows.len(), 2);
}

#[test]
fn a_sweep_with_one_lr_and_a_fully_diverged_variant_still_draws() {
    let mut e = sweep_experiment();
    e.observations
        .retain(|o| o.coords["lr"].as_f64() == Some(1e-3));
    e.arm_axes.retain(|a| a != "lr");
    for o in &mut e.observations {
        if o.coords["variant"] == "l2_in_v" {
            for r in &mut o.rows {
                r.insert("valid_ppl".into(), Value::Null);
            }
        }
    }
    let sw = Sweep::detect(&e).expect("still a sweep");
    assert_eq!(sw.lrs, [1e-3]);
    assert!(sw.best_cell("l2_in_v").is_none());
    let xs = exhibits(&inputs(vec![e.clone()]));
    let best = find(&xs, "wikitext2_adam_variants-best-over-lr");
    assert_eq!(best.figure.panels.len(), 1, "no best-lr panel for one lr");
    let (series, ..) = lines_of(&best.figure.panels[0]);
    assert!(
        series[3].points.iter().all(|p| p.1.is_nan()),
        "l2_in_v has no point"
    );
    let curves = find(&xs, "wikitext2_adam_variants-curves");
    let (series, ..) = lines_of(&curves.figure.panels[0]);
    assert!(!series.iter().any(|s| s.label == "l2_in_v"));
    for x in &xs {
        figures::render_svg(&x.figure).unwrap();
    }
    let t = crate::per_experiment::tables(&inputs(vec![e]));
    let row: Vec<String> = t[0].rows[3].iter().map(Cell::text).collect();
    assert_eq!(row[..6], ["l2_in_v", "6", "6", "—", "—", "—"]);
}

/// Renders every sweep figure as PNG and SVG (into `REPRO_FIGURE_DIR` when set, to look at)
/// and checks the text a reader needs is in the SVG.
#[test]
fn sweep_figures_render_with_their_labels() {
    let xs = exhibits(&inputs(vec![sweep_experiment()]));
    let dir = std::env::var_os("REPRO_FIGURE_DIR").map(std::path::PathBuf::from);
    for x in &xs {
        let svg = figures::render_svg(&x.figure).unwrap();
        let png = figures::render_png(&x.figure).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        if let Some(d) = &dir {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join(format!("{}.svg", x.id)), &svg).unwrap();
            std::fs::write(d.join(format!("{}.png", x.id)), &png).unwrap();
        }
        assert!(!svg.contains(">no data<"), "{}", x.id);
        for v in ["adamw", "adaptive_decoupled"] {
            assert!(
                texts(&svg).iter().any(|t| t == v),
                "{v} missing from {}",
                x.id
            );
        }
    }
    let svg_of = |id: &str| figures::render_svg(&find(&xs, id).figure).unwrap();
    let heat = texts(&svg_of("wikitext2_adam_variants-heatmaps"));
    assert!(
        heat.iter().any(|t| t == "≥ 543"),
        "the capped colour bar end says so"
    );
    let best = texts(&svg_of("wikitext2_adam_variants-best-over-lr"));
    for t in ["weight decay λ", "0", "1e-4", "0.01"] {
        assert!(best.iter().any(|x| x == t), "{t:?} not in {best:?}");
    }
}

/// The contents of an SVG's text elements.
fn texts(svg: &str) -> Vec<String> {
    let inner = |el: &str| {
        let (_, rest) = el.split_once('>')?;
        Some(rest.split("</text>").next()?.trim().to_string())
    };
    svg.split("<text").skip(1).filter_map(inner).collect()
}

/// A sweep at paper scale (5 variants × 10 λ × 3 lr × 4 seeds × 40 epochs) with contrived,
/// deterministic perplexities (l2 in m degrades with λ, decoupled decay helps up to 1e-2) and
/// a few diverged runs: every figure renders with all its panels and cells (written into
/// `REPRO_FIGURE_DIR`/paper when set, to look at).
#[test]
fn a_paper_scale_sweep_renders_readably() {
    let kind = repro_core::pipeline::kinds::kind("lm").unwrap();
    let lambdas = [0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1];
    let lrs = [3e-4, 1e-3, 3e-3];
    let mut observations = Vec::new();
    for (vi, variant) in VARIANTS.iter().enumerate() {
        let coupled = matches!(*variant, "adam_l2" | "l2_in_m");
        for l in lambdas {
            for lr in lrs {
                for seed in 0..4i64 {
                    let off = (lr / 1e-3f64).log10();
                    let mut best = 120.0 + 60.0 * off * off;
                    best *= if coupled {
                        1.0 + 30.0 * l / (lr / 1e-3)
                    } else {
                        1.0 - 0.08 * (l / 1e-2).min(1.0) + 3.0 * (l - 1e-2).max(0.0)
                    };
                    // Deterministic seed noise of about ±2%.
                    let noise = ((seed * 7 + vi as i64 * 3) % 5) as f64 - 2.0;
                    best *= 1.0 + 0.01 * noise;
                    let diverged = coupled && lr == 3e-3 && l == 1e-1 && seed == 3;
                    let rows = (0..40)
                        .map(|epoch| {
                            let p = (!diverged)
                                .then(|| best * (1.0 + 3.0 * (-f64::from(epoch) / 6.0).exp()));
                            row(json!({
                                "epoch": epoch,
                                "valid_ppl": p,
                                "train_ppl": p.map(|p| p * 0.7),
                                "test_ppl": p.map(|p| p * 0.96),
                                "weight_norm": 80.0 / (1.0 + 100.0 * l) + f64::from(epoch) * 0.3,
                                "l2_share_of_m": if coupled { l / (l + 3e-4) } else { 0.0 },
                                "l2_over_grad": l * 4e3 / (1.0 + 100.0 * l),
                            }))
                        })
                        .collect();
                    let coords = row(json!({
                        "variant": variant, "lr": lr, "weight_decay": l, "seed": seed,
                    }));
                    observations.push(obs(coords, seed, rows));
                }
            }
        }
    }
    let e = ExperimentData {
        name: "wikitext2_adam_variants".into(),
        description: None,
        kind,
        observations,
        missing: Vec::new(),
        planned: 600,
        arm_axes: ["variant", "lr", "weight_decay"].map(String::from).to_vec(),
        data: Vec::new(),
    };
    let dir =
        std::env::var_os("REPRO_FIGURE_DIR").map(|d| std::path::PathBuf::from(d).join("paper"));
    let xs = exhibits(&inputs(vec![e.clone()]));
    assert_eq!(xs.len(), 4);
    let heat = find(&xs, "wikitext2_adam_variants-heatmaps");
    for p in &heat.figure.panels {
        let Chart::Heatmap {
            values, y_ticks, ..
        } = &p.chart
        else {
            panic!()
        };
        assert_eq!(values.len(), 10);
        assert_eq!(y_ticks.first().map(String::as_str), Some("1e-1"));
        assert_eq!(y_ticks.last().map(String::as_str), Some("0"));
    }
    for x in &xs {
        let svg = figures::render_svg(&x.figure).unwrap();
        assert!(!texts(&svg).iter().any(|t| t == "no data"), "{}", x.id);
        let png = figures::render_png(&x.figure).unwrap();
        if let Some(d) = &dir {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join(format!("{}.png", x.id)), &png).unwrap();
        }
    }
    let t = crate::per_experiment::tables(&inputs(vec![e]));
    assert_eq!(t[0].rows.len(), 5);
    if let Some(d) = &dir {
        std::fs::write(d.join("table.md"), tables::markdown(&t[0])).unwrap();
    }
}

/// A DQN experiment writes a row per training iteration (in its `epoch` field): its curves
/// count iterations, at whole-number ticks.
#[test]
fn dqn_curves_are_drawn_over_iterations() {
    let mut e = vision_experiment();
    e.kind = repro_core::pipeline::kinds::kind("dqn").expect("the dqn kind");
    for o in &mut e.observations {
        for r in &mut o.rows {
            r.insert("eval_return".into(), json!(1.5));
        }
    }
    let xs = exhibits(&inputs(vec![e]));
    let x = find(&xs, "small-curves");
    assert!(x.caption.contains("per iteration"), "{}", x.caption);
    for p in &x.figure.panels {
        let Chart::Lines {
            x_label, whole_x, ..
        } = &p.chart
        else {
            panic!("not lines: {:?}", p.chart)
        };
        assert_eq!((x_label.as_str(), *whole_x), ("iteration", true));
    }
    let vision = exhibits(&inputs(vec![vision_experiment()]));
    let Chart::Lines { x_label, .. } = &find(&vision, "small-curves").figure.panels[0].chart else {
        panic!("not lines")
    };
    assert_eq!(x_label, "epoch");
}
