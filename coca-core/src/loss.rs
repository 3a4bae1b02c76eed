//! CoCa's objective: symmetric InfoNCE plus captioning cross-entropy (padding ignored).

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::model::{Coca, CocaOutput};
use crate::precision::f32;

/// Weights of the two terms (open_clip defaults: 1.0 and 2.0) and the padding id.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CocaLossConfig {
    pub clip_loss_weight: f64,
    pub caption_loss_weight: f64,
    pub pad_id: u32,
}

impl Default for CocaLossConfig {
    fn default() -> Self {
        Self {
            clip_loss_weight: 1.0,
            caption_loss_weight: 2.0,
            pad_id: 0,
        }
    }
}

/// The weighted terms and their sum, each of shape `[1]`.
#[derive(Debug, Clone)]
pub struct CocaLoss {
    pub total: Tensor<1>,
    /// `clip_loss_weight` x InfoNCE.
    pub contrastive: Tensor<1>,
    /// `caption_loss_weight` x cross-entropy.
    pub caption: Tensor<1>,
}

impl CocaLossConfig {
    /// The loss of a forward pass of `model`.
    pub fn compute(&self, model: &Coca, out: &CocaOutput) -> CocaLoss {
        let contrastive = contrastive_loss(
            out.image.features.clone(),
            out.text.features.clone(),
            out.logit_scale.clone(),
        ) * self.clip_loss_weight;
        let caption =
            caption_loss_from_hidden(model, out.hidden.clone(), out.labels.clone(), self.pad_id)
                * self.caption_loss_weight;
        CocaLoss {
            total: contrastive.clone() + caption.clone(),
            contrastive,
            caption,
        }
    }
}

/// Symmetric InfoNCE over a batch of matching pairs: `(CE(s I T^T) + CE(s T I^T)) / 2`,
/// with `scale` = `exp(logit_scale)` of shape `[1]`.
pub fn contrastive_loss(image: Tensor<2>, text: Tensor<2>, scale: Tensor<1>) -> Tensor<1> {
    let b = image.dims()[0];
    let logits = f32(image.matmul(text.transpose())) * f32(scale).unsqueeze::<2>();
    let eye = f32(Tensor::<2>::eye(b, &logits.device()));
    let diag_i = (log_softmax(logits.clone(), 1) * eye.clone()).sum();
    let diag_t = (log_softmax(logits, 0) * eye).sum();
    (diag_i + diag_t) * (-0.5 / b as f64)
}

/// [`caption_loss`] computed from decoder states `[B, L, W]`, projecting only the positions
/// whose label is not padding onto the vocabulary (the projection dominates the cost: captions
/// are much shorter than the context). Equal to `caption_loss(logits(hidden), labels)`.
pub fn caption_loss_from_hidden(
    model: &Coca,
    hidden: Tensor<3>,
    labels: Tensor<2, Int>,
    pad_id: u32,
) -> Tensor<1> {
    let [b, l, w] = hidden.dims();
    let device = hidden.device();
    let host: Vec<i64> = labels
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap_or_default();
    let keep: Vec<i64> = (0..host.len())
        .filter(|&i| host[i] != pad_id as i64)
        .map(|i| i as i64)
        .collect();
    if keep.is_empty() {
        return f32(hidden.sum()) * 0.0;
    }
    let n = keep.len();
    let targets: Vec<i64> = keep.iter().map(|&i| host[i as usize]).collect();
    let rows = Tensor::<1, Int>::from_data(TensorData::new(keep, [n]), &device);
    let picked = hidden
        .reshape([b * l, w])
        .select(0, rows)
        .reshape([1, n, w]);
    let logits = model.text_decoder.logits(picked);
    let v = logits.dims()[2];
    let logp = log_softmax(f32(logits.reshape([n, v])), 1);
    let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [n, 1]), &device);
    -logp.gather(1, targets).mean()
}

/// Mean cross-entropy of `logits [B, L, V]` against `labels [B, L]`, ignoring `pad_id`.
pub fn caption_loss(logits: Tensor<3>, labels: Tensor<2, Int>, pad_id: u32) -> Tensor<1> {
    let [b, l, v] = logits.dims();
    let logp = log_softmax(f32(logits.reshape([b * l, v])), 1);
    let labels = labels.reshape([b * l, 1]);
    let keep = labels
        .clone()
        .not_equal_elem(pad_id as i64)
        .float()
        .reshape([b * l]);
    let keep = f32(keep);
    let picked = logp.gather(1, labels).reshape([b * l]);
    let count = keep.clone().sum().clamp_min(1.0);
    -(picked * keep).sum() / count
}
