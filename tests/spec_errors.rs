//! pipeline.yaml validation: every problem reported at once with FILE:LINE:COL, exit code 2.

mod common;
use common::{Project, text};

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
    let p = Project::new(common::PIPELINE);
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
