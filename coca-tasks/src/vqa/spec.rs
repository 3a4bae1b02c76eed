//! How the SDK runs and scores VQAv2 (the task's [`TaskSpec`]).

use crate::error::{Result, TaskError};
use crate::metrics::vqa::evaluate_vqa_files;
use crate::registry::{EvalFile, EvalFiles, Report, TaskSpec};
use crate::run::{Done, Setup};

use super::clippo::ClippoVqa;
use super::data::AnswerVocab;
use super::{Vqa, VqaData, VqaTaskConfig};
use crate::engine::Backbone;

/// VQAv2 in the registry.
pub struct VqaSpec;

/// The registry entry.
pub static SPEC: VqaSpec = VqaSpec;

impl TaskSpec for VqaSpec {
    fn name(&self) -> &'static str {
        "vqa"
    }

    fn about(&self) -> &'static str {
        "VQAv2: answer classification over the decoder outputs (CLIPPO: the question rendered onto the image), official accuracy"
    }

    fn run(&self, setup: Setup<'_>) -> Result<Done> {
        let data: VqaData = setup.data()?;
        let config: VqaTaskConfig = setup.task_config()?;
        let (vocab, train, val) = match setup.export_dir() {
            // The answer vocabulary is the one the head was trained with.
            Some(export_dir) => {
                let vocab = AnswerVocab::from_task_json(&export_dir.join("task.json"))?;
                let val = data.load_val_with(&vocab)?;
                (vocab, Vec::new(), val)
            }
            None => {
                let (vocab, train, val) = data.load()?;
                let dir = &setup.config().run.out_dir;
                std::fs::create_dir_all(dir).map_err(|e| TaskError::io(dir, e))?;
                vocab.save(&dir.join("answer_vocab.json"))?;
                (vocab, train, val)
            }
        };
        match setup.backbone() {
            Backbone::Coca(_) => {
                let task = Vqa {
                    inputs: setup.inputs(self.name())?,
                    heads: setup.decoder_heads(self.name())?,
                    vocab,
                    config,
                };
                setup.act(task, train, val)
            }
            Backbone::Clippo(b) => {
                if config.caption_loss_weight > 0.0 {
                    return Err(TaskError::Config(
                        "[task] caption_loss_weight: a CLIPPO model has no text decoder to \
                         caption with; set it to 0"
                            .into(),
                    ));
                }
                let task = ClippoVqa {
                    heads: b.config.num_heads,
                    inputs: setup.rendered_inputs(self.name(), config.render)?,
                    vocab,
                };
                setup.act(task, train, val)
            }
        }
    }

    fn eval_files(&self) -> &'static [EvalFile] {
        &[
            EvalFile {
                flag: "questions",
                help: "Questions (`v2_OpenEnded_mscoco_*_questions.json`)",
            },
            EvalFile {
                flag: "annotations",
                help: "Annotations (`v2_mscoco_*_annotations.json`)",
            },
            EvalFile {
                flag: "results",
                help: "Results `[{question_id, answer}]`",
            },
        ]
    }

    fn evaluate_files(&self, files: &EvalFiles) -> Result<Report> {
        let s = evaluate_vqa_files(
            files.get("questions")?,
            files.get("annotations")?,
            files.get("results")?,
        )?;
        let json = serde_json::json!({
            "overall": s.overall,
            "per_answer_type": s.per_answer_type,
            "per_question_type": s.per_question_type,
        });
        // The official evaluator's report.
        let mut text = format!("Overall Accuracy is: {:.2}", s.overall);
        text.push_str("\nPer Question Type Accuracy is the following:");
        for (t, a) in &s.per_question_type {
            text.push_str(&format!("\n{t} : {a:.2}"));
        }
        text.push_str("\nPer Answer Type Accuracy is the following:");
        for (t, a) in &s.per_answer_type {
            text.push_str(&format!("\n{t} : {a:.2}"));
        }
        Ok(Report { json, text })
    }
}
