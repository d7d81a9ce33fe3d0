//! repro-share's tests: transfers between stores and remotes (a folder, a local HTTP server, a
//! local S3-compatible server) and bundles, on stores made by `common`.

mod bundle;
mod common;
mod transfer;
