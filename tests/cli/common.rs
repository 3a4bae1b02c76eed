//! Running the binary and locating fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../support/fixture.rs"]
mod support_fixture;
pub use support_fixture::{fixture, workspace_dir};

#[path = "../support/compare.rs"]
mod support_compare;
pub use support_compare::{Tol, assert_close, assert_close_shaped};

/// Every f32 tensor of a safetensors file as `(shape, values)`.
pub fn read_tensors(path: &Path) -> std::collections::HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .filter(|(_, view)| view.dtype() == safetensors::Dtype::F32)
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, (view.shape().to_vec(), values))
        })
        .collect()
}

/// A fresh temporary directory.
pub fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coca-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `coca-cli` offline with `args`, logging warnings and errors only.
pub fn coca(args: &[&str]) -> Output {
    coca_logging(args, "warn")
}

/// Runs `coca-cli` offline with `args` and the log filter `rust_log`.
pub fn coca_logging(args: &[&str], rust_log: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coca-cli"))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env("RUST_LOG", rust_log)
        .env_remove("NO_COLOR")
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

/// The lines of a run's `metrics.jsonl`.
pub fn metrics_lines(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap_or_else(|e| panic!("{}/metrics.jsonl: {e}", run.display()))
        .lines()
        .map(String::from)
        .collect()
}

/// Checks that a run resumed at `from_step` really continued: the `metrics.jsonl` lines written
/// up to the interruption (`before`) are kept verbatim (a restart would rewrite them, with new
/// timings), one `resume` record names `from_step`, and every train step `1..=last_step` was
/// logged exactly once (with `log_every = 1`).
pub fn assert_resumed(run: &Path, before: &[String], from_step: u64, last_step: u64) {
    let after = metrics_lines(run);
    assert!(
        after.len() > before.len() && after[..before.len()] == *before,
        "the metrics.jsonl lines before the interruption changed on resume"
    );
    let records: Vec<serde_json::Value> = after
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let resumes: Vec<_> = records.iter().filter(|r| r["kind"] == "resume").collect();
    assert_eq!(resumes.len(), 1, "resume records: {resumes:?}");
    assert_eq!(
        resumes[0]["step"].as_u64(),
        Some(from_step),
        "{}",
        resumes[0]
    );
    let steps: Vec<u64> = records
        .iter()
        .filter(|r| r["kind"] == "train")
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(
        steps,
        (1..=last_step).collect::<Vec<_>>(),
        "train steps logged"
    );
}
