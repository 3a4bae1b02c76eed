//! How the SDK runs and scores COCO captioning (the task's [`TaskSpec`]).

use crate::error::Result;
use crate::metrics::caption::evaluate_caption_files;
use crate::registry::{EvalFile, EvalFiles, Report, TaskSpec};
use crate::run::{Done, Setup};

use super::{CaptionData, CaptionTaskConfig, Captioning};

/// COCO captioning in the registry.
pub struct CaptionSpec;

/// The registry entry.
pub static SPEC: CaptionSpec = CaptionSpec;

impl TaskSpec for CaptionSpec {
    fn name(&self) -> &'static str {
        "caption"
    }

    fn about(&self) -> &'static str {
        "COCO captioning (Karpathy splits): the decoder's captioning loss, COCO caption metrics"
    }

    fn run(&self, setup: Setup<'_>) -> Result<Done> {
        let data: CaptionData = setup.data()?;
        let config: CaptionTaskConfig = setup.task_config()?;
        let (train, val) = data.load()?;
        let task = Captioning {
            inputs: setup.inputs(self.name())?,
            config,
        };
        setup.act(task, train, val)
    }

    fn eval_files(&self) -> &'static [EvalFile] {
        &[
            EvalFile {
                flag: "annotations",
                help: "Ground truth in COCO caption format",
            },
            EvalFile {
                flag: "results",
                help: "Results `[{image_id, caption}]`",
            },
        ]
    }

    fn evaluate_files(&self, files: &EvalFiles) -> Result<Report> {
        let s = evaluate_caption_files(files.get("annotations")?, files.get("results")?)?;
        let json = s.to_json();
        let mut text = String::new();
        if let serde_json::Value::Object(m) = &json {
            for (k, v) in m {
                text.push_str(&format!("{k}: {:.4}\n", v.as_f64().unwrap_or(f64::NAN)));
            }
        }
        if let Some(note) = &s.meteor_note {
            text.push_str(&format!("METEOR: not computed ({note})"));
        }
        Ok(Report {
            json,
            text: text.trim_end().to_string(),
        })
    }
}
