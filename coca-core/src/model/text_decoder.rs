//! The multimodal text decoder (`text_decoder.*`): causal self-attention blocks interleaved
//! with cross-attention blocks over the image tokens, then `ln_final` and the vocabulary projection.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::attention::causal_bias;
use super::block::ResidualAttentionBlock;
use super::layers::{FEW_ROWS, LayerNorm, lazy_normal};
use crate::config::CocaConfig;

/// open_clip's `MultimodalTransformer`.
#[derive(Module, Debug)]
pub struct MultimodalTransformer {
    pub resblocks: Vec<ResidualAttentionBlock>,
    pub cross_attn: Vec<ResidualAttentionBlock>,
    pub ln_final: LayerNorm,
    /// `[width, vocab]`, used as `x @ text_projection` (not tied to the token embedding).
    pub text_projection: Param<Tensor<2>>,
}

impl MultimodalTransformer {
    /// Random weights with open_clip's initialisation scales.
    pub fn new(cfg: &CocaConfig, device: &Device) -> Self {
        let m = &cfg.multimodal_cfg;
        let block = |cross| {
            ResidualAttentionBlock::new(m.width, m.heads, m.mlp_ratio, m.layers, cross, device)
        };
        Self {
            resblocks: (0..m.layers).map(|_| block(false)).collect(),
            cross_attn: (0..m.layers).map(|_| block(true)).collect(),
            ln_final: LayerNorm::new(m.width, device),
            text_projection: lazy_normal(
                [m.width, m.vocab_size],
                (m.width as f64).powf(-0.5),
                device,
            ),
        }
    }

    /// Hidden states before `ln_final`: `image_embs [B, M, W]`, `text_embs [B, L, W]` -> `[B, L, W]`.
    pub fn hidden(&self, image_embs: Tensor<3>, text_embs: Tensor<3>) -> Tensor<3> {
        let len = text_embs.dims()[1];
        let bias = causal_bias(len, &text_embs.device());
        let mut x = text_embs;
        for (block, cross) in self.resblocks.iter().zip(&self.cross_attn) {
            x = block.forward(x, Some(bias.clone()));
            x = cross.forward_cross(x, image_embs.clone());
        }
        x
    }

    /// Vocabulary logits of hidden states: `ln_final(x) @ text_projection`.
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        let [b, l, w] = hidden.dims();
        let proj = self.text_projection.val();
        let vocab = proj.dims()[1];
        let x = self.ln_final.forward(hidden).reshape([b * l, w]);
        // Few rows (decoding): `(P^T x^T)^T` streams the projection faster (see `linear_pt`).
        let logits = if b * l <= FEW_ROWS {
            match crate::cpu::rows_matmul(&x, &proj) {
                Some(y) => y,
                None => proj.transpose().matmul(x.transpose()).transpose(),
            }
        } else {
            x.matmul(proj)
        };
        logits.reshape([b, l, vocab])
    }

    /// `image_embs [B, M, W]`, `text_embs [B, L, W]` -> logits `[B, L, vocab]`.
    pub fn forward(&self, image_embs: Tensor<3>, text_embs: Tensor<3>) -> Tensor<3> {
        self.logits(self.hidden(image_embs, text_embs))
    }
}
