//! SNLI-VE with a CLIPPO backbone: the hypothesis is rendered into a band of the premise image
//! (`[task] render`), the one ViT encodes the composite, and a 1-query attentional pooler +
//! 3-way classifier over its output tokens is trained with softmax cross-entropy.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use coca_core::clippo::Clippo;
use rand::rngs::StdRng;
use serde_json::json;

use super::data::{VeExample, VeLabel};
use super::score_labels;
use crate::engine::Backbone;
use crate::engine::data::for_each_eval_batch;
use crate::error::Result;
use crate::head::{PooledClassifier, argmax_rows, cross_entropy, label_tensor};
use crate::inputs::rendered::RenderedInputs;
use crate::task::{EvalContext, Evaluation, StepOutput, Task, Tower};

/// CLIPPO + pooled 3-way classifier.
#[derive(Module, Debug)]
pub struct ClippoSnliVeModel {
    pub clippo: Clippo,
    pub head: PooledClassifier,
}

impl ClippoSnliVeModel {
    /// Class logits `[B, 3]` of image-with-hypothesis composites `[B, S, S, 3]`.
    pub fn logits(&self, pixels: Tensor<4>) -> Tensor<2> {
        let tokens = self.clippo.img.encode(pixels);
        self.head.classifier.forward(self.head.pool_all(tokens))
    }
}

/// The SNLI-VE task on a CLIPPO backbone.
pub struct ClippoSnliVe {
    pub inputs: RenderedInputs,
    pub heads: usize,
}

impl Task for ClippoSnliVe {
    type Model = ClippoSnliVeModel;
    type Item = VeExample;
    type Prepared = (Vec<f32>, usize);
    type Batch = (Tensor<4>, Tensor<1, Int>);

    fn name(&self) -> &'static str {
        "snli-ve"
    }

    fn build_model(&self, backbone: &Backbone, device: &Device) -> Result<ClippoSnliVeModel> {
        let b = backbone.clippo(self.name())?;
        Ok(ClippoSnliVeModel {
            clippo: b.clippo.clone(),
            head: PooledClassifier::new(b.config.width, self.heads, 1, VeLabel::ALL.len(), device),
        })
    }

    fn backbone<'a>(&self, model: &'a ClippoSnliVeModel) -> Tower<'a> {
        Tower::Clippo(&model.clippo)
    }

    fn prepare(&self, item: &VeExample, _augment: Option<&mut StdRng>) -> Result<Self::Prepared> {
        Ok((
            self.inputs.image_with_text(&item.image, &item.hypothesis)?,
            item.label.index(),
        ))
    }

    fn collate(&self, items: Vec<Self::Prepared>, device: &Device) -> Self::Batch {
        let (pixels, labels): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        (
            self.inputs.stack(pixels, device),
            label_tensor(labels, device),
        )
    }

    fn train_step(&self, model: &ClippoSnliVeModel, (pixels, labels): Self::Batch) -> StepOutput {
        StepOutput {
            loss: cross_entropy(model.logits(pixels), labels),
            logs: vec![],
        }
    }

    fn evaluate(
        &self,
        model: &ClippoSnliVeModel,
        items: &[VeExample],
        ctx: &EvalContext,
    ) -> Result<Evaluation> {
        let mut preds: Vec<(usize, usize)> = Vec::new();
        let skipped = for_each_eval_batch(self, items, ctx, |idx, (pixels, _)| {
            preds.extend(idx.iter().copied().zip(argmax_rows(model.logits(pixels))));
            Ok(())
        })?;
        score_labels(items, &preds, skipped)
    }

    fn export_info(&self) -> serde_json::Value {
        json!({"labels": VeLabel::ALL.iter().map(|l| l.name()).collect::<Vec<_>>(), "head": "pooled-classifier", "pooler_heads": self.heads, "family": "clippo", "render": self.inputs.band})
    }
}
