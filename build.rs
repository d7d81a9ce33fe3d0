//! Link libtorch so the binary runs without any environment set up:
//! - bake the libtorch folder in as RUNPATH (LD_LIBRARY_PATH still wins, so a GPU box can point the
//!   same binary at its own libtorch);
//! - link the worker's `libtorch.so` with `--no-as-needed`: rustc passes `--as-needed`, which
//!   drops libtorch (and with it libtorch_cuda) because no symbol is referenced directly, and
//!   CUDA would never load.
//!   `REPRO_CPU_ONLY=1` skips this for lean installs that lack the CUDA libraries.
//!
//! It also digests the sources that decide what the report renders (`REPRO_REPORT_CODE`), so a
//! changed report module gives new report keys without anyone remembering to bump a version.
fn main() {
    report_code_digest();
    link_ale_deps();
    println!("cargo:rerun-if-env-changed=REPRO_CPU_ONLY");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys did not report a libtorch folder; no rpath baked in");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    build_shim(&lib);
    println!("cargo:rustc-env=REPRO_LIBTORCH_LIB={lib}");
    let cpu_only = std::env::var("REPRO_CPU_ONLY").is_ok_and(|v| v == "1");
    // Only the worker loads libtorch; `repro` itself references none of it, so `--as-needed`
    // keeps libtorch out of it and the control plane starts in milliseconds.
    if !cpu_only {
        for arg in [
            &format!("-L{lib}"),
            "-Wl,--no-as-needed",
            "-ltorch",
            "-Wl,--as-needed",
        ] {
            println!("cargo:rustc-link-arg-bin=repro-worker={arg}");
        }
    }
}

/// `ale-sys` links ALE's static C library but not what it needs: the C++ runtime and zlib.
fn link_ale_deps() {
    if std::env::var_os("CARGO_FEATURE_ATARI").is_some() {
        println!("cargo:rustc-link-lib=dylib=stdc++");
        println!("cargo:rustc-link-lib=dylib=z");
    }
}

/// Compile the few ATen switches and ops tch does not wrap (see src/runtime/shim.cpp).
fn build_shim(lib: &str) {
    println!("cargo:rerun-if-changed=src/runtime/shim.cpp");
    let root = std::path::Path::new(lib).join("..");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-w")
        .file("src/runtime/shim.cpp")
        .compile("repro_shim");
}

/// sha256 over the report's code: the report module, the claims schema, the kinds' declared
/// results and the statistics.
fn report_code_digest() {
    use sha2::{Digest, Sha256};
    let mut files = Vec::new();
    for root in [
        "src/report",
        "src/pipeline/claims.rs",
        "src/pipeline/kinds",
        "src/pipeline/stage.rs",
        "src/metrics/stats.rs",
        "src/metrics/bootstrap.rs",
    ] {
        println!("cargo:rerun-if-changed={root}");
        collect(std::path::Path::new(root), &mut files);
    }
    files.sort();
    let mut h = Sha256::new();
    for f in &files {
        h.update(f.to_string_lossy().as_bytes());
        h.update(std::fs::read(f).unwrap_or_default());
    }
    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=REPRO_REPORT_CODE={digest}");
}

fn collect(p: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    if p.is_dir() {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            collect(&e.path(), out);
        }
    } else if p.extension().is_some_and(|e| e == "rs") {
        out.push(p.to_path_buf());
    }
}
