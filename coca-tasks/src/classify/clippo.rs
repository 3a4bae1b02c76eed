//! `classify` on a CLIPPO backbone: the same attentional-pooler head over the one ViT's output
//! tokens (frozen features or fine-tuned), the same data, metrics, predictions and confusion
//! matrix; zero-shot with the class-name prompts rendered through the same tower.

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use coca_core::clippo::Clippo;
use rand::rngs::StdRng;
use serde_json::json;

use super::metrics::{ClassifyScores, ranking, score_rankings};
use super::{
    ClassifyHead, ClassifyItem, ClassifyTaskConfig, Mode, PREDICTIONS_FILE, evaluation_of, metrics,
    probability_rows, softmax_cross_entropy,
};
use crate::engine::Backbone;
use crate::engine::data::for_each_eval_batch;
use crate::error::Result;
use crate::head::label_tensor;
use crate::inputs::rendered::RenderedInputs;
use crate::task::{EvalContext, Evaluation, StepOutput, Task, Tower};

/// The encoder's output tokens `[B, N, D]` of CLIPPO's tower; `frozen` as
/// [`encoder_tokens`](super::encoder_tokens): outside autodiff, a constant.
pub fn clippo_tokens(clippo: &Clippo, pixels: Tensor<4>, frozen: bool) -> Tensor<3> {
    if !frozen {
        return clippo.img.encode(pixels);
    }
    let autodiff = pixels.is_autodiff();
    let tokens = clippo.img.valid().encode(pixels.inner());
    if autodiff { tokens.autodiff() } else { tokens }
}

/// CLIPPO + classification head.
#[derive(Module, Debug)]
pub struct ClippoClassifyModel {
    pub clippo: Clippo,
    pub head: ClassifyHead,
    #[module(skip)]
    pub frozen: bool,
}

impl ClippoClassifyModel {
    /// Class logits `[B, classes]`.
    pub fn logits(&self, pixels: Tensor<4>) -> Tensor<2> {
        self.head
            .classify_tokens(clippo_tokens(&self.clippo, pixels, self.frozen))
    }
}

/// The `classify` task on a CLIPPO backbone.
pub struct ClippoClassify {
    pub inputs: RenderedInputs,
    pub classes: Vec<String>,
    pub config: ClassifyTaskConfig,
    pub heads: usize,
    pub confusion_png: Option<PathBuf>,
}

impl ClippoClassify {
    /// Zero-shot scores of `clippo` on `items`: the photo embedding against the mean
    /// embedding of the rendered prompts of each class (`_` read as a space).
    pub fn zero_shot(
        &self,
        clippo: &Clippo,
        items: &[ClassifyItem],
        templates: &[impl AsRef<str>],
        ctx: &EvalContext,
    ) -> Result<ClassifyScores> {
        let names: Vec<String> = self.classes.iter().map(|c| c.replace('_', " ")).collect();
        let classifier = coca_core::zero_shot::build_classifier_with(&names, templates, |p| {
            coca_core::clippo::embed_texts(clippo, p, &ctx.device)
        })?;
        let (mut rankings, mut gold) = (Vec::new(), Vec::new());
        for_each_eval_batch(self, items, ctx, |idx, (pixels, _)| {
            let probs = coca_core::zero_shot::classify(clippo.embed(pixels), classifier.clone());
            rankings.extend(crate::pretrain::rows(probs).iter().map(|p| ranking(p)));
            gold.extend(idx.iter().map(|&i| items[i].label));
            Ok(())
        })?;
        score_rankings(&rankings, &gold, self.classes.len())
    }
}

impl Task for ClippoClassify {
    type Model = ClippoClassifyModel;
    type Item = ClassifyItem;
    type Prepared = (Vec<f32>, usize);
    type Batch = (Tensor<4>, Tensor<1, Int>);

    fn name(&self) -> &'static str {
        "classify"
    }

    fn build_model(&self, backbone: &Backbone, device: &Device) -> Result<ClippoClassifyModel> {
        let b = backbone.clippo(self.name())?;
        Ok(ClippoClassifyModel {
            clippo: b.clippo.clone(),
            head: ClassifyHead::with_queries(
                b.config.width,
                self.heads,
                self.config.queries,
                self.classes.len(),
                device,
            ),
            frozen: self.config.mode == Mode::Frozen,
        })
    }

    fn backbone<'a>(&self, model: &'a ClippoClassifyModel) -> Tower<'a> {
        Tower::Clippo(&model.clippo)
    }

    fn prepare(
        &self,
        item: &ClassifyItem,
        _augment: Option<&mut StdRng>,
    ) -> Result<Self::Prepared> {
        Ok((self.inputs.image(&item.path)?, item.label))
    }

    fn collate(&self, items: Vec<Self::Prepared>, device: &Device) -> Self::Batch {
        let (images, labels): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        (
            self.inputs.stack(images, device),
            label_tensor(labels, device),
        )
    }

    fn train_step(&self, model: &ClippoClassifyModel, (pixels, labels): Self::Batch) -> StepOutput {
        StepOutput {
            loss: softmax_cross_entropy(model.logits(pixels), labels),
            logs: vec![],
        }
    }

    fn evaluate(
        &self,
        model: &ClippoClassifyModel,
        items: &[ClassifyItem],
        ctx: &EvalContext,
    ) -> Result<Evaluation> {
        let mut probs: Vec<(usize, Vec<f32>)> = Vec::new();
        let skipped = for_each_eval_batch(self, items, ctx, |idx, (pixels, _)| {
            let rows = probability_rows(model.logits(pixels));
            probs.extend(idx.iter().copied().zip(rows));
            Ok(())
        })?;
        let (evaluation, scores) = evaluation_of(
            &probs,
            |i| items[i].label,
            "path",
            |i| items[i].name.clone(),
            &self.classes,
            PREDICTIONS_FILE,
            skipped,
        )?;
        if let Some(path) = &self.confusion_png {
            metrics::confusion_png(&scores.confusion, &self.classes, path)?;
        }
        Ok(evaluation)
    }

    fn export_info(&self) -> serde_json::Value {
        json!({
            "classes": self.classes,
            "head": "attentional-pooler",
            "queries": self.config.queries,
            "query_reduce": "mean",
            "pooler_heads": self.heads,
            "mode": self.config.mode,
            "family": "clippo",
        })
    }
}
