//! Tests that text never collides: every figure kind rendered with deliberately long titles,
//! labels and legend entries, its SVG read back, each `<text>` given the box its position,
//! anchor, rotation and measured extent say it covers; every box must lie inside the canvas and
//! no two may overlap. Also the tick texts: neighbours differ, and steps are whole numbers.

use super::axes::Axis;
use super::text::{self, Room, measure};
use super::*;

/// A drawn text and the box it covers, in canvas pixels.
#[derive(Debug, Clone)]
struct Placed {
    text: String,
    x: (f64, f64),
    y: (f64, f64),
}

/// Pixels two boxes may share, or a box may stick out, before it counts (rounding).
const SLACK: f64 = 1.0;

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    tag[start..].split('"').next()
}

fn number(tag: &str, name: &str) -> f64 {
    attr(tag, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} of {tag}"))
}

/// The canvas size and every non-empty text of an SVG plotters wrote, with its box.
fn placed_texts(svg: &str) -> ((f64, f64), Vec<Placed>) {
    ensure_fonts().expect("the embedded font");
    let head = svg.split('>').next().expect("an svg tag");
    let canvas = (number(head, "width"), number(head, "height"));
    let mut out = Vec::new();
    for element in svg.split("<text").skip(1) {
        let (tag, rest) = element.split_once('>').expect("a text tag");
        let text = rest.split("</text>").next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let text = text
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&");
        let (x, y, px) = (number(tag, "x"), number(tag, "y"), number(tag, "font-size"));
        let heavy = attr(tag, "font-weight") == Some("bold");
        let (w, h) = measure(&text, px, heavy).expect("measured");
        let (w, h) = (f64::from(w), f64::from(h));
        // Along the text (anchor) and across it (plotters' dy for top, centre, bottom).
        let along = match attr(tag, "text-anchor") {
            Some("middle") => (-w / 2.0, w / 2.0),
            Some("end") => (-w, 0.0),
            _ => (0.0, w),
        };
        let across = match attr(tag, "dy") {
            Some("0.76em") => (0.0, h),
            Some("-0.5ex") => (-h, 0.0),
            _ => (-h / 2.0, h / 2.0),
        };
        let rotated = attr(tag, "transform").is_some_and(|t| t.starts_with("rotate(270"));
        let (bx, by) = if rotated {
            // rotate(270) takes (dx, dy) to (dy, −dx).
            ((x + across.0, x + across.1), (y - along.1, y - along.0))
        } else {
            ((x + along.0, x + along.1), (y + across.0, y + across.1))
        };
        out.push(Placed { text, x: bx, y: by });
    }
    (canvas, out)
}

/// Every way `fig`'s text collides: a text outside the canvas, or two texts overlapping.
fn collisions(fig: &Figure) -> Vec<String> {
    let svg = render_svg(fig).expect("rendered");
    let ((w, h), texts) = placed_texts(&svg);
    let mut problems = Vec::new();
    for t in &texts {
        if t.x.0 < -SLACK || t.y.0 < -SLACK || t.x.1 > w + SLACK || t.y.1 > h + SLACK {
            problems.push(format!("{:?} leaves the {w}×{h} canvas: {t:?}", t.text));
        }
    }
    for (i, a) in texts.iter().enumerate() {
        for b in &texts[i + 1..] {
            let dx = a.x.1.min(b.x.1) - a.x.0.max(b.x.0);
            let dy = a.y.1.min(b.y.1) - a.y.0.max(b.y.0);
            if dx > SLACK && dy > SLACK {
                problems.push(format!("{:?} overlaps {:?}: {a:?} {b:?}", a.text, b.text));
            }
        }
    }
    problems
}

const LONG: &str = "a deliberately long label that says far more than the room it is given allows";

fn long(what: &str) -> String {
    format!("{what}: {LONG}")
}

/// Eight arms with long names, as a DQN sweep labels them.
fn arm(i: usize) -> String {
    let variant = [
        "adam_l2",
        "adamw",
        "l2_out_of_m",
        "adaptive_decoupled_stable",
    ][i / 2];
    format!("variant={variant},weight_decay=0.{i}")
}

fn long_lines(whole_x: bool) -> Chart {
    let series = (0..8)
        .map(|i| Series {
            label: arm(i),
            points: (1..=3)
                .map(|e| (f64::from(e), 28.5 + 0.01 * (e as f64) * i as f64))
                .collect(),
            band: None,
        })
        .collect();
    Chart::Lines {
        x_label: long("x"),
        y_label: long("y"),
        log_x: false,
        log_y: false,
        whole_x,
        series,
        vlines: vec![(2.0, "Tₛ = 2".into())],
        zero_slot: false,
    }
}

fn long_scatter() -> Chart {
    let series = (0..3)
        .map(|i| Series {
            label: long(&format!("arm {i}")),
            points: vec![(0.1 * i as f64, 1.0 + i as f64), (0.2, 2e3)],
            band: None,
        })
        .collect();
    Chart::Scatter {
        x_label: long("gap"),
        y_label: long("sharpness"),
        log_x: false,
        log_y: true,
        series,
    }
}

fn long_bars() -> Chart {
    let bars = (0..4)
        .map(|i| Bar {
            label: arm(2 * i + 1),
            mean: 90.0 + i as f64,
            ci: Some((89.0 + i as f64, 91.0 + i as f64)),
            values: vec![90.0, 91.0],
        })
        .collect();
    Chart::Bars {
        y_label: long("final test accuracy (%)"),
        bars,
    }
}

fn long_heatmap() -> Chart {
    Chart::Heatmap {
        x_label: long("learning rate"),
        y_label: long("weight decay λ"),
        x_ticks: vec!["1e-4".into(), long("lr"), "1e-2".into()],
        y_ticks: vec![long("λ"), "0".into()],
        values: vec![
            vec![Some(54.123), None, Some(1e9)],
            vec![Some(61.0), Some(90.5), Some(0.001)],
        ],
        value_label: long("validation perplexity"),
        scale: ColourScale::default(),
        mark: Some((1, 0)),
    }
}

fn figure(columns: usize, charts: Vec<Chart>) -> Figure {
    let panels = charts
        .into_iter()
        .enumerate()
        .map(|(i, chart)| Panel {
            title: long(&format!("panel {i}")),
            chart,
        })
        .collect();
    Figure {
        title: long("figure title"),
        panels,
        columns,
    }
}

#[test]
fn no_text_leaves_the_canvas_or_lies_on_another_in_any_figure_kind() {
    let empty = Chart::Bars {
        y_label: long("y"),
        bars: Vec::new(),
    };
    let figures = [
        figure(2, vec![long_lines(true), long_lines(false)]),
        figure(1, vec![long_lines(true)]),
        figure(3, vec![long_scatter(), long_scatter(), empty]),
        figure(2, vec![long_bars(), long_heatmap()]),
        figure(1, vec![long_heatmap()]),
        figure(1, vec![long_bars()]),
    ];
    for fig in &figures {
        let problems = collisions(fig);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

#[test]
fn the_collision_check_sees_text_past_the_edge_and_on_other_text() {
    let svg = concat!(
        r#"<svg width="100" height="50" viewBox="0 0 100 50">"#,
        r#"<text x="90" y="10" dy="0.76em" text-anchor="start" font-family="f" font-size="13">far right</text>"#,
        r#"<text x="10" y="10" dy="0.76em" text-anchor="start" font-family="f" font-size="13">one</text>"#,
        r#"<text x="14" y="12" dy="0.76em" text-anchor="start" font-family="f" font-size="13">two</text>"#,
        "</svg>"
    );
    let ((w, _), texts) = placed_texts(svg);
    assert_eq!(texts.len(), 3);
    assert!(texts[0].x.1 > w, "{:?}", texts[0]);
    let (a, b) = (&texts[1], &texts[2]);
    assert!(a.x.1 > b.x.0 && a.y.1 > b.y.0, "{a:?} {b:?}");
}

#[test]
fn legend_is_one_strip_below_the_panels() {
    let fig = figure(2, vec![long_lines(true), long_lines(true)]);
    let svg = render_svg(&fig).unwrap();
    let ((_, h), texts) = placed_texts(&svg);
    // The panels end below the title strip (at least its one-line height).
    let grid_bottom = f64::from(PANEL_SIZE.1 + TITLE_STRIP);
    for i in 0..8 {
        let entries: Vec<&Placed> = texts.iter().filter(|t| t.text == arm(i)).collect();
        assert_eq!(entries.len(), 1, "{} once, in the legend", arm(i));
        assert!(entries[0].y.0 > grid_bottom && entries[0].y.1 <= h);
    }
}

#[test]
fn neighbouring_tick_labels_differ() {
    // A narrow range on a log axis (linear ticks inside one decade) and a linear one.
    for log in [true, false] {
        let axis = Axis::fit([28.52, 28.64], log).unwrap();
        let labels = axis.labels();
        assert!(labels.len() >= 2, "{labels:?}");
        assert!(labels.windows(2).all(|w| w[0] != w[1]), "{labels:?}");
    }
    let big = Axis::fit([100_000.0, 100_004.0], false).unwrap();
    let labels = big.labels();
    assert!(labels.windows(2).all(|w| w[0] != w[1]), "{labels:?}");
}

#[test]
fn steps_are_ticked_at_whole_numbers() {
    let axis = Axis::fit_steps([1.0, 2.0, 3.0], false, true).unwrap();
    assert_eq!(axis.labels(), ["1", "2", "3"]);
    let one = Axis::fit_steps([1.0], false, true).unwrap();
    assert_eq!(one.labels(), ["1"]);
    let long_run = Axis::fit_steps([1.0, 200.0], false, true).unwrap();
    assert!(
        long_run.ticks.iter().all(|t| t.fract() == 0.0),
        "{long_run:?}"
    );
    let continuous = Axis::fit([1.0, 2.0, 3.0], false).unwrap();
    assert!(continuous.ticks.iter().any(|t| t.fract() != 0.0));
}

#[test]
fn text_keeps_one_line_then_wraps_at_commas_then_cuts() {
    ensure_fonts().unwrap();
    let room = |width| Room {
        width,
        max_lines: 2,
        px: 15.0,
        min_px: 13.0,
        bold: false,
    };
    let label = "variant=adam_l2,weight_decay=0.1";
    let wide = text::fit(label, room(1000)).unwrap();
    assert_eq!(
        (wide.lines.as_slice(), wide.px),
        (&[label.to_string()][..], 15.0)
    );
    let narrow = text::fit(label, room(170)).unwrap();
    assert_eq!(narrow.lines, ["variant=adam_l2,", "weight_decay=0.1"]);
    let tiny = text::fit(&long("x"), room(120)).unwrap();
    assert_eq!(tiny.lines.len(), 2);
    assert!(tiny.lines[1].ends_with('…'), "{tiny:?}");
    for line in &narrow.lines {
        assert!(
            measure(line, narrow.px, false).unwrap().0 <= 170,
            "{line:?}"
        );
    }
    for line in &tiny.lines {
        assert!(measure(line, tiny.px, false).unwrap().0 <= 120, "{line:?}");
    }
}
