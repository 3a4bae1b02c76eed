//! NLVR2: both (image, sentence) pairs go through the model; the two pooled decoder outputs
//! are concatenated and classified True/False.

pub mod data;
mod spec;

pub use spec::SPEC;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use coca_core::Coca;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::engine::Backbone;
use crate::engine::data::for_each_eval_batch;
use crate::error::{Result, TaskError};
use crate::head::{PooledClassifier, argmax_rows, cross_entropy, multimodal_states};
use crate::inputs::{Inputs, stack_tokens};
use crate::metrics::accuracy::{Nlvr2Example as ScoredExample, nlvr2_scores};
use crate::task::{EvalContext, Evaluation, StepOutput, Task, Tower};
use data::{Nlvr2Example, load_nlvr2};

/// `[data]` of NLVR2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nlvr2Data {
    /// `train.json` (JSON Lines).
    pub train: PathBuf,
    /// `dev.json` (or `test1.json`).
    pub val: PathBuf,
    /// Root holding `train/{directory}/`, `dev/`, `test1/`.
    pub images: PathBuf,
}

impl Nlvr2Data {
    /// Loads both splits; unlabelled examples cannot be trained or scored.
    pub fn load(&self) -> Result<(Vec<Nlvr2Example>, Vec<Nlvr2Example>)> {
        Ok((self.load_split(&self.train)?, self.load_split(&self.val)?))
    }

    /// Only the validation split (what `predict` scores).
    pub fn load_val(&self) -> Result<Vec<Nlvr2Example>> {
        self.load_split(&self.val)
    }

    fn load_split(&self, p: &Path) -> Result<Vec<Nlvr2Example>> {
        let v = load_nlvr2(p, &self.images)?;
        if let Some(e) = v.iter().find(|e| e.label.is_none()) {
            return Err(TaskError::Data {
                path: p.to_path_buf(),
                msg: format!("example {} has no label", e.identifier),
            });
        }
        Ok(v)
    }
}

/// CoCa + pooled classifier over both pairs.
#[derive(Module, Debug)]
pub struct Nlvr2Model {
    pub coca: Coca,
    pub head: PooledClassifier,
}

impl Nlvr2Model {
    /// Logits `[B, 2]` (index 1 = True) for left/right images `[B, 3, S, S]` and the sentence.
    pub fn logits(&self, left: Tensor<4>, right: Tensor<4>, tokens: Tensor<2, Int>) -> Tensor<2> {
        let b = tokens.dims()[0];
        let pixels = Tensor::cat(vec![left, right], 0);
        let tokens2 = Tensor::cat(vec![tokens.clone(), tokens], 0);
        let pooled = self.head.pool(
            multimodal_states(&self.coca, pixels, tokens2.clone()),
            tokens2,
        );
        let w = pooled.dims()[1];
        let pair = Tensor::cat(
            vec![
                pooled.clone().slice([0..b, 0..w]),
                pooled.slice([b..2 * b, 0..w]),
            ],
            1,
        );
        self.head.classifier.forward(pair)
    }
}

/// The NLVR2 task.
pub struct Nlvr2 {
    pub inputs: Inputs,
    pub heads: usize,
}

impl Task for Nlvr2 {
    type Model = Nlvr2Model;
    type Item = Nlvr2Example;
    type Prepared = (Vec<f32>, Vec<f32>, Vec<u32>, usize);
    type Batch = (Tensor<4>, Tensor<4>, Tensor<2, Int>, Tensor<1, Int>);

    fn name(&self) -> &'static str {
        "nlvr2"
    }

    fn build_model(&self, backbone: &Backbone, device: &Device) -> Result<Nlvr2Model> {
        let coca = backbone.coca(self.name())?.coca.clone();
        Ok(Nlvr2Model {
            head: PooledClassifier::over_decoder(&coca, self.heads, 2, 2, device),
            coca,
        })
    }

    fn backbone<'a>(&self, model: &'a Nlvr2Model) -> Tower<'a> {
        Tower::Coca(&model.coca)
    }

    fn prepare(
        &self,
        item: &Nlvr2Example,
        mut augment: Option<&mut StdRng>,
    ) -> Result<Self::Prepared> {
        let left = self.inputs.image(&item.left, augment.as_deref_mut())?;
        let right = self.inputs.image(&item.right, augment)?;
        Ok((
            left,
            right,
            self.inputs.text(&item.sentence)?,
            usize::from(item.label.unwrap_or(false)),
        ))
    }

    fn collate(&self, items: Vec<Self::Prepared>, device: &Device) -> Self::Batch {
        let n = items.len();
        let (mut l, mut r, mut t, mut y) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (a, b, c, d) in items {
            l.push(a);
            r.push(b);
            t.push(c);
            y.push(d as i64);
        }
        (
            self.inputs.stack_images(l, device),
            self.inputs.stack_images(r, device),
            stack_tokens(&t, device),
            Tensor::from_data(TensorData::new(y, [n]), device),
        )
    }

    fn train_step(
        &self,
        model: &Nlvr2Model,
        (left, right, tokens, labels): Self::Batch,
    ) -> StepOutput {
        StepOutput {
            loss: cross_entropy(model.logits(left, right, tokens), labels),
            logs: vec![],
        }
    }

    fn evaluate(
        &self,
        model: &Nlvr2Model,
        items: &[Nlvr2Example],
        ctx: &EvalContext,
    ) -> Result<Evaluation> {
        let mut preds: Vec<(usize, bool)> = Vec::new();
        let skipped = for_each_eval_batch(self, items, ctx, |idx, (left, right, tokens, _)| {
            let p = argmax_rows(model.logits(left, right, tokens));
            preds.extend(idx.iter().copied().zip(p.into_iter().map(|c| c == 1)));
            Ok(())
        })?;
        let scored: Vec<ScoredExample> = preds
            .iter()
            .map(|&(i, p)| ScoredExample {
                identifier: items[i].identifier.clone(),
                label: items[i].label.unwrap_or(false),
                prediction: p,
            })
            .collect();
        let scores = nlvr2_scores(&scored)?;
        let csv: String = preds
            .iter()
            .map(|&(i, p)| {
                format!(
                    "{},{}\n",
                    items[i].identifier,
                    if p { "True" } else { "False" }
                )
            })
            .collect();
        Ok(Evaluation {
            metric: scores.accuracy,
            metrics: BTreeMap::from([
                ("accuracy".to_string(), scores.accuracy),
                ("consistency".to_string(), scores.consistency),
            ]),
            predictions: Some(("predictions_nlvr2.csv".into(), csv.into_bytes())),
            skipped,
        })
    }

    fn export_info(&self) -> serde_json::Value {
        json!({"labels": ["False", "True"], "head": "pooled-classifier-pair", "pooler_heads": self.heads})
    }
}
