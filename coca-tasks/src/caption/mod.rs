//! MSCOCO captioning: fine-tuning with the captioning loss (contrastive weight configurable),
//! evaluation by batched beam search and the COCO caption metrics (CIDEr selects checkpoints).

pub mod data;
mod spec;

pub use spec::SPEC;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use coca_core::Coca;
use coca_core::generation::{DecodeStrategy, GenerationConfig, generate};
use coca_core::loss::CocaLossConfig;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::engine::Backbone;
use crate::engine::data::for_each_eval_batch;
use crate::error::{Result, TaskError};
use crate::inputs::{ImageText, Inputs};
use crate::metrics::caption::evaluate_captions;
use crate::task::{EvalContext, Evaluation, StepOutput, Task, Tower};
use data::{CaptionImage, load_karpathy};

/// `[data]` of captioning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptionData {
    /// Karpathy `dataset_coco.json`.
    pub karpathy: PathBuf,
    /// Root holding the `filepath` folders (`train2014`, `val2014`).
    pub images: PathBuf,
    /// Karpathy split used for validation (`val` or `test`).
    #[serde(default = "val")]
    pub val_split: String,
}

fn val() -> String {
    "val".into()
}

/// `[task]` of captioning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptionTaskConfig {
    #[serde(default)]
    pub clip_loss_weight: f64,
    #[serde(default = "one")]
    pub caption_loss_weight: f64,
    /// Beams of the evaluation beam search.
    #[serde(default = "three")]
    pub beams: usize,
    #[serde(default = "twenty")]
    pub max_tokens: usize,
    #[serde(default = "five")]
    pub min_tokens: usize,
}

fn one() -> f64 {
    1.0
}
fn three() -> usize {
    3
}
fn twenty() -> usize {
    20
}
fn five() -> usize {
    5
}

impl Default for CaptionTaskConfig {
    fn default() -> Self {
        Self {
            clip_loss_weight: 0.0,
            caption_loss_weight: 1.0,
            beams: 3,
            max_tokens: 20,
            min_tokens: 5,
        }
    }
}

/// One training pair with all references of its image.
#[derive(Debug, Clone)]
pub struct CaptionItem {
    pub image_id: u64,
    pub image: PathBuf,
    pub caption: String,
    pub references: Arc<Vec<String>>,
}

/// Expands images into one item per caption.
pub fn caption_items(images: Vec<CaptionImage>) -> Vec<CaptionItem> {
    images
        .into_iter()
        .flat_map(|img| {
            let refs = Arc::new(img.captions.clone());
            img.captions.into_iter().map(move |c| CaptionItem {
                image_id: img.image_id,
                image: img.image.clone(),
                caption: c,
                references: refs.clone(),
            })
        })
        .collect()
}

impl CaptionData {
    /// Train (train + restval) and validation items.
    pub fn load(&self) -> Result<(Vec<CaptionItem>, Vec<CaptionItem>)> {
        let train = load_karpathy(&self.karpathy, &self.images, &["train"])?;
        let val = load_karpathy(&self.karpathy, &self.images, &[self.val_split.as_str()])?;
        Ok((caption_items(train), caption_items(val)))
    }
}

/// The captioning model: CoCa alone.
#[derive(Module, Debug)]
pub struct CaptionModel {
    pub coca: Coca,
}

/// The captioning task.
pub struct Captioning {
    pub inputs: Inputs,
    pub config: CaptionTaskConfig,
}

impl Captioning {
    /// The generation settings of evaluation.
    pub fn generation(&self) -> GenerationConfig {
        GenerationConfig {
            strategy: DecodeStrategy::Beam {
                num_beams: self.config.beams.max(1),
                length_penalty: 1.0,
                early_stopping: true,
            },
            max_new_tokens: self.config.max_tokens,
            min_new_tokens: self.config.min_tokens.min(self.config.max_tokens),
            repetition_penalty: 1.0,
            ignore_eos: false,
            use_cache: true,
        }
    }

    /// Captions for a batch of images `[B, 3, S, S]`.
    pub fn caption(&self, coca: &Coca, pixels: Tensor<4>) -> Result<Vec<String>> {
        let embs = coca.encode_image(pixels).embs;
        generate(coca, embs, &[], &self.generation())?
            .into_iter()
            .map(|c| Ok(self.inputs.tokenizer.decode(&c.tokens)?))
            .collect()
    }
}

impl Task for Captioning {
    type Model = CaptionModel;
    type Item = CaptionItem;
    type Prepared = ImageText;
    type Batch = (Tensor<4>, Tensor<2, Int>);

    fn name(&self) -> &'static str {
        "caption"
    }

    fn build_model(&self, backbone: &Backbone, _device: &Device) -> Result<CaptionModel> {
        Ok(CaptionModel {
            coca: backbone.coca(self.name())?.coca.clone(),
        })
    }

    fn backbone<'a>(&self, model: &'a CaptionModel) -> Tower<'a> {
        Tower::Coca(&model.coca)
    }

    fn prepare(&self, item: &CaptionItem, augment: Option<&mut StdRng>) -> Result<Self::Prepared> {
        self.inputs.image_text(&item.image, &item.caption, augment)
    }

    fn collate(&self, items: Vec<Self::Prepared>, device: &Device) -> Self::Batch {
        self.inputs.collate_image_text(items, device)
    }

    fn train_step(&self, model: &CaptionModel, (pixels, text): Self::Batch) -> StepOutput {
        let out = model.coca.forward(pixels, text);
        let loss = CocaLossConfig {
            clip_loss_weight: self.config.clip_loss_weight,
            caption_loss_weight: self.config.caption_loss_weight,
            pad_id: coca_core::tokenizer::PAD,
        }
        .compute(&model.coca, &out);
        StepOutput {
            loss: loss.total,
            logs: vec![("caption", loss.caption), ("contrastive", loss.contrastive)],
        }
    }

    fn evaluate(
        &self,
        model: &CaptionModel,
        items: &[CaptionItem],
        ctx: &EvalContext,
    ) -> Result<Evaluation> {
        let mut seen = std::collections::BTreeSet::new();
        let unique: Vec<CaptionItem> = items
            .iter()
            .filter(|i| seen.insert(i.image_id))
            .cloned()
            .collect();
        let mut results: BTreeMap<u64, String> = BTreeMap::new();
        let skipped = for_each_eval_batch(self, &unique, ctx, |idx, (pixels, _)| {
            for (i, c) in idx.iter().zip(self.caption(&model.coca, pixels)?) {
                results.insert(unique[*i].image_id, c);
            }
            Ok(())
        })?;
        let gts: BTreeMap<u64, Vec<String>> = unique
            .iter()
            .filter(|i| results.contains_key(&i.image_id))
            .map(|i| (i.image_id, i.references.to_vec()))
            .collect();
        if gts.is_empty() {
            return Err(TaskError::Config(
                "no validation image could be captioned".into(),
            ));
        }
        let scores = evaluate_captions(&gts, &results)?;
        let mut metrics = BTreeMap::new();
        if let serde_json::Value::Object(map) = scores.to_json() {
            for (k, v) in map {
                if let Some(x) = v.as_f64() {
                    metrics.insert(k, x);
                }
            }
        }
        let json: Vec<_> = results
            .iter()
            .map(|(id, c)| json!({"image_id": id, "caption": c}))
            .collect();
        let bytes = serde_json::to_vec(&json).map_err(|e| TaskError::Config(e.to_string()))?;
        Ok(Evaluation {
            metric: scores.cider,
            metrics,
            predictions: Some(("results_caption.json".into(), bytes)),
            skipped,
        })
    }

    fn export_info(&self) -> serde_json::Value {
        json!({"generation": self.generation(), "clip_loss_weight": self.config.clip_loss_weight, "caption_loss_weight": self.config.caption_loss_weight})
    }
}
