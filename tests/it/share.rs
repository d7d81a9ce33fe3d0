//! Push and pull through the binary: a profile trained, reported and pushed in one project is
//! pulled into another whose runs get other keys (another thread count: "another machine"),
//! where the pulled runs stand for its own (`pulled`, nothing trained) and verify and report
//! read them; and a pull killed with SIGKILL half-way leaves only whole objects and no record,
//! and a rerun fetches only the rest.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{PIPELINE, Project, ok};

/// A project that ran, locked and reported the smoke profile and pushed it to a folder remote
/// (inside the project's temporary folder); the remote's `file://` URL.
fn trained_and_pushed() -> (Project, String) {
    let a = Project::new(PIPELINE);
    ok(a.smoke(&["--quiet"]));
    ok(a.run(&["lock", "--profile", "smoke", "--device", "cpu"]));
    ok(a.run(&["report", "--profile", "smoke", "--device", "cpu"]));
    let url = format!("file://{}", a.path().join("remote").display());
    let out = ok(a.run(&[
        "push",
        "--profile",
        "smoke",
        "--device",
        "cpu",
        "--remote",
        &url,
    ]));
    assert!(
        out.contains("pushed profile smoke") && out.contains("4 runs"),
        "{out}"
    );
    (a, url)
}

/// A second project with the same pipeline.yaml (but `threads`) and pipeline.lock.
fn elsewhere(a: &Project, threads: usize) -> Project {
    let b = Project::new(&PIPELINE.replace("threads: 1", &format!("threads: {threads}")));
    std::fs::copy(
        a.path().join("pipeline.lock"),
        b.path().join("pipeline.lock"),
    )
    .unwrap();
    b
}

fn report_key(p: &Project) -> String {
    let out = p
        .run(&["report", "--profile", "smoke", "--device", "cpu", "--json"])
        .stdout;
    let v: serde_json::Value = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("report --json: {e}: {}", String::from_utf8_lossy(&out)));
    v["key"].as_str().expect("a key").to_string()
}

/// "N objects fetched" and "M objects already here" of a pull's last line.
fn moved(out: &str) -> (usize, usize) {
    let count = |what: &str| {
        let line = out
            .lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} in:\n{out}"));
        let before = &line[..line.find(what).unwrap()];
        before
            .split_whitespace()
            .last()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count before {what:?} in {line}"))
    };
    (count(" objects fetched"), count(" objects already here"))
}

#[test]
fn pulled_runs_stand_for_this_machines_and_nothing_is_trained() {
    let (a, url) = trained_and_pushed();
    let b = elsewhere(&a, 2);
    let out = ok(b.run(&["pull", "--profile", "smoke", "--remote", &url]));
    assert!(out.contains("4 runs and their report"), "{out}");
    let (fetched, present) = moved(&out);
    assert!(fetched > 0 && present == 0, "{out}");
    // The threads differ, so every key does: the runs are "pulled", not "cached".
    let plan = ok(b.run(&["plan", "--profile", "smoke", "--device", "cpu"]));
    assert!(plan.contains("4 pulled, 0 to run"), "{plan}");
    assert!(plan.contains("made with threads 1→2"), "{plan}");
    ok(b.run(&["verify", "--profile", "smoke"]));
    let run = ok(b.smoke(&[]));
    assert!(run.contains("0 ran, 0 cached, 4 pulled, 0 failed"), "{run}");
    assert_eq!(report_key(&b), report_key(&a));
    // Pulling again moves nothing.
    let again = ok(b.run(&["pull", "--profile", "smoke", "--remote", &url]));
    assert_eq!(moved(&again), (0, fetched), "{again}");
    assert!(again.contains("0 records"), "{again}");
}

/// Serves ROOT over HTTP on a free port of 127.0.0.1 (printed first); object requests after
/// the first HOLD wait until the file RELEASE exists: a pull that stops half-way, for as long as
/// the test needs, whatever the machine's speed.
const GATED_SERVER: &str = r#"
import functools, http.server, os, sys, threading, time
root, hold, release = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lock, served = threading.Lock(), [0]
class Gated(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if "/objects/" in self.path:
            with lock:
                served[0] += 1
                n = served[0]
            while n > hold and not os.path.exists(release):
                time.sleep(0.02)
        super().do_GET()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Gated, directory=root))
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn objects_in(store: &Path) -> Vec<PathBuf> {
    crate::common::files_under(&store.join("objects/sha256"))
}

#[test]
fn a_pull_killed_half_way_leaves_whole_objects_only_and_a_rerun_fetches_the_rest() {
    let (a, _) = trained_and_pushed();
    let hold = 10;
    let release = a.path().join("release");
    let mut server = Command::new(repro_testkit::python())
        .args(["-c", GATED_SERVER])
        .arg(a.path().join("remote"))
        .arg(hold.to_string())
        .arg(&release)
        .stdout(Stdio::piped())
        // Requests of the killed pull end in broken pipes: not news.
        .stderr(Stdio::null())
        .spawn()
        .expect("start the gated HTTP server");
    let mut port = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let _server = Reaped(server);
    let url = format!("http://127.0.0.1:{}", port.trim());

    let b = elsewhere(&a, 1);
    let mut pull = b
        .cmd(&["pull", "--profile", "smoke", "--remote", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn repro pull");
    // Wait until the objects served before the gate are in the store, then SIGKILL the pull.
    let deadline = Instant::now() + Duration::from_secs(60);
    while objects_in(&b.store()).len() < hold {
        assert!(
            pull.try_wait().unwrap().is_none(),
            "the pull ended before it was killed"
        );
        assert!(
            Instant::now() < deadline,
            "{hold} objects did not arrive in a minute"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    pull.kill().unwrap();
    pull.wait().unwrap();

    // Only whole objects are visible, each intact; no record and no publication.
    let present = objects_in(&b.store());
    assert_eq!(present.len(), hold);
    for f in &present {
        let name = format!(
            "{}{}",
            f.parent().unwrap().file_name().unwrap().to_string_lossy(),
            f.file_name().unwrap().to_string_lossy()
        );
        let digest = repro_core::store::hash::sha256_file(f).unwrap();
        assert_eq!(digest, name, "{} is not whole", f.display());
    }
    let records = std::fs::read_dir(b.store().join("runs")).unwrap().count();
    assert_eq!(records, 0, "a record was written before its objects");
    assert!(!b.store().join("published/smoke.json").exists());

    std::fs::write(&release, b"").unwrap();
    let out = ok(b.run(&["pull", "--profile", "smoke", "--remote", &url]));
    let (fetched, already) = moved(&out);
    assert_eq!(already, hold, "{out}");
    let total = objects_in(&a.path().join("remote")).len();
    assert_eq!(fetched + already, total, "{out}");
    // The killed pull's temp files (its process is gone) were removed.
    let tmp: Vec<_> = std::fs::read_dir(b.store().join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    ok(b.run(&["verify", "--profile", "smoke"]));
    let run = ok(b.smoke(&[]));
    assert!(run.contains("0 ran, 4 cached"), "{run}");
}
