//! How the SDK runs, scores and synthesises `video` (the task's [`TaskSpec`]).

use std::path::Path;

use crate::classify::classes_from_task_json;
use crate::error::{Result, TaskError};
use crate::registry::{Bar, EvalFile, EvalFiles, Report, SynthTask, TaskSpec};
use crate::run::{Done, Setup};
use crate::synth::SynthSize;

use super::{Video, VideoData, VideoTaskConfig, score_predictions_file};

/// `video` in the registry.
pub struct VideoSpec;

/// The registry entry.
pub static SPEC: VideoSpec = VideoSpec;

impl TaskSpec for VideoSpec {
    fn name(&self) -> &'static str {
        "video"
    }

    fn about(&self) -> &'static str {
        "Video action recognition: frames through the image encoder, one attentional pooler over all frames' tokens"
    }

    fn run(&self, setup: Setup<'_>) -> Result<Done> {
        let data: VideoData = setup.data()?;
        let config: VideoTaskConfig = setup.task_config()?;
        config.validate()?;
        let (classes, train, val) = match setup.export_dir() {
            Some(export) => {
                let classes = classes_from_task_json(&export.join("task.json"))?;
                let val = data.load_val(&classes)?;
                (classes, Vec::new(), val)
            }
            None => data.load()?,
        };
        let task = Video::new(
            setup.inputs(self.name())?,
            classes,
            config,
            setup.backbone().coca(self.name())?.config.vision_heads(),
        );
        setup.act(task, train, val)
    }

    fn eval_files(&self) -> &'static [EvalFile] {
        &[
            EvalFile {
                flag: "data",
                help: "Labels: a Kinetics CSV (`label,youtube_id,time_start,time_end,split`) or a `clip_dir label` list",
            },
            EvalFile {
                flag: "predictions",
                help: "Predictions CSV `clip,label,top5` (as `predict` writes)",
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
        data.insert("train".into(), path(&s.train_csv));
        data.insert("val".into(), path(&s.val_csv));
        data.insert("frames".into(), path(&s.frames_dir));
        let bar = Bar {
            metric: "accuracy".into(),
            value: s.single_frame_ceiling,
            what: "single-frame ceiling".into(),
        };
        Ok(Some(SynthTask {
            summary: serde_json::to_value(&s).map_err(|e| TaskError::Config(e.to_string()))?,
            data,
            config: include_str!("example.toml"),
            bar: Some(bar),
        }))
    }
}
