//! Which remote `--remote NAME|URL` means: a URL as it is, else a name from pipeline.yaml's
//! `remotes:` or the user's config file (`$XDG_CONFIG_HOME/repro/config.yaml`, `remotes:` in the
//! same form); with no `--remote`, the only remote declared.
//!
//! - `--remote s3://bucket/prefix` (anything with `://`): that URL, as it is;
//! - `--remote /srv/results` or `./results` (a path): that folder, as `file://` (made absolute);
//! - `--remote NAME`: pipeline.yaml's `remotes: {NAME: …}`, else the user's config file's;
//! - no `--remote`: pipeline.yaml's remote when it declares exactly one; when it declares none,
//!   the user's config file's when that declares exactly one; otherwise an error naming them.
//!
//! The user's config file is `$REPRO_CONFIG` when set, else `$XDG_CONFIG_HOME/repro/config.yaml`,
//! else `~/.config/repro/config.yaml`; a missing file declares nothing. It reads, as pipeline.yaml
//! does:
//!
//! ```yaml
//! remotes:
//!   lab: s3://lab-results/bjorck
//!   minio: {url: s3://results/bjorck, endpoint: http://minio.lab:9000}
//! ```
//!
//! Credentials never go in either file: see [`crate::remote`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::remote::RemoteSpec;
use repro_core::pipeline::spec::RemoteDecl;

/// The user's config file, as far as remotes go (other keys are left to other readers).
#[derive(Debug, Default, Deserialize)]
struct UserConfig {
    #[serde(default)]
    remotes: BTreeMap<String, RemoteDecl>,
}

/// Resolve `--remote` (`None`: not given) against the pipeline's remotes and the user's.
pub fn resolve(given: Option<&str>, declared: &BTreeMap<String, RemoteDecl>) -> Result<RemoteSpec> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    resolve_with(given, declared, user_config_path().as_deref(), &cwd)
}

/// Where the user's config file is (whether or not it exists).
pub fn user_config_path() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("REPRO_CONFIG")
        .or_else(|| var("XDG_CONFIG_HOME").map(|d| d.join("repro/config.yaml")))
        .or_else(|| var("HOME").map(|h| h.join(".config/repro/config.yaml")))
}

/// [`resolve`] with the user's config file and the current folder given.
pub fn resolve_with(
    given: Option<&str>,
    declared: &BTreeMap<String, RemoteDecl>,
    user_config: Option<&Path>,
    cwd: &Path,
) -> Result<RemoteSpec> {
    if let Some(g) = given {
        let g = g.trim();
        if g.contains("://") {
            return Ok(RemoteSpec {
                url: g.to_string(),
                endpoint: None,
            });
        }
        if g.starts_with('/') || g.starts_with("./") || g.starts_with("../") || g == "." {
            return Ok(RemoteSpec {
                url: file_url(&normalize(&cwd.join(g))),
                endpoint: None,
            });
        }
    }
    let (user, user_file) = match user_config {
        Some(p) => (load_user(p)?, p.display().to_string()),
        None => (
            UserConfig::default(),
            "(no config file: HOME is unset)".into(),
        ),
    };
    let spec = |d: &RemoteDecl| RemoteSpec {
        url: d.url().to_string(),
        endpoint: d.endpoint().map(str::to_string),
    };
    let how = format!(
        "pass --remote NAME or --remote URL (file:///path, s3://bucket/prefix, https://host/path), \
         or declare remotes under `remotes:` in pipeline.yaml or in {user_file}"
    );
    match given {
        Some(name) => {
            if let Some(d) = declared.get(name).or_else(|| user.remotes.get(name)) {
                return Ok(spec(d));
            }
            let names: Vec<&String> = declared.keys().chain(user.remotes.keys()).collect();
            let near: Vec<&str> = names
                .iter()
                .filter(|n| {
                    strsim::levenshtein(n, name) <= 2
                        || n.contains(name)
                        || name.contains(n.as_str())
                })
                .map(|n| n.as_str())
                .collect();
            let mut msg = format!("no remote named {name:?}");
            if names.is_empty() {
                msg.push_str(&format!(
                    ": none is declared (pipeline.yaml has no `remotes:`, nor has {user_file}); {how}"
                ));
            } else {
                msg.push_str(&format!(
                    ": the remotes are {}",
                    names
                        .iter()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                if !near.is_empty() {
                    msg.push_str(&format!(" (did you mean {}?)", near.join(" or ")));
                }
                msg.push_str(&format!(
                    ". A folder is given as a path (./{name} or /abs/{name}) or file:// URL"
                ));
            }
            bail!(msg)
        }
        None => {
            let (pool, from) = if declared.is_empty() {
                (&user.remotes, user_file.as_str())
            } else {
                (declared, "pipeline.yaml")
            };
            match pool.len() {
                1 => {
                    let (_, d) = pool.iter().next().expect("one remote");
                    Ok(spec(d))
                }
                0 => bail!("no remote given and none declared; {how}"),
                _ => bail!(
                    "no remote given and {from} declares several ({}): pass --remote NAME",
                    pool.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            }
        }
    }
}

fn load_user(path: &Path) -> Result<UserConfig> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(UserConfig::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(UserConfig::default());
    }
    let c: UserConfig = serde_yaml::from_str(&text)
        .with_context(|| format!("{}: not a valid repro config", path.display()))?;
    for (name, r) in &c.remotes {
        let scheme = r.url().split_once("://").map(|(s, _)| s);
        if !scheme.is_some_and(|s| repro_core::pipeline::spec::REMOTE_SCHEMES.contains(&s)) {
            bail!(
                "{}: remote {name}: {:?} is not a URL of a supported scheme ({})",
                path.display(),
                r.url(),
                repro_core::pipeline::spec::REMOTE_SCHEMES.join(", ")
            );
        }
    }
    Ok(c)
}

/// `.` and `..` removed without touching the filesystem (the folder may not exist yet).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `file://` and the path, with the characters a URL cannot hold as they are escaped.
fn file_url(p: &Path) -> String {
    let mut s = String::from("file://");
    for b in p.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~+,=@".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decls(yaml: &str) -> BTreeMap<String, RemoteDecl> {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn urls_paths_and_names() {
        let d = decls("lab: s3://b/p\nminio: {url: 's3://r/x', endpoint: 'http://m:9000'}\n");
        let cwd = Path::new("/home/u/proj");
        let r = |g: Option<&str>| resolve_with(g, &d, None, cwd);
        assert_eq!(r(Some("https://h/x")).unwrap().url, "https://h/x");
        assert_eq!(
            r(Some("./out/../res")).unwrap().url,
            "file:///home/u/proj/res"
        );
        assert_eq!(r(Some("/srv/a b")).unwrap().url, "file:///srv/a%20b");
        let m = r(Some("minio")).unwrap();
        assert_eq!(
            (m.url.as_str(), m.endpoint.as_deref()),
            ("s3://r/x", Some("http://m:9000"))
        );
        let e = format!("{:#}", r(Some("labb")).unwrap_err());
        assert!(
            e.contains("lab, minio") && e.contains("did you mean lab"),
            "{e}"
        );
        let e = format!("{:#}", r(None).unwrap_err());
        assert!(
            e.contains("several (lab, minio)") && e.contains("--remote NAME"),
            "{e}"
        );
        let one = decls("lab: s3://b/p\n");
        assert_eq!(resolve_with(None, &one, None, cwd).unwrap().url, "s3://b/p");
        let e = format!(
            "{:#}",
            resolve_with(None, &BTreeMap::new(), None, cwd).unwrap_err()
        );
        assert!(e.contains("none declared") && e.contains("--remote"), "{e}");
    }

    #[test]
    fn the_user_config_file_declares_remotes_too() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yaml");
        std::fs::write(&file, "remotes:\n  home: file:///srv/results\nother: 1\n").unwrap();
        let cwd = Path::new("/");
        let none = BTreeMap::new();
        let r = resolve_with(Some("home"), &none, Some(&file), cwd).unwrap();
        assert_eq!(r.url, "file:///srv/results");
        // The only remote of the user's file, when pipeline.yaml declares none.
        assert_eq!(
            resolve_with(None, &none, Some(&file), cwd).unwrap().url,
            "file:///srv/results"
        );
        // pipeline.yaml's names come first.
        let d = decls("home: s3://b/p\n");
        assert_eq!(
            resolve_with(Some("home"), &d, Some(&file), cwd)
                .unwrap()
                .url,
            "s3://b/p"
        );
        std::fs::write(&file, "remotes:\n  bad: ftp://x\n").unwrap();
        let e = format!(
            "{:#}",
            resolve_with(Some("bad"), &none, Some(&file), cwd).unwrap_err()
        );
        assert!(e.contains("config.yaml") && e.contains("ftp://x"), "{e}");
        // A missing file declares nothing.
        let gone = dir.path().join("none.yaml");
        let e = format!(
            "{:#}",
            resolve_with(Some("x"), &none, Some(&gone), cwd).unwrap_err()
        );
        assert!(e.contains("none is declared"), "{e}");
    }
}
