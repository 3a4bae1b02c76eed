//! Running a task from a [`RunConfig`]: the one place that maps a task kind to its data, head
//! and trainer. Used by `coca-cli finetune` / `predict` and by the [`FineTune`] builder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::Module;
use burn::store::ModuleSnapshot;
use serde::{Deserialize, Serialize};

use crate::caption::{CaptionData, CaptionTaskConfig, Captioning};
use crate::engine::config::apply_overrides;
use crate::engine::train::run_device;
use crate::engine::{Backbone, RunConfig, RunOutcome, Trainer};
use crate::error::{Result, TaskError};
use crate::inputs::Inputs;
use crate::nlvr2::{Nlvr2, Nlvr2Data};
use crate::pretrain::{CaptionPair, Pretrain, PretrainConfig};
use crate::snli_ve::{SnliVe, SnliVeData};
use crate::task::{EvalContext, Evaluation, Task};
use crate::vqa::data::AnswerVocab;
use crate::vqa::{Vqa, VqaData, VqaTaskConfig};

/// The tasks (a closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    Vqa,
    SnliVe,
    Nlvr2,
    Caption,
    /// CoCa's own objective on image-caption pairs (continued pretraining).
    Pretrain,
}

impl TaskKind {
    /// The name used on the command line and in `task.json`.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Vqa => "vqa",
            TaskKind::SnliVe => "snli-ve",
            TaskKind::Nlvr2 => "nlvr2",
            TaskKind::Caption => "caption",
            TaskKind::Pretrain => "pretrain",
        }
    }
}

/// What to do with a built task.
enum Action<'a> {
    Train {
        resume: bool,
    },
    /// Evaluate the exported model of a run (`dir/export`) on the configured validation data.
    Predict {
        export_dir: &'a Path,
    },
}

/// The result of [`Action`].
enum Done {
    Trained(RunOutcome),
    Predicted(Evaluation),
}

fn act<T: Task>(
    task: T,
    config: RunConfig,
    backbone: Backbone,
    train: Vec<T::Item>,
    val: Vec<T::Item>,
    action: Action,
) -> Result<Done> {
    match action {
        Action::Train { resume } => {
            let trainer = Trainer {
                task: Arc::new(task),
                config,
                backbone,
                train: Arc::new(train),
                val,
            };
            Ok(Done::Trained(trainer.run(resume)?))
        }
        Action::Predict { export_dir } => {
            let device = run_device(&config)?;
            let model = task.build_model(backbone.coca.clone(), &device);
            let model = load_head(model, &export_dir.join("head.safetensors"))?;
            // Exported weights are f32; a bf16 run predicts in bf16.
            let model = coca_core::precision::for_device(model, &device);
            let ctx = EvalContext {
                device,
                batch_size: config.eval.batch_size,
                workers: config.train.workers,
                strict: config.run.strict,
            };
            Ok(Done::Predicted(task.evaluate(&model, &val, &ctx)?))
        }
    }
}

/// Loads `head.*` parameters from an exported `head.safetensors` (absent file = no head).
pub fn load_head<M: Module>(mut model: M, path: &Path) -> Result<M> {
    let expected: Vec<String> = model
        .collect(None, None, false)
        .into_iter()
        .map(|t| t.name)
        .filter(|n| !n.starts_with(crate::task::BACKBONE_PREFIX))
        .collect();
    if expected.is_empty() {
        return Ok(model);
    }
    let state = coca_core::checkpoint::read_state_dict(path)?;
    let missing: Vec<_> = expected
        .iter()
        .filter(|k| !state.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(TaskError::Data {
            path: path.to_path_buf(),
            msg: format!("missing head parameters {missing:?}"),
        });
    }
    let tensors = state
        .into_iter()
        .map(|(k, v)| burn::store::bridge::from_data(v, k, None))
        .collect();
    let result = model.apply(tensors, None, None, false);
    if !result.errors.is_empty() || !result.unused.is_empty() {
        return Err(TaskError::Data {
            path: path.to_path_buf(),
            msg: format!(
                "head does not match: {:?} unused {:?}",
                result.errors, result.unused
            ),
        });
    }
    Ok(model)
}

fn dispatch(kind: TaskKind, config: RunConfig, action: Action) -> Result<Done> {
    let device = run_device(&config)?;
    device.seed(config.train.seed);
    let backbone = match &action {
        Action::Predict { export_dir } => {
            let mut section = config.model.clone();
            section.id = Some(export_dir.display().to_string());
            // The export's own tokenizer.json if it has one, else the built-in vocabulary.
            section.tokenizer = None;
            Backbone::load(&section, &device)?
        }
        Action::Train { .. } => Backbone::load(&config.model, &device)?,
    };
    let inputs = Inputs::new(&backbone).with_augmentation(&config.train);
    let heads = backbone.config.multimodal_cfg.heads;
    match kind {
        TaskKind::Vqa => {
            let data: VqaData = RunConfig::section(&config.data, "data")?;
            let task_cfg: VqaTaskConfig = RunConfig::section(&config.task, "task")?;
            let (vocab, train, val) = match &action {
                // The answer vocabulary is the one the head was trained with.
                Action::Predict { export_dir } => {
                    let vocab = AnswerVocab::from_task_json(&export_dir.join("task.json"))?;
                    let val = data.load_val_with(&vocab)?;
                    (vocab, Vec::new(), val)
                }
                Action::Train { .. } => {
                    let (vocab, train, val) = data.load()?;
                    let dir = &config.run.out_dir;
                    std::fs::create_dir_all(dir).map_err(|e| TaskError::io(dir, e))?;
                    vocab.save(&dir.join("answer_vocab.json"))?;
                    (vocab, train, val)
                }
            };
            act(
                Vqa {
                    inputs,
                    heads,
                    vocab,
                    config: task_cfg,
                },
                config,
                backbone,
                train,
                val,
                action,
            )
        }
        TaskKind::SnliVe => {
            let data: SnliVeData = RunConfig::section(&config.data, "data")?;
            let (train, val) = splits(&action, || data.load(), || data.load_val())?;
            act(
                SnliVe { inputs, heads },
                config,
                backbone,
                train,
                val,
                action,
            )
        }
        TaskKind::Nlvr2 => {
            let data: Nlvr2Data = RunConfig::section(&config.data, "data")?;
            let (train, val) = splits(&action, || data.load(), || data.load_val())?;
            act(
                Nlvr2 { inputs, heads },
                config,
                backbone,
                train,
                val,
                action,
            )
        }
        TaskKind::Caption => {
            let data: CaptionData = RunConfig::section(&config.data, "data")?;
            let task_cfg: CaptionTaskConfig = RunConfig::section(&config.task, "task")?;
            let (train, val) = data.load()?;
            act(
                Captioning {
                    inputs,
                    config: task_cfg,
                },
                config,
                backbone,
                train,
                val,
                action,
            )
        }
        TaskKind::Pretrain => {
            let data: CaptionData = RunConfig::section(&config.data, "data")?;
            let task_cfg: PretrainConfig = RunConfig::section(&config.task, "task")?;
            let (train, val) = data.load()?;
            let pairs = |v: Vec<crate::caption::CaptionItem>| -> Vec<CaptionPair> {
                v.into_iter()
                    .map(|i| CaptionPair {
                        image: i.image,
                        caption: i.caption,
                    })
                    .collect()
            };
            act(
                Pretrain {
                    inputs,
                    config: task_cfg,
                },
                config,
                backbone,
                pairs(train),
                pairs(val),
                action,
            )
        }
    }
}

/// Both splits to train; only the validation split to predict.
fn splits<T>(
    action: &Action,
    both: impl FnOnce() -> Result<(Vec<T>, Vec<T>)>,
    val: impl FnOnce() -> Result<Vec<T>>,
) -> Result<(Vec<T>, Vec<T>)> {
    match action {
        Action::Predict { .. } => Ok((Vec::new(), val()?)),
        Action::Train { .. } => both(),
    }
}

/// Trains `kind` as `config` says (continuing from the run directory's checkpoints if `resume`).
pub fn finetune(kind: TaskKind, config: RunConfig, resume: bool) -> Result<RunOutcome> {
    match dispatch(kind, config, Action::Train { resume })? {
        Done::Trained(o) => Ok(o),
        Done::Predicted(_) => unreachable!("training returns a run outcome"),
    }
}

/// Evaluates the exported model of `run_dir` on its configured validation data (optionally
/// overridden), writing predictions and `metrics.json` into `out_dir`.
pub fn predict(
    kind: TaskKind,
    run_dir: &Path,
    overrides: &[String],
    out_dir: &Path,
) -> Result<Evaluation> {
    let config_path = run_dir.join("config.toml");
    let mut config = RunConfig::load(&config_path, overrides)?;
    config.run.out_dir = out_dir.to_path_buf();
    let export_dir = run_dir.join("export");
    let evaluation = match dispatch(
        kind,
        config,
        Action::Predict {
            export_dir: &export_dir,
        },
    )? {
        Done::Predicted(e) => e,
        Done::Trained(_) => unreachable!("prediction returns an evaluation"),
    };
    std::fs::create_dir_all(out_dir).map_err(|e| TaskError::io(out_dir, e))?;
    if let Some((name, bytes)) = &evaluation.predictions {
        coca_core::checkpoint::write_atomic(&out_dir.join(name), bytes)?;
    }
    let json = serde_json::to_vec_pretty(&serde_json::json!({"task": kind.name(), "metric": evaluation.metric, "metrics": evaluation.metrics, "skipped": evaluation.skipped}))
        .map_err(|e| TaskError::Config(e.to_string()))?;
    coca_core::checkpoint::write_atomic(&out_dir.join("metrics.json"), &json)?;
    Ok(evaluation)
}

/// A builder for fine-tuning runs from Rust code.
///
/// Pretrained weights on a GPU (a `--features libtorch` build):
///
/// ```no_run
/// use coca_tasks::run::{FineTune, TaskKind};
/// # fn main() -> coca_tasks::Result<()> {
/// let outcome = FineTune::new(TaskKind::SnliVe)
///     .model("hf-hub:laion/CoCa-ViT-B-32-laion2B-s13B-b90k")
///     .data("train", "snli_ve_train.jsonl")
///     .data("val", "snli_ve_dev.jsonl")
///     .data("images", "flickr30k-images")
///     .learning_rate(1e-3, 5e-5)
///     .batch_size(128)
///     .steps(50_000)
///     .device("cuda:0")
///     .out_dir("runs/snli-ve")
///     .build()?
///     .run()?;
/// println!("{:?}", outcome.final_metrics);
/// # Ok(()) }
/// ```
///
/// A complete run on the CPU: a tiny random-weight model on the synthetic world.
///
/// ```
/// use coca_tasks::run::{FineTune, TaskKind};
/// use coca_tasks::synth::{SynthSize, generate};
/// # fn main() -> coca_tasks::Result<()> {
/// # let tmp = std::env::temp_dir().join(format!("coca-doc-finetune-{}", std::process::id()));
/// let world = tmp.join("world");
/// generate(&world, 0, SynthSize::Tiny)?;
/// let outcome = FineTune::new(TaskKind::SnliVe)
///     .preset("tiny")
///     .data("train", world.join("snli-ve/snli_ve_train.jsonl"))
///     .data("val", world.join("snli-ve/snli_ve_dev.jsonl"))
///     .data("images", world.join("snli-ve/flickr30k-images"))
///     .learning_rate(1e-3, 1e-3)
///     .batch_size(8)
///     .steps(20)
///     .set("train.warmup_steps", 2)
///     .set("run.progress", false)
///     .out_dir(tmp.join("run"))
///     .build()?
///     .run()?;
/// assert_eq!(outcome.steps, 20);
/// let accuracy = outcome.final_metrics["accuracy"];
/// assert!((0.0..=1.0).contains(&accuracy));
/// assert!(tmp.join("run/export/task.json").is_file());
/// # std::fs::remove_dir_all(&tmp).ok();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FineTune {
    kind: TaskKind,
    overrides: Vec<String>,
}

/// A validated fine-tuning run, ready to start.
#[derive(Debug, Clone)]
pub struct FineTuneRun {
    kind: TaskKind,
    config: RunConfig,
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

impl FineTune {
    /// A run of `kind` with the engine's defaults.
    pub fn new(kind: TaskKind) -> Self {
        Self {
            kind,
            overrides: Vec::new(),
        }
    }

    /// Any `section.key=value` setting (value in TOML syntax).
    pub fn set(mut self, key: &str, value: impl std::fmt::Display) -> Self {
        self.overrides.push(format!("{key}={value}"));
        self
    }

    /// Pretrained model id (directory, file, `hf-hub:<repo>`, short name).
    pub fn model(self, id: &str) -> Self {
        self.set("model.id", toml_string(id))
    }

    /// Random-init preset instead of pretrained weights (`tiny`, `coca_ViT-B-32`, ...).
    pub fn preset(self, name: &str) -> Self {
        self.set("model.preset", toml_string(name))
    }

    /// `tokenizer.json` to use instead of the built-in CLIP vocabulary.
    pub fn tokenizer(self, path: impl AsRef<Path>) -> Self {
        self.set(
            "model.tokenizer",
            toml_string(&path.as_ref().display().to_string()),
        )
    }

    /// A `[data]` path entry, e.g. `("train", "snli_ve_train.jsonl")` or `("train.questions", ...)`.
    pub fn data(self, key: &str, path: impl AsRef<Path>) -> Self {
        let key = format!("data.{key}");
        self.set(&key, toml_string(&path.as_ref().display().to_string()))
    }

    /// Peak learning rates of the head and the backbone.
    pub fn learning_rate(self, head: f64, backbone: f64) -> Self {
        self.set("train.lr_head", head)
            .set("train.lr_backbone", backbone)
    }

    pub fn steps(self, steps: usize) -> Self {
        self.set("train.steps", steps)
    }

    pub fn batch_size(self, batch: usize) -> Self {
        self.set("train.batch_size", batch)
    }

    /// RandAugment after the crop with `ops` operations at `magnitude` (0-10); the paper uses
    /// (1, 10) for VQAv2 and SNLI-VE.
    pub fn randaugment(self, ops: usize, magnitude: f32) -> Self {
        self.set(
            "train.randaugment",
            format!("{{ ops = {ops}, magnitude = {magnitude:?} }}"),
        )
    }

    /// `cpu`, `cuda:N`, `cubecl-cuda:N`, `libtorch-cpu`.
    pub fn device(self, device: &str) -> Self {
        self.set("run.device", toml_string(device))
    }

    pub fn out_dir(self, dir: impl Into<PathBuf>) -> Self {
        let dir: PathBuf = dir.into();
        self.set("run.out_dir", toml_string(&dir.display().to_string()))
    }

    /// Validates the configuration.
    pub fn build(self) -> Result<FineTuneRun> {
        let mut table = toml::Table::new();
        apply_overrides(&mut table, &self.overrides)?;
        for section in ["model", "train", "run"] {
            table
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        }
        let train = table.get_mut("train").and_then(|t| t.as_table_mut());
        if let Some(train) = train {
            train.entry("steps").or_insert(toml::Value::Integer(1000));
            train
                .entry("batch_size")
                .or_insert(toml::Value::Integer(32));
        }
        Ok(FineTuneRun {
            kind: self.kind,
            config: RunConfig::from_table(table, "FineTune builder")?,
        })
    }
}

impl FineTuneRun {
    /// The resolved configuration.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// Trains and returns the outcome (final metrics, best step, ...).
    pub fn run(self) -> Result<RunOutcome> {
        finetune(self.kind, self.config, false)
    }
}
