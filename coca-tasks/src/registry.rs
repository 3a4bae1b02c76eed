//! The task registry. Every task folder (`vqa/`, `snli_ve/`, ...) defines one [`TaskSpec`]
//! and [`TASKS`] lists them: the engine's dispatch, the CLI's `finetune`, `predict`,
//! `evaluate` and `synth`, and the [`FineTune`](crate::run::FineTune) builder learn about tasks
//! from this list alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Result, TaskError};
use crate::run::{Done, Setup};
use crate::synth::SynthSize;

/// What a task folder tells the rest of the SDK about its task.
pub trait TaskSpec: Sync {
    /// The name on the command line and in `task.json` (`vqa`, `snli-ve`, ...).
    fn name(&self) -> &'static str;
    /// One line for `--help`.
    fn about(&self) -> &'static str;
    /// Reads the task's `[data]` / `[task]` sections, builds the task and hands it to
    /// [`Setup::act`] (train or predict).
    fn run(&self, setup: Setup<'_>) -> Result<Done>;
    /// The files `coca-cli evaluate <task>` takes (scoring a predictions file, no model).
    fn eval_files(&self) -> &'static [EvalFile];
    /// Scores predictions against ground truth with the task's official metric.
    fn evaluate_files(&self, files: &EvalFiles) -> Result<Report>;
    /// Writes the task's part of the synthetic world under `out` (for tasks whose data is not
    /// generated with the shared COCO world); `None` when the task has none.
    fn synth(&self, _out: &Path, _seed: u64, _size: SynthSize) -> Result<Option<SynthTask>> {
        Ok(None)
    }
}

/// Every task, in the order `--help` lists them.
pub static TASKS: &[&dyn TaskSpec] = &[
    &crate::vqa::SPEC,
    &crate::snli_ve::SPEC,
    &crate::nlvr2::SPEC,
    &crate::caption::SPEC,
    &crate::pretrain::SPEC,
    &crate::classify::SPEC,
    &crate::video::SPEC,
];

/// The names of all tasks.
pub fn names() -> Vec<&'static str> {
    TASKS.iter().map(|t| t.name()).collect()
}

/// The task called `name`; the error lists the known names.
pub fn find(name: &str) -> Result<&'static dyn TaskSpec> {
    TASKS
        .iter()
        .copied()
        .find(|t| t.name() == name)
        .ok_or_else(|| {
            TaskError::Config(format!(
                "unknown task `{name}` (known: {})",
                names().join(", ")
            ))
        })
}

/// A file argument of `coca-cli evaluate <task>` (`--<flag> PATH`).
#[derive(Debug, Clone, Copy)]
pub struct EvalFile {
    pub flag: &'static str,
    pub help: &'static str,
}

/// The files given to `coca-cli evaluate <task>`, by flag.
#[derive(Debug, Clone, Default)]
pub struct EvalFiles(pub BTreeMap<String, PathBuf>);

impl EvalFiles {
    /// The path given for `--flag`.
    pub fn get(&self, flag: &str) -> Result<&Path> {
        self.0
            .get(flag)
            .map(PathBuf::as_path)
            .ok_or_else(|| TaskError::Config(format!("--{flag} is required")))
    }
}

/// The result of scoring a predictions file: what `--json` prints, and the text report.
#[derive(Debug, Clone)]
pub struct Report {
    pub json: serde_json::Value,
    pub text: String,
}

/// A task's part of the synthetic world.
#[derive(Debug, Clone)]
pub struct SynthTask {
    /// Summary (files, baselines) stored under the task's name in `summary.json`.
    pub summary: serde_json::Value,
    /// The `[data]` section that trains the task on these files (absolute paths).
    pub data: toml::Table,
    /// The task's example run configuration for this world (TOML), completed with `data`.
    pub config: &'static str,
    /// What a trained model must beat on this world (checked by the CPU pipeline test).
    pub bar: Option<Bar>,
}

/// A baseline a trained model must beat: `final.<metric>` of its `metrics.json` above `value`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bar {
    pub metric: String,
    pub value: f64,
    /// What the value is (e.g. "single-frame ceiling").
    pub what: String,
}
