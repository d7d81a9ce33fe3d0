//! Tests of the figure renderer: text in the SVG, pixels in the PNG, robustness to bad data, and
//! byte-identical output.

use super::axes::{Axis, fmt_value};
use super::heatmap::MISSING;
use super::*;

fn series(label: &str, points: &[(f64, f64)]) -> Series {
    Series {
        label: label.into(),
        points: points.to_vec(),
        band: None,
    }
}

fn lines(series: Vec<Series>, log_y: bool) -> Chart {
    Chart::Lines {
        x_label: "epoch".into(),
        y_label: "test error (%)".into(),
        log_x: false,
        log_y,
        whole_x: true,
        series,
        vlines: vec![(3.0, "Tₛ".into())],
        zero_slot: false,
    }
}

fn figure(columns: usize, charts: Vec<Chart>) -> Figure {
    let panels = charts
        .into_iter()
        .enumerate()
        .map(|(i, chart)| Panel {
            title: format!("Panel {i}"),
            chart,
        })
        .collect();
    Figure {
        title: "Figure title".into(),
        panels,
        columns,
    }
}

fn two_lines() -> Chart {
    let mut early = series("early", &[(0.0, 9.0), (2.0, 7.5), (4.0, 6.0), (6.0, 5.5)]);
    early.band = Some(
        early
            .points
            .iter()
            .map(|&(x, y)| (x, y - 0.5, y + 0.5))
            .collect(),
    );
    lines(
        vec![
            early,
            series("late", &[(0.0, 9.5), (2.0, 8.0), (4.0, 7.0), (6.0, 6.5)]),
        ],
        false,
    )
}

fn bars() -> Chart {
    let bar = |label: &str, mean: f64, values: &[f64]| Bar {
        label: label.into(),
        mean,
        ci: Some((mean - 0.2, mean + 0.2)),
        values: values.to_vec(),
    };
    Chart::Bars {
        y_label: "accuracy (%)".into(),
        bars: vec![
            bar("early", 93.0, &[92.8, 93.1, 93.1]),
            bar("none", 91.0, &[90.9, f64::NAN, 91.2, 90.8]),
        ],
    }
}

fn heatmap() -> Chart {
    Chart::Heatmap {
        x_label: "learning rate".into(),
        y_label: "λ".into(),
        x_ticks: vec!["0.1".into(), "0.3".into()],
        y_ticks: vec!["1e-4".into(), "1e-3".into()],
        values: vec![vec![Some(0.5), None], vec![Some(1.25), Some(2.0)]],
        value_label: "loss".into(),
        scale: ColourScale::default(),
        mark: None,
    }
}

fn scatter() -> Chart {
    Chart::Scatter {
        x_label: "sharpness".into(),
        y_label: "error".into(),
        log_x: true,
        log_y: false,
        series: vec![
            series("a", &[(1.0, 2.0), (10.0, 3.0)]),
            series("b", &[(100.0, 1.0), (f64::INFINITY, 1.0)]),
        ],
    }
}

/// The contents of the SVG's text elements (plotters writes each on its own line).
fn texts(svg: &str) -> Vec<String> {
    let inner = |el: &str| {
        el.split_once('>').map(|(_, rest)| {
            rest.split("</text>")
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
    };
    svg.split("<text").skip(1).filter_map(inner).collect()
}

fn has_text(svg: &str, text: &str) -> bool {
    texts(svg).iter().any(|t| t == text)
}

fn decode(png: &[u8]) -> image::RgbImage {
    image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .expect("a PNG")
        .to_rgb8()
}

fn count_colour(img: &image::RgbImage, (r, g, b): (u8, u8, u8)) -> usize {
    img.pixels().filter(|p| p.0 == [r, g, b]).count()
}

#[test]
fn lines_svg_has_axis_labels_legend_titles_and_vline_label() {
    let svg = render_svg(&figure(1, vec![two_lines()])).unwrap();
    for text in [
        "epoch",
        "test error (%)",
        "early",
        "late",
        "Panel 0",
        "Figure title",
        "Tₛ",
    ] {
        assert!(has_text(&svg, text), "{text:?} missing from the SVG");
    }
}

#[test]
fn single_series_has_no_legend() {
    let svg = render_svg(&figure(
        1,
        vec![lines(
            vec![series("only", &[(0.0, 1.0), (1.0, 2.0)])],
            false,
        )],
    ))
    .unwrap();
    assert!(!has_text(&svg, "only"));
}

#[test]
fn text_is_at_least_13_px() {
    let svg = render_svg(&figure(2, vec![two_lines(), bars(), scatter()])).unwrap();
    let sizes: Vec<f64> = svg
        .split("font-size=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
        .collect();
    assert!(sizes.len() > 10);
    assert!(sizes.iter().all(|s| *s >= 13.0), "{sizes:?}");
}

#[test]
fn png_has_the_grid_size_and_draws_the_first_series() {
    // No bars: bar 0 is drawn in the first palette colour too.
    let fig = figure(2, vec![two_lines(), heatmap(), lines(vec![], false)]);
    let img = decode(&render_png(&fig).unwrap());
    let (w, h) = img.dimensions();
    assert_eq!(w, 2 * PANEL_SIZE.0);
    // The grid, and below it the legend strip of the two-series panel (one row).
    let grid = 2 * PANEL_SIZE.1 + TITLE_STRIP;
    assert!((grid + 20..grid + 60).contains(&h), "{h}");
    assert!(
        count_colour(&img, PALETTE[0]) > 50,
        "first palette colour not drawn"
    );
    assert!(img.pixels().any(|p| p.0 != [255, 255, 255]));
}

#[test]
fn zero_columns_means_one() {
    let img = decode(&render_png(&figure(0, vec![bars(), heatmap()])).unwrap());
    assert_eq!(
        img.dimensions(),
        (PANEL_SIZE.0, 2 * PANEL_SIZE.1 + TITLE_STRIP)
    );
}

#[test]
fn log_y_skips_non_positive_values_and_draws_the_rest() {
    let s = series(
        "s",
        &[
            (0.0, 0.0),
            (1.0, -1.0),
            (2.0, 0.1),
            (3.0, 1.0),
            (4.0, f64::NAN),
        ],
    );
    let fig = figure(1, vec![lines(vec![s], true)]);
    let svg = render_svg(&fig).unwrap();
    assert_eq!(
        svg.matches("<circle").count(),
        2,
        "one marker per positive point"
    );
    assert!(!svg.contains("no data"));
    let img = decode(&render_png(&fig).unwrap());
    assert!(count_colour(&img, PALETTE[0]) > 20);
}

#[test]
fn charts_without_usable_data_say_no_data() {
    let nan = series(
        "nan",
        &[(f64::NAN, 1.0), (1.0, f64::NAN), (f64::INFINITY, 2.0)],
    );
    let empty_heatmap = Chart::Heatmap {
        x_label: "x".into(),
        y_label: "y".into(),
        x_ticks: vec!["a".into()],
        y_ticks: vec!["b".into()],
        values: vec![vec![None, Some(f64::NAN)]],
        value_label: "v".into(),
        scale: ColourScale::default(),
        mark: None,
    };
    let charts = [
        lines(vec![nan.clone()], false),
        lines(vec![series("neg", &[(1.0, -2.0), (2.0, 0.0)])], true),
        lines(vec![], false),
        Chart::Bars {
            y_label: "y".into(),
            bars: vec![],
        },
        Chart::Scatter {
            x_label: "x".into(),
            y_label: "y".into(),
            log_x: false,
            log_y: false,
            series: vec![nan],
        },
        empty_heatmap,
    ];
    for chart in charts {
        let fig = figure(1, vec![chart.clone()]);
        let svg = render_svg(&fig).unwrap();
        assert!(has_text(&svg, "no data"), "{chart:?}");
        render_png(&fig).unwrap();
    }
    assert!(has_text(
        &render_svg(&figure(1, vec![])).unwrap(),
        "no data"
    ));
}

#[test]
fn bars_draw_whiskers_and_one_dot_per_finite_value() {
    let svg = render_svg(&figure(1, vec![bars()])).unwrap();
    assert_eq!(
        svg.matches("<circle").count(),
        6,
        "3 + 3 finite per-seed values"
    );
    assert_eq!(
        svg.matches("stroke=\"#1E1E1E\"").count(),
        6,
        "a whisker and two caps per bar"
    );
    for text in ["early", "none", "accuracy (%)"] {
        assert!(has_text(&svg, text), "{text}");
    }
}

#[test]
fn bars_without_ci_draw_no_whisker() {
    let chart = Chart::Bars {
        y_label: "y".into(),
        bars: vec![Bar {
            label: "a".into(),
            mean: -1.0,
            ci: None,
            values: vec![],
        }],
    };
    let svg = render_svg(&figure(1, vec![chart])).unwrap();
    assert!(!svg.contains("stroke=\"#1E1E1E\""));
    assert!(!svg.contains("no data"));
}

#[test]
fn heatmap_prints_each_value_and_greys_missing_cells() {
    let svg = render_svg(&figure(1, vec![heatmap()])).unwrap();
    for text in ["0.5", "1.25", "2", "loss", "0.1", "1e-3"] {
        assert!(has_text(&svg, text), "{text:?} missing");
    }
    let grey = format!(
        "fill=\"#{:02X}{:02X}{:02X}\"",
        MISSING.0, MISSING.1, MISSING.2
    );
    assert_eq!(svg.matches(&grey).count(), 1, "one missing cell");
}

#[test]
fn rendering_twice_gives_identical_bytes() {
    let fig = figure(
        3,
        vec![
            two_lines(),
            bars(),
            heatmap(),
            scatter(),
            lines(vec![], true),
        ],
    );
    assert_eq!(render_svg(&fig).unwrap(), render_svg(&fig).unwrap());
    assert_eq!(render_png(&fig).unwrap(), render_png(&fig).unwrap());
}

#[test]
fn extreme_and_degenerate_values_render() {
    let charts = vec![
        lines(vec![series("flat", &[(1.0, 5.0), (2.0, 5.0)])], false),
        lines(vec![series("point", &[(1.0, 5.0)])], true),
        lines(
            vec![series(
                "huge",
                &[(-1e299, -1e299), (1e299, 1e299), (1.0, 1e308)],
            )],
            false,
        ),
        lines(
            vec![series("tiny", &[(1e-300, 1e-300), (1.0, 1e300)])],
            true,
        ),
        lines(vec![series("zero", &[(0.0, 0.0), (0.0, 0.0)])], false),
    ];
    let fig = figure(2, charts);
    render_svg(&fig).unwrap();
    render_png(&fig).unwrap();
}

#[test]
fn axis_ranges_pad_and_widen() {
    let a = Axis::fit([1.0, 3.0, f64::NAN], false).unwrap();
    assert!(
        (a.lo - 0.9).abs() < 1e-12 && (a.hi - 3.1).abs() < 1e-12,
        "{a:?}"
    );
    let flat = Axis::fit([2.0, 2.0], false).unwrap();
    assert!(flat.lo < 2.0 && flat.hi > 2.0 && !flat.ticks.is_empty());
    let log = Axis::fit([-1.0, 0.0, 1e-4, 1e-1], true).unwrap();
    assert!(log.lo > 0.0 && log.lo < 1e-4 && log.hi > 1e-1);
    assert_eq!(log.labels(), ["1e-4", "0.001", "0.01", "0.1"]);
    assert!(Axis::fit([0.0, -3.0, f64::NAN], true).is_none());
    let wide = Axis::fit([1e-300, 1e300], true).unwrap();
    assert_eq!(
        wide.labels(),
        ["1e-300", "1e-200", "1e-100", "1", "1e100", "1e200", "1e300"]
    );
    let narrow = Axis::fit([0.045, 0.095], true).unwrap();
    assert!(narrow.ticks.len() >= 3, "{narrow:?}");
}

#[test]
fn values_print_short() {
    let cases = [
        (0.0, "0"),
        (0.5, "0.5"),
        (0.0781, "0.0781"),
        (12.34, "12.3"),
        (1234.5, "1234"),
        (2e-5, "2e-5"),
        (2.5e6, "2.5e6"),
    ];
    for (v, text) in cases {
        assert_eq!(fmt_value(v), text, "{v}");
    }
    let linear = Axis::fit([0.0, 1.0], false).unwrap();
    assert_eq!(linear.labels(), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
}

fn lambda_lines(zero_slot: bool) -> Chart {
    let mut s = series(
        "adamw",
        &[
            (0.0, 200.0),
            (1e-5, 190.0),
            (1e-4, 185.0),
            (1e-3, 180.0),
            (1e-2, 240.0),
        ],
    );
    s.band = Some(
        s.points
            .iter()
            .map(|&(x, y)| (x, y - 5.0, y + 5.0))
            .collect(),
    );
    Chart::Lines {
        x_label: "weight decay λ".into(),
        y_label: "perplexity".into(),
        log_x: true,
        log_y: false,
        whole_x: false,
        series: vec![s, series("adam_l2", &[(0.0, 201.0), (1e-2, 400.0)])],
        vlines: vec![],
        zero_slot,
    }
}

#[test]
fn zero_slot_draws_x_zero_left_of_a_log_axis_with_a_tick_and_whisker() {
    let with = render_svg(&figure(1, vec![lambda_lines(true)])).unwrap();
    let without = render_svg(&figure(1, vec![lambda_lines(false)])).unwrap();
    // 5 + 2 markers with the slot; the two λ = 0 points are skipped without it. Each has a
    // legend entry with a dot besides.
    assert_eq!(with.matches("<circle").count(), 7 + 2);
    assert_eq!(without.matches("<circle").count(), 5 + 2);
    assert!(has_text(&with, "0"), "the slot's tick");
    assert!(!has_text(&without, "0"));
    for tick in ["1e-5", "1e-4", "0.001", "0.01"] {
        assert!(has_text(&with, tick), "{tick}");
    }
    // The whisker at λ = 0 (a vertical line and two caps) and the dashed break draw lines
    // that the plain chart does not have.
    assert!(with.matches("<polyline").count() > without.matches("<polyline").count() + 3);
    render_png(&figure(1, vec![lambda_lines(true)])).unwrap();
}

#[test]
fn zero_slot_is_not_made_for_zeros_a_log_y_cannot_draw() {
    let chart = Chart::Lines {
        x_label: "λ".into(),
        y_label: "ratio".into(),
        log_x: true,
        log_y: true,
        whole_x: false,
        series: vec![series("s", &[(0.0, 0.0), (1e-3, 0.1), (1e-1, 10.0)])],
        vlines: vec![],
        zero_slot: true,
    };
    let svg = render_svg(&figure(1, vec![chart])).unwrap();
    assert!(
        !has_text(&svg, "0"),
        "no slot tick without a point to put there"
    );
    assert_eq!(svg.matches("<circle").count(), 2);
}

#[test]
fn zero_slot_with_only_zero_or_one_positive_x_still_draws() {
    for pts in [vec![(0.0, 1.0)], vec![(0.0, 1.0), (1e-3, 2.0)]] {
        let chart = Chart::Lines {
            x_label: "λ".into(),
            y_label: "y".into(),
            log_x: true,
            log_y: true,
            whole_x: false,
            series: vec![series("s", &pts)],
            vlines: vec![],
            zero_slot: true,
        };
        let svg = render_svg(&figure(1, vec![chart])).unwrap();
        assert!(!has_text(&svg, "no data"));
        assert_eq!(svg.matches("<circle").count(), pts.len());
    }
}

fn log_heatmap(range: Option<(f64, f64)>) -> Chart {
    Chart::Heatmap {
        x_label: "lr".into(),
        y_label: "λ".into(),
        x_ticks: vec!["1e-3".into(), "3e-3".into()],
        y_ticks: vec!["1e-2".into(), "0".into()],
        values: vec![vec![Some(150.0), Some(1e9)], vec![Some(200.0), Some(-1.0)]],
        value_label: "ppl".into(),
        scale: ColourScale { log: true, range },
        mark: Some((0, 0)),
    }
}

#[test]
fn log_heatmap_with_a_shared_range_says_where_values_lie_beyond() {
    let svg = render_svg(&figure(1, vec![log_heatmap(Some((150.0, 450.0)))])).unwrap();
    for text in ["150", "≥ 450", "1e9", "ppl"] {
        assert!(has_text(&svg, text), "{text:?} missing");
    }
    // The geometric middle of the bar on a log scale.
    assert!(has_text(&svg, "260"), "{:?}", texts(&svg));
    // −1 cannot be coloured on a log scale: a grey cell.
    let grey = format!(
        "fill=\"#{:02X}{:02X}{:02X}\"",
        MISSING.0, MISSING.1, MISSING.2
    );
    assert_eq!(svg.matches(&grey).count(), 1);
    assert!(
        svg.contains("stroke=\"#D55E00\""),
        "the marked cell's outline"
    );
    // The blown-up cell takes the top colour (viridis' yellow).
    assert!(svg.contains("fill=\"#FDE725\""));
    let auto = render_svg(&figure(1, vec![log_heatmap(None)])).unwrap();
    assert!(has_text(&auto, "1e9") && !auto.contains("≥"));
    render_png(&figure(1, vec![log_heatmap(Some((150.0, 450.0)))])).unwrap();
}
