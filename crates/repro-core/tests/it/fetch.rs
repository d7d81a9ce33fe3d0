//! Fetching and extraction against a loopback HTTP server and archives built in the test.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use md5::Md5;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use repro_core::data::extract::{ExtractLimits, ExtractReport, MARKER, extract, kind_from_name};
use repro_core::data::fetch::{FetchOptions, Mirror, check_file, fetch_file};
use repro_core::data::{ArchiveKind, DatasetFile};

// ---------------------------------------------------------------- helpers

/// Deterministic, poorly compressible bytes.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

fn pinned(name: &str, bytes: &[u8], urls: Vec<String>) -> DatasetFile {
    DatasetFile {
        name: name.to_string(),
        urls,
        md5: Some(md5_hex(bytes)),
        sha256: Some(sha256_hex(bytes)),
        size: Some(bytes.len() as u64),
    }
}

fn opts(tmp: &TempDir) -> FetchOptions {
    FetchOptions::new(tmp.path().join("quarantine"))
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

enum Route {
    File(Vec<u8>),
    /// Announces the full length, sends half, closes.
    Truncated(Vec<u8>),
}

/// A loopback HTTP/1.1 server: one request per connection, unknown paths get 404.
struct Server {
    base: String,
    hits: Arc<AtomicUsize>,
}

impl Server {
    fn start(routes: Vec<(&str, Route)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: HashMap<String, Route> = routes
            .into_iter()
            .map(|(p, r)| (p.to_string(), r))
            .collect();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        thread::spawn(move || {
            for stream in listener.incoming().take(32) {
                let Ok(stream) = stream else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = serve(stream, &routes);
            }
        });
        Server { base, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn serve(stream: TcpStream, routes: &HashMap<String, Route>) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut out = stream;
    match routes.get(&path) {
        Some(Route::File(b)) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                b.len()
            )?;
            out.write_all(b)?;
        }
        Some(Route::Truncated(b)) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                b.len()
            )?;
            out.write_all(&b[..b.len() / 2])?;
        }
        None => {
            out.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
            )?;
        }
    }
    out.flush()
}

/// A loopback URL nothing listens on.
fn refused_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/nothing.bin")
}

// ---------------------------------------------------------------- fetch

#[test]
fn fetches_from_upstream_and_verifies() {
    let data = payload(300_000, 1);
    let srv = Server::start(vec![("/d/data.bin", Route::File(data.clone()))]);
    let tmp = TempDir::new().unwrap();
    let dest = tmp.path().join("datasets/x");
    let file = pinned("data.bin", &data, vec![srv.url("/d/data.bin")]);

    let got = fetch_file(&file, &dest, &opts(&tmp)).unwrap();
    assert_eq!(got.path, dest.join("data.bin"));
    assert_eq!(fs::read(&got.path).unwrap(), data);
    assert_eq!(got.sha256, sha256_hex(&data));
    assert_eq!(got.md5, md5_hex(&data));
    assert_eq!(got.size, data.len() as u64);
    assert_eq!(got.source, srv.url("/d/data.bin"));
    assert_eq!(names(&dest), vec!["data.bin"], "temp files left behind");
    assert_eq!(srv.hits(), 1);
    assert_eq!(check_file(&file, &got.path).unwrap().sha256, got.sha256);
}

#[test]
fn falls_back_past_404_and_prefers_mirror_folder() {
    let data = payload(10_000, 2);
    let srv = Server::start(vec![("/good/f.bin", Route::File(data.clone()))]);
    let tmp = TempDir::new().unwrap();
    let file = pinned(
        "f.bin",
        &data,
        vec![srv.url("/missing/f.bin"), srv.url("/good/f.bin")],
    );

    let dest = tmp.path().join("a");
    let got = fetch_file(&file, &dest, &opts(&tmp)).unwrap();
    assert_eq!(got.source, srv.url("/good/f.bin"));
    assert_eq!(fs::read(dest.join("f.bin")).unwrap(), data);
    assert_eq!(srv.hits(), 2);

    // A mirror folder comes first: no HTTP request at all.
    let mirror = tmp.path().join("mirror");
    fs::create_dir_all(&mirror).unwrap();
    fs::write(mirror.join("f.bin"), &data).unwrap();
    let mut o = opts(&tmp);
    o.mirrors = vec![Mirror::parse(mirror.to_str().unwrap())];
    let dest = tmp.path().join("b");
    let got = fetch_file(&file, &dest, &o).unwrap();
    assert_eq!(got.source, mirror.join("f.bin").display().to_string());
    assert_eq!(fs::read(dest.join("f.bin")).unwrap(), data);
    assert_eq!(srv.hits(), 2, "mirror used, upstream must not be asked");

    // A base-URL mirror, with a trailing slash, is also tried before upstream.
    let mut o = opts(&tmp);
    o.mirrors = vec![
        Mirror::parse(&tmp.path().join("empty-mirror").display().to_string()),
        Mirror::parse(&format!("{}/good/", srv.base)),
    ];
    let got = fetch_file(&file, &tmp.path().join("c"), &o).unwrap();
    assert_eq!(got.source, srv.url("/good/f.bin"));
    assert_eq!(srv.hits(), 3);
}

#[test]
fn all_sources_failing_lists_each() {
    let data = payload(1000, 3);
    let srv = Server::start(vec![]);
    let tmp = TempDir::new().unwrap();
    let refused = refused_url();
    let file = pinned(
        "f.bin",
        &data,
        vec![
            srv.url("/f.bin"),
            refused.clone(),
            "ftp://example.invalid/f.bin".into(),
        ],
    );
    let mut o = opts(&tmp);
    o.mirrors = vec![Mirror::Dir(tmp.path().join("no-such-mirror"))];
    let err = format!(
        "{:#}",
        fetch_file(&file, &tmp.path().join("d"), &o).unwrap_err()
    );
    assert!(err.contains("all 4 sources failed"), "{err}");
    assert!(err.contains("no-such-mirror"), "{err}");
    assert!(
        err.contains(&srv.url("/f.bin")) && err.contains("404"),
        "{err}"
    );
    assert!(err.contains(&refused), "{err}");
    assert!(err.contains("unsupported URL scheme"), "{err}");
    assert!(!tmp.path().join("d/f.bin").exists());
    assert!(names(&tmp.path().join("d")).is_empty());
}

#[test]
fn digest_mismatch_is_quarantined_and_next_source_used() {
    let good = payload(5000, 4);
    let bad = payload(5000, 5);
    let srv = Server::start(vec![
        ("/bad/f.bin", Route::File(bad.clone())),
        ("/good/f.bin", Route::File(good.clone())),
    ]);
    let tmp = TempDir::new().unwrap();
    let dest = tmp.path().join("d");
    let quarantine = tmp.path().join("quarantine");

    // Only the bad source: error names both digests and the source; nothing at dest.
    let mut file = pinned("f.bin", &good, vec![srv.url("/bad/f.bin")]);
    file.sha256 = file.sha256.map(|s| s.to_uppercase());
    let err = format!("{:#}", fetch_file(&file, &dest, &opts(&tmp)).unwrap_err());
    assert!(err.contains(&sha256_hex(&good).to_uppercase()), "{err}");
    assert!(err.contains(&sha256_hex(&bad)), "{err}");
    assert!(err.contains(&srv.url("/bad/f.bin")), "{err}");
    assert!(!dest.join("f.bin").exists());
    assert!(names(&dest).is_empty(), "temp left: {:?}", names(&dest));
    let rejected = format!("f.bin.{}.rejected", &sha256_hex(&bad)[..12]);
    assert_eq!(names(&quarantine), vec![rejected.clone()]);
    assert_eq!(fs::read(quarantine.join(&rejected)).unwrap(), bad);

    // With a good source after it, the good one wins (uppercase pinned hex still matches).
    file.urls.push(srv.url("/good/f.bin"));
    let got = fetch_file(&file, &dest, &opts(&tmp)).unwrap();
    assert_eq!(got.source, srv.url("/good/f.bin"));
    assert_eq!(fs::read(dest.join("f.bin")).unwrap(), good);

    // md5 only pinned, mismatching: same treatment.
    let file = DatasetFile {
        name: "g.bin".into(),
        urls: vec![srv.url("/bad/f.bin")],
        md5: Some(md5_hex(&good)),
        sha256: None,
        size: None,
    };
    let err = format!("{:#}", fetch_file(&file, &dest, &opts(&tmp)).unwrap_err());
    assert!(
        err.contains("md5") && err.contains(&md5_hex(&good)) && err.contains(&md5_hex(&bad)),
        "{err}"
    );
    assert!(!dest.join("g.bin").exists());
}

#[test]
fn truncated_download_is_rejected() {
    let data = payload(40_000, 6);
    let srv = Server::start(vec![
        ("/cut/f.bin", Route::Truncated(data.clone())),
        ("/ok/f.bin", Route::File(data.clone())),
    ]);
    let tmp = TempDir::new().unwrap();
    let dest = tmp.path().join("d");

    let file = pinned("f.bin", &data, vec![srv.url("/cut/f.bin")]);
    let err = format!("{:#}", fetch_file(&file, &dest, &opts(&tmp)).unwrap_err());
    assert!(err.contains("truncated: got 20000 of 40000 bytes"), "{err}");
    assert!(names(&dest).is_empty(), "partial left: {:?}", names(&dest));
    assert!(names(&tmp.path().join("quarantine")).is_empty());

    // Even with nothing pinned, Content-Length catches it.
    let unpinned = DatasetFile {
        name: "f.bin".into(),
        urls: vec![srv.url("/cut/f.bin")],
        md5: None,
        sha256: None,
        size: None,
    };
    let err = format!(
        "{:#}",
        fetch_file(&unpinned, &dest, &opts(&tmp)).unwrap_err()
    );
    assert!(err.contains("truncated"), "{err}");
    assert!(names(&dest).is_empty());

    let file = pinned(
        "f.bin",
        &data,
        vec![srv.url("/cut/f.bin"), srv.url("/ok/f.bin")],
    );
    let got = fetch_file(&file, &dest, &opts(&tmp)).unwrap();
    assert_eq!(got.source, srv.url("/ok/f.bin"));
    assert_eq!(fs::read(dest.join("f.bin")).unwrap(), data);
}

#[test]
fn file_urls_and_dir_mirrors() {
    let data = payload(2048, 7);
    let tmp = TempDir::new().unwrap();
    let src_dir = tmp.path().join("my mirror");
    fs::create_dir_all(&src_dir).unwrap();
    fs::write(src_dir.join("f.bin"), &data).unwrap();
    let file_url = format!(
        "file://{}/f.bin",
        src_dir.display().to_string().replace(' ', "%20")
    );

    let file = pinned("f.bin", &data, vec![file_url.clone()]);
    let got = fetch_file(&file, &tmp.path().join("a"), &opts(&tmp)).unwrap();
    assert_eq!(got.source, src_dir.join("f.bin").display().to_string());
    assert_eq!(fs::read(&got.path).unwrap(), data);
    assert!(
        src_dir.join("f.bin").exists(),
        "a mirror's file is copied, not moved"
    );

    let mirror_url = format!(
        "file://{}",
        src_dir.display().to_string().replace(' ', "%20")
    );
    assert_eq!(Mirror::parse(&mirror_url), Mirror::Dir(src_dir.clone()));
    let mut o = opts(&tmp);
    o.mirrors = vec![Mirror::parse(&mirror_url)];
    let no_urls = pinned("f.bin", &data, vec![]);
    let got = fetch_file(&no_urls, &tmp.path().join("b"), &o).unwrap();
    assert_eq!(fs::read(&got.path).unwrap(), data);

    // A file:// URL inside a BaseUrl mirror is read from disk too.
    let mut o = opts(&tmp);
    o.mirrors = vec![Mirror::BaseUrl(format!("{mirror_url}/"))];
    let got = fetch_file(&no_urls, &tmp.path().join("c"), &o).unwrap();
    assert_eq!(fs::read(&got.path).unwrap(), data);

    // Nothing pinned: accepted, digests returned for the caller to record.
    let unpinned = DatasetFile {
        name: "f.bin".into(),
        urls: vec![file_url],
        md5: None,
        sha256: None,
        size: None,
    };
    let got = fetch_file(&unpinned, &tmp.path().join("d"), &opts(&tmp)).unwrap();
    assert_eq!(got.sha256, sha256_hex(&data));
    assert_eq!(got.md5, md5_hex(&data));
}

#[test]
fn present_valid_file_needs_no_request_and_bad_one_is_replaced() {
    let data = payload(4096, 8);
    let srv = Server::start(vec![("/f.bin", Route::File(data.clone()))]);
    let tmp = TempDir::new().unwrap();
    let dest = tmp.path().join("d");
    fs::create_dir_all(&dest).unwrap();
    fs::write(dest.join("f.bin"), &data).unwrap();
    let file = pinned("f.bin", &data, vec![srv.url("/f.bin")]);

    let got = fetch_file(&file, &dest, &opts(&tmp)).unwrap();
    assert_eq!(got.source, "existing");
    assert_eq!(got.sha256, sha256_hex(&data));
    assert_eq!(srv.hits(), 0);

    // Same size, wrong bytes: quarantined and fetched again.
    let wrong = payload(4096, 9);
    fs::write(dest.join("f.bin"), &wrong).unwrap();
    let mismatch = check_file(&file, &dest.join("f.bin")).unwrap_err();
    assert_eq!(mismatch.what, "sha256");
    assert!(mismatch.to_string().contains(&sha256_hex(&wrong)));
    let got = fetch_file(&file, &dest, &opts(&tmp)).unwrap();
    assert_eq!(got.source, srv.url("/f.bin"));
    assert_eq!(fs::read(dest.join("f.bin")).unwrap(), data);
    assert_eq!(srv.hits(), 1);
    assert_eq!(
        names(&tmp.path().join("quarantine")),
        vec![format!("f.bin.{}.rejected", &sha256_hex(&wrong)[..12])]
    );
}

#[test]
fn max_bytes_and_bad_names_are_refused() {
    let data = payload(10_000, 10);
    let srv = Server::start(vec![("/f.bin", Route::File(data.clone()))]);
    let tmp = TempDir::new().unwrap();
    let mut o = opts(&tmp);
    o.max_bytes = Some(1000);
    let file = pinned("f.bin", &data, vec![srv.url("/f.bin")]);
    let err = format!(
        "{:#}",
        fetch_file(&file, &tmp.path().join("d"), &o).unwrap_err()
    );
    assert!(err.contains("limit of 1000"), "{err}");
    assert!(names(&tmp.path().join("d")).is_empty());

    let evil = pinned("../escape.bin", &data, vec![srv.url("/f.bin")]);
    assert!(fetch_file(&evil, &tmp.path().join("d"), &opts(&tmp)).is_err());
    assert!(!tmp.path().join("escape.bin").exists());
}

// ---------------------------------------------------------------- extract

fn tar_gz(path: &Path, build: impl FnOnce(&mut tar::Builder<flate2::write::GzEncoder<fs::File>>)) {
    let f = fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    build(&mut b);
    b.into_inner().unwrap().finish().unwrap();
}

fn append_file<W: Write>(b: &mut tar::Builder<W>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data).unwrap();
}

/// tar's builder refuses `..` and absolute names, so write the raw name bytes.
fn append_raw_name<W: Write>(b: &mut tar::Builder<W>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn zip_file(path: &Path, entries: &[(&str, &[u8])]) {
    let f = fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let o = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        if name.ends_with('/') {
            z.add_directory(*name, o).unwrap();
        } else {
            z.start_file(*name, o).unwrap();
            z.write_all(data).unwrap();
        }
    }
    z.finish().unwrap();
}

/// Extraction must have left nothing in `out` (no dest, no temp folder).
fn assert_refused(archive: &Path, kind: ArchiveKind, limits: &ExtractLimits, why: &str) {
    let out = archive.parent().unwrap().join(format!(
        "out-{}",
        archive.file_name().unwrap().to_string_lossy()
    ));
    let dest = out.join("tree");
    let err = format!("{:#}", extract(archive, kind, &dest, limits).unwrap_err());
    assert!(err.contains(why), "expected {why:?} in: {err}");
    assert!(names(&out).is_empty(), "left behind: {:?}", names(&out));
}

#[test]
fn extracts_normal_tar_gz_and_zip() {
    let tmp = TempDir::new().unwrap();
    let a = payload(3000, 11);
    let b = payload(500, 12);

    let tgz = tmp.path().join("ok.tar.gz");
    assert_eq!(kind_from_name("ok.tar.gz"), ArchiveKind::TarGz);
    tar_gz(&tgz, |t| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        t.append_data(&mut h, "data/", io::empty()).unwrap();
        append_file(t, "data/a.bin", &a);
        append_file(t, "data/sub/b.bin", &b);
    });
    let dest = tmp.path().join("out/tgz");
    let report = extract(&tgz, ArchiveKind::TarGz, &dest, &ExtractLimits::default()).unwrap();
    assert_eq!(
        report,
        ExtractReport {
            files: 2,
            bytes: 3500
        }
    );
    assert_eq!(fs::read(dest.join("data/a.bin")).unwrap(), a);
    assert_eq!(fs::read(dest.join("data/sub/b.bin")).unwrap(), b);
    let marker = fs::read_to_string(dest.join(MARKER)).unwrap();
    assert_eq!(marker.trim(), sha256_hex(&fs::read(&tgz).unwrap()));
    assert_eq!(names(&tmp.path().join("out")), vec!["tgz"]);

    // Again: marker matches, returns early with the same report.
    let again = extract(&tgz, ArchiveKind::TarGz, &dest, &ExtractLimits::default()).unwrap();
    assert_eq!(again, report);

    let zip = tmp.path().join("ok.zip");
    assert_eq!(kind_from_name("ok.zip"), ArchiveKind::Zip);
    zip_file(&zip, &[("z/", b""), ("z/a.bin", &a), ("z/deep/b.bin", &b)]);
    let zdest = tmp.path().join("out/zip");
    let report = extract(&zip, ArchiveKind::Zip, &zdest, &ExtractLimits::default()).unwrap();
    assert_eq!(
        report,
        ExtractReport {
            files: 2,
            bytes: 3500
        }
    );
    assert_eq!(fs::read(zdest.join("z/a.bin")).unwrap(), a);
    assert_eq!(fs::read(zdest.join("z/deep/b.bin")).unwrap(), b);

    // A marker from another archive: the tree is replaced by this archive's.
    let report = extract(&zip, ArchiveKind::Zip, &dest, &ExtractLimits::default()).unwrap();
    assert_eq!(report.files, 2);
    assert!(dest.join("z/a.bin").exists() && !dest.join("data").exists());
    assert_eq!(names(&tmp.path().join("out")), vec!["tgz", "zip"]);

    // An existing folder without a marker is not ours to overwrite.
    let foreign = tmp.path().join("out/foreign");
    fs::create_dir_all(&foreign).unwrap();
    fs::write(foreign.join("keep.txt"), b"x").unwrap();
    let err = extract(&zip, ArchiveKind::Zip, &foreign, &ExtractLimits::default()).unwrap_err();
    assert!(err.to_string().contains(MARKER), "{err}");
    assert!(foreign.join("keep.txt").exists());

    // Not an archive: copied in.
    let plain = tmp.path().join("plain.bin");
    fs::write(&plain, &a).unwrap();
    assert_eq!(kind_from_name("plain.bin"), ArchiveKind::None);
    let pdest = tmp.path().join("out/plain");
    let report = extract(&plain, ArchiveKind::None, &pdest, &ExtractLimits::default()).unwrap();
    assert_eq!(
        report,
        ExtractReport {
            files: 1,
            bytes: 3000
        }
    );
    assert_eq!(fs::read(pdest.join("plain.bin")).unwrap(), a);
}

#[test]
fn refuses_malicious_tar_gz() {
    let tmp = TempDir::new().unwrap();
    let limits = ExtractLimits::default();

    let p = tmp.path().join("dotdot.tar.gz");
    tar_gz(&p, |t| {
        append_file(t, "fine.txt", b"ok");
        append_raw_name(t, "../evil", b"evil");
    });
    assert_refused(&p, ArchiveKind::TarGz, &limits, "'..'");
    assert!(!tmp.path().join("evil").exists());

    let abs_target = format!("/tmp/repro-extract-test-evil-{}", std::process::id());
    let p = tmp.path().join("abs.tar.gz");
    tar_gz(&p, |t| append_raw_name(t, &abs_target, b"evil"));
    assert_refused(&p, ArchiveKind::TarGz, &limits, "absolute path");
    assert!(!Path::new(&abs_target).exists());

    let p = tmp.path().join("symlink.tar.gz");
    tar_gz(&p, |t| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        t.append_link(&mut h, "passwd", "/etc/passwd").unwrap();
        append_file(t, "passwd-after", b"x");
    });
    assert_refused(&p, ArchiveKind::TarGz, &limits, "/etc/passwd");

    let p = tmp.path().join("fifo.tar.gz");
    tar_gz(&p, |t| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Fifo);
        h.set_size(0);
        h.set_mode(0o644);
        t.append_data(&mut h, "pipe", io::empty()).unwrap();
    });
    assert_refused(&p, ArchiveKind::TarGz, &limits, "fifo");

    // 4 MiB of zeros compress ~1000x: over the default ratio of 200.
    let zeros = vec![0u8; 4 << 20];
    let p = tmp.path().join("bomb.tar.gz");
    tar_gz(&p, |t| append_file(t, "zeros", &zeros));
    assert_refused(&p, ArchiveKind::TarGz, &limits, "max_ratio");

    // Poorly compressible, but over a small byte budget.
    let p = tmp.path().join("big.tar.gz");
    tar_gz(&p, |t| append_file(t, "big", &payload(200_000, 13)));
    let small = ExtractLimits {
        max_total_bytes: 100_000,
        ..ExtractLimits::default()
    };
    assert_refused(&p, ArchiveKind::TarGz, &small, "max_total_bytes");

    let p = tmp.path().join("many.tar.gz");
    tar_gz(&p, |t| {
        for i in 0..5 {
            append_file(t, &format!("f{i}"), b"x");
        }
    });
    let few = ExtractLimits {
        max_entries: 3,
        ..ExtractLimits::default()
    };
    assert_refused(&p, ArchiveKind::TarGz, &few, "max_entries");
}

#[test]
fn refuses_malicious_zip() {
    let tmp = TempDir::new().unwrap();
    let limits = ExtractLimits::default();

    let p = tmp.path().join("dotdot.zip");
    zip_file(&p, &[("fine.txt", b"ok"), ("../evil", b"evil")]);
    assert_refused(&p, ArchiveKind::Zip, &limits, "'..'");
    assert!(!tmp.path().join("evil").exists());

    let p = tmp.path().join("abs.zip");
    zip_file(&p, &[("/tmp/evil-zip", b"evil")]);
    assert_refused(&p, ArchiveKind::Zip, &limits, "absolute path");

    let p = tmp.path().join("windows.zip");
    zip_file(&p, &[("..\\evil", b"evil")]);
    assert_refused(&p, ArchiveKind::Zip, &limits, "backslash");

    let p = tmp.path().join("symlink.zip");
    {
        let mut z = zip::ZipWriter::new(fs::File::create(&p).unwrap());
        z.add_symlink(
            "passwd",
            "/etc/passwd",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        z.finish().unwrap();
    }
    assert_refused(&p, ArchiveKind::Zip, &limits, "symlink");

    let zeros = vec![0u8; 4 << 20];
    let p = tmp.path().join("bomb.zip");
    zip_file(&p, &[("zeros", &zeros)]);
    assert_refused(&p, ArchiveKind::Zip, &limits, "max_ratio");

    let p = tmp.path().join("big.zip");
    let big = payload(200_000, 14);
    zip_file(&p, &[("big", &big)]);
    let small = ExtractLimits {
        max_total_bytes: 100_000,
        ..ExtractLimits::default()
    };
    assert_refused(&p, ArchiveKind::Zip, &small, "max_total_bytes");
}
