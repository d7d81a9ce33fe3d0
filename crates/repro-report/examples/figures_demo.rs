//! Renders one demo figure with every chart kind (made-up DEMO DATA, not results) to
//! `figures_demo.png` and `figures_demo.svg` in the folder given as the first argument, for
//! looking at how `repro_report::figures` draws.
//!
//!     cargo run --release --example figures_demo -- /tmp/figs
use std::path::PathBuf;

use anyhow::{Context, Result};
use repro_report::figures::{
    Bar, Chart, ColourScale, Figure, Panel, Series, render_png, render_svg,
};

/// Test error over epochs for three weight-decay arms, with bands and the switch epoch Tₛ.
fn lines_panel() -> Panel {
    let arm = |label: &str, floor: f64, speed: f64| {
        let err = |e: f64| floor + 0.6 * (-e / speed).exp() + 0.01 * (e * 0.7).sin();
        let points: Vec<(f64, f64)> = (0..=60)
            .map(|e| (f64::from(e), err(f64::from(e))))
            .collect();
        let band = points
            .iter()
            .map(|&(x, y)| (x, y - 0.015, y + 0.015))
            .collect();
        Series {
            label: label.into(),
            points,
            band: Some(band),
        }
    };
    Panel {
        title: "Test error (demo data)".into(),
        chart: Chart::Lines {
            x_label: "epoch".into(),
            y_label: "test error".into(),
            log_x: false,
            log_y: false,
            whole_x: true,
            series: vec![
                arm("early", 0.07, 8.0),
                arm("late", 0.09, 14.0),
                arm("none", 0.12, 10.0),
            ],
            vlines: vec![(20.0, "Tₛ".into())],
            zero_slot: false,
        },
    }
}

/// A λ sweep on log axes, including a non-positive value that the log axis skips.
fn sweep_panel() -> Panel {
    let lambdas = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2];
    let curve = |label: &str, best: f64| Series {
        label: label.into(),
        points: lambdas
            .iter()
            .map(|&l: &f64| (l, 0.05 + 0.02 * (l / best).ln().powi(2) / 10.0))
            .collect(),
        band: None,
    };
    let mut with_zero = curve("decoupled", 3e-4);
    with_zero.points.push((0.0, 0.2));
    Panel {
        title: "λ sweep (demo data)".into(),
        chart: Chart::Lines {
            x_label: "λ".into(),
            y_label: "test error".into(),
            log_x: true,
            log_y: true,
            whole_x: false,
            series: vec![curve("L2", 1e-4), with_zero],
            vlines: vec![],
            zero_slot: false,
        },
    }
}

fn bars_panel() -> Panel {
    let bar = |label: &str, values: [f64; 5]| {
        let mean = values.iter().sum::<f64>() / 5.0;
        Bar {
            label: label.into(),
            mean,
            ci: Some((mean - 0.004, mean + 0.004)),
            values: values.to_vec(),
        }
    };
    Panel {
        title: "Final error by arm (demo data)".into(),
        chart: Chart::Bars {
            y_label: "test error".into(),
            bars: vec![
                bar("early", [0.071, 0.074, 0.069, 0.073, 0.070]),
                bar("late", [0.088, 0.091, 0.086, 0.093, 0.090]),
                bar("none", [0.118, 0.121, 0.125, 0.119, 0.122]),
                bar("always", [0.079, 0.081, 0.077, 0.083, 0.080]),
            ],
        },
    }
}

fn scatter_panel() -> Panel {
    let cloud = |label: &str, shift: f64| Series {
        label: label.into(),
        points: (0..12)
            .map(|i| {
                let x = 10f64.powf(1.0 + f64::from(i) / 4.0);
                (
                    x,
                    shift + 0.02 * x.log10() + 0.01 * (f64::from(i) * 1.7).sin(),
                )
            })
            .collect(),
        band: None,
    };
    Panel {
        title: "Sharpness vs error (demo data)".into(),
        chart: Chart::Scatter {
            x_label: "top Hessian eigenvalue".into(),
            y_label: "test error".into(),
            log_x: true,
            log_y: false,
            series: vec![cloud("early", 0.05), cloud("late", 0.08)],
        },
    }
}

fn heatmap_panel() -> Panel {
    let lrs = ["0.01", "0.03", "0.1", "0.3"];
    let wds = ["1e-5", "1e-4", "1e-3"];
    let values = (0..wds.len())
        .map(|r| {
            (0..lrs.len())
                .map(|c| (r, c) != (2, 3))
                .enumerate()
                .map(|(c, present)| {
                    present.then(|| 0.06 + 0.01 * (r as f64 - 1.0).powi(2) + 0.008 * c as f64)
                })
                .collect()
        })
        .collect();
    Panel {
        title: "Error grid (demo data)".into(),
        chart: Chart::Heatmap {
            x_label: "learning rate".into(),
            y_label: "weight decay λ".into(),
            x_ticks: lrs.map(String::from).to_vec(),
            y_ticks: wds.map(String::from).to_vec(),
            values,
            value_label: "test error".into(),
            scale: ColourScale::default(),
            mark: None,
        },
    }
}

fn empty_panel() -> Panel {
    Panel {
        title: "A run that has not finished".into(),
        chart: Chart::Lines {
            x_label: "epoch".into(),
            y_label: "loss".into(),
            log_x: false,
            log_y: true,
            whole_x: true,
            series: vec![Series {
                label: "pending".into(),
                points: vec![(1.0, f64::NAN)],
                band: None,
            }],
            vlines: vec![],
            zero_slot: false,
        },
    }
}

fn main() -> Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: figures_demo OUT_DIR")?,
    );
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let figure = Figure {
        title: "figures_demo — every chart kind (DEMO DATA, not results)".into(),
        panels: vec![
            lines_panel(),
            sweep_panel(),
            bars_panel(),
            scatter_panel(),
            heatmap_panel(),
            empty_panel(),
        ],
        columns: 3,
    };
    std::fs::write(dir.join("figures_demo.png"), render_png(&figure)?)?;
    std::fs::write(dir.join("figures_demo.svg"), render_svg(&figure)?)?;
    println!("wrote {}/figures_demo.png and .svg", dir.display());
    Ok(())
}
