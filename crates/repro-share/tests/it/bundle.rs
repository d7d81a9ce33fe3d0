//! Bundles: a round trip into a fresh store, deterministic bytes, objects already present, a
//! damaged object refused on export, and hostile bundles (built here with the `tar` crate)
//! refused on import with the member named and the target store left as it was.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use repro_core::pipeline::lockfile::{LockedProfile, LockedRun};
use repro_core::store::Store;
use repro_core::store::published::{Publication, layout};
use repro_share::bundle::{self, MANIFEST};
use sha2::{Digest, Sha256};

use crate::common::store_with_runs;

/// Every file under `root`, relative, with its bytes.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// A source store of 3 runs, their publication with a lock entry, exported to
/// `dir/bundle.tar`.
fn exported(dir: &Path) -> (Store, Publication, PathBuf) {
    let (store, mut p) = store_with_runs(&dir.join("src"), 3, 4096);
    let runs = p
        .runs
        .iter()
        .map(|(id, key)| {
            let r = store.read_record(key).unwrap().unwrap();
            let locked = LockedRun {
                key: key.clone(),
                outputs: r.output_digests(),
            };
            (id.clone(), locked)
        })
        .collect();
    p.lock = Some(LockedProfile {
        generated: BTreeMap::new(),
        runs,
    });
    let file = dir.join("bundle.tar");
    bundle::export(&store, &p, &file).unwrap();
    (store, p, file)
}

fn record_json(store: &Store, key: &str) -> serde_json::Value {
    serde_json::to_value(store.read_record(key).unwrap().unwrap()).unwrap()
}

#[test]
fn a_bundle_round_trips_into_a_fresh_store() {
    let dir = tempfile::tempdir().unwrap();
    let (src, p, file) = exported(dir.path());
    let dst = Store::open(&dir.path().join("dst")).unwrap();
    let (got, stats) = bundle::import(&dst, &file).unwrap();
    assert_eq!(got, p);
    // 3 records, 2 outputs each and the pipeline object.
    assert_eq!(stats.records, 3, "{stats:?}");
    assert_eq!(stats.objects, 7, "{stats:?}");
    assert_eq!(stats.objects_present, 0, "{stats:?}");
    for (id, key) in &p.runs {
        assert_eq!(record_json(&dst, key), record_json(&src, key), "{id}");
        for o in src.read_record(key).unwrap().unwrap().outputs.values() {
            assert_eq!(
                std::fs::read(dst.object_path(&o.sha256)).unwrap(),
                std::fs::read(src.object_path(&o.sha256)).unwrap()
            );
            assert!(dst.check_object(o).is_intact());
        }
        assert_eq!(dst.get_ref("smoke", id).as_deref(), Some(key.as_str()));
    }
    assert!(dst.check_object(&p.pipeline).is_intact());
    assert_eq!(dst.publication("smoke").unwrap(), Some(p.clone()));
    let bytes: u64 = p.pipeline.size
        + p.runs
            .values()
            .flat_map(|k| src.read_record(k).unwrap().unwrap().outputs.into_values())
            .map(|o| o.size)
            .sum::<u64>();
    assert_eq!(stats.bytes, bytes, "{stats:?}");

    // Again: every object is already there, nothing is written twice.
    let (_, again) = bundle::import(&dst, &file).unwrap();
    assert_eq!(again.objects, 0, "{again:?}");
    assert_eq!(again.objects_present, 7, "{again:?}");
    assert_eq!(again.bytes_present, bytes, "{again:?}");
    assert_eq!(again.records, 0, "{again:?}");
}

#[test]
fn the_same_publication_exports_to_the_same_bytes_in_the_bundle_order() {
    let dir = tempfile::tempdir().unwrap();
    let (src, p, file) = exported(dir.path());
    let second = dir.path().join("second.tar");
    let stats = bundle::export(&src, &p, &second).unwrap();
    assert_eq!((stats.records, stats.objects), (3, 7), "{stats:?}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(&second).unwrap()
    );
    // No temp file left beside them.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");

    let m = members(&file);
    let paths: Vec<&str> = m.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(
        paths[..3],
        [MANIFEST, "pipeline.yaml", "pipeline.lock.yaml"]
    );
    assert!(
        paths[3..6].iter().all(|p| p.starts_with("runs/")),
        "{paths:?}"
    );
    assert!(
        paths[6..].iter().all(|p| p.starts_with("objects/sha256/")),
        "{paths:?}"
    );
    assert_eq!(paths.len(), 3 + 3 + 7);
    for part in [&paths[3..6], &paths[6..]] {
        assert!(part.is_sorted(), "{part:?}");
    }
    for m in &m {
        assert_eq!(
            (m.mode, m.mtime, m.uid, m.gid),
            (0o644, 0, 0, 0),
            "{}",
            m.path
        );
    }
    // The manifest lists what the bundle holds, readable without a store.
    let manifest = bundle::read_manifest(&file).unwrap();
    assert_eq!(manifest.publication, p);
    assert_eq!(manifest.records.len(), 3);
    assert_eq!(manifest.objects.len(), 7);
    assert_eq!(
        manifest.objects.get(&p.pipeline.sha256),
        Some(&p.pipeline.size)
    );
}

#[test]
fn a_damaged_object_is_not_exported() {
    let dir = tempfile::tempdir().unwrap();
    let (store, p) = store_with_runs(&dir.path().join("src"), 2, 1024);
    let key = &p.runs["e1/seed=1"];
    let o = store.read_record(key).unwrap().unwrap().outputs["weights.bin"].clone();
    let path = store.object_path(&o.sha256);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let file = dir.path().join("out.tar");
    let e = format!("{:#}", bundle::export(&store, &p, &file).unwrap_err());
    assert!(
        e.contains("run e1/seed=1")
            && e.contains("weights.bin")
            && e.contains(&o.sha256)
            && e.contains("corrupt"),
        "{e}"
    );
    assert!(!file.exists());
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "a temp file was left: {left:?}");
}

// ---------------------------------------------------------------------------------------------
// Hostile bundles

/// A tar member, as the hostile bundles are built from.
#[derive(Clone)]
struct Raw {
    path: String,
    kind: tar::EntryType,
    data: Vec<u8>,
    link: Option<String>,
    mode: u32,
    mtime: u64,
    uid: u64,
    gid: u64,
}

impl Raw {
    fn file(path: &str, data: &[u8]) -> Raw {
        Raw {
            path: path.into(),
            kind: tar::EntryType::Regular,
            data: data.to_vec(),
            link: None,
            mode: 0o644,
            mtime: 0,
            uid: 0,
            gid: 0,
        }
    }
}

fn members(file: &Path) -> Vec<Raw> {
    let mut archive = tar::Archive::new(std::fs::File::open(file).unwrap());
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        let h = e.header();
        out.push(Raw {
            path: String::from_utf8(e.path_bytes().into_owned()).unwrap(),
            kind: h.entry_type(),
            data,
            link: None,
            mode: h.mode().unwrap(),
            mtime: h.mtime().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
        });
    }
    out
}

/// Write members with their paths as given (the tar crate's `set_path` refuses `..` and
/// absolute paths, which is the point of these bundles).
fn build(file: &Path, members: &[Raw]) {
    let mut b = tar::Builder::new(std::fs::File::create(file).unwrap());
    for m in members {
        let mut h = tar::Header::new_gnu();
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..m.path.len()].copy_from_slice(m.path.as_bytes());
        if let Some(link) = &m.link {
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(m.kind);
        h.set_size(m.data.len() as u64);
        h.set_mode(m.mode);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, m.data.as_slice()).unwrap();
    }
    b.finish().unwrap();
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Set the manifest's listing of a record to `data`'s digest and size.
fn relist_record(members: &mut [Raw], key: &str, data: &[u8]) {
    let mut m: serde_json::Value = serde_json::from_slice(&members[0].data).unwrap();
    m["records"][key] = serde_json::json!({"sha256": sha256(data), "size": data.len()});
    members[0].data = serde_json::to_vec_pretty(&m).unwrap();
}

/// Import the bundle `members` into a fresh store: it must fail with every word of `expect` in
/// the error, and leave the store's files exactly as they were.
fn refused(dir: &Path, name: &str, members: &[Raw], expect: &[&str]) {
    let file = dir.join(format!("{name}.tar"));
    build(&file, members);
    let store = Store::open(&dir.join(format!("{name}-store"))).unwrap();
    drop(store.lock_shared().unwrap()); // the lock file exists before the snapshot
    let before = files(store.root());
    let e = format!("{:#}", bundle::import(&store, &file).unwrap_err());
    for word in expect {
        assert!(e.contains(word), "{name}: {word:?} is not in: {e}");
    }
    assert!(e.contains(&file.display().to_string()), "{name}: {e}");
    assert_eq!(files(store.root()), before, "{name}: the store changed");
}

#[test]
fn hostile_bundles_are_refused_naming_the_member_and_the_store_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (src, p, file) = exported(dir.path());
    let good = members(&file);
    let d = dir.path();
    // The bundle rebuilt unchanged imports: the builder below writes valid bundles.
    {
        let f = d.join("rebuilt.tar");
        build(&f, &good);
        let s = Store::open(&d.join("rebuilt-store")).unwrap();
        bundle::import(&s, &f).unwrap();
    }
    let object_at = |i: usize| {
        good.iter()
            .rposition(|m| m.path.starts_with("objects/"))
            .unwrap()
            - i
    };

    let mut m = good.clone();
    m.insert(3, Raw::file("../evil", b"x"));
    refused(d, "dotdot", &m, &["../evil", "`..`"]);

    let mut m = good.clone();
    m.push(Raw::file("/tmp/evil", b"x"));
    refused(d, "absolute", &m, &["/tmp/evil", "absolute"]);

    let mut m = good.clone();
    let last = object_at(0);
    m[last].kind = tar::EntryType::Symlink;
    m[last].data.clear();
    m[last].link = Some("/etc/passwd".into());
    let link = m[last].path.clone();
    refused(d, "symlink", &m, &[&link, "symbolic link"]);

    let mut m = good.clone();
    m.push(Raw {
        kind: tar::EntryType::Directory,
        ..Raw::file("etc/", b"")
    });
    refused(d, "directory", &m, &["etc/", "a directory outside"]);
    // The layout's own folders, as another tar lists them, are not members: allowed.
    let mut m = good.clone();
    for dir in ["runs/", "objects/", "objects/sha256/", "objects/sha256/ab/"] {
        m.insert(
            1,
            Raw {
                kind: tar::EntryType::Directory,
                ..Raw::file(dir, b"")
            },
        );
    }
    let f = d.join("folders.tar");
    build(&f, &m);
    bundle::import(&Store::open(&d.join("folders-store")).unwrap(), &f).unwrap();

    // An object whose bytes are not those its name says (the last, so others were staged).
    let mut m = good.clone();
    let last = object_at(0);
    m[last].data[0] ^= 0xff;
    let expected = m[last].path.replace("objects/sha256/", "").replace('/', "");
    let found = sha256(&m[last].data);
    let path = m[last].path.clone();
    refused(d, "bytes", &m, &[&path, &expected, &found]);

    // A record whose manifest does not hash to its key (listed with its new digest).
    let mut m = good.clone();
    let key = p.runs.values().nth(1).unwrap();
    let at = m
        .iter()
        .position(|m| m.path == layout::record(key))
        .unwrap();
    let mut r = src.read_record(key).unwrap().unwrap();
    r.manifest
        .params
        .insert("seed".into(), serde_json::json!(99));
    m[at].data = serde_json::to_vec_pretty(&r).unwrap();
    let data = m[at].data.clone();
    relist_record(&mut m, key, &data);
    refused(
        d,
        "record-key",
        &m,
        &[&layout::record(key), "hashes to key"],
    );

    // A record changed without relisting it: its digest does not match.
    let mut m = good.clone();
    let at = m
        .iter()
        .position(|m| m.path == layout::record(key))
        .unwrap();
    let n = m[at].data.len();
    m[at].data[n - 2] = b' ';
    refused(
        d,
        "record-bytes",
        &m,
        &[&layout::record(key), "hash to sha256"],
    );

    // A listed object absent from the tar.
    let mut m = good.clone();
    let gone = m.remove(object_at(2));
    refused(d, "absent", &m, &[&gone.path, "does not hold"]);

    // Members the manifest does not list.
    let mut m = good.clone();
    let stray = "f".repeat(64);
    m.push(Raw::file(&layout::object(&stray), b"stray"));
    refused(
        d,
        "unlisted-object",
        &m,
        &[&layout::object(&stray), "does not list"],
    );
    let mut m = good.clone();
    m.push(Raw::file("notes.txt", b"hello"));
    refused(d, "unlisted-file", &m, &["notes.txt", "not a bundle path"]);

    // The same member twice.
    let mut m = good.clone();
    let again = m[object_at(0)].clone();
    m.push(again.clone());
    refused(d, "duplicate", &m, &[&again.path, "second member"]);

    // A member larger than listed.
    let mut m = good.clone();
    let last = object_at(0);
    m[last].data.push(0);
    let path = m[last].path.clone();
    refused(d, "larger", &m, &[&path, "bytes, but the manifest lists"]);

    // The manifest not first, or not there.
    let mut m = good.clone();
    m.swap(0, 1);
    refused(d, "manifest-second", &m, &["first member", MANIFEST]);
    refused(d, "no-manifest", &good[1..], &["first member", MANIFEST]);
    refused(d, "empty", &[], &[MANIFEST]);
    let mut m = good.clone();
    m[0].data = b"{\"bundle\": 1".to_vec();
    refused(
        d,
        "bad-manifest",
        &m,
        &[MANIFEST, "not a repro bundle manifest"],
    );

    // Not a tar at all.
    let f = d.join("garbage.tar");
    std::fs::write(&f, vec![0x5a; 3000]).unwrap();
    let s = Store::open(&d.join("garbage-store")).unwrap();
    let e = format!("{:#}", bundle::import(&s, &f).unwrap_err());
    assert!(e.contains("garbage.tar"), "{e}");
}
