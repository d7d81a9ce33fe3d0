//! Link libtorch so the worker runs without any environment set up:
//! - bake the libtorch folder in as RUNPATH (LD_LIBRARY_PATH still wins, so a GPU box can point the
//!   same binary at its own libtorch; the engine reads this RUNPATH to know which libtorch runs
//!   will use, see `repro_core::runtime::libtorch_dir`);
//! - link `libtorch.so` with `--no-as-needed`: rustc passes `--as-needed`, which drops libtorch
//!   (and with it libtorch_cuda) because no symbol is referenced directly, and CUDA would never
//!   load. `REPRO_CPU_ONLY=1` skips this for lean installs that lack the CUDA libraries.
fn main() {
    println!("cargo:rerun-if-env-changed=REPRO_CPU_ONLY");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys did not report a libtorch folder; no rpath baked in");
        return;
    };
    println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{lib}");
    if std::env::var("REPRO_CPU_ONLY").is_ok_and(|v| v == "1") {
        return;
    }
    for arg in [
        &format!("-L{lib}"),
        "-Wl,--no-as-needed",
        "-ltorch",
        "-Wl,--as-needed",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
