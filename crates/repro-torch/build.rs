//! Compile the few ATen switches and ops tch does not wrap (`src/libtorch/shim.cpp`) against the
//! libtorch torch-sys found, link what ALE's static library needs under `--features atari`, and
//! give this crate's own test binaries and benchmark examples the libtorch folder as RUNPATH
//! (the worker's package bakes in its own).
fn main() {
    if std::env::var_os("CARGO_FEATURE_ATARI").is_some() {
        // `ale-sys` links ALE's static C library but not the C++ runtime and zlib it needs.
        println!("cargo:rustc-link-lib=dylib=stdc++");
        println!("cargo:rustc-link-lib=dylib=z");
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!(
            "torch-sys did not report a libtorch folder (DEP_TCH_LIBTORCH_LIB); the shim needs its headers"
        );
    };
    // Every linked target of this package: its unit and integration tests, its examples.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    println!("cargo:rerun-if-changed=src/libtorch/shim.cpp");
    let root = std::path::Path::new(&lib).join("..");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-w")
        .file("src/libtorch/shim.cpp")
        .compile("repro_shim");
}
