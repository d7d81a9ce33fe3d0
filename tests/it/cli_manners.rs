//! The command line's Unix manners: a closed pipe ends it quietly, tables keep to `$COLUMNS`
//! (`--wide` prints them whole), help wraps and describes every option, `--version` names the
//! build, `--json` is one document on stdout, and completions and the man page come from clap.

use std::process::{Command, Output, Stdio};

use crate::common::{PIPELINE, Project, flip_byte, ok};
use serde_json::Value;

/// Claims over the small experiment, so `report` prints a claims table.
const CLAIMS: &str = r#"
claims:
  - id: norm-early-below-none-on-the-small-network
    claim: C2
    text: With early weight decay the norm of the weights stays below the no-decay run's.
    experiments: [small]
    metric: weight_norm@final
    test: {less: {a: {schedule: early}, b: {schedule: none}}}
  - id: accuracy-early-matches-none-on-the-small-network
    claim: C1
    text: Early weight decay reaches about the accuracy of training without it.
    experiments: [small]
    metric: test_acc@final
    test: {equivalent: {a: {schedule: early}, b: {schedule: none}, margin: 0.01}}
"#;

fn project() -> Project {
    Project::new(&format!("{PIPELINE}{CLAIMS}"))
}

/// `repro ARGS` with `$COLUMNS` set (and stdout a pipe, as under `Command::output`).
fn at_columns(p: &Project, columns: usize, args: &[&str]) -> String {
    let o = p
        .cmd(args)
        .env("COLUMNS", columns.to_string())
        .output()
        .unwrap();
    assert!(o.status.success(), "{args:?}: {}", crate::common::text(&o));
    String::from_utf8(o.stdout).unwrap()
}

fn stdout_json(o: Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            crate::common::text(&o)
        )
    })
}

fn widest(text: &str) -> usize {
    text.lines()
        .map(textwrap::core::display_width)
        .max()
        .unwrap_or(0)
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let p = project();
    for args in [
        &["plan", "--profile", "smoke", "--device", "cpu"][..],
        &["report", "--profile", "smoke", "--device", "cpu"],
    ] {
        // The reading end is closed before the command writes anything, as when `head` has
        // read its lines and gone: every write fails with EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = p
            .cmd(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_ne!(o.status.code(), Some(101), "{args:?}: {stderr}");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(o.status.signal(), Some(libc::SIGPIPE), "{args:?}: {stderr}");
    }
}

#[test]
fn tables_keep_to_the_columns_and_wide_prints_them_whole() {
    let p = project();
    let plan = ["plan", "--profile", "smoke", "--device", "cpu"];
    let report = ["report", "--profile", "smoke", "--device", "cpu"];
    for columns in [80, 120] {
        for args in [&plan[..], &report[..]] {
            let out = at_columns(&p, columns, args);
            assert!(widest(&out) <= columns, "{args:?} at {columns}:\n{out}");
        }
    }
    // Narrow: one entry per claim, the verdict beside the check's id.
    let narrow = at_columns(&p, 80, &report);
    assert!(
        narrow.contains("norm-early-below-none-on-the-small-network – not run — C2:"),
        "{narrow}"
    );
    // --wide ignores $COLUMNS: the claims grid with every header on one line, and the plan
    // exactly as an unbounded width prints it.
    let wide = at_columns(&p, 40, &[&report[..], &["--wide"][..]].concat());
    assert!(
        wide.lines().any(|l| {
            [
                "check", "claim", "test", "measured", "verdict", "data", "seeds",
            ]
            .iter()
            .all(|h| l.contains(&format!(" {h} ")))
        }),
        "{wide}"
    );
    assert!(
        wide.contains("│ accuracy-early-matches-none-on-the-small-network │"),
        "{wide}"
    );
    assert_eq!(
        at_columns(&p, 40, &[&plan[..], &["--wide"][..]].concat()),
        at_columns(&p, 100_000, &plan)
    );
}

/// Lines of `help` naming an option (`  -q, --quiet`, `      --profile <PROFILE>`) and whether
/// each has a description, on its line or indented below it.
fn options_without_description(help: &str) -> Vec<String> {
    let lines: Vec<&str> = help.lines().collect();
    let mut missing = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let is_option = line.starts_with("  -") || line.starts_with("      --");
        if !is_option {
            continue;
        }
        let same_line = line.trim().contains("  ");
        let below = lines
            .get(i + 1)
            .is_some_and(|next| next.starts_with("          ") && !next.trim().is_empty());
        if !same_line && !below {
            missing.push(line.to_string());
        }
    }
    missing
}

fn help_at_80(args: &[&str]) -> String {
    let o = Command::new(crate::common::repro_bin())
        .args(args)
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    assert!(o.status.success(), "{args:?}: {}", crate::common::text(&o));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn help_wraps_at_80_columns_and_describes_every_option_and_command() {
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["plan", "--help"],
        &["report", "--help"],
        &["verify", "--help"],
    ] {
        let help = help_at_80(args);
        assert!(widest(&help) <= 80, "{args:?}:\n{help}");
        assert_eq!(
            options_without_description(&help),
            Vec::<String>::new(),
            "{args:?}"
        );
        assert!(help.contains("Examples:\n  # "), "{args:?}:\n{help}");
    }
    let top = help_at_80(&["--help"]);
    let commands = subcommands(&top);
    assert!(commands.len() >= 10, "{commands:?}");
    for line in top
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with("   "))
    {
        assert!(
            line.trim().contains("  "),
            "command without a description: {line}"
        );
    }
}

/// The subcommands `repro --help` lists (without `help`).
fn subcommands(top_help: &str) -> Vec<String> {
    top_help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

#[test]
fn version_names_the_commit_the_libtorch_and_the_features() {
    let long = ok(Command::new(crate::common::repro_bin())
        .arg("--version")
        .output()
        .unwrap());
    let pattern = regex::Regex::new(&format!(
        r"(?m)^repro {}\ncommit: +([0-9a-f]{{7,}}(-dirty)?|unknown)\nlibtorch: +\S+ .*\nfeatures: +\S+",
        regex::escape(env!("CARGO_PKG_VERSION"))
    ))
    .unwrap();
    assert!(pattern.is_match(&long), "{long}");
    let short = ok(Command::new(crate::common::repro_bin())
        .arg("-V")
        .output()
        .unwrap());
    assert_eq!(short.lines().count(), 1, "{short}");
    for fact in ["commit ", "libtorch ", "features: "] {
        assert!(short.contains(fact), "{short}");
    }
}

#[test]
fn json_outputs_are_one_document_on_stdout() {
    let p = project();
    let status = stdout_json(p.run(&["status", "--profile", "smoke", "--device", "cpu", "--json"]));
    assert_eq!(status["profile"], "smoke");
    assert_eq!(status["totals"]["runs"], 4, "{status}");
    assert_eq!(status["totals"]["to_run"], 4, "{status}");
    assert_eq!(status["experiments"][0]["experiment"], "small", "{status}");

    let report = stdout_json(p.run(&["report", "--profile", "smoke", "--device", "cpu", "--json"]));
    assert_eq!(report["key"].as_str().map(str::len), Some(64), "{report}");
    let html = std::path::Path::new(report["html"].as_str().unwrap());
    assert!(html.is_absolute() && html.exists(), "{report}");
    assert!(
        html.starts_with(p.path().canonicalize().unwrap()),
        "{report}"
    );
    let checks = report["checks"].as_array().unwrap();
    let norm = checks
        .iter()
        .find(|c| c["id"] == "norm-early-below-none-on-the-small-network")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(norm["verdict"], "not run");
    assert_eq!(norm["claim"], "C2");
    assert!(
        norm["text"]
            .as_str()
            .unwrap()
            .starts_with("With early weight decay")
    );
    let claims: Vec<&str> = report["claims"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["claim"].as_str())
        .collect();
    assert_eq!(claims, ["C2", "C1"], "{report}");

    // A stored object: the generated dataset's archive.
    ok(p.smoke(&["--quiet", "cifar10"]));
    let verified = p.run(&["verify", "--json"]);
    assert!(verified.status.success());
    let v = stdout_json(verified);
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["objects"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    flip_byte(&p.output("dataset:cifar10", "cifar-10-binary.tar.gz"), 100);
    let broken = p.run(&["verify", "--json"]);
    assert_eq!(broken.status.code(), Some(1));
    let v = stdout_json(broken);
    assert_eq!(v["ok"], false, "{v}");
    assert!(!v["problems"].as_array().unwrap().is_empty(), "{v}");
}

#[test]
fn completions_and_the_man_page_come_from_the_clap_definitions() {
    let top = help_at_80(&["--help"]);
    let bash = help_at_80(&["completions", "bash"]);
    assert!(bash.contains("repro"), "{bash}");
    for command in subcommands(&top) {
        assert!(bash.contains(&command), "bash completions lack {command}");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        assert!(
            help_at_80(&["completions", shell]).contains("repro"),
            "{shell}"
        );
    }
    let man = help_at_80(&["man"]);
    let first_macro = man
        .lines()
        .find(|l| l.starts_with(".TH") || l.starts_with(".SH"))
        .unwrap_or_default();
    assert!(first_macro.starts_with(".TH repro 1"), "{man}");
    assert!(
        man.contains(".SH SUBCOMMANDS") || man.contains("repro\\-run"),
        "{man}"
    );
}
