//! Running the binary and locating fixtures.

use std::path::{Path, PathBuf};
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

/// A path as a TOML string, for `--set key=VALUE`.
pub fn q(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// Generates the tiny synthetic world into `dir/world`.
pub fn synth_world(dir: &Path) -> PathBuf {
    let world = dir.join("world");
    let o = coca(&[
        "synth",
        "--out",
        &world.display().to_string(),
        "--size",
        "tiny",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    world
}

/// `--set` values of an SNLI-VE run of the tiny preset on `world`, written to `run`.
pub fn snli_ve_sets(world: &Path, run: &Path) -> Vec<String> {
    vec![
        "model.preset=\"tiny\"".to_string(),
        format!(
            "model.tokenizer={}",
            q(&fixture("tokenizer/tokenizer.json"))
        ),
        format!(
            "data.train={}",
            q(&world.join("snli-ve/snli_ve_train.jsonl"))
        ),
        format!("data.val={}", q(&world.join("snli-ve/snli_ve_dev.jsonl"))),
        format!("data.images={}", q(&world.join("snli-ve/flickr30k-images"))),
        format!("run.out_dir={}", q(run)),
        "run.progress=false".into(),
        "eval.every=0".into(),
        "checkpoint.every=0".into(),
    ]
}
