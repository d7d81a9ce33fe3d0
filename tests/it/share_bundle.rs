//! `repro export` and `repro import` through the binary: a profile trained in one project is
//! exported to a tar, imported into a fresh project with the same pipeline.yaml and
//! pipeline.lock, verifies there, and renders the same report without training anything.

use serde_json::Value;

use crate::common::{PIPELINE, Project, ok, text};

fn json(out: &str) -> Value {
    let start = out
        .find('{')
        .unwrap_or_else(|| panic!("no JSON in:\n{out}"));
    serde_json::from_str(&out[start..]).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The key of the profile's report, from `repro report --json` (stdout only).
fn report_key(p: &Project) -> String {
    let o = p.run(&["report", "--profile", "smoke", "--device", "cpu", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v = json(&String::from_utf8_lossy(&o.stdout));
    v["key"]
        .as_str()
        .unwrap_or_else(|| panic!("no key in {v}"))
        .to_string()
}

#[test]
fn an_exported_profile_imports_into_a_fresh_project_verifies_and_reports_the_same() {
    let a = Project::new(PIPELINE);
    ok(a.smoke(&["--quiet"]));
    ok(a.run(&["lock", "--profile", "smoke", "--device", "cpu"]));
    ok(a.run(&["report", "--profile", "smoke", "--device", "cpu"]));
    let key_a = report_key(&a);
    let out = ok(a.run(&["export", "--profile", "smoke", "--device", "cpu", "out.tar"]));
    assert!(
        out.contains("exported profile smoke to out.tar: 4 runs"),
        "{out}"
    );
    let bundle = a.path().join("out.tar");
    let first = std::fs::read(&bundle).unwrap();
    // Exported again: the same bytes.
    ok(a.run(&[
        "export",
        "--profile",
        "smoke",
        "--device",
        "cpu",
        "again.tar",
    ]));
    assert!(first == std::fs::read(a.path().join("again.tar")).unwrap());

    // Project B: the same pipeline.yaml and pipeline.lock (as a repository carries them).
    let b = Project::new(PIPELINE);
    std::fs::copy(
        a.path().join("pipeline.lock"),
        b.path().join("pipeline.lock"),
    )
    .unwrap();
    let out = ok(b.run(&["import", bundle.to_str().unwrap()]));
    assert!(
        out.contains("profile smoke imported from") && out.contains("4 runs and their report"),
        "{out}"
    );
    assert!(out.contains("0 objects already here"), "{out}");
    ok(b.run(&["verify", "--profile", "smoke"]));
    let status = b.run(&["status", "--profile", "smoke", "--device", "cpu", "--json"]);
    let status = json(&ok(status));
    assert_eq!(status["totals"]["to_run"], 0, "{status}");
    assert_eq!(report_key(&b), key_a);

    // Imported again: every object is already there.
    let out = ok(b.run(&["import", bundle.to_str().unwrap()]));
    assert!(out.contains("0 records, 0 objects fetched"), "{out}");

    // A damaged bundle is refused, naming the member, and the store keeps what it has.
    let c = Project::new(PIPELINE);
    let mut bytes = first.clone();
    let (at, member) = last_object(&bytes);
    bytes[at] ^= 0xff;
    std::fs::write(c.path().join("bad.tar"), &bytes).unwrap();
    let o = c.run(&["import", "bad.tar"]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains(&member) && t.contains("hash to"), "{t}");
    let runs = std::fs::read_dir(c.store().join("runs")).unwrap().count();
    assert_eq!(runs, 0, "{t}");
}

/// The offset of the first data byte of the bundle's last object member, and its path: a walk
/// over the tar's 512-byte headers (name at 0..100, octal size at 124..136).
fn last_object(tar: &[u8]) -> (usize, String) {
    let mut at = 0;
    let mut last = None;
    while at + 512 <= tar.len() && tar[at] != 0 {
        let h = &tar[at..at + 512];
        let name = String::from_utf8_lossy(&h[..100])
            .trim_end_matches('\0')
            .to_string();
        let size = std::str::from_utf8(&h[124..136])
            .unwrap()
            .trim_matches(|c| c == '\0' || c == ' ');
        let size = usize::from_str_radix(size, 8).unwrap();
        if name.starts_with("objects/") && size > 0 {
            last = Some((at + 512, name));
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    last.expect("an object member")
}
