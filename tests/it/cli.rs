//! The binary as users meet it: no environment needed, fetch through a mirror into datasets/
//! with the sha256 of an md5-only dataset recorded in pipeline.lock, refusal of a wrong file.

use crate::common::{Project, flip_byte, ok, text};

#[test]
fn runs_without_any_environment_from_another_directory() {
    let p = Project::new(crate::common::PIPELINE);
    let elsewhere = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(crate::common::repro_bin())
        .current_dir(elsewhere.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args([
            "--pipeline",
            p.path().join("pipeline.yaml").to_str().unwrap(),
            "plan",
            "--profile",
            "smoke",
        ])
        .output()
        .unwrap();
    let t = ok(o);
    assert!(t.contains("profile smoke: 4 runs"), "{t}");
}

/// A pipeline whose dataset is pinned to the bytes the cifar10 generator writes, so a mirror
/// folder holding those bytes plays the upstream server.
fn mirrored(p: &Project, md5: &str, size: u64) -> String {
    crate::common::PIPELINE
        .replace(
            "        md5: c32a1d4ab5d03f1284b67883e8d87530\n",
            &format!("        md5: {md5}\n        size: {size}\n"),
        )
        .replace("cifar10: {source: generate}", "cifar10: {source: fetch}")
        .replace(
            "salt: test",
            &format!("salt: test-{}", p.path().display().to_string().len()),
        )
}

#[test]
fn fetch_through_a_mirror_records_sha256_and_refuses_wrong_files() {
    // Make the "upstream" file with the generator, via a generated run in a scratch project.
    let upstream = Project::new(crate::common::PIPELINE);
    ok(upstream.smoke(&["--quiet", "cifar10"]));
    let rec = upstream.record("dataset:cifar10");
    let sha = rec["outputs"]["cifar-10-binary.tar.gz"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let size = rec["outputs"]["cifar-10-binary.tar.gz"]["size"]
        .as_u64()
        .unwrap();
    let mirror = tempfile::tempdir().unwrap();
    let archive = mirror.path().join("cifar-10-binary.tar.gz");
    std::fs::copy(upstream.object(&sha), &archive).unwrap();
    let md5 = repro_core::store::hash::digests_file(&archive).unwrap().md5;

    let p = Project::new("");
    std::fs::write(p.path().join("pipeline.yaml"), mirrored(&p, &md5, size)).unwrap();
    let t = ok(p.run(&[
        "fetch",
        "--mirror",
        mirror.path().to_str().unwrap(),
        "cifar10",
    ]));
    assert!(t.contains(&sha), "{t}");
    assert!(
        p.path()
            .join("datasets/cifar10/cifar-10-binary.tar.gz")
            .exists()
    );
    let lock = std::fs::read_to_string(p.path().join("pipeline.lock")).unwrap();
    assert!(
        lock.contains(&sha) && lock.contains(&md5),
        "sha256 of the md5-only file must be locked:\n{lock}"
    );
    // The fetched data trains; the run key uses the pinned identity.
    let t = ok(p.smoke(&["--quiet"]));
    assert!(t.contains("4 ran"), "{t}");
    ok(p.run(&["verify"]));
    // `run` records a fetched file's sha256 too, when the lock does not have it yet.
    std::fs::remove_file(p.path().join("pipeline.lock")).unwrap();
    ok(p.smoke(&["--quiet"]));
    let lock = std::fs::read_to_string(p.path().join("pipeline.lock")).unwrap();
    assert!(lock.contains(&sha), "{lock}");

    // A corrupted file in datasets/ is reported by `verify`, and refused by `run`, which moves
    // it to quarantine (and finds no other source: the upstream URL is unreachable).
    let local = p.path().join("datasets/cifar10/cifar-10-binary.tar.gz");
    flip_byte(&local, 100);
    let o = p.run(&["verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = p.smoke(&["--quiet", "--force"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("md5 mismatch") && text(&o).contains(&md5),
        "{}",
        text(&o)
    );
    assert!(
        !local.exists() && text(&o).contains("quarantine"),
        "{}",
        text(&o)
    );

    // A mirror with the wrong bytes: refused with both digests, quarantined, nothing in datasets/.
    let _ = std::fs::remove_file(&local); // (already quarantined by the run above)
    // Same size, one bit off: only the digest can tell.
    let mut wrong = std::fs::read(&archive).unwrap();
    wrong[10] ^= 1;
    std::fs::write(&archive, &wrong).unwrap();
    let o = p.run(&[
        "fetch",
        "--mirror",
        mirror.path().to_str().unwrap(),
        "cifar10",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains(&md5), "{}", text(&o));
    assert!(!local.exists());
    let quarantined = std::fs::read_dir(p.store().join("quarantine"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(quarantined >= 1, "the rejected file must be quarantined");
}

#[test]
fn placement_flags_are_checked_before_anything_runs() {
    let p = Project::new(crate::common::PIPELINE);
    let bad = |args: &[&str], says: &str| {
        let o = p.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    };
    bad(
        &[
            "run",
            "--profile",
            "smoke",
            "--device",
            "cpu",
            "--gpus",
            "0,1",
        ],
        "--gpus needs a CUDA device",
    );
    bad(&["run", "--profile", "smoke", "--gpus", "0,x"], "e.g. 0,1");
    bad(
        &[
            "run",
            "--profile",
            "smoke",
            "--executor",
            "slurm",
            "--force",
        ],
        "--force is not supported with --executor slurm",
    );
    assert!(!p.store().join("runs").exists() || p.records().is_empty());
}

#[test]
fn plan_json_gives_every_run_with_its_resolved_params_and_state() {
    let p = Project::new(crate::common::PIPELINE);
    let out = ok(p.run(&["plan", "--profile", "smoke", "--device", "cpu", "--json"]));
    let runs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(runs.len(), 4, "{out}");
    for r in &runs {
        assert_eq!(r["experiment"], "small");
        assert_eq!(r["kind"], "vision");
        assert_eq!(r["state"], "will run");
        // Experiment params, the grid point and the kind's defaults, resolved.
        assert_eq!(r["params"]["epochs"], 2);
        assert_eq!(r["params"]["lr"], 0.05);
        assert!(
            r["params"]["momentum"].is_number(),
            "kind default missing: {r}"
        );
        // The key waits for the dataset's digests, which only its preparation gives.
        assert!(r["key"].is_null(), "{r}");
    }
    let ids: Vec<&str> = runs.iter().map(|r| r["run"].as_str().unwrap()).collect();
    assert!(ids.contains(&"small/schedule=early,seed=1"), "{ids:?}");

    // After one run: it is cached under the key its record has; the others now have keys too.
    ok(p.smoke(&["small/schedule=none,seed=0"]));
    let again = ok(p.run(&["plan", "--profile", "smoke", "--device", "cpu", "--json"]));
    let again: Vec<serde_json::Value> = again
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let done = again
        .iter()
        .find(|r| r["run"] == "small/schedule=none,seed=0")
        .unwrap();
    assert_eq!(done["state"], "cached");
    assert_eq!(done["key"], p.record("small/schedule=none,seed=0")["key"]);
    for r in again.iter().filter(|r| r["state"] != "cached") {
        assert_eq!(r["key"].as_str().map(str::len), Some(64), "{r}");
        assert!(
            r["reasons"].as_array().is_some_and(|a| !a.is_empty()),
            "{r}"
        );
    }
}

/// Every repository path that a tracked file cites exists in the repository, and every Markdown
/// anchor cited with it exists in that document. Runs on `git ls-files` (a checkout without git
/// skips it, except under `CI=true`, where it fails).
///
/// The rule. In every tracked text file, outside URLs (`scheme://…` is blanked first), a citation
/// is a run of path characters (`A-Z a-z 0-9 _ . / -`) ending in `.md`, `.py`, `.rs` or `.yaml`
/// (trailing dots, as at a sentence's end, dropped), optionally followed by a `#anchor`, `§`
/// or `:line`, that is:
/// - a path starting with `./` or `../`: resolved against the citing file's folder, as a
///   Markdown link is; one that leaves the repository counts as missing;
/// - a path with a `/` whose first component is one of the repository's tracked top-level
///   folders (`src`, `tests`, `docs`, …): resolved against the repository root. Other paths are
///   not ours to check: upstream files (`dopamine/…`, pytorch/examples' scripts) and generated
///   outputs (`report/…`, `artifacts/…`) live in folders the repository does not track;
/// - a bare top-level document name: an upper-case `.md` name (the README's kind) or
///   `pipeline.yaml`, resolved against the root. Other bare names (`mod.rs`, `main.py`,
///   `report.md`) are relative to a folder their context names, or are outputs, and are skipped.
///
/// Runs preceded by `*`, `<`, `>`, `{`, `}`, `$`, `~`, `@` or starting with `/` are globs,
/// templates or absolute paths and are skipped; crate names (`serde_yaml`) have no extension and
/// never match. A `#anchor` after a cited `.md` file must be an `id="…"`/`name="…"` in it or a
/// heading's GitHub slug; in Markdown files, so must each `](#anchor)` link to the file itself.
/// `ALLOWED` lists the few cited paths that match the rule but are not ours, each with its
/// reason; an entry no file cites any more fails the test too, so the list cannot rot.
mod citations {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;
    use std::process::Command;

    use regex::Regex;

    const EXTENSIONS: [&str; 4] = [".md", ".py", ".rs", ".yaml"];

    /// Cited paths that match the rule but name no file of ours.
    const ALLOWED: &[(&str, &str)] = &[
        (
            "examples/dqn.py",
            "MinAtar's own DQN script, cited by its upstream path",
        ),
        ("FILE.md", "a placeholder in scripts/bench.py's usage line"),
    ];

    fn tracked(root: &Path) -> Option<Vec<String>> {
        let out = Command::new("git")
            .args(["ls-files", "-z"])
            .current_dir(root)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let list = String::from_utf8(out.stdout).ok()?;
        Some(
            list.split('\0')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        )
    }

    /// `rel` (starting with `./` or `../`) against the folder of `from`; None if it leaves the
    /// repository.
    fn relative(from: &str, rel: &str) -> Option<String> {
        let mut parts: Vec<&str> = from.split('/').collect();
        parts.pop();
        for c in rel.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    parts.pop()?;
                }
                c => parts.push(c),
            }
        }
        Some(parts.join("/"))
    }

    /// The anchors a Markdown text defines: explicit ids and names, and GitHub's heading slugs.
    fn anchors(text: &str) -> BTreeSet<String> {
        let ids = Regex::new(r#"\b(?:id|name)="([^"]+)""#).unwrap();
        let mut out: BTreeSet<String> = ids.captures_iter(text).map(|c| c[1].to_string()).collect();
        for line in text.lines() {
            let Some(h) = line.strip_prefix('#') else {
                continue;
            };
            let h = h.trim_start_matches('#').trim();
            let slug: String = h
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                .map(|c| if c == ' ' { '-' } else { c })
                .collect();
            out.insert(slug);
        }
        out
    }

    #[test]
    fn cited_repository_paths_exist() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let Some(files) = tracked(root) else {
            repro_testkit::missing(
                &format!("a git checkout at {}", root.display()),
                "`git ls-files` failed; run the tests in a clone",
            );
            return;
        };
        let set: BTreeSet<&str> = files.iter().map(String::as_str).collect();
        let tops: BTreeSet<&str> = files
            .iter()
            .filter_map(|f| f.split_once('/').map(|(top, _)| top))
            .collect();
        let url = Regex::new(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s)\]>`'\x22]*").unwrap();
        let run = Regex::new(r"[A-Za-z0-9_./-]+").unwrap();
        let self_link = Regex::new(r"\]\(#([^)\s]+)\)").unwrap();
        let mut anchor_cache: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut anchors_of = |path: &str| -> BTreeSet<String> {
            anchor_cache
                .entry(path.to_string())
                .or_insert_with(|| {
                    anchors(&std::fs::read_to_string(root.join(path)).unwrap_or_default())
                })
                .clone()
        };
        let mut problems = Vec::new();
        let mut allowed_seen = BTreeSet::new();
        for file in &files {
            let Ok(text) = std::fs::read_to_string(root.join(file)) else {
                continue; // binary, or deleted in the work tree
            };
            for (n, line) in text.lines().enumerate() {
                let at = format!("{file}:{}", n + 1);
                if file.ends_with(".md") {
                    for c in self_link.captures_iter(line) {
                        if !anchors_of(file).contains(&c[1]) {
                            problems.push(format!("{at}: links to #{}, which {file} lacks", &c[1]));
                        }
                    }
                }
                let line = url.replace_all(line, " ");
                for m in run.find_iter(&line) {
                    let before = line[..m.start()].chars().next_back();
                    if matches!(before, Some('*' | '<' | '>' | '{' | '}' | '$' | '~' | '@')) {
                        continue;
                    }
                    let cited = m.as_str().trim_end_matches('.');
                    if cited.starts_with('/')
                        || !EXTENSIONS
                            .iter()
                            .any(|e| cited.len() > e.len() && cited.ends_with(e))
                    {
                        continue;
                    }
                    if let Some((allowed, _)) = ALLOWED.iter().find(|(a, _)| *a == cited) {
                        allowed_seen.insert(*allowed);
                        continue;
                    }
                    let target = if cited.starts_with("./") || cited.starts_with("../") {
                        relative(file, cited)
                    } else if let Some((top, _)) = cited.split_once('/') {
                        if !tops.contains(top) {
                            continue;
                        }
                        Some(cited.to_string())
                    } else {
                        let stem = cited.trim_end_matches(".md");
                        let document = cited.ends_with(".md")
                            && stem.bytes().any(|b| b.is_ascii_uppercase())
                            && !stem.bytes().any(|b| b.is_ascii_lowercase());
                        if !(document || cited == "pipeline.yaml") {
                            continue;
                        }
                        Some(cited.to_string())
                    };
                    let Some(target) = target.filter(|t| set.contains(t.as_str())) else {
                        problems.push(format!(
                            "{at}: cites {cited}, which is not in the repository"
                        ));
                        continue;
                    };
                    let rest = &line[m.start() + cited.len()..];
                    if let Some(anchor) = rest.strip_prefix('#')
                        && target.ends_with(".md")
                    {
                        let anchor: String = anchor
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_'))
                            .collect();
                        if !anchor.is_empty() && !anchors_of(&target).contains(&anchor) {
                            problems.push(format!(
                                "{at}: cites {target}#{anchor}, which has no such anchor"
                            ));
                        }
                    }
                }
            }
        }
        for (a, why) in ALLOWED {
            if !allowed_seen.contains(a) {
                problems.push(format!(
                    "ALLOWED lists {a} ({why}), which no file cites any more"
                ));
            }
        }
        assert!(
            problems.is_empty(),
            "{} citation problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
}

/// The published `cpu` report (docs/results/cpu/, which the README's results block quotes:
/// `tests/it/readme.rs`): every check of `claims.json` has its row in `claims.md` with its
/// verdict, and every run output the published numbers came from is the one `pipeline.lock`
/// pins for that run (so `repro verify --profile cpu` vouches for them).
/// `scripts/publish_results.py` writes it.
#[test]
fn the_published_cpu_report_is_of_the_locked_runs() {
    use serde_json::Value;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let published = root.join("docs/results/cpu");
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let claims_md = read(&published.join("claims.md"));

    let claims: Value = serde_json::from_str(&read(&published.join("claims.json"))).unwrap();
    assert_eq!(claims["profile"], "cpu");
    let checks = claims["checks"].as_array().expect("claims.json has checks");
    let mut ids: Vec<&str> = checks.iter().filter_map(|c| c["id"].as_str()).collect();
    ids.dedup();
    for id in ids {
        let verdicts: Vec<&str> = checks
            .iter()
            .filter(|c| c["id"] == id)
            .filter_map(|c| c["verdict"].as_str())
            .collect();
        let row = claims_md
            .lines()
            .find(|l| l.starts_with(&format!("| {id} |")))
            .unwrap_or_else(|| panic!("claims.md has no row for check {id}"));
        if verdicts.iter().all(|v| *v == verdicts[0]) {
            let word = verdicts[0].replace('_', " ");
            assert!(
                row.contains(&format!("**{word}**")),
                "{id}: {word} not in {row}"
            );
        }
    }

    let lock: Value = serde_yaml::from_str(&read(&root.join("pipeline.lock"))).unwrap();
    let locked = &lock["profiles"]["cpu"]["runs"];
    let inputs = claims["inputs"]
        .as_object()
        .expect("claims.json has inputs");
    assert!(!inputs.is_empty(), "the published report read no runs");
    for (run, files) in inputs {
        let id = run.trim_start_matches("run:");
        let pinned = &locked[id]["outputs"];
        assert!(
            pinned.is_object(),
            "{id} is not locked in pipeline.lock's cpu profile"
        );
        for (file, digest) in files.as_object().unwrap() {
            assert_eq!(
                &pinned[file], digest,
                "{id} {file}: published ≠ pipeline.lock"
            );
        }
    }
}
