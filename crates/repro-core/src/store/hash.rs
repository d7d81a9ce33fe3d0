//! Streaming digests (sha256, md5) of files and byte slices.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use md5::Md5;
use sha2::{Digest, Sha256};

/// Digests of one file, computed in a single pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigests {
    pub sha256: String,
    pub md5: String,
    pub size: u64,
}

const BUF: usize = 1 << 20;

/// sha256 of a file, hex encoded.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; BUF];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// sha256, md5 and size of a file in one read.
pub fn digests_file(path: &Path) -> io::Result<FileDigests> {
    let mut sha = Sha256::new();
    let mut md5 = Md5::new();
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; BUF];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        md5.update(&buf[..n]);
        size += n as u64;
    }
    Ok(FileDigests {
        sha256: hex::encode(sha.finalize()),
        md5: hex::encode(md5.finalize()),
        size,
    })
}

/// sha256 of bytes, hex encoded.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(
            sha256_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let d = digests_file(&p).unwrap();
        assert_eq!(d.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d.sha256, sha256_file(&p).unwrap());
        assert_eq!(d.size, 3);
    }
}
