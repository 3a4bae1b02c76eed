//! The `Task` trait: what a downstream task adds to the shared engine.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use coca_core::Coca;
use coca_core::clippo::Clippo;
use rand::rngs::StdRng;

use crate::engine::Backbone;
use crate::error::Result;

/// Prefix of a pretrained CoCa inside a task model's module tree (the field `coca`).
pub const BACKBONE_PREFIX: &str = "coca.";
/// Prefix of a pretrained CLIPPO inside a task model's module tree (the field `clippo`).
pub const CLIPPO_PREFIX: &str = "clippo.";

/// Whether the parameter at `path` belongs to the pretrained backbone (of either family).
pub fn is_backbone_path(path: &str) -> bool {
    path.starts_with(BACKBONE_PREFIX) || path.starts_with(CLIPPO_PREFIX)
}

/// The backbone inside a task model, by family.
#[derive(Debug, Clone, Copy)]
pub enum Tower<'a> {
    Coca(&'a Coca),
    Clippo(&'a Clippo),
}

/// What one training step computed: the loss to minimise and scalars to log.
pub struct StepOutput {
    /// Scalar loss `[1]`.
    pub loss: Tensor<1>,
    /// Named scalars `[1]` logged beside the loss (e.g. the loss terms).
    pub logs: Vec<(&'static str, Tensor<1>)>,
}

/// Everything an evaluation needs besides the model and the items.
#[derive(Debug, Clone)]
pub struct EvalContext {
    pub device: Device,
    pub batch_size: usize,
    pub workers: usize,
    /// Fail on unreadable images instead of skipping them.
    pub strict: bool,
}

/// The result of an evaluation.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// The selection metric (higher is better): best checkpoint and early stopping use it.
    pub metric: f64,
    /// Every metric, for `metrics.jsonl` / `metrics.json`.
    pub metrics: BTreeMap<String, f64>,
    /// Predictions in the task's official submission format: (file name, contents).
    pub predictions: Option<(String, Vec<u8>)>,
    /// Items that could not be evaluated (unreadable images), with the reason.
    pub skipped: Vec<String>,
}

/// A downstream task: data preparation, a head on the backbone, a loss and a metric.
///
/// The model must keep the backbone under the field `coca` (CoCa) or `clippo` (CLIPPO), so its
/// parameters' paths start with [`BACKBONE_PREFIX`] or [`CLIPPO_PREFIX`]; every other
/// parameter belongs to the task head.
pub trait Task: Send + Sync + 'static {
    /// The full model: the backbone (`coca` or `clippo`) plus the head.
    type Model: Module + Clone + std::fmt::Debug + Send + 'static;
    /// One example as listed in the dataset files (paths, text, labels).
    type Item: Clone + Send + Sync + 'static;
    /// One example decoded and preprocessed on the host (worker threads).
    type Prepared: Send + 'static;
    /// A batch on the device.
    type Batch;

    /// Short name (`vqa`, `snli-ve`, `nlvr2`, `caption`, `pretrain`).
    fn name(&self) -> &'static str;
    /// Adds the task head to a (pretrained) backbone; an error when the task does not run on
    /// the backbone's family.
    fn build_model(&self, backbone: &Backbone, device: &Device) -> Result<Self::Model>;
    /// The backbone inside the model.
    fn backbone<'a>(&self, model: &'a Self::Model) -> Tower<'a>;
    /// Decodes and preprocesses one item; `augment` is a per-item seeded RNG during training.
    fn prepare(&self, item: &Self::Item, augment: Option<&mut StdRng>) -> Result<Self::Prepared>;
    /// Stacks prepared items into a batch on `device`.
    fn collate(&self, items: Vec<Self::Prepared>, device: &Device) -> Self::Batch;
    /// The training loss of a batch.
    fn train_step(&self, model: &Self::Model, batch: Self::Batch) -> StepOutput;
    /// Evaluates with the task's official metric.
    fn evaluate(
        &self,
        model: &Self::Model,
        items: &[Self::Item],
        ctx: &EvalContext,
    ) -> Result<Evaluation>;
    /// What `task.json` must hold besides the model config to rebuild the model for prediction
    /// (labels, answer vocabulary, head settings).
    fn export_info(&self) -> serde_json::Value;
}
