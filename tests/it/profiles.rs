//! Which profile a command works on when none is named (pipeline.yaml's `default_profile`),
//! and the confirmation a `confirm: true` profile needs before `run` starts anything.

use crate::common::{PIPELINE, Project, text};

/// The test pipeline with a second cheap profile, a costly one that must be confirmed, and a
/// default for each kind of machine.
fn project() -> Project {
    Project::new(&PIPELINE.replace(
        "profiles:\n",
        "default_profile: {cuda: other, cpu: smoke}\n\
         profiles:\n  \
           other:\n    threads: 1\n    datasets:\n      cifar10: {source: generate}\n  \
           costly:\n    confirm: true\n    \
             cost: {hours: 5041, on: one H100, basis: estimate, source: a test}\n    \
             datasets:\n      cifar10: {source: generate}\n",
    ))
}

#[test]
fn a_command_without_profile_uses_and_names_the_machines_default() {
    let p = project();
    let o = p.run(&["plan", "--device", "cpu"]);
    let (out, err) = (text(&o), String::from_utf8_lossy(&o.stderr).to_string());
    assert!(o.status.success(), "{out}");
    assert!(out.contains("profile smoke: 4 runs"), "{out}");
    assert!(
        err.contains("profile smoke: the default here (--device cpu"),
        "{err}"
    );
    // Named, it says nothing about defaults.
    let o = p.run(&["plan", "--device", "cpu", "--profile", "other"]);
    assert!(text(&o).contains("profile other: 4 runs"));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("default"));
}

#[test]
fn a_profile_that_asks_for_confirmation_lists_its_runs_and_cost_and_stops() {
    let p = project();
    let o = p.run(&["run", "--profile", "costly", "--device", "cpu"]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("small") && err.contains("4 runs"), "{err}");
    assert!(
        err.contains("about 5,041 h on one H100 (estimate)"),
        "{err}"
    );
    assert!(err.contains("--yes"), "{err}");
    assert!(!p.store().join("runs").exists() || p.records().is_empty());
}

#[test]
fn a_default_that_needs_confirmation_or_is_undeclared_is_refused_at_load() {
    for (default, want) in [
        ("{cuda: costly, cpu: smoke}", "`confirm: true`"),
        ("{cuda: other, cpu: smok}", "profile `smok` is not declared"),
    ] {
        let p = Project::new(&text_of(&project()).replace("{cuda: other, cpu: smoke}", default));
        let o = p.run(&["plan", "--profile", "smoke"]);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains("pipeline.yaml:") && err.contains(want),
            "{err}"
        );
    }
}

fn text_of(p: &Project) -> String {
    std::fs::read_to_string(p.path().join("pipeline.yaml")).unwrap()
}
