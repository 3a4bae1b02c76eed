//! Continued pretraining on a user's image-caption pairs with the backbone's own objective:
//! CoCa's (contrastive + captioning) here, CLIPPO's (contrastive over rendered captions,
//! optional text/text pairs) in [`clippo`].

pub mod clippo;

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use coca_core::Coca;
use coca_core::loss::CocaLossConfig;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::engine::Backbone;
use crate::engine::data::for_each_eval_batch;
use crate::error::Result;
use crate::inputs::{ImageText, Inputs};
use crate::registry::{EvalFile, EvalFiles, Report, TaskSpec};
use crate::run::{Done, Setup};
use crate::task::{EvalContext, Evaluation, StepOutput, Task, Tower};

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
    /// CoCa only.
    #[serde(default = "one")]
    pub clip_loss_weight: f64,
    /// CoCa only.
    #[serde(default = "two")]
    pub caption_loss_weight: f64,
    /// CLIPPO only: JSON Lines of text pairs (`{"first": .., "second": ..}` or `[.., ..]`)
    /// mixed into training.
    #[serde(default)]
    pub text_pairs: Option<PathBuf>,
    /// CLIPPO only: the share of training pairs that are text pairs (the paper: 0.25).
    #[serde(default = "quarter")]
    pub text_pair_share: f64,
}

fn quarter() -> f64 {
    0.25
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
            text_pairs: None,
            text_pair_share: quarter(),
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

    fn build_model(&self, backbone: &Backbone, _device: &Device) -> Result<PretrainModel> {
        Ok(PretrainModel {
            coca: backbone.coca(self.name())?.coca.clone(),
        })
    }

    fn backbone<'a>(&self, model: &'a PretrainModel) -> Tower<'a> {
        Tower::Coca(&model.coca)
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
        let mut groups: Vec<&std::path::Path> = Vec::new();
        let skipped = for_each_eval_batch(self, items, ctx, |idx, (pixels, text)| {
            let out = model.coca.forward(pixels, text);
            let loss = self.loss_config().compute(&model.coca, &out);
            let n = idx.len();
            sums.0 += f64::from(loss.contrastive.into_scalar::<f32>()) * n as f64;
            sums.1 += f64::from(loss.caption.into_scalar::<f32>()) * n as f64;
            sums.2 += n;
            groups.extend(idx.iter().map(|&i| items[i].image.as_path()));
            image_feats.extend(rows(out.image.features));
            text_feats.extend(rows(out.text.features));
            Ok(())
        })?;
        let n = sums.2.max(1) as f64;
        let loss = (sums.0 + sums.1) / n;
        let mut metrics = BTreeMap::from([
            ("loss".to_string(), loss),
            ("contrastive".to_string(), sums.0 / n),
            ("caption".to_string(), sums.1 / n),
        ]);
        metrics.extend(retrieval_recall(&image_feats, &text_feats, &groups));
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

/// The rows of `[N, D]` features as host vectors.
pub fn rows(features: Tensor<2>) -> Vec<Vec<f32>> {
    let d = features.dims()[1].max(1);
    let v: Vec<f32> = features
        .into_data()
        .convert::<f32>()
        .try_to_vec()
        .unwrap_or_default();
    v.chunks(d).map(<[f32]>::to_vec).collect()
}

/// Image->text and text->image recall@1 (`i2t_r1`, `t2i_r1`) of caption pairs, ranked by dot
/// product, as COCO retrieval is scored: pair `i` is (image `groups[i]`, text `i`), each
/// distinct image counted once. An image scores a hit when one of its own captions ranks
/// first, a text when its image does; a tie with a wrong candidate is a miss (so features that
/// collapse to one vector score 0, not 1).
pub fn retrieval_recall<G: PartialEq>(
    image_feats: &[Vec<f32>],
    text_feats: &[Vec<f32>],
    groups: &[G],
) -> Vec<(String, f64)> {
    let dot = |a: &[f32], b: &[f32]| -> f32 { a.iter().zip(b).map(|(x, y)| x * y).sum() };
    // The first pair of each image stands for it.
    let images: Vec<usize> = (0..groups.len())
        .filter(|&i| groups[..i].iter().all(|g| *g != groups[i]))
        .collect();
    let hits_i2t = images
        .iter()
        .filter(|&&i| {
            let (mut own, mut other) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
            for (j, t) in text_feats.iter().enumerate() {
                let s = dot(&image_feats[i], t);
                if groups[j] == groups[i] {
                    own = own.max(s);
                } else {
                    other = other.max(s);
                }
            }
            own > other
        })
        .count();
    let hits_t2i = (0..text_feats.len())
        .filter(|&j| {
            let mut own = f32::NEG_INFINITY;
            let mut other = f32::NEG_INFINITY;
            for &i in &images {
                let s = dot(&image_feats[i], &text_feats[j]);
                if groups[i] == groups[j] {
                    own = s;
                } else {
                    other = other.max(s);
                }
            }
            own > other
        })
        .count();
    let share = |hits: usize, n: usize| if n == 0 { 0.0 } else { hits as f64 / n as f64 };
    vec![
        ("i2t_r1".to_string(), share(hits_i2t, images.len())),
        ("t2i_r1".to_string(), share(hits_t2i, text_feats.len())),
    ]
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
        "Continued pretraining on image-caption pairs: CoCa's contrastive + captioning loss, or CLIPPO's contrastive loss (optional text/text pairs)"
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
        if let Backbone::Clippo(_) = setup.backbone() {
            let texts = match (&config.text_pairs, setup.export_dir()) {
                (Some(path), None) => clippo::load_text_pairs(path)?,
                _ => Vec::new(),
            };
            let seed = setup.config().train.seed;
            let train = clippo::mix_text_pairs(pairs(train), &texts, config.text_pair_share, seed)?;
            let val = pairs(val)
                .into_iter()
                .map(clippo::ContrastItem::Image)
                .collect();
            tracing::info!(
                text_pairs = train
                    .iter()
                    .filter(|i| matches!(i, clippo::ContrastItem::Texts(..)))
                    .count(),
                items = train.len(),
                "CLIPPO contrastive training set"
            );
            let task = clippo::ClippoPretrain {
                inputs: setup.rendered_inputs(self.name(), Default::default())?,
                text_pairs: config.text_pairs.clone(),
                text_pair_share: config.text_pair_share,
            };
            return setup.act(task, train, val);
        }
        if let Some(path) = &config.text_pairs {
            return Err(crate::error::TaskError::Config(format!(
                "[task] text_pairs = {}: text/text pairs train a CLIPPO model; this is a CoCa model",
                path.display()
            )));
        }
        let task = Pretrain {
            inputs: setup.inputs(self.name())?,
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

#[cfg(test)]
mod tests {
    use super::retrieval_recall;

    fn r(images: &[Vec<f32>], texts: &[Vec<f32>], groups: &[u32]) -> (f64, f64) {
        let m: std::collections::BTreeMap<String, f64> = retrieval_recall(images, texts, groups)
            .into_iter()
            .collect();
        (m["i2t_r1"], m["t2i_r1"])
    }

    #[test]
    fn collapsed_features_score_zero_and_matching_ones_score_one() {
        // Two images with two captions each (pairs 0,1 of image 0; 2,3 of image 1).
        let groups = [0, 0, 1, 1];
        let e = |i: usize| {
            let mut v = vec![0.0; 2];
            v[i] = 1.0;
            v
        };
        let images = vec![e(0), e(0), e(1), e(1)];
        assert_eq!(r(&images, &images, &groups), (1.0, 1.0));
        let same = vec![vec![1.0, 0.0]; 4];
        assert_eq!(r(&same, &same, &groups), (0.0, 0.0));
        // Texts swapped between the images: every retrieval is wrong.
        let swapped = vec![e(1), e(1), e(0), e(0)];
        assert_eq!(r(&images, &swapped, &groups), (0.0, 0.0));
        // One caption of image 1 points at image 0: 3 of 4 texts right; both images still
        // have a best caption of their own.
        let one_off = vec![e(0), e(0), e(0), e(1)];
        let (i2t, t2i) = r(&images, &one_off, &groups);
        assert_eq!(t2i, 0.75);
        assert_eq!(
            i2t, 0.5,
            "image 0 ties its own caption with image 1's: a miss"
        );
    }
}
