//! Image classification: an attentional pooler over the image encoder's output tokens, then a
//! linear softmax classifier (the CoCa paper's frozen-feature / fine-tuning recipe).
//!
//! The pooler reads `coca.visual.trunk(pixels)`, the ViT output sequence `[B, 1 + N, W]` (CLS
//! first, before CoCa's own poolers). With `queries > 1` the pooled query outputs are
//! **averaged** before the classifier, so the classifier is `W -> classes` for any count.
//!
//! In `frozen` mode the trunk runs on the inner (non-autodiff) backend with a validation
//! snapshot of the encoder: no activation of the encoder is recorded for backward and the
//! backbone gets no gradient (its weights stay bit-identical even without
//! `[model] freeze = "all-but-head"`, which the example config sets anyway).

pub mod clippo;
pub mod data;
pub mod metrics;
pub(crate) mod render;
mod spec;
pub mod synth;

pub use spec::SPEC;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor};
use coca_core::Coca;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::engine::Backbone;
use crate::engine::data::for_each_eval_batch;
use crate::error::{Result, TaskError};
use crate::inputs::Inputs;
use crate::task::{EvalContext, Evaluation, StepOutput, Task, Tower};
pub use data::ClassifyItem;
use data::{classes_of, index_split, read_split};
use metrics::{ClassifyScores, predictions_csv, ranking, score_rankings};

/// Which weights a run trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Frozen features: only the pooler and the classifier train; the encoder keeps no
    /// activations for backward.
    #[default]
    Frozen,
    /// Everything trains.
    Finetune,
}

/// `[data]` of `classify`: each split an ImageFolder directory or a `path,label` CSV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyData {
    pub train: PathBuf,
    pub val: PathBuf,
}

impl ClassifyData {
    /// The classes (sorted training labels) and both splits.
    pub fn load(&self) -> Result<(Vec<String>, Vec<ClassifyItem>, Vec<ClassifyItem>)> {
        let train = read_split(&self.train)?;
        let classes = classes_of(&train);
        let train = index_split(train, &classes)?;
        let val = self.load_val(&classes)?;
        tracing::info!(
            classes = classes.len(),
            train = train.len(),
            val = val.len(),
            "classification data loaded"
        );
        Ok((classes, train, val))
    }

    /// Only the validation split, labelled with `classes` (what `predict` scores).
    pub fn load_val(&self, classes: &[String]) -> Result<Vec<ClassifyItem>> {
        index_split(read_split(&self.val)?, classes)
    }
}

/// The class list a model was trained with: `task_info.classes` of an export's `task.json`.
pub fn classes_from_task_json(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).map_err(|e| TaskError::io(path, e))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| TaskError::Json {
        path: path.to_path_buf(),
        line: None,
        msg: e.to_string(),
    })?;
    let classes: Vec<String> =
        serde_json::from_value(v["task_info"]["classes"].clone()).map_err(|e| TaskError::Data {
            path: path.to_path_buf(),
            msg: format!("no class list (task_info.classes): {e}"),
        })?;
    if classes.is_empty() || classes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(TaskError::Data {
            path: path.to_path_buf(),
            msg: "task_info.classes must be non-empty, sorted and without repeats".into(),
        });
    }
    Ok(classes)
}

fn one() -> usize {
    1
}

/// `[task]` of `classify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyTaskConfig {
    /// Learned queries of the pooler (their outputs are averaged).
    #[serde(default = "one")]
    pub queries: usize,
    #[serde(default)]
    pub mode: Mode,
}

impl Default for ClassifyTaskConfig {
    fn default() -> Self {
        Self {
            queries: 1,
            mode: Mode::Frozen,
        }
    }
}

/// The head of `classify` and `video`: the tasks' shared [`PooledClassifier`], built with
/// [`PooledClassifier::with_queries`].
pub use crate::head::PooledClassifier as ClassifyHead;

/// The image encoder's output tokens `[B, 1 + N, W]`. `frozen`: computed on the inner backend
/// from a validation snapshot of the encoder, so nothing of the encoder enters the autodiff
/// graph (no activation kept, no gradient); the result is returned on the autodiff backend
/// when `pixels` was, as a constant.
pub fn encoder_tokens(coca: &Coca, pixels: Tensor<4>, frozen: bool) -> Tensor<3> {
    if !frozen {
        return coca.visual.trunk(pixels);
    }
    let autodiff = pixels.is_autodiff();
    let tokens = coca.visual.valid().trunk(pixels.inner());
    if autodiff { tokens.autodiff() } else { tokens }
}

/// Width of the image encoder's tokens.
pub fn encoder_width(coca: &Coca) -> usize {
    coca.visual.ln_pre.weight.dims()[0]
}

/// CoCa + classification head.
#[derive(Module, Debug)]
pub struct ClassifyModel {
    pub coca: Coca,
    pub head: ClassifyHead,
    /// Frozen-feature mode (see [`encoder_tokens`]).
    #[module(skip)]
    pub frozen: bool,
}

impl ClassifyModel {
    /// Class logits `[B, classes]`.
    pub fn logits(&self, pixels: Tensor<4>) -> Tensor<2> {
        self.head
            .classify_tokens(encoder_tokens(&self.coca, pixels, self.frozen))
    }
}

/// Mean softmax cross-entropy (the loss every classification task shares, in f32).
pub use crate::head::cross_entropy as softmax_cross_entropy;

/// Row-wise softmax probabilities of `[B, C]` logits, as host rows.
pub fn probability_rows(logits: Tensor<2>) -> Vec<Vec<f32>> {
    let c = logits.dims()[1];
    let p = softmax(coca_core::precision::f32(logits), 1);
    let v: Vec<f32> = p
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    v.chunks(c.max(1)).map(<[f32]>::to_vec).collect()
}

/// Scores and predictions of probability rows `(item index, probs)` against `gold`.
pub(crate) fn evaluation_of(
    probs: &[(usize, Vec<f32>)],
    gold: impl Fn(usize) -> usize,
    key_name: &str,
    key: impl Fn(usize) -> String,
    classes: &[String],
    file: &str,
    skipped: Vec<String>,
) -> Result<(Evaluation, ClassifyScores)> {
    let rankings: Vec<Vec<usize>> = probs.iter().map(|(_, p)| ranking(p)).collect();
    let golds: Vec<usize> = probs.iter().map(|&(i, _)| gold(i)).collect();
    let scores = score_rankings(&rankings, &golds, classes.len())?;
    let keys: Vec<String> = probs.iter().map(|&(i, _)| key(i)).collect();
    let bytes = predictions_csv(
        key_name,
        keys.iter()
            .zip(probs)
            .map(|(k, (_, p))| (k.as_str(), p.as_slice())),
        classes,
    );
    Ok((
        Evaluation {
            metric: scores.accuracy,
            metrics: scores.metrics(),
            predictions: Some((file.to_string(), bytes)),
            skipped,
        },
        scores,
    ))
}

/// The `classify` task.
pub struct Classify {
    pub inputs: Inputs,
    /// Class names, sorted (index = class).
    pub classes: Vec<String>,
    pub config: ClassifyTaskConfig,
    /// Attention heads of the pooler (the image encoder's head count).
    pub heads: usize,
    /// Where `evaluate` writes the confusion-matrix PNG (not drawn when `None`).
    pub confusion_png: Option<PathBuf>,
}

/// Name of the predictions file.
pub const PREDICTIONS_FILE: &str = "predictions_classify.csv";

impl Classify {
    /// Zero-shot scores of `coca` (a non-autodiff model) on `items`: CoCa's contrastive
    /// image embedding against text classifiers built from `templates` (each containing `{}`,
    /// e.g. [`coca_core::zero_shot::DEFAULT_TEMPLATES`]) filled with the class names (`_`
    /// read as a space).
    pub fn zero_shot(
        &self,
        coca: &Coca,
        items: &[ClassifyItem],
        templates: &[impl AsRef<str>],
        ctx: &EvalContext,
    ) -> Result<ClassifyScores> {
        let names: Vec<String> = self.classes.iter().map(|c| c.replace('_', " ")).collect();
        let classifier = coca_core::zero_shot::build_classifier(
            coca,
            &self.inputs.tokenizer,
            &names,
            templates,
            &ctx.device,
        )?;
        let mut rankings = Vec::new();
        let mut gold = Vec::new();
        for_each_eval_batch(self, items, ctx, |idx, (pixels, _)| {
            let features = coca.encode_image(pixels).features;
            let probs = coca_core::zero_shot::classify(features, classifier.clone());
            let c = self.classes.len();
            let v: Vec<f32> = probs
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default();
            rankings.extend(v.chunks(c).map(ranking));
            gold.extend(idx.iter().map(|&i| items[i].label));
            Ok(())
        })?;
        score_rankings(&rankings, &gold, self.classes.len())
    }
}

impl Task for Classify {
    type Model = ClassifyModel;
    type Item = ClassifyItem;
    type Prepared = (Vec<f32>, usize);
    type Batch = (Tensor<4>, Tensor<1, Int>);

    fn name(&self) -> &'static str {
        "classify"
    }

    fn build_model(&self, backbone: &Backbone, device: &Device) -> Result<ClassifyModel> {
        let coca = backbone.coca(self.name())?.coca.clone();
        let width = encoder_width(&coca);
        Ok(ClassifyModel {
            coca,
            head: ClassifyHead::with_queries(
                width,
                self.heads,
                self.config.queries,
                self.classes.len(),
                device,
            ),
            frozen: self.config.mode == Mode::Frozen,
        })
    }

    fn backbone<'a>(&self, model: &'a ClassifyModel) -> Tower<'a> {
        Tower::Coca(&model.coca)
    }

    fn prepare(&self, item: &ClassifyItem, augment: Option<&mut StdRng>) -> Result<Self::Prepared> {
        Ok((self.inputs.image(&item.path, augment)?, item.label))
    }

    fn collate(&self, items: Vec<Self::Prepared>, device: &Device) -> Self::Batch {
        let (images, labels): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        (
            self.inputs.stack_images(images, device),
            crate::head::label_tensor(labels, device),
        )
    }

    fn train_step(&self, model: &ClassifyModel, (pixels, labels): Self::Batch) -> StepOutput {
        StepOutput {
            loss: softmax_cross_entropy(model.logits(pixels), labels),
            logs: vec![],
        }
    }

    fn evaluate(
        &self,
        model: &ClassifyModel,
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
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
