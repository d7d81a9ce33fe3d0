//! A remote: a URL opened as an `object_store` store (`file://` folder, `s3://bucket/prefix` with
//! an optional S3-compatible endpoint, `https://`/`http://` read-only).

use anyhow::Result;

/// A remote as named on the command line or in a config: its URL and, for S3-compatible
/// servers, the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    pub url: String,
    pub endpoint: Option<String>,
}

/// An opened remote.
pub struct Remote {
    // (implementation: object_store handle, prefix, whether it can be written)
}

impl Remote {
    /// Open the remote `spec` names; credentials come from the backend's environment variables
    /// and files, never from pipeline.yaml.
    pub fn open(_spec: &RemoteSpec) -> Result<Remote> {
        anyhow::bail!("remotes are not implemented yet")
    }

    /// The URL, for messages.
    pub fn url(&self) -> &str {
        ""
    }
}
