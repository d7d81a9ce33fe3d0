//! The engine/worker boundary as the built binaries show it: `repro` needs no libtorch library
//! at all, and the libtorch it keys runs on (read from the worker's RUNPATH, since it cannot ask
//! libtorch itself) is the one the worker loads.

use std::process::Command;

use goblin::elf::Elf;

fn needed(path: &std::path::Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let elf = Elf::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    elf.libraries.iter().map(|l| l.to_string()).collect()
}

fn is_torch(lib: &str) -> bool {
    lib.starts_with("libtorch") || lib.starts_with("libc10")
}

#[test]
fn repro_links_no_libtorch_and_the_worker_does() {
    let repro = crate::common::repro_bin();
    let engine = needed(repro);
    assert!(
        !engine.iter().any(|l| is_torch(l)),
        "repro needs {engine:?}"
    );
    let worker = needed(&repro.with_file_name("repro-worker"));
    assert!(
        worker.iter().any(|l| l == "libtorch_cpu.so"),
        "the worker needs {worker:?}"
    );
}

#[test]
fn the_engine_keys_runs_on_the_libtorch_the_worker_loads() {
    let worker = crate::common::repro_bin().with_file_name("repro-worker");
    let dir = repro_core::runtime::libtorch_runpath(&worker)
        .expect("the worker's RUNPATH names a folder with libtorch_cpu.so");
    let out = Command::new(&worker)
        .arg("probe")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run repro-worker probe");
    assert!(out.status.success(), "{}", crate::common::text(&out));
    let probe: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let version = repro_core::runtime::libtorch_version_at(&dir);
    assert_ne!(version, "unknown", "{} has no version file", dir.display());
    assert_eq!(probe["libtorch_version"], version.as_str());
}
