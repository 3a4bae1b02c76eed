//! Running a task from a [`RunConfig`]: loading the backbone, then handing over to the task's
//! [`TaskSpec`] (found in [`registry`](crate::registry)), which reads its own sections and
//! calls [`Setup::act`]. Used by `coca-cli finetune` / `predict` and by the [`FineTune`]
//! builder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::Module;
use burn::store::ModuleSnapshot;
use serde::de::DeserializeOwned;

use crate::engine::config::apply_overrides;
use crate::engine::train::run_device;
use crate::engine::{Backbone, RunConfig, RunOutcome, Trainer};
use crate::error::{Result, TaskError};
use crate::inputs::Inputs;
use crate::inputs::rendered::{RenderedInputs, TextBand};
use crate::registry::{TaskSpec, find};
use crate::task::{EvalContext, Evaluation, Task};

/// What to do with a built task.
#[derive(Debug, Clone, Copy)]
enum Action<'a> {
    Train {
        resume: bool,
    },
    /// Evaluate the exported model of a run (`dir/export`) on the configured validation data.
    Predict {
        export_dir: &'a Path,
    },
}

/// The result of [`Setup::act`]: a finished training run or a prediction.
pub enum Done {
    Trained(RunOutcome),
    Predicted(Evaluation),
}

/// What a [`TaskSpec`] gets to build its task: the run configuration, the loaded backbone and
/// what is being done (training, or predicting with an export).
pub struct Setup<'a> {
    config: RunConfig,
    backbone: Backbone,
    action: Action<'a>,
}

impl Setup<'_> {
    /// The run configuration.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// The pretrained (or exported) backbone.
    pub fn backbone(&self) -> &Backbone {
        &self.backbone
    }

    /// Image and text preprocessing of a CoCa backbone, with the run's augmentation; an error
    /// naming `task` for a CLIPPO backbone.
    pub fn inputs(&self, task: &str) -> Result<Inputs> {
        Ok(Inputs::new(self.backbone.coca(task)?).with_augmentation(&self.config.train))
    }

    /// Inputs of a CLIPPO backbone (photos, rendered text, text banded onto photos as `band`
    /// says); an error naming `task` for a CoCa backbone.
    pub fn rendered_inputs(&self, task: &str, band: TextBand) -> Result<RenderedInputs> {
        RenderedInputs::new(self.backbone.clippo(task)?.config.image_size, band)
    }

    /// Attention heads for a task pooler over CoCa's multimodal decoder (its head count).
    pub fn decoder_heads(&self, task: &str) -> Result<usize> {
        Ok(self.backbone.coca(task)?.config.multimodal_cfg.heads)
    }

    /// The `[data]` section as the task's type.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T> {
        RunConfig::section(&self.config.data, "data")
    }

    /// The `[task]` section as the task's type.
    pub fn task_config<T: DeserializeOwned>(&self) -> Result<T> {
        RunConfig::section(&self.config.task, "task")
    }

    /// The export directory when predicting, `None` when training.
    pub fn export_dir(&self) -> Option<&Path> {
        match self.action {
            Action::Predict { export_dir } => Some(export_dir),
            Action::Train { .. } => None,
        }
    }

    /// Both splits to train (`both`); only the validation split to predict (`val`).
    pub fn splits<T>(
        &self,
        both: impl FnOnce() -> Result<(Vec<T>, Vec<T>)>,
        val: impl FnOnce() -> Result<Vec<T>>,
    ) -> Result<(Vec<T>, Vec<T>)> {
        match self.action {
            Action::Predict { .. } => Ok((Vec::new(), val()?)),
            Action::Train { .. } => both(),
        }
    }

    /// Trains `task` on `train` (validating on `val`), or evaluates the export on `val`.
    pub fn act<T: Task>(self, task: T, train: Vec<T::Item>, val: Vec<T::Item>) -> Result<Done> {
        let Setup {
            config,
            backbone,
            action,
        } = self;
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
                let model = task.build_model(&backbone, &device)?;
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
}

/// Loads `head.*` parameters from an exported `head.safetensors` (absent file = no head).
pub fn load_head<M: Module>(mut model: M, path: &Path) -> Result<M> {
    let expected: Vec<String> = model
        .collect(None, None, false)
        .into_iter()
        .map(|t| t.name)
        .filter(|n| !crate::task::is_backbone_path(n))
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

fn dispatch(spec: &dyn TaskSpec, config: RunConfig, action: Action) -> Result<Done> {
    let device = run_device(&config)?;
    device.seed(config.train.seed);
    let backbone = match &action {
        Action::Predict { export_dir } => {
            let mut section = config.model.clone();
            section.id = Some(export_dir.display().to_string());
            // The export's own tokenizer.json if it has one, else the built-in vocabulary; the
            // family is read off the export's files.
            section.tokenizer = None;
            section.family = None;
            Backbone::load(&section, &device)?
        }
        Action::Train { .. } => Backbone::load(&config.model, &device)?,
    };
    spec.run(Setup {
        config,
        backbone,
        action,
    })
}

/// Trains the task called `task` as `config` says (continuing from the run directory's
/// checkpoints if `resume`).
pub fn finetune(task: &str, config: RunConfig, resume: bool) -> Result<RunOutcome> {
    match dispatch(find(task)?, config, Action::Train { resume })? {
        Done::Trained(o) => Ok(o),
        Done::Predicted(_) => unreachable!("training returns a run outcome"),
    }
}

/// Evaluates the exported model of `run_dir` (a run of the task called `task`) on its configured validation data (optionally
/// overridden), writing predictions and `metrics.json` into `out_dir`.
pub fn predict(
    task: &str,
    run_dir: &Path,
    overrides: &[String],
    out_dir: &Path,
) -> Result<Evaluation> {
    let config_path = run_dir.join("config.toml");
    let mut config = RunConfig::load(&config_path, overrides)?;
    config.run.out_dir = out_dir.to_path_buf();
    let export_dir = run_dir.join("export");
    let spec = find(task)?;
    let evaluation = match dispatch(
        spec,
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
    let json = serde_json::to_vec_pretty(&serde_json::json!({"task": spec.name(), "metric": evaluation.metric, "metrics": evaluation.metrics, "skipped": evaluation.skipped}))
        .map_err(|e| TaskError::Config(e.to_string()))?;
    coca_core::checkpoint::write_atomic(&out_dir.join("metrics.json"), &json)?;
    Ok(evaluation)
}

/// A builder for fine-tuning runs from Rust code.
///
/// Pretrained weights on a GPU (a `--features libtorch` build):
///
/// ```no_run
/// use coca_tasks::run::FineTune;
/// # fn main() -> coca_tasks::Result<()> {
/// let outcome = FineTune::new("snli-ve")
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
/// use coca_tasks::run::FineTune;
/// use coca_tasks::synth::{SynthSize, generate};
/// # fn main() -> coca_tasks::Result<()> {
/// # let tmp = std::env::temp_dir().join(format!("coca-doc-finetune-{}", std::process::id()));
/// let world = tmp.join("world");
/// generate(&world, 0, SynthSize::Tiny)?;
/// let outcome = FineTune::new("snli-ve")
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
    task: String,
    overrides: Vec<String>,
}

/// A validated fine-tuning run, ready to start.
#[derive(Debug, Clone)]
pub struct FineTuneRun {
    task: &'static str,
    config: RunConfig,
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

impl FineTune {
    /// A run of the task called `task` (`vqa`, `snli-ve`, ...; checked by [`build`](Self::build))
    /// with the engine's defaults.
    pub fn new(task: &str) -> Self {
        Self {
            task: task.to_string(),
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
            task: find(&self.task)?.name(),
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
        finetune(self.task, self.config, false)
    }
}
