//! CoCa's own objective (contrastive + captioning) on image-caption pairs: continued
//! pretraining on a user's data.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use coca_core::Coca;
use coca_core::loss::CocaLossConfig;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::engine::data::for_each_eval_batch;
use crate::error::Result;
use crate::inputs::{ImageText, Inputs};
use crate::registry::{EvalFile, EvalFiles, Report, TaskSpec};
use crate::run::{Done, Setup};
use crate::task::{EvalContext, Evaluation, StepOutput, Task};

/// One image with one caption.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionPair {
    pub image: PathBuf,
    pub caption: String,
}

/// `[task]` of the pretraining task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainConfig {
    #[serde(default = "one")]
    pub clip_loss_weight: f64,
    #[serde(default = "two")]
    pub caption_loss_weight: f64,
}

fn one() -> f64 {
    1.0
}
fn two() -> f64 {
    2.0
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            clip_loss_weight: 1.0,
            caption_loss_weight: 2.0,
        }
    }
}

/// The model: CoCa alone.
#[derive(Module, Debug)]
pub struct PretrainModel {
    pub coca: Coca,
}

/// Continued pretraining with CoCa's loss.
pub struct Pretrain {
    pub inputs: Inputs,
    pub config: PretrainConfig,
}

impl Pretrain {
    fn loss_config(&self) -> CocaLossConfig {
        CocaLossConfig {
            clip_loss_weight: self.config.clip_loss_weight,
            caption_loss_weight: self.config.caption_loss_weight,
            pad_id: coca_core::tokenizer::PAD,
        }
    }
}

impl Task for Pretrain {
    type Model = PretrainModel;
    type Item = CaptionPair;
    type Prepared = ImageText;
    type Batch = (Tensor<4>, Tensor<2, Int>);

    fn name(&self) -> &'static str {
        "pretrain"
    }

    fn build_model(&self, coca: Coca, _device: &Device) -> PretrainModel {
        PretrainModel { coca }
    }

    fn backbone<'a>(&self, model: &'a PretrainModel) -> &'a Coca {
        &model.coca
    }

    fn prepare(&self, item: &CaptionPair, augment: Option<&mut StdRng>) -> Result<Self::Prepared> {
        self.inputs.image_text(&item.image, &item.caption, augment)
    }

    fn collate(&self, items: Vec<Self::Prepared>, device: &Device) -> Self::Batch {
        self.inputs.collate_image_text(items, device)
    }

    fn train_step(&self, model: &PretrainModel, (pixels, text): Self::Batch) -> StepOutput {
        let out = model.coca.forward(pixels, text);
        let loss = self.loss_config().compute(&model.coca, &out);
        StepOutput {
            loss: loss.total,
            logs: vec![("contrastive", loss.contrastive), ("caption", loss.caption)],
        }
    }

    fn evaluate(
        &self,
        model: &PretrainModel,
        items: &[CaptionPair],
        ctx: &EvalContext,
    ) -> Result<Evaluation> {
        let mut sums = (0.0f64, 0.0f64, 0usize);
        let mut image_feats: Vec<Vec<f32>> = Vec::new();
        let mut text_feats: Vec<Vec<f32>> = Vec::new();
        let skipped = for_each_eval_batch(self, items, ctx, |idx, (pixels, text)| {
            let out = model.coca.forward(pixels, text);
            let loss = self.loss_config().compute(&model.coca, &out);
            let n = idx.len();
            sums.0 += f64::from(loss.contrastive.into_scalar::<f32>()) * n as f64;
            sums.1 += f64::from(loss.caption.into_scalar::<f32>()) * n as f64;
            sums.2 += n;
            let d = out.image.features.dims()[1];
            let im: Vec<f32> = out
                .image
                .features
                .into_data()
                .convert::<f32>()
                .try_to_vec()
                .unwrap_or_default();
            let tx: Vec<f32> = out
                .text
                .features
                .into_data()
                .convert::<f32>()
                .try_to_vec()
                .unwrap_or_default();
            image_feats.extend(im.chunks(d).map(<[f32]>::to_vec));
            text_feats.extend(tx.chunks(d).map(<[f32]>::to_vec));
            Ok(())
        })?;
        let n = sums.2.max(1) as f64;
        let scores: Vec<Vec<f32>> = image_feats
            .iter()
            .map(|i| {
                text_feats
                    .iter()
                    .map(|t| i.iter().zip(t).map(|(a, b)| a * b).sum())
                    .collect()
            })
            .collect();
        let transposed: Vec<Vec<f32>> = (0..text_feats.len())
            .map(|j| scores.iter().map(|row| row[j]).collect())
            .collect();
        let loss = (sums.0 + sums.1) / n;
        let metrics = BTreeMap::from([
            ("loss".to_string(), loss),
            ("contrastive".to_string(), sums.0 / n),
            ("caption".to_string(), sums.1 / n),
            (
                "i2t_r1".to_string(),
                coca_core::zero_shot::recall_at_k(&scores, 1),
            ),
            (
                "t2i_r1".to_string(),
                coca_core::zero_shot::recall_at_k(&transposed, 1),
            ),
        ]);
        Ok(Evaluation {
            metric: -loss,
            metrics,
            predictions: None,
            skipped,
        })
    }

    fn export_info(&self) -> serde_json::Value {
        json!({"objective": "coca", "clip_loss_weight": self.config.clip_loss_weight, "caption_loss_weight": self.config.caption_loss_weight})
    }
}

/// Continued pretraining in the registry.
pub struct PretrainSpec;

/// The registry entry.
pub static SPEC: PretrainSpec = PretrainSpec;

impl TaskSpec for PretrainSpec {
    fn name(&self) -> &'static str {
        "pretrain"
    }

    fn about(&self) -> &'static str {
        "Continued CoCa pretraining (contrastive + captioning) on image-caption pairs"
    }

    fn run(&self, setup: Setup<'_>) -> Result<Done> {
        let data: crate::caption::CaptionData = setup.data()?;
        let config: PretrainConfig = setup.task_config()?;
        let (train, val) = data.load()?;
        let pairs = |v: Vec<crate::caption::CaptionItem>| -> Vec<CaptionPair> {
            v.into_iter()
                .map(|i| CaptionPair {
                    image: i.image,
                    caption: i.caption,
                })
                .collect()
        };
        let task = Pretrain {
            inputs: setup.inputs(),
            config,
        };
        setup.act(task, pairs(train), pairs(val))
    }

    fn eval_files(&self) -> &'static [EvalFile] {
        &[]
    }

    fn evaluate_files(&self, _files: &EvalFiles) -> Result<Report> {
        Err(crate::error::TaskError::Config(
            "pretrain has no predictions file to score: its evaluation is the held-out loss and retrieval recall of `finetune`/`predict`".into(),
        ))
    }
}
