//! Which pipeline file a command reads: the one given (`--pipeline`), else the nearest
//! `pipeline.yaml` in the current folder or a folder above it, as git and cargo find theirs.

use std::path::{Path, PathBuf};

/// The name looked for in the current folder and its ancestors.
pub const PIPELINE_FILE: &str = "pipeline.yaml";

/// Why there is no pipeline file to read.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error("{}: no such file", .0.display())]
    Missing(PathBuf),
    #[error("{}: is a folder; give the pipeline file inside it", .0.display())]
    Folder(PathBuf),
    #[error(
        "no {PIPELINE_FILE} in {} or any folder above it (give one with --pipeline FILE)",
        .0.display()
    )]
    NotFound(PathBuf),
}

/// The pipeline file to read: `given` when there is one (it must exist), else the nearest
/// `pipeline.yaml` from `cwd` upward — as the relative `pipeline.yaml` when it is in `cwd`
/// itself (so messages name it as before), else by its full path.
pub fn locate(given: Option<&Path>, cwd: &Path) -> Result<PathBuf, LocateError> {
    if let Some(path) = given {
        return match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(LocateError::Missing(path.to_path_buf()))
            }
            Ok(m) if m.is_dir() => Err(LocateError::Folder(path.to_path_buf())),
            // Other failures (permissions) are reported by the read, with their cause.
            _ => Ok(path.to_path_buf()),
        };
    }
    if cwd.join(PIPELINE_FILE).is_file() {
        return Ok(PathBuf::from(PIPELINE_FILE));
    }
    cwd.ancestors()
        .skip(1)
        .map(|dir| dir.join(PIPELINE_FILE))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| LocateError::NotFound(cwd.to_path_buf()))
}
