//! Progress end to end: the worker's ticks inside epochs reach the run's log (one timestamped
//! line each, with position, throughput, loss, elapsed and ETA) and stderr without a terminal
//! (thinned to epoch ends here), and ticking after every batch leaves the outputs bitwise equal.

use crate::common::{Project, ok, text};

/// The test pipeline as one run: 200 generated images in batches of 50, so 4 batches per epoch,
/// 2 epochs.
fn pipeline() -> String {
    let one_run = crate::common::PIPELINE.replace(
        "    grid:\n      schedule: [none, early]\n      seed: [0, 1]\n",
        "",
    );
    assert_ne!(
        one_run,
        crate::common::PIPELINE,
        "the test pipeline's grid moved"
    );
    one_run
}

const EVERY_MS: &str = "REPRO_PROGRESS_EVERY_MS";

#[test]
fn ticks_inside_epochs_reach_the_log_and_leave_outputs_unchanged() {
    let ticking = Project::new(&pipeline());
    let out = ticking
        .cmd(&["run", "--profile", "smoke", "--device", "cpu"])
        .env(EVERY_MS, "0")
        .output()
        .unwrap();
    let stderr = ok(out);
    let rec = ticking.record("small");
    let key = rec["key"].as_str().unwrap();
    let log = std::fs::read_to_string(ticking.store().join(format!("logs/{key}.log"))).unwrap();
    let ticks: Vec<&str> = log.lines().filter(|l| l.contains(" progress ")).collect();
    for epoch in 1..=2 {
        let inside = format!("progress epoch {epoch}/2 · batch ");
        let n = ticks.iter().filter(|l| l.contains(&inside)).count();
        assert_eq!(
            n, 4,
            "a tick after each of the 4 batches of epoch {epoch}:\n{log}"
        );
    }
    let mid = ticks.iter().find(|l| l.contains("batch 2/4")).unwrap();
    // `2026-01-02T03:04:05Z progress epoch 1/2 · batch 2/4 · 812 img/s · loss 2.3026 · …`
    assert_eq!(mid.as_bytes()[4], b'-', "a timestamp first: {mid}");
    for field in ["img/s · loss ", " · elapsed ", " · ETA "] {
        assert!(mid.contains(field), "{field:?} in {mid}");
    }
    assert!(log.contains("progress epoch 2/2 done"), "{log}");
    // Without a terminal, stderr thins the ticks out: the first and the epochs' ends.
    assert!(stderr.contains("small epoch 1/2 done"), "{stderr}");
    assert!(stderr.contains("test acc"), "{stderr}");
    assert!(!stderr.contains("batch 2/4"), "{stderr}");

    // The default interval ticks far less; reading the loss at every batch changed nothing.
    let plain = Project::new(&pipeline());
    ok(plain.smoke(&["--quiet"]));
    assert_eq!(plain.record("small")["outputs"], rec["outputs"]);

    // A malformed interval fails the run with the variable, its value and what would do.
    let bad = Project::new(&pipeline());
    let out = bad
        .cmd(&["run", "--profile", "smoke", "--device", "cpu"])
        .env(EVERY_MS, "2s")
        .output()
        .unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("REPRO_PROGRESS_EVERY_MS=`2s`") && t.contains("milliseconds"),
        "{t}"
    );
}
