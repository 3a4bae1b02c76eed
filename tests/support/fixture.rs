//! Paths the tests read, shared by the three test binaries and the crates' unit tests (each
//! includes this file with `#[path]`).
//!
//! Paths are resolved when a test runs, not when it is compiled: cargo sets
//! `CARGO_MANIFEST_DIR` for the test process too, so a test binary that cargo reuses from
//! another checkout sharing the target directory still reads this checkout's files.
#![allow(dead_code)]

use std::path::PathBuf;

/// The workspace root: the parent of the package whose test is running.
pub fn workspace_dir() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest.join("..")
}

/// `tests/fixtures/<name>` of the checkout (outputs of the reference implementations, see
/// `tests/fixtures/README.md`), or under `$COCA_FIXTURES` for a test binary copied to another
/// machine; panics (never skips) when missing.
pub fn fixture(name: &str) -> PathBuf {
    let root = std::env::var_os("COCA_FIXTURES")
        .map_or_else(|| workspace_dir().join("tests/fixtures"), PathBuf::from);
    let path = root.join(name);
    assert!(
        path.exists(),
        "fixture {} is missing: the tests need the repository's tests/fixtures (or $COCA_FIXTURES)",
        path.display()
    );
    path
}

/// `tests/data/<rel>` of the checkout (small inputs kept in the repository).
pub fn test_data(rel: &str) -> PathBuf {
    workspace_dir().join("tests/data").join(rel)
}
