//! Running the binary and locating fixtures.

use std::path::PathBuf;
use std::process::{Command, Output};

#[path = "../support/fixture.rs"]
mod support_fixture;
pub use support_fixture::{fixture, workspace_dir};

/// A fresh temporary directory.
pub fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coca-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `coca-cli` offline with `args`.
pub fn coca(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coca-cli"))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run coca-cli")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
