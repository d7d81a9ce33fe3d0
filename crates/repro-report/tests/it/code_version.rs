//! The report's code version (part of every report key) digests repro-report's sources and those
//! of the workspace crates it depends on, found by build.rs in the manifests: a changed claim
//! schema or statistic in repro-core must re-key reports as a changed table does.

#[test]
fn the_report_code_version_covers_repro_core_too() {
    assert_eq!(repro_report::CODE_CRATES, "repro-core,repro-report");
}
