//! How the SDK runs, scores and synthesises `classify` (the task's [`TaskSpec`]).

use std::path::Path;

use crate::error::{Result, TaskError};
use crate::registry::{Bar, EvalFile, EvalFiles, Report, SynthTask, TaskSpec};
use crate::run::{Done, Setup};
use crate::synth::SynthSize;
use crate::task::EvalContext;

use super::clippo::ClippoClassify;
use super::metrics::ClassifyScores;
use super::metrics::score_predictions_file;
use super::{Classify, ClassifyData, ClassifyTaskConfig, classes_from_task_json};
use crate::engine::Backbone;

/// `classify` in the registry.
pub struct ClassifySpec;

/// The registry entry.
pub static SPEC: ClassifySpec = ClassifySpec;

/// Prompt templates of the zero-shot figure reported beside the trained accuracy.
const TEMPLATES: [&str; 3] = ["a photo of a {}.", "a {} shape.", "{}"];

impl TaskSpec for ClassifySpec {
    fn name(&self) -> &'static str {
        "classify"
    }

    fn about(&self) -> &'static str {
        "Image classification: attentional pooler over the image encoder (CoCa or CLIPPO) + softmax classifier"
    }

    fn run(&self, setup: Setup<'_>) -> Result<Done> {
        let data: ClassifyData = setup.data()?;
        let config: ClassifyTaskConfig = setup.task_config()?;
        let (classes, train, val) = match setup.export_dir() {
            Some(export) => {
                let classes = classes_from_task_json(&export.join("task.json"))?;
                let val = data.load_val(&classes)?;
                (classes, Vec::new(), val)
            }
            None => data.load()?,
        };
        let out_dir = setup.config().run.out_dir.clone();
        let confusion_png = Some(out_dir.join("confusion.png"));
        let training = setup.export_dir().is_none();
        match setup.backbone() {
            Backbone::Coca(b) => {
                let task = Classify {
                    inputs: setup.inputs(self.name())?,
                    classes,
                    config,
                    heads: b.config.vision_heads(),
                    confusion_png,
                };
                if training {
                    let ctx = eval_context(&setup)?;
                    let s = task.zero_shot(&b.coca, &val, &TEMPLATES, &ctx)?;
                    write_zero_shot(&s, &out_dir)?;
                }
                setup.act(task, train, val)
            }
            Backbone::Clippo(b) => {
                let task = ClippoClassify {
                    inputs: setup.rendered_inputs(self.name(), Default::default())?,
                    classes,
                    config,
                    heads: b.config.num_heads,
                    confusion_png,
                };
                if training {
                    let ctx = eval_context(&setup)?;
                    let s = task.zero_shot(&b.clippo, &val, &TEMPLATES, &ctx)?;
                    write_zero_shot(&s, &out_dir)?;
                }
                setup.act(task, train, val)
            }
        }
    }

    fn eval_files(&self) -> &'static [EvalFile] {
        &[
            EvalFile {
                flag: "data",
                help: "Labels: an ImageFolder directory or a `path,label` CSV",
            },
            EvalFile {
                flag: "predictions",
                help: "Predictions CSV `path,label,top5` (as `predict` writes)",
            },
        ]
    }

    fn evaluate_files(&self, files: &EvalFiles) -> Result<Report> {
        let s = score_predictions_file(files.get("predictions")?, files.get("data")?)?;
        Ok(s.report())
    }

    fn synth(&self, out: &Path, seed: u64, size: SynthSize) -> Result<Option<SynthTask>> {
        let s = super::synth::write(out, seed, size)?;
        let mut data = toml::Table::new();
        let path = |p: &Path| toml::Value::String(out.join(p).display().to_string());
        data.insert("train".into(), path(&s.train_dir));
        data.insert("val".into(), path(&s.val_dir));
        let bar = Bar {
            metric: "accuracy".into(),
            value: s.chance + 0.3,
            what: "chance + 0.3".into(),
        };
        Ok(Some(SynthTask {
            summary: serde_json::to_value(&s).map_err(|e| TaskError::Config(e.to_string()))?,
            data,
            config: include_str!("example.toml"),
            bar: Some(bar),
        }))
    }
}

/// The evaluation settings of the run (for the zero-shot figure).
fn eval_context(setup: &Setup<'_>) -> Result<EvalContext> {
    let config = setup.config();
    Ok(EvalContext {
        device: crate::engine::train::run_device(config)?,
        batch_size: config.eval.batch_size,
        workers: config.train.workers,
        strict: config.run.strict,
    })
}

/// Logs the zero-shot scores of the backbone before training (class names in prompt
/// templates) and writes them to `zero_shot.json` in the run directory, beside the trained
/// figures.
fn write_zero_shot(s: &ClassifyScores, out_dir: &Path) -> Result<()> {
    tracing::info!(
        accuracy = s.accuracy,
        top5 = s.top5,
        "zero-shot accuracy of the backbone on the class names"
    );
    std::fs::create_dir_all(out_dir).map_err(|e| TaskError::io(out_dir, e))?;
    let json = serde_json::json!({"templates": TEMPLATES, "metrics": s.metrics()});
    let bytes = serde_json::to_vec_pretty(&json).map_err(|e| TaskError::Config(e.to_string()))?;
    coca_core::checkpoint::write_atomic(&out_dir.join("zero_shot.json"), &bytes)?;
    Ok(())
}
