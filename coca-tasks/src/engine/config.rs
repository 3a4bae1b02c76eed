//! The run configuration: a TOML file in sections (`[model]`, `[data]`, `[task]`, `[train]`,
//! `[eval]`, `[checkpoint]`, `[run]`), plus `section.key=value` overrides, validated once and
//! saved resolved as `config.toml` in the run directory.

use std::path::{Path, PathBuf};

use coca_core::randaugment::RandAugment;
use serde::{Deserialize, Serialize};

use super::optim::OptimConfig;
use super::params::Freeze;
use crate::error::{Result, TaskError};

/// `[model]`: which backbone to start from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Model id (directory, checkpoint file, `hf-hub:<repo>`, short name). Without it, a model
    /// with random weights is built from `preset`.
    #[serde(default)]
    pub id: Option<String>,
    /// Preset for random initialisation: `tiny`, `coca_ViT-B-32`, `coca_ViT-L-14`; CLIPPO:
    /// `clippo_B16`, `clippo_tiny`.
    #[serde(default)]
    pub preset: Option<String>,
    /// `coca` or `clippo`; by default read off `id` (a `.npz` or a directory with
    /// `clippo.npz` is CLIPPO) or `preset` (`clippo_*`).
    #[serde(default)]
    pub family: Option<super::backbone::Family>,
    /// `tokenizer.json` (default: the model's own, else the hub's CLIP tokenizer).
    #[serde(default)]
    pub tokenizer: Option<PathBuf>,
    #[serde(default)]
    pub freeze: Freeze,
}

/// Numeric precision of training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    /// bfloat16 forward and backward passes; the optimiser keeps f32 master weights and
    /// moments, and losses run in f32 (as PyTorch's bf16 autocast).
    Bf16,
}

/// Train-time image augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Augment {
    /// Eval preprocessing (resize + centre crop).
    None,
    /// RandomResizedCrop(scale 0.9-1.0), as CoCa's fine-tuning.
    #[default]
    Crop,
}

/// `[train]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Optimiser steps (each of `grad_accum` micro-batches).
    pub steps: usize,
    pub batch_size: usize,
    #[serde(default = "one")]
    pub grad_accum: usize,
    #[serde(default)]
    pub warmup_steps: usize,
    /// Learning rate at the end as a share of the peak.
    #[serde(default)]
    pub min_lr_ratio: f64,
    /// Global-norm gradient clipping (0 disables).
    #[serde(default = "one_f")]
    pub grad_clip: f64,
    /// Peak learning rate of the task head.
    #[serde(default = "default_lr_head")]
    pub lr_head: f64,
    /// Peak learning rate of the pretrained backbone.
    #[serde(default = "default_lr_backbone")]
    pub lr_backbone: f64,
    /// Decoupled weight decay (matrices only).
    #[serde(default = "default_wd")]
    pub weight_decay: f64,
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    #[serde(default = "default_eps")]
    pub eps: f64,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub precision: Precision,
    #[serde(default)]
    pub augment: Augment,
    /// RandAugment after the crop, e.g. `randaugment = { ops = 1, magnitude = 10 }` (the
    /// paper's VQAv2 and SNLI-VE setting); off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub randaugment: Option<RandAugment>,
    /// Threads decoding and preprocessing images.
    #[serde(default = "two")]
    pub workers: usize,
    /// Batches prepared ahead of the training step.
    #[serde(default = "two")]
    pub prefetch: usize,
    /// Log every N steps.
    #[serde(default = "ten")]
    pub log_every: usize,
}

/// `[eval]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    /// Evaluate every N steps (and at the end); 0 = only at the end.
    #[serde(default)]
    pub every: usize,
    #[serde(default = "default_eval_batch")]
    pub batch_size: usize,
    /// Stop when the metric has not improved for this many evaluations.
    #[serde(default)]
    pub early_stopping_patience: Option<usize>,
}

/// `[checkpoint]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSection {
    /// Write a checkpoint every N steps (and at the end); 0 = only at the end.
    #[serde(default)]
    pub every: usize,
    /// Keep this many most recent checkpoints (the best one is kept as well).
    #[serde(default = "two")]
    pub keep_last: usize,
}

/// `[run]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Run directory: config, checkpoints, metrics, plots, export.
    pub out_dir: PathBuf,
    #[serde(default = "default_device")]
    pub device: String,
    /// Fail on unreadable images instead of skipping them.
    #[serde(default)]
    pub strict: bool,
    /// Show a progress bar.
    #[serde(default = "yes")]
    pub progress: bool,
}

/// A whole run configuration. `[data]` and `[task]` are interpreted by the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub model: ModelSection,
    #[serde(default)]
    pub data: toml::Table,
    #[serde(default)]
    pub task: toml::Table,
    pub train: TrainSection,
    #[serde(default = "default_eval")]
    pub eval: EvalSection,
    #[serde(default = "default_checkpoint")]
    pub checkpoint: CheckpointSection,
    pub run: RunSection,
}

fn default_lr_head() -> f64 {
    OptimConfig::default().lr_head
}
fn default_lr_backbone() -> f64 {
    OptimConfig::default().lr_backbone
}
fn default_wd() -> f64 {
    OptimConfig::default().weight_decay
}
fn default_beta1() -> f64 {
    OptimConfig::default().beta1
}
fn default_beta2() -> f64 {
    OptimConfig::default().beta2
}
fn default_eps() -> f64 {
    OptimConfig::default().eps
}

impl TrainSection {
    /// The optimiser settings.
    pub fn optim(&self) -> OptimConfig {
        OptimConfig {
            lr_head: self.lr_head,
            lr_backbone: self.lr_backbone,
            weight_decay: self.weight_decay,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
        }
    }

    /// Whether training images are augmented (crop and/or RandAugment).
    pub fn augments(&self) -> bool {
        self.augment != Augment::None || self.randaugment.is_some()
    }
}

fn one() -> usize {
    1
}
fn two() -> usize {
    2
}
fn ten() -> usize {
    10
}
fn one_f() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
fn default_eval_batch() -> usize {
    32
}
fn default_device() -> String {
    "cpu".into()
}
fn default_eval() -> EvalSection {
    EvalSection {
        every: 0,
        batch_size: 32,
        early_stopping_patience: None,
    }
}
fn default_checkpoint() -> CheckpointSection {
    CheckpointSection {
        every: 0,
        keep_last: 2,
    }
}

impl RunConfig {
    /// Reads a TOML file and applies `section.key=value` overrides (values in TOML syntax;
    /// bare words are strings).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TaskError::io(path, e))?;
        let mut value: toml::Table = text
            .parse()
            .map_err(|e| TaskError::Config(format!("{}: {e}", path.display())))?;
        apply_overrides(&mut value, overrides)?;
        Self::from_table(value, &path.display().to_string())
    }

    /// Parses and validates a TOML table; `source` names it in errors.
    pub fn from_table(table: toml::Table, source: &str) -> Result<Self> {
        let cfg: RunConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e| TaskError::Config(format!("{source}: {e}")))?;
        cfg.validate()
            .map_err(|e| TaskError::Config(format!("{source}: {e}")))?;
        Ok(cfg)
    }

    /// Cross-field checks with actionable messages.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let t = &self.train;
        if self.model.id.is_none() && self.model.preset.is_none() {
            return Err("[model] needs `id` (pretrained weights) or `preset` (random init)".into());
        }
        if t.steps == 0 || t.batch_size == 0 || t.grad_accum == 0 {
            return Err("[train] steps, batch_size and grad_accum must be positive".into());
        }
        if t.warmup_steps > t.steps {
            return Err(format!(
                "[train] warmup_steps ({}) exceeds steps ({})",
                t.warmup_steps, t.steps
            ));
        }
        if !(0.0..=1.0).contains(&t.min_lr_ratio) {
            return Err("[train] min_lr_ratio must be within [0, 1]".into());
        }
        for (name, v) in [("lr_head", t.lr_head), ("lr_backbone", t.lr_backbone)] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(format!("[train] {name} must be a non-negative number"));
            }
        }
        if t.grad_clip.is_nan()
            || t.grad_clip < 0.0
            || t.weight_decay.is_nan()
            || t.weight_decay < 0.0
        {
            return Err("[train] grad_clip and weight_decay must be non-negative".into());
        }
        if let Some(ra) = &t.randaugment {
            ra.validate().map_err(|e| format!("[train] {e}"))?;
        }
        if t.workers == 0 || t.prefetch == 0 {
            return Err("[train] workers and prefetch must be at least 1".into());
        }
        if self.eval.batch_size == 0 {
            return Err("[eval] batch_size must be positive".into());
        }
        Ok(())
    }

    /// The configuration as TOML text.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self)
            .map_err(|e| TaskError::Config(format!("cannot serialise config: {e}")))
    }

    /// A `[data]`/`[task]` table as a typed struct; `section` names it in errors.
    pub fn section<T: serde::de::DeserializeOwned>(
        table: &toml::Table,
        section: &str,
    ) -> Result<T> {
        toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e| TaskError::Config(format!("[{section}]: {e}")))
    }
}

/// Applies `a.b=value` overrides to a TOML table.
pub fn apply_overrides(table: &mut toml::Table, overrides: &[String]) -> Result<()> {
    for item in overrides {
        let (key, raw) = item.split_once('=').ok_or_else(|| {
            TaskError::Config(format!("override `{item}` is not `section.key=value`"))
        })?;
        let value: toml::Value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_string()));
        let mut parts: Vec<&str> = key.trim().split('.').collect();
        let last = parts
            .pop()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| TaskError::Config(format!("override `{item}` has an empty key")))?;
        let mut cur = &mut *table;
        for p in parts {
            let entry = cur
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cur = entry.as_table_mut().ok_or_else(|| {
                TaskError::Config(format!("override `{item}`: `{p}` is not a section"))
            })?;
        }
        cur.insert(last.to_string(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[model]
preset = "tiny"
[train]
steps = 10
batch_size = 4
lr_head = 1e-3
lr_backbone = 1e-4
weight_decay = 0.1
beta1 = 0.9
beta2 = 0.999
eps = 1e-8
[run]
out_dir = "runs/x"
"#;

    #[test]
    fn parses_overrides_and_validates() {
        let mut t: toml::Table = MIN.parse().unwrap();
        apply_overrides(
            &mut t,
            &[
                "train.steps=20".into(),
                "run.device=cpu".into(),
                "data.root=\"/d\"".into(),
            ],
        )
        .unwrap();
        let cfg = RunConfig::from_table(t, "x.toml").unwrap();
        assert_eq!(cfg.train.steps, 20);
        assert_eq!(cfg.data["root"].as_str(), Some("/d"));
        let mut t: toml::Table = MIN.parse().unwrap();
        apply_overrides(&mut t, &["train.warmup_steps=50".into()]).unwrap();
        let e = RunConfig::from_table(t, "x.toml").unwrap_err().to_string();
        assert!(e.contains("warmup_steps") && e.contains("x.toml"), "{e}");
        let mut t: toml::Table = MIN.parse().unwrap();
        apply_overrides(&mut t, &["train.stepz=5".into()]).unwrap();
        let e = RunConfig::from_table(t, "x.toml").unwrap_err().to_string();
        assert!(e.contains("stepz"), "{e}");
    }

    #[test]
    fn randaugment_is_optional_and_checked() {
        let cfg = RunConfig::from_table(MIN.parse().unwrap(), "x.toml").unwrap();
        assert_eq!(cfg.train.randaugment, None);
        let mut t: toml::Table = MIN.parse().unwrap();
        apply_overrides(
            &mut t,
            &["train.randaugment={ ops = 1, magnitude = 10 }".into()],
        )
        .unwrap();
        let cfg = RunConfig::from_table(t, "x.toml").unwrap();
        assert_eq!(cfg.train.randaugment, Some(RandAugment::new(1, 10.0)));
        // The resolved configuration written to the run directory reads back the same.
        let back: toml::Table = cfg.to_toml().unwrap().parse().unwrap();
        assert_eq!(RunConfig::from_table(back, "y.toml").unwrap(), cfg);
        for (bad, what) in [
            ("{ ops = 1, magnitude = -2 }", "magnitude"),
            ("{ ops = 1, magnitude = 10, prob = 2 }", "prob"),
            ("{ ops = 1, magnitud = 10 }", "magnitud"),
        ] {
            let mut t: toml::Table = MIN.parse().unwrap();
            apply_overrides(&mut t, &[format!("train.randaugment={bad}")]).unwrap();
            let e = RunConfig::from_table(t, "x.toml").unwrap_err().to_string();
            assert!(e.contains(what) && e.contains("x.toml"), "{e}");
        }
    }
}
