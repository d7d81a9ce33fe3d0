//! Push and pull between stores made by `common` and remotes: a folder, a local HTTP server
//! (Python's `http.server`), and a local S3 server (moto, with credentials enforced).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use repro_core::store::Store;
use repro_core::store::published::{Publication, layout};
use repro_share::remote::{Remote, RemoteSpec};
use repro_share::{Progress, Stats, transfer};

use crate::common::store_with_runs;

fn folder(dir: &Path) -> Remote {
    open(&format!("file://{}", dir.display()), None, &BTreeMap::new())
}

fn open(url: &str, endpoint: Option<&str>, env: &BTreeMap<String, String>) -> Remote {
    let spec = RemoteSpec {
        url: url.into(),
        endpoint: endpoint.map(str::to_string),
    };
    Remote::open_with_env(&spec, env).unwrap_or_else(|e| panic!("open {url}: {e:#}"))
}

fn quiet(_: Progress) {}

fn pull(store: &Store, remote: &Remote) -> anyhow::Result<(Publication, Stats)> {
    transfer::pull(store, remote, "smoke", None, &quiet)
}

/// Every record and object `p` names is in `to` as it is in `from`; the publication is
/// written and the refs point at its runs.
fn assert_same(from: &Store, to: &Store, p: &Publication) {
    for key in p.record_keys() {
        let a = from.read_record(key).unwrap().expect("source record");
        let b = to
            .read_record(key)
            .unwrap()
            .unwrap_or_else(|| panic!("record {key} was not pulled"));
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::to_value(&b).unwrap()
        );
        for o in b.outputs.values().chain([&p.pipeline]) {
            assert!(
                to.check_object(o).is_intact(),
                "object {} not intact",
                o.sha256
            );
            assert_eq!(
                std::fs::read(from.object_path(&o.sha256)).unwrap(),
                std::fs::read(to.object_path(&o.sha256)).unwrap()
            );
        }
    }
    assert_eq!(to.publication("smoke").unwrap().as_ref(), Some(p));
    for (id, key) in &p.runs {
        assert_eq!(to.get_ref("smoke", id).as_deref(), Some(key.as_str()));
    }
}

/// The files directly under the store's `tmp/` (stray downloads would be there).
fn tmp_files(store: &Store) -> Vec<String> {
    std::fs::read_dir(store.root().join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn flip_byte(path: &Path, offset: usize) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0xff;
    std::fs::write(path, &bytes).unwrap();
}

#[test]
fn folder_push_then_pull_copies_everything_and_a_second_time_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, p) = store_with_runs(&dir.path().join("a"), 3, 4096);
    let remote = folder(&dir.path().join("remote/x"));
    let ticks = std::cell::RefCell::new(Vec::new());
    let s = transfer::push(&a, &remote, &p, &|t| ticks.borrow_mut().push(t)).unwrap();
    // 3 runs × (metrics, weights) + pipeline.yaml, all distinct.
    assert_eq!(
        (s.records, s.objects, s.objects_present),
        (3, 7, 0),
        "{s:?}"
    );
    let last = *ticks.borrow().last().unwrap();
    assert_eq!((last.objects_done, last.objects_total), (7, 7));
    assert_eq!(last.bytes_done, last.bytes_total);
    assert!(
        dir.path()
            .join("remote/x")
            .join(layout::publication("smoke"))
            .is_file()
    );
    let again = transfer::push(&a, &remote, &p, &quiet).unwrap();
    assert_eq!(
        (again.objects, again.bytes, again.objects_present),
        (0, 0, 7),
        "{again:?}"
    );

    let b = Store::open(&dir.path().join("b")).unwrap();
    // A temp file of a pull whose process is gone is removed; one of a live process is not.
    let stale = b.root().join("tmp/pull-999999999-0123");
    let live = b
        .root()
        .join(format!("tmp/pull-{}-0123", std::process::id()));
    std::fs::write(&stale, b"x").unwrap();
    std::fs::write(&live, b"x").unwrap();
    let (got, s) = pull(&b, &remote).unwrap();
    assert_eq!(got, p);
    assert_eq!(
        (s.records, s.objects, s.objects_present),
        (3, 7, 0),
        "{s:?}"
    );
    assert_eq!(s.bytes, again.bytes_present);
    assert_same(&a, &b, &p);
    assert!(!stale.exists() && live.exists());
    std::fs::remove_file(&live).unwrap();
    let (_, s) = pull(&b, &remote).unwrap();
    assert_eq!(
        (s.records, s.objects, s.objects_present),
        (0, 0, 7),
        "{s:?}"
    );
    assert!(tmp_files(&b).is_empty(), "{:?}", tmp_files(&b));
}

#[test]
fn only_some_runs_are_pulled_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let (a, p) = store_with_runs(&dir.path().join("a"), 3, 256);
    let remote = folder(&dir.path().join("remote"));
    transfer::push(&a, &remote, &p, &quiet).unwrap();
    let b = Store::open(&dir.path().join("b")).unwrap();
    let one = std::collections::BTreeSet::from(["e1/seed=1".to_string()]);
    let (got, s) = transfer::pull(&b, &remote, "smoke", Some(&one), &quiet).unwrap();
    assert_eq!(got.runs.keys().collect::<Vec<_>>(), ["e1/seed=1"]);
    assert_eq!((s.records, s.objects), (1, 3), "{s:?}");
    assert!(b.read_record(&p.runs["e1/seed=0"]).unwrap().is_none());
    // A second partial pull adds to the publication instead of replacing it.
    let zero = std::collections::BTreeSet::from(["e1/seed=0".to_string()]);
    transfer::pull(&b, &remote, "smoke", Some(&zero), &quiet).unwrap();
    let named = b.publication("smoke").unwrap().unwrap();
    assert_eq!(named.runs.len(), 2);
    let absent = std::collections::BTreeSet::from(["e1/seed=7".to_string()]);
    let e = format!(
        "{:#}",
        transfer::pull(&b, &remote, "smoke", Some(&absent), &quiet).unwrap_err()
    );
    assert!(e.contains("no run e1/seed=7"), "{e}");
}

#[test]
fn a_flipped_or_truncated_object_on_the_remote_is_refused_and_a_rerun_fetches_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (a, p) = store_with_runs(&dir.path().join("a"), 3, 4096);
    let root = dir.path().join("remote");
    let remote = folder(&root);
    transfer::push(&a, &remote, &p, &quiet).unwrap();
    let victim = a
        .read_record(&p.runs["e1/seed=1"])
        .unwrap()
        .unwrap()
        .outputs["weights.bin"]
        .clone();
    let on_remote = root.join(layout::object(&victim.sha256));
    let good = std::fs::read(&on_remote).unwrap();

    type Damage = fn(&Path, &[u8]);
    let damages: [(&str, Damage); 2] = [
        ("flipped", |f, good| {
            std::fs::write(f, good).unwrap();
            flip_byte(f, 100);
        }),
        ("truncated", |f, good| {
            std::fs::write(f, &good[..good.len() - 1]).unwrap()
        }),
    ];
    for (what, damage) in damages {
        damage(&on_remote, &good);
        let b = Store::open(&dir.path().join(format!("b-{what}"))).unwrap();
        let e = format!("{:#}", pull(&b, &remote).unwrap_err());
        assert!(
            e.contains(&victim.sha256) && e.contains("refused"),
            "{what}: {e}"
        );
        assert!(
            !b.object_path(&victim.sha256).exists(),
            "{what}: the bad object entered"
        );
        assert_eq!(b.record_count(), 0, "{what}: a record was written");
        assert!(b.publication("smoke").unwrap().is_none(), "{what}");
        assert!(tmp_files(&b).is_empty(), "{what}: {:?}", tmp_files(&b));
        // The intact objects arrived and stay: once the remote is repaired, a rerun fetches
        // only the one that was refused.
        std::fs::write(&on_remote, &good).unwrap();
        let (_, s) = pull(&b, &remote).unwrap();
        assert_eq!(
            (s.objects, s.objects_present, s.records),
            (1, 6, 3),
            "{what}: {s:?}"
        );
        assert_same(&a, &b, &p);
    }
}

#[test]
fn records_that_do_not_hash_to_their_names_and_absent_profiles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, p) = store_with_runs(&dir.path().join("a"), 2, 64);
    let root = dir.path().join("remote");
    let remote = folder(&root);
    let b = Store::open(&dir.path().join("b")).unwrap();
    let e = format!("{:#}", pull(&b, &remote).unwrap_err());
    assert!(e.contains("does not exist"), "{e}");
    transfer::push(&a, &remote, &p, &quiet).unwrap();
    let e = format!(
        "{:#}",
        transfer::pull(&b, &remote, "paper", None, &quiet).unwrap_err()
    );
    assert!(
        e.contains("no published profile paper") && e.contains("it has smoke"),
        "{e}"
    );
    // A record whose parameters were changed no longer hashes to its name.
    let key = &p.runs["e1/seed=0"];
    let file = root.join(layout::record(key));
    let mut r: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    r["manifest"]["params"]["seed"] = 5.into();
    std::fs::write(&file, serde_json::to_vec(&r).unwrap()).unwrap();
    let e = format!("{:#}", pull(&b, &remote).unwrap_err());
    assert!(e.contains(key.as_str()) && e.contains("hashes to"), "{e}");
    assert_eq!(b.record_count(), 0);
    assert!(b.publication("smoke").unwrap().is_none());
}

#[test]
fn a_damaged_object_is_never_pushed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, p) = store_with_runs(&dir.path().join("a"), 2, 512);
    let o = a
        .read_record(&p.runs["e1/seed=1"])
        .unwrap()
        .unwrap()
        .outputs["weights.bin"]
        .clone();
    flip_byte(&a.object_path(&o.sha256), 3);
    let root = dir.path().join("remote");
    let e = format!(
        "{:#}",
        transfer::push(&a, &folder(&root), &p, &quiet).unwrap_err()
    );
    for part in [
        "refusing to push",
        "e1/seed=1",
        "weights.bin",
        &o.sha256,
        "corrupt",
    ] {
        assert!(e.contains(part), "{part:?} missing from: {e}");
    }
    assert!(!root.join(layout::publication("smoke")).exists());
}

#[test]
fn a_large_object_goes_in_parts_and_comes_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let size = repro_share::remote::MULTIPART_ABOVE as usize + 12_345;
    let (a, p) = store_with_runs(&dir.path().join("a"), 1, size);
    let remote = folder(&dir.path().join("remote"));
    let s = transfer::push(&a, &remote, &p, &quiet).unwrap();
    assert!(s.bytes > size as u64, "{s:?}");
    let b = Store::open(&dir.path().join("b")).unwrap();
    pull(&b, &remote).unwrap();
    assert_same(&a, &b, &p);
}

/// A child process killed and reaped when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Python's `http.server` over `dir`, once it accepts connections.
fn http_server(dir: &Path) -> (Server, String) {
    let port = free_port();
    let child = Command::new(repro_testkit::python())
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .arg("--directory")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start python -m http.server");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "http.server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, format!("http://127.0.0.1:{port}"))
}

#[test]
fn an_http_remote_is_pulled_from_and_refuses_a_push() {
    let dir = tempfile::tempdir().unwrap();
    let (a, p) = store_with_runs(&dir.path().join("a"), 3, 2048);
    let root = dir.path().join("served");
    transfer::push(&a, &folder(&root), &p, &quiet).unwrap();
    let (_server, url) = http_server(&root);
    let remote = open(&url, None, &BTreeMap::new());
    let b = Store::open(&dir.path().join("b")).unwrap();
    let (_, s) = pull(&b, &remote).unwrap();
    assert_eq!((s.records, s.objects), (3, 7), "{s:?}");
    assert_same(&a, &b, &p);
    let e = format!(
        "{:#}",
        transfer::pull(&b, &remote, "paper", None, &quiet).unwrap_err()
    );
    assert!(e.contains("no published profile paper"), "{e}");
    let e = format!("{:#}", transfer::push(&a, &remote, &p, &quiet).unwrap_err());
    assert!(
        e.contains("read-only") && e.contains("file://") && e.contains("s3://"),
        "{e}"
    );
}

/// moto's S3 server, with one user's credentials enforced (scripts/s3_test_server.py); `None`
/// when moto is not installed (a skip on a developer's machine, a failure under CI).
fn s3_server() -> Option<(Server, serde_json::Value)> {
    // Older moto (5.2.1) mis-checks the signature of list requests whose prefix is escaped.
    let check = "import moto.server, boto3; from importlib.metadata import version; \
                 assert tuple(map(int, version('moto').split('.')[:3])) >= (5, 2, 6)";
    let has_moto = Command::new(repro_testkit::python())
        .args(["-c", check])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_moto {
        repro_testkit::missing(
            "moto[server] 5.2.6 or later (the local S3 server of the S3 tests)",
            "scripts/setup.sh installs moto[server]==5.2.6 into the venv",
        );
        return None;
    }
    let script = repro_testkit::workspace_root().join("scripts/s3_test_server.py");
    let mut child = Command::new(repro_testkit::python())
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the S3 test server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server(child);
    let info: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("{} printed {line:?}: {e}", script.display()));
    Some((server, info))
}

fn s3_env(info: &serde_json::Value, secret: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "AWS_ACCESS_KEY_ID".into(),
            info["access_key_id"].as_str().unwrap().into(),
        ),
        ("AWS_SECRET_ACCESS_KEY".into(), secret.into()),
        ("AWS_REGION".into(), info["region"].as_str().unwrap().into()),
        // No ~/.aws of the developer's.
        ("HOME".into(), "/nonexistent".into()),
    ])
}

#[test]
fn s3_push_pull_and_a_wrong_secret_is_refused_in_words() {
    let Some((_server, info)) = s3_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (a, p) = store_with_runs(&dir.path().join("a"), 3, 3000);
    let url = format!("s3://{}/team/bjorck", info["bucket"].as_str().unwrap());
    let endpoint = info["endpoint"].as_str().unwrap();
    let secret = info["secret_access_key"].as_str().unwrap();
    let remote = open(&url, Some(endpoint), &s3_env(&info, secret));
    let s = transfer::push(&a, &remote, &p, &quiet).unwrap();
    assert_eq!((s.records, s.objects), (3, 7), "{s:?}");
    let s = transfer::push(&a, &remote, &p, &quiet).unwrap();
    assert_eq!((s.objects, s.objects_present), (0, 7), "{s:?}");
    let b = Store::open(&dir.path().join("b")).unwrap();
    let (_, s) = pull(&b, &remote).unwrap();
    assert_eq!((s.records, s.objects), (3, 7), "{s:?}");
    assert_same(&a, &b, &p);

    let wrong = open(&url, Some(endpoint), &s3_env(&info, "not-the-secret"));
    let c = Store::open(&dir.path().join("c")).unwrap();
    for e in [
        format!("{:#}", pull(&c, &wrong).unwrap_err()),
        format!("{:#}", transfer::push(&a, &wrong, &p, &quiet).unwrap_err()),
    ] {
        let id = info["access_key_id"].as_str().unwrap();
        for part in [
            "refused the credentials",
            &url,
            "AWS_SECRET_ACCESS_KEY",
            &id[id.len() - 4..],
        ] {
            assert!(e.contains(part), "{part:?} missing from: {e}");
        }
        assert!(!e.contains("not-the-secret"), "the secret was printed: {e}");
    }
    assert_eq!(c.record_count(), 0);
}
