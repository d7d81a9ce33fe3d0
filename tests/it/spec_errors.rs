//! pipeline.yaml validation: every problem reported at once with FILE:LINE:COL, exit code 2.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{Project, text};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repro_core::pipeline::spec::Pipeline;
use repro_core::pipeline::yaml_guard;
use repro_testkit::hostile;

#[test]
fn every_problem_is_listed_with_its_position() {
    let p = Project::new(
        r#"version: 1
datasets:
  cifar10:
    format: cifar10-binary
    files:
      - name: c.tar.gz
        md5: nothex
experiments:
  a:
    kind: vision
    datasets: [cifar10, missing_ds]
    needs: [b]
    params:
      lrr: 0.1
      epochs: many
    grid:
      seed: []
  b:
    kind: telepathy
    needs: [a]
profiles:
  smoke:
    experiments:
      nope: {}
bogus: 1
"#,
    );
    let o = p.run(&["plan", "--profile", "smoke"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    let expect = [
        "pipeline.yaml:7:14: md5 must be 32 hex digits",
        "pipeline.yaml:11:25: dataset `missing_ds` is not declared",
        "pipeline.yaml:14:7: stage kind `vision` has no parameter `lrr`",
        "pipeline.yaml:15:15: parameter `epochs`: expected an integer",
        "pipeline.yaml:17:13: grid axis `seed` is empty",
        "pipeline.yaml:19:11: unknown stage kind `telepathy`",
        "cycle: a → b → a",
        "pipeline.yaml:24:7: experiment `nope` is not declared",
        "pipeline.yaml:25:1: unknown top-level key `bogus`",
    ];
    for e in expect {
        assert!(t.contains(e), "missing {e:?} in:\n{t}");
    }
}

#[test]
fn yaml_syntax_error_has_a_position() {
    let p = Project::new("version: 1\nexperiments:\n  a: [unclosed\n");
    let o = p.run(&["plan"]);
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert!(
        t.contains("pipeline.yaml:") && t.contains("not valid YAML"),
        "{t}"
    );
}

#[test]
fn unknown_profile_and_target_are_usage_errors() {
    let p = Project::new(crate::common::PIPELINE);
    let o = p.run(&["plan", "--profile", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("profile `nope` is not declared"),
        "{}",
        text(&o)
    );
    let o = p.run(&["plan", "--profile", "smoke", "no_such_target"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no_such_target"));
}

#[test]
fn type_errors_inside_sections_are_located() {
    let p = Project::new("experiments:\n  a:\n    kind: vision\n    determinism: sometimes\n");
    let o = p.run(&["plan"]);
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert!(
        t.contains("pipeline.yaml:4:18:") && t.contains("determinism"),
        "{t}"
    );
}

#[test]
fn bad_precision_options_name_the_field_and_what_is_valid() {
    let p = Project::new(
        r#"experiments:
  a:
    kind: vision
profiles:
  p1:
    precision: {autocast: fp16}
  p2:
    precision: {autocast: half_please}
  p3:
    precision:
      channels_last: yes
  p4:
    precision:
      tf32: false
      fast: true
  ok:
    precision: {autocast: bf16, channels_last: true, tf32: true}
"#,
    );
    let o = p.run(&["plan", "--profile", "ok"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    let expect = [
        "pipeline.yaml:6:27: profiles.p1.precision.autocast: `fp16` is not supported (fp16 autocast needs a gradient scaler); valid: off, bf16",
        "pipeline.yaml:8:27: profiles.p2.precision.autocast: unknown value `half_please`; valid: off, bf16",
        "pipeline.yaml:11:22: profiles.p3.precision.channels_last: invalid type: string \"yes\", expected a boolean",
        "pipeline.yaml:15:7: profiles.p4.precision.fast: unknown field `fast`, expected one of `autocast`, `channels_last`, `tf32`",
    ];
    for e in expect {
        assert!(t.contains(e), "missing {e:?} in:\n{t}");
    }
    assert_eq!(t.matches("precision").count(), 4, "only those four:\n{t}");
}

#[test]
fn remotes_name_a_known_scheme_and_keep_endpoints_for_s3() {
    let p = Project::new(
        r#"experiments:
  a:
    kind: vision
profiles:
  ok: {}
remotes:
  lab: s3://bucket/prefix
  minio: {url: "s3://results/repro", endpoint: "http://127.0.0.1:9000"}
  web: https://example.org/repro
  ftp: ftp://example.org/repro
  nourl: {endpoint: "http://x"}
  webby: {url: "https://example.org/r", endpoint: "http://x"}
"#,
    );
    let o = p.run(&["plan", "--profile", "ok"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    let expect = [
        "pipeline.yaml:10:8: remote URL \"ftp://example.org/repro\" has no known scheme; valid: file://, s3://, https://, http://",
        "pipeline.yaml:11:10: remotes.nourl: a remote is a URL (s3://bucket/prefix, file:///path, https://host/path) or {url: URL, endpoint: URL}",
        "pipeline.yaml:12:51: an endpoint is for s3:// remotes (an S3-compatible server) only",
    ];
    for e in expect {
        assert!(t.contains(e), "missing {e:?} in:\n{t}");
    }
    assert!(t.contains("has 3 problems"), "only those three:\n{t}");
}

#[test]
fn unknown_fields_point_at_their_key() {
    let p = Project::new(
        r#"version: 1
datasets:
  cifar10:
    format: cifar10-binary
    bogus_ds: 1
    files:
      - {name: c.tar.gz, md5: c32a1d4ab5d03f1284b67883e8d87530}
  cifar100:
    format: cifar100-binary
    files:
      - name: c.tar.gz
        colour: red
experiments:
  a:
    kind: vision
    datasets: [cifar10]
    wat: 1
  b: {kind: vision, datasets: [cifar10]}
profiles:
  smoke:
    thread: 2
  other:
    experiments:
      b: {params: {}, skipp: true}
claims:
  - id: x
    nonsense: 1
"#,
    );
    let o = p.run(&["plan"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    let expect = [
        "pipeline.yaml:5:5: datasets.cifar10.bogus_ds: unknown field `bogus_ds`, expected one of",
        "pipeline.yaml:12:9: datasets.cifar100.files[0].colour: unknown field `colour`",
        "pipeline.yaml:17:5: experiments.a.wat: unknown field `wat`",
        "pipeline.yaml:21:5: profiles.smoke.thread: unknown field `thread`",
        "pipeline.yaml:24:23: profiles.other.experiments.b.skipp: unknown field `skipp`",
        "pipeline.yaml:27:5: claims[0].nonsense: unknown field `nonsense`",
    ];
    for e in expect {
        assert!(t.contains(e), "missing {e:?} in:\n{t}");
    }
}

/// `repro plan` on `pipeline`: its exit code, output and wall time.
fn plan_timed(pipeline: &str) -> (Option<i32>, String, Duration) {
    let p = Project::new(pipeline);
    let t = Instant::now();
    let o = p.run(&["plan"]);
    (o.status.code(), text(&o), t.elapsed())
}

#[test]
fn alias_bomb_is_refused_fast_where_it_crosses_the_limit() {
    // Before the guard: 80 s and 7 GB, or an abort under a memory cap.
    let (code, t, took) = plan_timed(&hostile::alias_bomb(128 * 1024));
    assert_eq!(code, Some(2), "{t}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // 2,005 nodes before the rows, 20,011 per row of ten 2,001-node aliases: the 9th alias of
    // row 50 (line 52, column 6 + 5·8) takes the expanded document past 1,000,000 nodes.
    assert!(
        t.contains(
            "pipeline.yaml:52:46: aliases expand the document past 1000000 nodes, the limit for a \
             pipeline file (this alias repeats 2001 nodes)"
        ),
        "{t}"
    );
}

#[test]
fn deep_nesting_is_refused_fast() {
    // Flow style: libyaml was quadratic in the depth (36 s at 100,000). yaml-rust2 reads a flow
    // collection whole before giving events and stops at 255 levels (column 3 + 256).
    let (code, t, took) = plan_timed(&hostile::deep_flow(100_000));
    assert_eq!(code, Some(2), "{t}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        t.contains("pipeline.yaml:1:259: collections nest deeper than 64 levels"),
        "{t}"
    );
    // Block style: the 65th `- ` (column 129) is one level too deep.
    let (code, t, took) = plan_timed(&hostile::deep_block(100_000));
    assert_eq!(code, Some(2), "{t}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        t.contains(
            "pipeline.yaml:1:129: collections nest deeper than 64 levels, the limit for a \
             pipeline file"
        ),
        "{t}"
    );
    // Within yaml-rust2's 255 flow levels the position is that of the first level too many:
    // the top-level mapping is the first level, so the 64th `[` (column 3 + 64).
    let e = Pipeline::parse(Path::new("pipeline.yaml"), &hostile::deep_flow(100)).unwrap_err();
    let p = &e.problems[0];
    assert_eq!((p.line, p.col), (1, 3 + 64), "{e}");
}

#[test]
fn invalid_utf8_and_control_characters_are_located() {
    // Latin-1 é after `salt: caf`.
    let p = Project::new("version: 1\nsalt: x\n");
    std::fs::write(
        p.path().join("pipeline.yaml"),
        b"version: 1\nsalt: caf\xe9\n",
    )
    .unwrap();
    let o = p.run(&["plan"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("pipeline.yaml:2:10: not valid UTF-8: byte 0xE9"),
        "{}",
        text(&o)
    );
    // Columns count characters: two `é` before the BEL are two columns.
    for (yaml, at, code) in [
        ("version: 1\nsalt: \"a\u{7}b\"\n", "2:9", "U+0007"),
        ("version: 1\r\n# é\r\nsalt: \"éé\u{1}\"\n", "3:10", "U+0001"),
        ("version: 1\nsalt: x \u{7f}\n", "2:9", "U+007F"),
    ] {
        let (c, t, _) = plan_timed(yaml);
        assert_eq!(c, Some(2), "{t}");
        let want = format!(
            "pipeline.yaml:{at}: character {code} (a control character) is not allowed in YAML"
        );
        assert!(t.contains(&want), "missing {want:?} in:\n{t}");
    }
}

/// Anchors the real pipeline defines, and one it does not.
const ANCHORS: &[&str] = &[
    "e1", "e3", "variants", "rl_wd", "reduced", "smoke", "e1_all", "decisive", "nope",
];

/// One seeded mutation of `src`: byte flips, line deletions and duplications, indentation
/// changes, anchors and aliases (merges, recursion), deep nesting, truncation.
fn mutate(src: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut b = src.to_vec();
    for _ in 0..rng.random_range(1..=3) {
        let mut lines: Vec<Vec<u8>> = b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
        let n = lines.len();
        let i = rng.random_range(0..n);
        match rng.random_range(0..9) {
            0 => {
                for _ in 0..rng.random_range(1..=4) {
                    let at = rng.random_range(0..b.len().max(1));
                    let set = b"[]{}:-,&*!|>?#'\" \t\nx0";
                    let byte = if rng.random_bool(0.2) {
                        rng.random::<u8>()
                    } else {
                        set[rng.random_range(0..set.len())]
                    };
                    if at < b.len() {
                        b[at] = byte;
                    }
                }
                continue;
            }
            1 => {
                lines.remove(i);
            }
            2 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            3 => {
                let l = &mut lines[i];
                match rng.random_range(0..3) {
                    0 => l
                        .splice(0..0, vec![b' '; rng.random_range(1..=4)])
                        .for_each(drop),
                    1 => {
                        let indent = l.iter().take_while(|&&c| c == b' ').count();
                        l.drain(..rng.random_range(0..=indent));
                    }
                    _ => l.insert(0, b'\t'),
                }
            }
            4 | 5 => {
                let name = ANCHORS[rng.random_range(0..ANCHORS.len())];
                let l = &mut lines[i];
                let Some(colon) = l.windows(2).position(|w| w == b": ") else {
                    continue;
                };
                let ins: Vec<u8> = match rng.random_range(0..3) {
                    0 => format!("&{name} ").into_bytes(),
                    1 => {
                        l.truncate(colon + 2);
                        format!("*{name}").into_bytes()
                    }
                    _ => format!("{{<<: *{name}}} #").into_bytes(),
                };
                l.splice(colon + 2..colon + 2, ins).for_each(drop);
            }
            6 => {
                // Shallow (parsed), or deep enough that libyaml took seconds.
                let depth = if rng.random_bool(0.5) {
                    rng.random_range(30..300)
                } else {
                    rng.random_range(1_000..60_000)
                };
                let line = if rng.random_bool(0.5) {
                    hostile::deep_flow(depth)
                } else {
                    format!("z: {}", hostile::deep_block(depth))
                };
                lines.insert(i, line.trim_end().as_bytes().to_vec());
            }
            7 => {
                // Many aliases of a small anchor, or of a whole section (a bomb).
                let name = if rng.random_bool(0.5) {
                    "e1"
                } else {
                    let sections = [&b"datasets:"[..], b"experiments:", b"profiles:", b"claims:"];
                    let s = sections[rng.random_range(0..sections.len())];
                    if let Some(l) = lines.iter_mut().find(|l| l.as_slice() == s) {
                        l.extend_from_slice(b" &big");
                    }
                    "big"
                };
                let aliases = vec![format!("*{name}"); rng.random_range(10..5_000)].join(",");
                lines.insert(i, format!("zz: [{aliases}]").into_bytes());
            }
            _ => {
                b.truncate(rng.random_range(0..b.len().max(1)));
                continue;
            }
        }
        b = lines.join(&b'\n');
    }
    b
}

/// Load `bytes` as `Pipeline::load` does (decode, then parse), in-process.
fn parse_bytes(bytes: &[u8]) -> Result<(), repro_core::pipeline::spec::SpecErrors> {
    let path = Path::new("pipeline.yaml");
    match yaml_guard::decode(bytes) {
        Ok(text) => Pipeline::parse(path, text).map(drop),
        Err(p) => Err(repro_core::pipeline::spec::SpecErrors {
            file: path.to_path_buf(),
            problems: vec![p],
        }),
    }
}

#[test]
fn fuzzed_pipelines_fail_cleanly_and_quickly() {
    let src = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("pipeline.yaml"))
        .expect("the real pipeline.yaml");
    parse_bytes(&src).unwrap_or_else(|e| panic!("the real pipeline must load: {e}"));
    let mut rng = ChaCha8Rng::seed_from_u64(20_240_601);
    let (mut ok, mut refused, mut slowest) = (0, 0, Duration::ZERO);
    for case in 0..400 {
        let m = mutate(&src, &mut rng);
        let lines = m.split(|&c| c == b'\n').count();
        let t = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| parse_bytes(&m)));
        let took = t.elapsed();
        slowest = slowest.max(took);
        assert!(took < Duration::from_secs(3), "case {case} took {took:?}");
        match r {
            Err(_) => panic!("case {case} panicked"),
            Ok(Ok(())) => ok += 1,
            Ok(Err(e)) => {
                refused += 1;
                for p in &e.problems {
                    assert!(
                        p.line >= 1 && p.line <= lines + 1 && p.col >= 1,
                        "case {case}: position {}:{} outside the file: {e}",
                        p.line,
                        p.col
                    );
                }
            }
        }
    }
    eprintln!("400 mutations: {ok} load, {refused} refused, slowest {slowest:?}");
    assert!(ok > 20 && refused > 20, "{ok} load, {refused} refused");

    // A few through the binary: exit codes stay those the CLI documents.
    for case in 0..6 {
        let m = mutate(&src, &mut rng);
        let p = Project::new("");
        std::fs::write(p.path().join("pipeline.yaml"), &m).unwrap();
        let o = p.run(&["plan", "--profile", "smoke"]);
        let code = o.status.code();
        assert!(
            matches!(code, Some(0..=2)),
            "binary case {case}: exit {code:?}\n{}",
            text(&o)
        );
    }
}
