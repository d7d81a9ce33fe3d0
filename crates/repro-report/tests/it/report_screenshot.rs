//! A figure inlined in an HTML page is visible in a real browser: render it to SVG, write a
//! self-contained page (no network), screenshot it with headless Chromium through
//! scripts/screenshot_report.sh, and look for the first palette colour in the screenshot.
//! Skips (passes with a note) when Chromium is not installed; fails then under `CI=true`.

use std::path::PathBuf;
use std::process::Command;

use repro_report::figures::{Chart, Figure, PALETTE, Panel, Series, render_svg};

/// The first of `names` found on PATH.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn figure() -> Figure {
    let line = |label: &str, offset: f64| Series {
        label: label.into(),
        points: (0..20)
            .map(|e| (f64::from(e), offset + 1.0 / (1.0 + f64::from(e))))
            .collect(),
        band: None,
    };
    let chart = Chart::Lines {
        x_label: "epoch".into(),
        y_label: "loss".into(),
        log_x: false,
        log_y: false,
        whole_x: true,
        series: vec![line("early", 0.1), line("late", 0.3)],
        vlines: vec![(5.0, "Tₛ".into())],
        zero_slot: false,
    };
    let panel = Panel {
        title: "Screenshot check".into(),
        chart,
    };
    Figure {
        title: "report screenshot".into(),
        panels: vec![panel],
        columns: 1,
    }
}

/// Pixels within a few units of `(r, g, b)` on every channel (the browser may blend edges).
fn near(img: &image::RgbImage, (r, g, b): (u8, u8, u8)) -> usize {
    let close = |a: u8, b: u8| a.abs_diff(b) <= 6;
    img.pixels()
        .filter(|p| close(p.0[0], r) && close(p.0[1], g) && close(p.0[2], b))
        .count()
}

#[test]
fn figure_is_visible_in_headless_chromium() {
    if on_path(&["chromium", "chromium-browser"]).is_none() {
        repro_testkit::missing("chromium", "apt-get install chromium");
        return;
    }
    let svg = render_svg(&figure()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let page = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>report</title></head>\n\
         <body style=\"margin:0;background:#fff\">\n{svg}\n</body></html>\n"
    );
    std::fs::write(&html, page).unwrap();
    let shot = dir.path().join("shot.png");
    let script = repro_testkit::workspace_root().join("scripts/screenshot_report.sh");
    let out = Command::new(&script)
        .args([&html, &shot])
        .args(["800", "600"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = image::open(&shot).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (800, 600));
    let drawn = near(&img, PALETTE[0]);
    assert!(
        drawn > 100,
        "only {drawn} pixels of the first palette colour in the screenshot"
    );
}

#[test]
fn script_fails_clearly_without_a_page() {
    let script = repro_testkit::workspace_root().join("scripts/screenshot_report.sh");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(&script)
        .arg(dir.path().join("missing.html"))
        .arg(dir.path().join("x.png"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file"));
}
