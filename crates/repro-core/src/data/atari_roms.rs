//! Atari 2600 ROMs for the `atari` environment (docs/paper.md#e6), taken from the `ale-py` wheel on
//! PyPI, which bundles them under `ale_py/roms/` since ale-py 0.9.
//!
//! Two ways in, both ending in the same verified files:
//! - the `atari-roms` dataset of pipeline.yaml: the pinned wheel is an ordinary zip file on
//!   files.pythonhosted.org, fetched (or taken from a mirror) and extracted like any dataset, so
//!   the ROMs land in `<root>/ale_py/roms/`;
//! - [`fetch_roms`]: `pip download` of the same pinned wheel (`--platform`/`--abi` flags make pip
//!   fetch that exact file on any machine, so the wheel's sha256 pin holds everywhere), then
//!   [`extract_roms`] copies the five ROMs out.
//!
//! Every ROM is checked against the md5 in ALE's own list (`md5.txt` of ALE 0.6, which the
//! `ale-sys` crate vendors; `ale_py/roms/md5.json` of the wheel says the same) and against the
//! sha256 recorded from the wheel, before ALE ever sees it: ALE 0.6 only warns on an unknown md5,
//! and picks the game's reward/terminal rules from the ROM's *file name*, so a wrong file would
//! otherwise run silently with another game's rules.
//!
//! No GPL code here: this module only handles bytes, and is built without the `atari` feature.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::store::{atomic, hash};

/// The ale-py release whose wheel the ROMs come from.
pub const ALE_PY_VERSION: &str = "0.11.2";
/// The one wheel pinned (any platform's wheel holds the same ROMs; this one is fetched everywhere).
pub const WHEEL_NAME: &str =
    "ale_py-0.11.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl";
/// Where PyPI serves [`WHEEL_NAME`].
pub const WHEEL_URL: &str = "https://files.pythonhosted.org/packages/3d/92/623e8b3157fdd39a0d78026a1c2727c9215d882d67bfb72697661c7dba6f/ale_py-0.11.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl";
/// sha256 of [`WHEEL_NAME`] as PyPI publishes it (and as verified on download).
pub const WHEEL_SHA256: &str = "f7a2082e00fc81b6706daf945bd4c97b69c5542739707638c65ddf65ad74db38";
pub const WHEEL_SIZE: u64 = 5_054_969;
/// The ROMs' folder inside the wheel (and so inside the extracted `atari-roms` dataset).
pub const ROMS_IN_WHEEL: &str = "ale_py/roms";
/// Environment variable naming a folder of ROMs (the `.bin` files themselves, or an extracted
/// wheel): what the tests and ad-hoc runs use instead of the dataset machinery.
pub const ROMS_ENV: &str = "REPRO_ATARI_ROMS";

/// One ROM as ALE knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rom {
    /// Dopamine's game name (`--gin_bindings` `atari_lib.create_atari_environment.game_name`).
    pub game: &'static str,
    /// ALE's ROM file name; ALE 0.6 chooses the game's rules from it.
    pub file: &'static str,
    /// From ALE's md5 list.
    pub md5: &'static str,
    /// Recorded from the pinned wheel.
    pub sha256: &'static str,
    pub size: u64,
}

/// The games of the Atari DQN experiment: five standard Atari games, a choice of ours (the paper's
/// are unnamed, docs/paper.md#e6).
pub const ROMS: &[Rom] = &[
    Rom {
        game: "Pong",
        file: "pong.bin",
        md5: "60e0ea3cbe0913d39803477945e9e5ec",
        sha256: "41623e3c26148f96cbe77d56512845d224a63c8fe5bf90e38527155e39ec96d3",
        size: 2048,
    },
    Rom {
        game: "Breakout",
        file: "breakout.bin",
        md5: "f34f08e5eb96e500e851a80be3277a56",
        sha256: "376323f051c3c373c887fd83abead39d87d844ff283d435f4addbfc1710c6fd5",
        size: 2048,
    },
    Rom {
        game: "Seaquest",
        file: "seaquest.bin",
        md5: "240bfbac5163af4df5ae713985386f92",
        sha256: "fbc29f4678f69ac27fe46da298c8c22f98cba2a3e5491e6b308fd9bf68d2ee43",
        size: 4096,
    },
    Rom {
        game: "SpaceInvaders",
        file: "space_invaders.bin",
        md5: "72ffbef6504b75e69ee1045af9075f66",
        sha256: "7224b17462b992d67f4e06a3c85f269c9822b06df6015bf038b55f384ced0301",
        size: 4096,
    },
    Rom {
        game: "Asterix",
        file: "asterix.bin",
        md5: "89a68746eff7f266bbf08de2483abe55",
        sha256: "b6161db0530d8445b5ef0e8b700500531e980aa10184e5196355f27a7ba60819",
        size: 8192,
    },
];

/// Look a game up by dopamine's name (`SpaceInvaders`), ALE's (`space_invaders`) or the ROM file
/// name (`space_invaders.bin`), case-insensitively.
pub fn rom(game: &str) -> Result<&'static Rom> {
    let key: String = game
        .trim_end_matches(".bin")
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    ROMS.iter()
        .find(|r| r.game.to_ascii_lowercase() == key)
        .with_context(|| {
            format!(
                "unknown Atari game {game:?}; known: {}",
                ROMS.iter().map(|r| r.game).collect::<Vec<_>>().join(", ")
            )
        })
}

/// Check that `path` holds exactly `rom` (size, ALE's md5, the recorded sha256).
pub fn verify_rom(rom: &Rom, path: &Path) -> Result<()> {
    let d = hash::digests_file(path)
        .with_context(|| format!("cannot read the {} ROM {}", rom.game, path.display()))?;
    verify_digests(rom, &d.md5, &d.sha256, d.size, path)
}

fn verify_digests(rom: &Rom, md5: &str, sha256: &str, size: u64, path: &Path) -> Result<()> {
    if md5 != rom.md5 {
        bail!(
            "{}: not ALE's {} ROM: md5 {md5}, ALE's list says {} (re-fetch the ROMs: the \
             `atari-roms` dataset or data::atari_roms::fetch_roms)",
            path.display(),
            rom.file,
            rom.md5
        );
    }
    if sha256 != rom.sha256 || size != rom.size {
        bail!(
            "{}: md5 matches ALE's {} but sha256 {sha256} ({size} bytes) is not the recorded {} \
             ({} bytes)",
            path.display(),
            rom.file,
            rom.sha256,
            rom.size
        );
    }
    Ok(())
}

/// The verified ROM of `game` under `root`: `root/<file>` or, for an extracted wheel or the
/// `atari-roms` dataset, `root/ale_py/roms/<file>`.
pub fn find_rom(root: &Path, game: &str) -> Result<PathBuf> {
    let rom = rom(game)?;
    let candidates = [root.join(rom.file), root.join(ROMS_IN_WHEEL).join(rom.file)];
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        bail!(
            "Atari ROM {} not found (looked for {} and {}); fetch it first: `repro fetch \
             atari-roms` (the ale-py {ALE_PY_VERSION} wheel from PyPI) or \
             data::atari_roms::fetch_roms into a folder named by {ROMS_ENV}",
            rom.file,
            candidates[0].display(),
            candidates[1].display()
        );
    };
    verify_rom(rom, path)?;
    Ok(path.clone())
}

/// The folder [`ROMS_ENV`] names, if set and non-empty.
pub fn roms_dir_from_env() -> Option<PathBuf> {
    std::env::var_os(ROMS_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Copy the ROMs of [`ROMS`] out of the ale-py wheel at `wheel` into `dest` (as `dest/<file>`),
/// each verified before it is written (atomically). The wheel itself is checked against
/// [`WHEEL_SHA256`] only when `check_wheel` is set, so another ale-py release can be used as long
/// as its ROMs are the same bytes.
pub fn extract_roms(wheel: &Path, dest: &Path, check_wheel: bool) -> Result<Vec<PathBuf>> {
    if check_wheel {
        let d = hash::digests_file(wheel)
            .with_context(|| format!("cannot read the wheel {}", wheel.display()))?;
        if d.sha256 != WHEEL_SHA256 {
            bail!(
                "{}: sha256 {} is not the pinned {WHEEL_SHA256} of {WHEEL_NAME}",
                wheel.display(),
                d.sha256
            );
        }
    }
    let file = fs::File::open(wheel).with_context(|| format!("cannot open {}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a wheel (zip)", wheel.display()))?;
    fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let mut out = Vec::new();
    for rom in ROMS {
        let inner = format!("{ROMS_IN_WHEEL}/{}", rom.file);
        let mut entry = zip.by_name(&inner).with_context(|| {
            format!(
                "{} has no {inner} (ale-py bundles ROMs since 0.9)",
                wheel.display()
            )
        })?;
        let mut bytes = Vec::with_capacity(rom.size as usize);
        // A ROM is at most a few KiB; read one byte past the expected size to notice a larger one.
        entry
            .by_ref()
            .take(rom.size + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {inner} from {}", wheel.display()))?;
        let path = dest.join(rom.file);
        let (md5, sha256) = digests(&bytes);
        verify_digests(rom, &md5, &sha256, bytes.len() as u64, &wheel.join(&inner))?;
        atomic::write_atomic(&path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        out.push(path);
    }
    Ok(out)
}

fn digests(bytes: &[u8]) -> (String, String) {
    use md5::{Digest as _, Md5};
    use sha2::Sha256;
    (
        hex::encode(Md5::digest(bytes)),
        hex::encode(Sha256::digest(bytes)),
    )
}

/// `pip download` the pinned wheel into `dir` with `python` (`python3` when `None`) and return
/// its path, verified. The platform flags make pip fetch [`WHEEL_NAME`] whatever the machine.
pub fn pip_download_wheel(dir: &Path, python: Option<&str>) -> Result<PathBuf> {
    let python = python.unwrap_or("python3");
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut cmd = Command::new(python);
    cmd.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args([
            "--platform",
            "manylinux2014_x86_64",
            "--python-version",
            "3.11",
        ])
        .args(["--implementation", "cp", "--abi", "cp311", "-d"])
        .arg(dir)
        .arg(format!("ale-py=={ALE_PY_VERSION}"));
    let out = cmd.output().with_context(|| {
        format!("fetching the Atari ROMs: cannot run `{python} -m pip` (is pip installed?)")
    })?;
    if !out.status.success() {
        bail!(
            "fetching the Atari ROMs: `pip download ale-py=={ALE_PY_VERSION}` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    let wheel = dir.join(WHEEL_NAME);
    if !wheel.is_file() {
        bail!(
            "fetching the Atari ROMs: pip succeeded but {} is missing",
            wheel.display()
        );
    }
    let sha = hash::sha256_file(&wheel)?;
    if sha != WHEEL_SHA256 {
        bail!(
            "fetching the Atari ROMs: {} has sha256 {sha}, not the pinned {WHEEL_SHA256}",
            wheel.display()
        );
    }
    Ok(wheel)
}

/// Fetch the ROMs into `dest` through pip (see [`pip_download_wheel`]); the wheel is downloaded
/// into a temp folder and dropped afterwards.
pub fn fetch_roms(dest: &Path, python: Option<&str>) -> Result<Vec<PathBuf>> {
    let tmp = tempfile::tempdir().context("cannot make a temp folder for the ale-py wheel")?;
    let wheel = pip_download_wheel(tmp.path(), python)?;
    extract_roms(&wheel, dest, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve() {
        for name in [
            "SpaceInvaders",
            "space_invaders",
            "space_invaders.bin",
            "SPACEINVADERS",
        ] {
            assert_eq!(rom(name).unwrap().file, "space_invaders.bin");
        }
        assert_eq!(rom("Pong").unwrap().md5, "60e0ea3cbe0913d39803477945e9e5ec");
        assert!(rom("Tetris").is_err());
    }
}
