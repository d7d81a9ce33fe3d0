//! The claim statistics against scipy on fixed samples: the 95% t interval, Welch's one-sided
//! test, TOST, the one-sample t-test and Kendall's τ-b (with ties).

mod common;
use repro::metrics::stats::{kendall_tau_b, summarize, t_greater, tost, welch_less};
use serde_json::{Value, json};

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-9 * b.abs().max(1e-12),
        "{what}: repro {a} vs scipy {b}"
    );
}

#[test]
fn matches_scipy() {
    let cases = json!([
        {"a": [93.1, 93.4, 92.8], "b": [94.0, 94.3, 93.9], "margin": 0.5},
        {"a": [0.71, 0.69, 0.74, 0.70, 0.72], "b": [0.70, 0.73, 0.69], "margin": 0.05},
        {"a": [10.0, 12.5, 9.0, 11.0], "b": [3.0, 2.5, 4.1, 3.3], "margin": 1.0, "thr": 10.5},
        {"a": [1.0, 1.1], "b": [1.05, 1.02, 1.2, 0.9, 1.0, 1.1], "margin": 0.2,
         "x": [0.0, 0.2, 0.2, 0.4, 0.6, 0.6, 1.0], "y": [3.0, 2.0, 5.0, 5.0, 4.0, 7.0, 6.5]},
        {"a": [1.0, 2.0, 3.0], "b": [2.0, 2.5, 2.9], "margin": 0.3,
         "x": [0.01, 0.2, 0.05, 0.3], "y": [9.0, 1.0, 3.0, 1.0]},
    ]);
    let out = common::python::run_script("stats_reference.py", &[cases.to_string()]);
    let reference: Vec<Value> = serde_json::from_str(&out).unwrap();
    for (c, r) in cases.as_array().unwrap().iter().zip(&reference) {
        let v = |k: &str| -> Vec<f64> {
            c[k].as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        let (a, b, m) = (v("a"), v("b"), c["margin"].as_f64().unwrap());
        let s = summarize(&a).unwrap();
        let (lo, hi) = s.ci95.unwrap();
        close(s.mean, r["mean"].as_f64().unwrap(), "mean");
        close(lo, r["ci"][0].as_f64().unwrap(), "ci low");
        close(hi, r["ci"][1].as_f64().unwrap(), "ci high");
        let w = welch_less(&a, &b).unwrap();
        close(w.t, r["t"].as_f64().unwrap(), "t");
        close(w.df, r["df"].as_f64().unwrap(), "df");
        close(w.p_less, r["p_less"].as_f64().unwrap(), "p");
        close(
            tost(&a, &b, m).unwrap(),
            r["tost"].as_f64().unwrap(),
            "tost",
        );
        let thr = c["thr"].as_f64().unwrap_or(0.0);
        close(
            t_greater(&a, thr).unwrap(),
            r["one"].as_f64().unwrap(),
            "one-sample t",
        );
        if let Some(tau) = r["tau"].as_f64() {
            let x: Vec<f64> = v("x");
            let y: Vec<f64> = v("y");
            close(
                kendall_tau_b(&x, &y).unwrap().unwrap(),
                tau,
                "kendall tau-b",
            );
        }
    }
}

#[test]
fn a_claim_that_must_fail_does() {
    // "a < b" on data where a is clearly larger: p near 1, never significant.
    let w = welch_less(&[10.0, 10.2, 9.9], &[5.0, 5.1, 4.8]).unwrap();
    assert!(w.p_less > 0.99, "{w:?}");
    // "a ≈ b within 0.1" on means 5 apart: TOST cannot reject non-equivalence.
    assert!(tost(&[10.0, 10.2, 9.9], &[5.0, 5.1, 4.8], 0.1).unwrap() > 0.99);
}
