//! Fixture lookup shared by the three test binaries (each includes this file with `#[path]`).

use std::path::PathBuf;

/// `../shared/fixtures/<name>` beside the checkout (or under `$COCA_FIXTURES`, for a test
/// binary copied to another machine); panics (never skips) when missing.
pub fn fixture(name: &str) -> PathBuf {
    let root = std::env::var_os("COCA_FIXTURES").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/fixtures"
            ))
        },
        PathBuf::from,
    );
    let path = root.join(name);
    assert!(
        path.exists(),
        "fixture {} is missing: the tests need ../shared/fixtures beside the checkout",
        path.display()
    );
    path
}
