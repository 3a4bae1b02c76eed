//! Shared helpers: fixtures, a tiny image-caption set, run configs.

use std::path::{Path, PathBuf};

#[path = "../support/compare.rs"]
mod support_compare;
pub use support_compare::{Tol, assert_close};

/// A fresh temporary directory.
pub fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coca-tasks-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `n` small images (a coloured square on a grey background) with matching captions.
pub fn colour_pairs(dir: &Path, n: usize) -> Vec<coca_tasks::pretrain::CaptionPair> {
    let colours = [
        ("red", [220u8, 30, 30]),
        ("green", [30, 200, 30]),
        ("blue", [30, 30, 220]),
        ("yellow", [230, 220, 30]),
    ];
    (0..n)
        .map(|i| {
            let (name, rgb) = colours[i % colours.len()];
            let big = i % 2 == 0;
            let img = image::RgbImage::from_fn(40, 40, |x, y| {
                let (lo, hi) = if big { (6, 34) } else { (14, 26) };
                if (lo..hi).contains(&x) && (lo..hi).contains(&y) {
                    image::Rgb(rgb)
                } else {
                    image::Rgb([128, 128, 128])
                }
            });
            let path = dir.join(format!("img{i}.png"));
            img.save(&path).unwrap();
            let size = if big { "large" } else { "small" };
            coca_tasks::pretrain::CaptionPair {
                image: path,
                caption: format!("a {size} {name} square"),
            }
        })
        .collect()
}

/// A run configuration for the tiny model.
pub fn tiny_config(out: &Path, steps: usize, extra: &[&str]) -> coca_tasks::engine::RunConfig {
    let text = format!(
        r#"
[model]
preset = "tiny"
[train]
steps = {steps}
batch_size = 4
warmup_steps = 2
lr_head = 1e-3
lr_backbone = 1e-3
weight_decay = 0.01
seed = 7
workers = 2
log_every = 1
[eval]
batch_size = 8
[run]
out_dir = "{}"
progress = false
"#,
        out.display()
    );
    let mut table: toml::Table = text.parse().unwrap();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    coca_tasks::engine::config::apply_overrides(&mut table, &extra).unwrap();
    coca_tasks::engine::RunConfig::from_table(table, "test").unwrap()
}
