//! (export and import through the binary)
