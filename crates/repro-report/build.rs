//! The report's code version (`REPRO_REPORT_CODE`): sha256 over this crate's sources and those of
//! every workspace crate it depends on (the `path` dependencies in its Cargo.toml, found again
//! in theirs), so a changed claim, statistic or table re-keys reports without a hand-kept list.
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn main() {
    let here = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = here
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists");
    let workspace = manifest(&root);
    let mut crates = Vec::new();
    workspace_crates(
        &here,
        &root,
        &workspace["workspace"]["dependencies"],
        &mut crates,
    );
    let mut files = Vec::new();
    for dir in &crates {
        println!(
            "cargo:rerun-if-changed={}",
            dir.join("Cargo.toml").display()
        );
        println!("cargo:rerun-if-changed={}", dir.join("src").display());
        collect(&dir.join("src"), &mut files);
    }
    let mut named: Vec<(String, &PathBuf)> = files
        .iter()
        .map(|f| {
            (
                f.strip_prefix(&root)
                    .unwrap_or(f)
                    .to_string_lossy()
                    .into_owned(),
                f,
            )
        })
        .collect();
    named.sort();
    let mut h = Sha256::new();
    for (name, f) in named {
        h.update(name.as_bytes());
        h.update(std::fs::read(f).unwrap_or_default());
    }
    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=REPRO_REPORT_CODE={digest}");
    let mut names: Vec<String> = crates
        .iter()
        .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    println!(
        "cargo:rustc-env=REPRO_REPORT_CODE_CRATES={}",
        names.join(",")
    );
}

/// `dir` and, transitively, the crates its manifest depends on by `path` (directly, or through
/// the workspace's `[workspace.dependencies]`).
fn workspace_crates(dir: &Path, root: &Path, ws_deps: &toml::Value, out: &mut Vec<PathBuf>) {
    let dir = dir.canonicalize().expect("a crate folder exists");
    if out.contains(&dir) {
        return;
    }
    out.push(dir.clone());
    let Some(deps) = manifest(&dir)
        .get("dependencies")
        .and_then(|d| d.as_table())
        .cloned()
    else {
        return;
    };
    for (name, dep) in deps {
        if let Some(path) = dep.get("path").and_then(|p| p.as_str()) {
            workspace_crates(&dir.join(path), root, ws_deps, out);
        } else if dep.get("workspace").is_some()
            && let Some(path) = ws_deps
                .get(&name)
                .and_then(|d| d.get("path"))
                .and_then(|p| p.as_str())
        {
            workspace_crates(&root.join(path), root, ws_deps, out);
        }
    }
}

fn manifest(dir: &Path) -> toml::Table {
    let path = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            collect(&e.path(), out);
        }
    } else if p.extension().is_some_and(|e| e == "rs") {
        out.push(p.to_path_buf());
    }
}
