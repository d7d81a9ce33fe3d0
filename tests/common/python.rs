//! The venv's Python, for tests that compare against PyTorch itself. `scripts/setup.sh` exports
//! `REPRO_PYTHON`; `make test` and `.ci/run` evaluate it before `cargo test`.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;

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
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
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
