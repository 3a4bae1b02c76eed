//! VQAv2 with a CLIPPO backbone, as the CLIPPO paper does it: the question is rendered into a
//! band of the image (placement configurable, `[task] render`), the one ViT encodes the
//! composite, and a 1-query attentional pooler + linear classifier over its output tokens is
//! trained with sigmoid BCE on the soft targets; scored with the official accuracy.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use coca_core::clippo::Clippo;
use rand::rngs::StdRng;
use serde_json::json;

use super::{VqaItem, score_answers, soft_bce, soft_target_matrix};
use crate::engine::Backbone;
use crate::engine::data::for_each_eval_batch;
use crate::error::Result;
use crate::head::{PooledClassifier, argmax_rows};
use crate::inputs::rendered::RenderedInputs;
use crate::task::{EvalContext, Evaluation, StepOutput, Task, Tower};

use super::data::AnswerVocab;

/// CLIPPO + pooled classifier over the answers.
#[derive(Module, Debug)]
pub struct ClippoVqaModel {
    pub clippo: Clippo,
    pub head: PooledClassifier,
}

impl ClippoVqaModel {
    /// Answer logits `[B, answers]` of image-with-question composites `[B, S, S, 3]`.
    pub fn logits(&self, pixels: Tensor<4>) -> Tensor<2> {
        let tokens = self.clippo.img.encode(pixels);
        self.head.classifier.forward(self.head.pool_all(tokens))
    }
}

/// The VQAv2 task on a CLIPPO backbone.
pub struct ClippoVqa {
    pub inputs: RenderedInputs,
    pub heads: usize,
    pub vocab: AnswerVocab,
}

impl Task for ClippoVqa {
    type Model = ClippoVqaModel;
    type Item = VqaItem;
    type Prepared = (Vec<f32>, Vec<(usize, f32)>);
    type Batch = (Tensor<4>, Tensor<2>);

    fn name(&self) -> &'static str {
        "vqa"
    }

    fn build_model(&self, backbone: &Backbone, device: &Device) -> Result<ClippoVqaModel> {
        let b = backbone.clippo(self.name())?;
        let width = b.config.width;
        Ok(ClippoVqaModel {
            clippo: b.clippo.clone(),
            head: PooledClassifier::new(width, self.heads, 1, self.vocab.len(), device),
        })
    }

    fn backbone<'a>(&self, model: &'a ClippoVqaModel) -> Tower<'a> {
        Tower::Clippo(&model.clippo)
    }

    fn prepare(&self, item: &VqaItem, _augment: Option<&mut StdRng>) -> Result<Self::Prepared> {
        let e = &item.example;
        Ok((
            self.inputs.image_with_text(&e.image, &e.question)?,
            item.targets.clone(),
        ))
    }

    fn collate(&self, items: Vec<Self::Prepared>, device: &Device) -> Self::Batch {
        let (pixels, targets): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        (
            self.inputs.stack(pixels, device),
            soft_target_matrix(&targets, self.vocab.len(), device),
        )
    }

    fn train_step(&self, model: &ClippoVqaModel, (pixels, targets): Self::Batch) -> StepOutput {
        StepOutput {
            loss: soft_bce(model.logits(pixels), targets),
            logs: vec![],
        }
    }

    fn evaluate(
        &self,
        model: &ClippoVqaModel,
        items: &[VqaItem],
        ctx: &EvalContext,
    ) -> Result<Evaluation> {
        let mut preds: Vec<(usize, String)> = Vec::new();
        let skipped = for_each_eval_batch(self, items, ctx, |idx, (pixels, _)| {
            for (i, c) in idx.iter().zip(argmax_rows(model.logits(pixels))) {
                preds.push((*i, self.vocab.answer(c).unwrap_or_default().to_string()));
            }
            Ok(())
        })?;
        score_answers(items, &preds, skipped)
    }

    fn export_info(&self) -> serde_json::Value {
        json!({"answers": self.vocab.answers, "head": "pooled-classifier", "pooler_heads": self.heads, "family": "clippo", "render": self.inputs.band})
    }
}
