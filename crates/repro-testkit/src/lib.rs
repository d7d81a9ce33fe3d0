//! Helpers the workspace's integration tests share: the venv's Python and the reference scripts
//! under `tests/python/` (the tests that compare against PyTorch itself), and the rule for
//! prerequisites outside cargo: a developer's machine may skip with a note, CI may not; and the
//! hostile pipeline files the YAML guard must refuse (`hostile`).

pub mod hostile;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (this crate lives in `crates/repro-testkit`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether this is CI (`CI=true`), where every prerequisite must be present.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A prerequisite outside cargo is missing: under `CI=true` the test fails, naming it and the
/// fix; elsewhere it says so on stderr and the caller returns early.
pub fn missing(what: &str, fix: &str) {
    if in_ci() {
        panic!("{what} is missing, and CI=true requires it: {fix}");
    }
    eprintln!("skipped: {what} is missing ({fix})");
}

/// The interpreter that has torch 2.11.0; panics with the fix when the environment lacks it.
pub fn python() -> PathBuf {
    match std::env::var_os("REPRO_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "REPRO_PYTHON is not set: these tests compare against PyTorch; run them through \
             `make test`, or `eval \"$(scripts/setup.sh)\"` first"
        ),
    }
}

/// Run `tests/python/<script>` with `args`; returns its stdout, panics with its stderr on failure.
pub fn run_script<S: AsRef<OsStr>>(script: &str, args: &[S]) -> String {
    let path = workspace_root().join("tests/python").join(script);
    let out = Command::new(python())
        .arg(&path)
        .args(args)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("script output is UTF-8")
}
