//! VQAv2: image -> encoder, question -> decoder; a 1-query attentional pooler over the decoder
//! outputs and a classifier over the answer vocabulary, trained with sigmoid BCE on the soft
//! targets (0.3/0.6/0.9/1.0), optionally co-trained with the captioning loss on
//! "question answer" text; scored with the official accuracy.

pub mod clippo;
pub mod data;
mod spec;

pub use spec::SPEC;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use coca_core::Coca;
use coca_core::loss::caption_loss_from_hidden;
use coca_core::precision::f32;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::engine::Backbone;
use crate::engine::data::for_each_eval_batch;
use crate::error::{Result, TaskError};
use crate::head::{PooledClassifier, argmax_rows};
use crate::inputs::rendered::TextBand;
use crate::inputs::{Inputs, stack_tokens};
use crate::metrics::vqa::{VqaAnswer, VqaResult, question_accuracy};
use crate::task::{EvalContext, Evaluation, StepOutput, Task, Tower};
use data::{AnswerVocab, VqaExample, load_vqa};

/// One more pair of question/annotation files used for training (e.g. Visual Genome QA in
/// VQAv2 format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VqaFiles {
    pub questions: PathBuf,
    /// Absent (or `""`) for splits without answers, e.g. test-dev: prediction only.
    #[serde(default)]
    pub annotations: Option<PathBuf>,
    pub images: PathBuf,
}

impl VqaFiles {
    /// The annotation file, if any.
    pub fn annotations(&self) -> Option<&Path> {
        self.annotations
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
    }

    /// Loads the questions (with their answers when `annotations` is set); `required` makes a
    /// missing annotation file an error naming the section.
    pub fn load(&self, section: &str, required: bool) -> Result<Vec<VqaExample>> {
        if required && self.annotations().is_none() {
            return Err(TaskError::Config(format!(
                "[data] {section}.annotations is required"
            )));
        }
        load_vqa(&self.questions, self.annotations(), &self.images)
    }
}

/// `[data]` of VQAv2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VqaData {
    pub train: VqaFiles,
    pub val: VqaFiles,
    /// Extra training files in the same format.
    #[serde(default)]
    pub extra_train: Vec<VqaFiles>,
    /// Keep answers that are the multiple-choice answer of at least this many questions.
    #[serde(default = "nine")]
    pub min_answer_count: usize,
}

fn nine() -> usize {
    9
}

/// `[task]` of VQAv2.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VqaTaskConfig {
    /// Weight of the captioning loss on "question answer" text (0 = off; CoCa only).
    #[serde(default)]
    pub caption_loss_weight: f64,
    /// Where the question is rendered onto the image (CLIPPO only).
    #[serde(default)]
    pub render: TextBand,
}

/// A question with its soft targets over the answer vocabulary.
#[derive(Debug, Clone)]
pub struct VqaItem {
    pub example: VqaExample,
    pub targets: Vec<(usize, f32)>,
}

impl VqaData {
    /// Loads the files and builds the answer vocabulary from the training questions.
    pub fn load(&self) -> Result<(AnswerVocab, Vec<VqaItem>, Vec<VqaItem>)> {
        let mut train = self.train.load("train", true)?;
        for extra in &self.extra_train {
            train.extend(extra.load("extra_train", true)?);
        }
        let val = self.val.load("val", true)?;
        let vocab = AnswerVocab::build(&train, self.min_answer_count);
        if vocab.is_empty() {
            return Err(TaskError::Data {
                path: self
                    .train
                    .annotations()
                    .unwrap_or(&self.train.questions)
                    .to_path_buf(),
                msg: format!(
                    "no answer occurs {} times; lower data.min_answer_count",
                    self.min_answer_count
                ),
            });
        }
        let items = |v: Vec<VqaExample>| -> Vec<VqaItem> {
            v.into_iter()
                .map(|e| VqaItem {
                    targets: vocab.soft_targets(&e.answers),
                    example: e,
                })
                .collect()
        };
        let train: Vec<VqaItem> = items(train)
            .into_iter()
            .filter(|i| !i.targets.is_empty())
            .collect();
        tracing::info!(
            answers = vocab.len(),
            train = train.len(),
            "VQA answer vocabulary built"
        );
        let val = items(val);
        Ok((vocab, train, val))
    }

    /// The validation questions scored against `vocab` (the one an exported head was trained
    /// with). Annotations may be missing (test-dev): then there are no targets to score.
    pub fn load_val_with(&self, vocab: &AnswerVocab) -> Result<Vec<VqaItem>> {
        Ok(self
            .val
            .load("val", false)?
            .into_iter()
            .map(|e| VqaItem {
                targets: vocab.soft_targets(&e.answers),
                example: e,
            })
            .collect())
    }
}

/// CoCa + pooled classifier over the answers.
#[derive(Module, Debug)]
pub struct VqaModel {
    pub coca: Coca,
    pub head: PooledClassifier,
}

/// The VQAv2 task.
pub struct Vqa {
    pub inputs: Inputs,
    pub heads: usize,
    pub vocab: AnswerVocab,
    pub config: VqaTaskConfig,
}

/// Host-side example: pixels, question tokens, "question answer" tokens, soft targets.
pub type VqaPrepared = (Vec<f32>, Vec<u32>, Vec<u32>, Vec<(usize, f32)>);

impl VqaModel {
    /// Answer logits `[B, answers]`.
    pub fn logits(&self, image_embs: Tensor<3>, tokens: Tensor<2, Int>) -> Tensor<2> {
        let text = self.coca.encode_text(tokens.clone());
        let states = self.coca.text_decoder.hidden(image_embs, text.token_embs);
        self.head.classifier.forward(self.head.pool(states, tokens))
    }
}

/// Sigmoid binary cross-entropy with logits, summed over classes and averaged over the batch.
pub fn soft_bce(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let b = logits.dims()[0];
    let (logits, targets) = (f32(logits), f32(targets));
    let loss = logits.clone().clamp_min(0.0) - logits.clone() * targets
        + logits.abs().neg().exp().add_scalar(1.0).log();
    loss.sum() / b as f64
}

impl Task for Vqa {
    type Model = VqaModel;
    type Item = VqaItem;
    type Prepared = VqaPrepared;
    type Batch = (Tensor<4>, Tensor<2, Int>, Tensor<2, Int>, Tensor<2>);

    fn name(&self) -> &'static str {
        "vqa"
    }

    fn build_model(&self, backbone: &Backbone, device: &Device) -> Result<VqaModel> {
        let coca = backbone.coca(self.name())?.coca.clone();
        Ok(VqaModel {
            head: PooledClassifier::over_decoder(&coca, self.heads, 1, self.vocab.len(), device),
            coca,
        })
    }

    fn backbone<'a>(&self, model: &'a VqaModel) -> Tower<'a> {
        Tower::Coca(&model.coca)
    }

    fn prepare(&self, item: &VqaItem, augment: Option<&mut StdRng>) -> Result<VqaPrepared> {
        let e = &item.example;
        let qa = match (
            &e.multiple_choice_answer,
            self.config.caption_loss_weight > 0.0,
        ) {
            (Some(a), true) => self.inputs.text(&format!("{} {}", e.question, a))?,
            _ => Vec::new(),
        };
        Ok((
            self.inputs.image(&e.image, augment)?,
            self.inputs.text(&e.question)?,
            qa,
            item.targets.clone(),
        ))
    }

    fn collate(&self, items: Vec<VqaPrepared>, device: &Device) -> Self::Batch {
        let (mut images, mut q, mut qa, mut targets) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (img, tq, tqa, t) in items {
            images.push(img);
            q.push(tq);
            qa.push(tqa);
            targets.push(t);
        }
        let qa = if qa.iter().all(|r| !r.is_empty()) {
            stack_tokens(&qa, device)
        } else {
            stack_tokens(&q, device)
        };
        (
            self.inputs.stack_images(images, device),
            stack_tokens(&q, device),
            qa,
            soft_target_matrix(&targets, self.vocab.len(), device),
        )
    }

    fn train_step(
        &self,
        model: &VqaModel,
        (pixels, tokens, qa, targets): Self::Batch,
    ) -> StepOutput {
        let image = model.coca.encode_image(pixels);
        let vqa = soft_bce(model.logits(image.embs.clone(), tokens), targets);
        if self.config.caption_loss_weight > 0.0 {
            let out = model.coca.forward_with_image(image, qa);
            let cap = caption_loss_from_hidden(
                &model.coca,
                out.hidden,
                out.labels,
                coca_core::tokenizer::PAD,
            ) * self.config.caption_loss_weight;
            StepOutput {
                loss: vqa.clone() + cap.clone(),
                logs: vec![("vqa_bce", vqa), ("caption", cap)],
            }
        } else {
            StepOutput {
                loss: vqa,
                logs: vec![],
            }
        }
    }

    fn evaluate(
        &self,
        model: &VqaModel,
        items: &[VqaItem],
        ctx: &EvalContext,
    ) -> Result<Evaluation> {
        let mut preds: Vec<(usize, String)> = Vec::new();
        let skipped = for_each_eval_batch(self, items, ctx, |idx, (pixels, tokens, _, _)| {
            let embs = model.coca.encode_image(pixels).embs;
            for (i, c) in idx.iter().zip(argmax_rows(model.logits(embs, tokens))) {
                preds.push((*i, self.vocab.answer(c).unwrap_or_default().to_string()));
            }
            Ok(())
        })?;
        score_answers(items, &preds, skipped)
    }

    fn export_info(&self) -> serde_json::Value {
        json!({"answers": self.vocab.answers, "head": "pooled-classifier", "pooler_heads": self.heads})
    }
}

/// Soft targets `[B, answers]` of a batch (f32 also in bf16 runs: scores such as 1/3 stay
/// exact, and the loss is computed in f32).
pub fn soft_target_matrix(
    targets: &[Vec<(usize, f32)>],
    answers: usize,
    device: &Device,
) -> Tensor<2> {
    let n = targets.len();
    let mut m = vec![0f32; n * answers];
    for (i, t) in targets.iter().enumerate() {
        for &(k, s) in t {
            m[i * answers + k] = s;
        }
    }
    Tensor::from_data(TensorData::new(m, [n, answers]), (device, DType::F32))
}

/// Scores predicted answers `(item index, answer)` with the official VQA accuracy (overall and
/// per answer type) and writes them as `results_vqa.json`; without annotations (test-dev)
/// only the predictions.
pub fn score_answers(
    items: &[VqaItem],
    preds: &[(usize, String)],
    skipped: Vec<String>,
) -> Result<Evaluation> {
    let mut per_type: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut total = 0.0;
    for (i, p) in preds {
        let e = &items[*i].example;
        // Distinct answer ids: the official leave-one-out removes answers equal as records.
        let answers: Vec<VqaAnswer> = e
            .answers
            .iter()
            .enumerate()
            .map(|(k, a)| VqaAnswer {
                answer: a.clone(),
                answer_confidence: None,
                answer_id: Some(k as u64 + 1),
            })
            .collect();
        let acc = question_accuracy(&answers, p);
        total += acc;
        let t = per_type
            .entry(e.answer_type.clone().unwrap_or_else(|| "unknown".into()))
            .or_default();
        t.0 += acc;
        t.1 += 1;
    }
    let results: Vec<VqaResult> = preds
        .iter()
        .map(|(i, p)| VqaResult {
            question_id: items[*i].example.question_id,
            answer: p.clone(),
        })
        .collect();
    let bytes = serde_json::to_vec(&results).map_err(|e| TaskError::Config(e.to_string()))?;
    let predictions = Some(("results_vqa.json".to_string(), bytes));
    if preds
        .iter()
        .all(|(i, _)| items[*i].example.answers.is_empty())
    {
        // No annotations (e.g. test-dev): predictions only.
        return Ok(Evaluation {
            metric: f64::NAN,
            metrics: BTreeMap::new(),
            predictions,
            skipped,
        });
    }
    let n = preds.len().max(1) as f64;
    let overall = 100.0 * total / n;
    let mut metrics = BTreeMap::from([("accuracy".to_string(), overall)]);
    for (t, (s, c)) in per_type {
        metrics.insert(format!("accuracy_{t}"), 100.0 * s / c as f64);
    }
    Ok(Evaluation {
        metric: overall,
        metrics,
        predictions,
        skipped,
    })
}
