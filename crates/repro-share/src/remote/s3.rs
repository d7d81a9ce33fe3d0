//! S3 and S3-compatible remotes: the builder from the environment and AWS's own files (the
//! credentials, region and endpoint, in the order the module above documents), and S3's
//! errors in words.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;

use super::{Handle, client_options, retry};

pub(super) fn open_s3(
    url: &str,
    rest: &str,
    endpoint: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    process_env: bool,
) -> Result<Handle> {
    let rest = rest.trim_matches('/');
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("remote {url}: no bucket (s3://bucket/prefix)");
    }
    let prefix = ObjPath::from_iter(prefix.split('/').filter(|p| !p.is_empty()));
    let aws = AwsFiles::read(env);
    let mut b = if process_env {
        AmazonS3Builder::from_env()
    } else {
        AmazonS3Builder::new()
    }
    .with_bucket_name(bucket);
    let credentials = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            b = b.with_access_key_id(&id).with_secret_access_key(secret);
            if let Some(token) = env("AWS_SESSION_TOKEN") {
                b = b.with_token(token);
            }
            format!(
                "access key {} from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY{})",
                redact(&id),
                if env("AWS_SESSION_TOKEN").is_some() {
                    ", AWS_SESSION_TOKEN"
                } else {
                    ""
                }
            )
        }
        (Some(_), None) | (None, Some(_)) => bail!(
            "remote {url}: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together (one \
             of them is empty or unset)"
        ),
        (None, None) => match aws.keys() {
            Some((id, secret, token, from)) => {
                b = b.with_access_key_id(&id).with_secret_access_key(secret);
                if let Some(token) = token {
                    b = b.with_token(token);
                }
                format!("access key {} of {from}", redact(&id))
            }
            None => {
                if env("AWS_PROFILE").is_some() {
                    bail!(
                        "remote {url}: AWS_PROFILE={} names no profile with keys in {} or {}",
                        aws.profile,
                        aws.credentials_file.display(),
                        aws.config_file.display()
                    );
                }
                format!(
                    "no access key (AWS_ACCESS_KEY_ID is unset and {} has no [{}] keys): the \
                     machine's instance or container role, if it has one",
                    aws.credentials_file.display(),
                    aws.profile
                )
            }
        },
    };
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| aws.get("region"))
        .unwrap_or_else(|| "us-east-1".into());
    b = b.with_region(region);
    let endpoint = endpoint
        .map(str::to_string)
        .or_else(|| env("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .or_else(|| aws.get("endpoint_url"));
    let allow_http = endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    if let Some(e) = &endpoint {
        b = b.with_endpoint(e.trim_end_matches('/'));
    }
    let virtual_hosted = env("AWS_VIRTUAL_HOSTED_STYLE_REQUEST").is_some_and(|v| v == "true");
    let store = b
        .with_virtual_hosted_style_request(virtual_hosted)
        // Every upload carries its sha256 (x-amz-checksum-sha256), which the server checks on
        // arrival: an object named by its digest is stored with that digest or not at all.
        .with_checksum_algorithm(object_store::aws::Checksum::SHA256)
        .with_client_options(client_options(allow_http))
        .with_retry(retry())
        .build()
        .with_context(|| format!("remote {url}: cannot set up S3"))?;
    Ok(Handle {
        url: url.trim_end_matches('/').to_string(),
        store: Arc::new(store),
        prefix,
        credentials: Some(match endpoint {
            Some(e) => format!("{credentials}, at endpoint {e}"),
            None => credentials,
        }),
        folder: None,
    })
}

/// An error's text on one line, an S3 XML error body reduced to its code and message.
pub(super) fn condense(text: &str) -> String {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let from = text.find(&open)? + open.len();
        let to = text[from..].find(&format!("</{name}>"))? + from;
        Some(text[from..to].to_string())
    };
    let head = match (text.find("<?xml"), tag("Code")) {
        (Some(at), Some(code)) => format!(
            "{}{code}: {}",
            &text[..at],
            tag("Message").unwrap_or_default()
        ),
        _ => text.to_string(),
    };
    head.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first and last four characters of an access key id (an id, not the secret, but still
/// no need to print it whole).
fn redact(id: &str) -> String {
    if id.len() <= 8 {
        return "****".into();
    }
    format!("{}…{}", &id[..4], &id[id.len() - 4..])
}

/// The profile of AWS's shared files that applies, as sections of key = value.
struct AwsFiles {
    profile: String,
    credentials_file: PathBuf,
    config_file: PathBuf,
    credentials: BTreeMap<String, String>,
    config: BTreeMap<String, String>,
}

impl AwsFiles {
    fn read(env: &dyn Fn(&str) -> Option<String>) -> AwsFiles {
        let home = env("HOME").map(PathBuf::from).unwrap_or_default();
        let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let credentials_file = env("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".aws/credentials"));
        let config_file = env("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".aws/config"));
        let section = |file: &FsPath, names: &[String]| {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let sections = parse_ini(&text);
            names
                .iter()
                .find_map(|n| sections.get(n).cloned())
                .unwrap_or_default()
        };
        let credentials = section(&credentials_file, std::slice::from_ref(&profile));
        // The config file names profiles `[profile NAME]`, except `[default]`.
        let config = section(
            &config_file,
            &[format!("profile {profile}"), profile.clone()],
        );
        AwsFiles {
            profile,
            credentials_file,
            config_file,
            credentials,
            config,
        }
    }

    fn get(&self, key: &str) -> Option<String> {
        self.config.get(key).cloned()
    }

    /// Key id, secret, session token and where they came from.
    fn keys(&self) -> Option<(String, String, Option<String>, String)> {
        for (section, file) in [
            (&self.credentials, &self.credentials_file),
            (&self.config, &self.config_file),
        ] {
            if let (Some(id), Some(secret)) = (
                section.get("aws_access_key_id"),
                section.get("aws_secret_access_key"),
            ) {
                return Some((
                    id.clone(),
                    secret.clone(),
                    section.get("aws_session_token").cloned(),
                    format!("profile {} in {}", self.profile, file.display()),
                ));
            }
        }
        None
    }
}

/// The sections of an INI file: `[name]` then `key = value` lines; `#`/`;` comments.
fn parse_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            out.entry(name.clone()).or_default();
            current = Some(name);
        } else if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::tests::spec;
    use crate::remote::{Kind, Remote};

    #[test]
    fn s3_credentials_come_from_env_then_profile_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".aws")).unwrap();
        std::fs::write(
            dir.path().join(".aws/credentials"),
            "[default]\naws_access_key_id = AKIADEFAULT0001\naws_secret_access_key = s\n\n\
             [team]\naws_access_key_id=AKIATEAM00000002\naws_secret_access_key=t\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(".aws/config"),
            "[profile team]\nregion = eu-west-3\nendpoint_url = http://127.0.0.1:9\n",
        )
        .unwrap();
        let home = dir.path().display().to_string();
        let creds = |vars: &[(&str, &str)]| {
            let mut env: BTreeMap<String, String> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            env.insert("HOME".into(), home.clone());
            match Remote::open_with_env(&spec("s3://bucket/some/prefix"), &env) {
                Ok(Remote {
                    kind: Kind::S3(h), ..
                }) => Ok((h.credentials.unwrap(), h.prefix.to_string())),
                Ok(_) => panic!("not S3"),
                Err(e) => Err(format!("{e:#}")),
            }
        };
        let (c, prefix) = creds(&[
            ("AWS_ACCESS_KEY_ID", "AKIAENVKEY000003"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
        ])
        .unwrap();
        assert!(c.contains("AKIA…0003") && c.contains("environment"), "{c}");
        assert_eq!(prefix, "some/prefix");
        let (c, _) = creds(&[]).unwrap();
        assert!(
            c.contains("AKIA…0001") && c.contains("profile default"),
            "{c}"
        );
        let (c, _) = creds(&[("AWS_PROFILE", "team")]).unwrap();
        assert!(
            c.contains("AKIA…0002") && c.contains("profile team") && c.contains("127.0.0.1:9"),
            "{c}"
        );
        let e = creds(&[("AWS_PROFILE", "nobody")]).unwrap_err();
        assert!(e.contains("AWS_PROFILE=nobody"), "{e}");
        let e = creds(&[("AWS_ACCESS_KEY_ID", "AKIAENVKEY000003")]).unwrap_err();
        assert!(e.contains("together"), "{e}");
    }

    #[test]
    fn s3_error_bodies_are_condensed() {
        let t = condense(
            "GET x - 403 Forbidden: <?xml version=\"1.0\"?>\n<Error><Code>SignatureDoesNotMatch\
             </Code><Message>The signature\n does not match</Message></Error>",
        );
        assert_eq!(
            t,
            "GET x - 403 Forbidden: SignatureDoesNotMatch: The signature does not match"
        );
    }

    #[test]
    fn ini_sections_and_comments() {
        let s = parse_ini("# c\n[ profile  x ]\nA = 1 \n; c\nb=2=3\n");
        assert_eq!(s["profile x"]["a"], "1");
        assert_eq!(s["profile x"]["b"], "2=3");
    }
}
