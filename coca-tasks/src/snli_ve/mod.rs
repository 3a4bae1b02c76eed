//! SNLI-VE: image -> encoder, hypothesis -> decoder, pooled decoder outputs -> 3-way classifier.

pub mod clippo;
pub mod data;
mod spec;

pub use spec::SPEC;

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use coca_core::Coca;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::engine::Backbone;
use crate::engine::data::for_each_eval_batch;
use crate::error::Result;
use crate::head::{PooledClassifier, argmax_rows, cross_entropy, label_tensor, multimodal_states};
use crate::inputs::rendered::TextBand;
use crate::inputs::{Inputs, stack_tokens};
use crate::metrics::accuracy::classification_accuracy;
use crate::task::{EvalContext, Evaluation, StepOutput, Task, Tower};
use data::{VeExample, VeLabel, load_snli_ve};

/// `[data]` of SNLI-VE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnliVeData {
    /// `snli_ve_train.jsonl`.
    pub train: PathBuf,
    /// `snli_ve_dev.jsonl` (or test).
    pub val: PathBuf,
    /// `flickr30k-images`.
    pub images: PathBuf,
}

impl SnliVeData {
    /// Loads both splits; the number of dropped `-` lines is logged.
    pub fn load(&self) -> Result<(Vec<VeExample>, Vec<VeExample>)> {
        let train = load_snli_ve(&self.train, &self.images)?;
        let val = load_snli_ve(&self.val, &self.images)?;
        tracing::info!(
            train = train.examples.len(),
            val = val.examples.len(),
            dropped = train.dropped_unlabelled + val.dropped_unlabelled,
            "SNLI-VE loaded (lines labelled `-` dropped)"
        );
        Ok((train.examples, val.examples))
    }

    /// Only the validation split (what `predict` scores).
    pub fn load_val(&self) -> Result<Vec<VeExample>> {
        Ok(load_snli_ve(&self.val, &self.images)?.examples)
    }
}

/// `[task]` of SNLI-VE.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnliVeTaskConfig {
    /// Where the hypothesis is rendered onto the image (CLIPPO only).
    #[serde(default)]
    pub render: TextBand,
}

/// CoCa + pooled 3-way classifier.
#[derive(Module, Debug)]
pub struct SnliVeModel {
    pub coca: Coca,
    pub head: PooledClassifier,
}

impl SnliVeModel {
    /// Class logits `[B, 3]`.
    pub fn logits(&self, pixels: Tensor<4>, tokens: Tensor<2, Int>) -> Tensor<2> {
        let states = multimodal_states(&self.coca, pixels, tokens.clone());
        self.head.classifier.forward(self.head.pool(states, tokens))
    }
}

/// The SNLI-VE task.
pub struct SnliVe {
    pub inputs: Inputs,
    pub heads: usize,
}

impl Task for SnliVe {
    type Model = SnliVeModel;
    type Item = VeExample;
    type Prepared = (Vec<f32>, Vec<u32>, usize);
    type Batch = (Tensor<4>, Tensor<2, Int>, Tensor<1, Int>);

    fn name(&self) -> &'static str {
        "snli-ve"
    }

    fn build_model(&self, backbone: &Backbone, device: &Device) -> Result<SnliVeModel> {
        let coca = backbone.coca(self.name())?.coca.clone();
        Ok(SnliVeModel {
            head: PooledClassifier::over_decoder(&coca, self.heads, 1, VeLabel::ALL.len(), device),
            coca,
        })
    }

    fn backbone<'a>(&self, model: &'a SnliVeModel) -> Tower<'a> {
        Tower::Coca(&model.coca)
    }

    fn prepare(&self, item: &VeExample, augment: Option<&mut StdRng>) -> Result<Self::Prepared> {
        Ok((
            self.inputs.image(&item.image, augment)?,
            self.inputs.text(&item.hypothesis)?,
            item.label.index(),
        ))
    }

    fn collate(&self, items: Vec<Self::Prepared>, device: &Device) -> Self::Batch {
        let n = items.len();
        let (mut images, mut tokens, mut labels) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (i, t, l) in items {
            images.push(i);
            tokens.push(t);
            labels.push(l);
        }
        (
            self.inputs.stack_images(images, device),
            stack_tokens(&tokens, device),
            label_tensor(labels, device),
        )
    }

    fn train_step(&self, model: &SnliVeModel, (pixels, tokens, labels): Self::Batch) -> StepOutput {
        let logits = model.logits(pixels, tokens);
        StepOutput {
            loss: cross_entropy(logits, labels),
            logs: vec![],
        }
    }

    fn evaluate(
        &self,
        model: &SnliVeModel,
        items: &[VeExample],
        ctx: &EvalContext,
    ) -> Result<Evaluation> {
        let mut preds: Vec<(usize, usize)> = Vec::new();
        let skipped = for_each_eval_batch(self, items, ctx, |idx, (pixels, tokens, _)| {
            let p = argmax_rows(model.logits(pixels, tokens));
            preds.extend(idx.iter().copied().zip(p));
            Ok(())
        })?;
        score_labels(items, &preds, skipped)
    }

    fn export_info(&self) -> serde_json::Value {
        json!({"labels": VeLabel::ALL.iter().map(|l| l.name()).collect::<Vec<_>>(), "head": "pooled-classifier", "pooler_heads": self.heads})
    }
}

/// Scores predicted classes `(item index, class)`: accuracy overall and per class, and the
/// predictions as `predictions_snli_ve.jsonl`.
pub fn score_labels(
    items: &[VeExample],
    preds: &[(usize, usize)],
    skipped: Vec<String>,
) -> Result<Evaluation> {
    let predicted: Vec<&str> = preds.iter().map(|&(_, p)| VeLabel::ALL[p].name()).collect();
    let gold: Vec<&str> = preds.iter().map(|&(i, _)| items[i].label.name()).collect();
    let scores = classification_accuracy(&predicted, &gold)?;
    let mut metrics = BTreeMap::from([("accuracy".to_string(), scores.accuracy)]);
    for (class, acc) in &scores.per_class {
        metrics.insert(format!("accuracy_{class}"), acc.accuracy);
    }
    let lines: Vec<String> = preds
            .iter()
            .map(|&(i, p)| {
                json!({"pairID": items[i].pair_id, "line": items[i].line, "prediction": VeLabel::ALL[p].name(), "gold_label": items[i].label.name()})
                    .to_string()
            })
            .collect();
    Ok(Evaluation {
        metric: scores.accuracy,
        metrics,
        predictions: Some((
            "predictions_snli_ve.jsonl".into(),
            (lines.join("\n") + "\n").into_bytes(),
        )),
        skipped,
    })
}
