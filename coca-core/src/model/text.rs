//! The unimodal text decoder (`text.*`): causal transformer with a CLS token appended at the end.

use burn::module::{Module, Param};
use burn::tensor::module::embedding;
use burn::tensor::{Bool, Device, Int, Tensor};

use super::attention::{causal_bias, key_bias, not_pad};
use super::block::Transformer;
use super::layers::{LayerNorm, lazy_normal};
use crate::config::CocaConfig;

/// The token embedding table (`text.token_embedding.weight`, `[vocab, width]`).
#[derive(Module, Debug)]
pub struct Embedding {
    pub weight: Param<Tensor<2>>,
}

/// Outputs of the text tower.
#[derive(Debug, Clone)]
pub struct TextOutput {
    /// Contrastive embedding (projected, not normalised) `[B, embed_dim]`.
    pub pooled: Tensor<2>,
    /// Token outputs before `ln_final`, CLS dropped `[B, L, width]`.
    pub tokens: Tensor<3>,
}

/// open_clip's `TextTransformer` with `embed_cls`.
#[derive(Module, Debug)]
pub struct TextTransformer {
    pub token_embedding: Embedding,
    /// `[context + 1, width]`.
    pub positional_embedding: Param<Tensor<2>>,
    /// `[width]`.
    pub cls_emb: Param<Tensor<1>>,
    pub transformer: Transformer,
    pub ln_final: LayerNorm,
    /// `[width, embed_dim]`, used as `x @ text_projection`.
    pub text_projection: Param<Tensor<2>>,
    pad_id: u32,
}

impl TextTransformer {
    /// Random weights with open_clip's initialisation scales.
    pub fn new(cfg: &CocaConfig, device: &Device) -> Self {
        let t = &cfg.text_cfg;
        Self {
            token_embedding: Embedding {
                weight: lazy_normal([t.vocab_size, t.width], 0.02, device),
            },
            positional_embedding: lazy_normal([cfg.text_positions(), t.width], 0.01, device),
            cls_emb: lazy_normal([t.width], 0.01, device),
            transformer: Transformer::new(t.width, t.layers, t.heads, t.mlp_ratio, device),
            ln_final: LayerNorm::new(t.width, device),
            text_projection: lazy_normal(
                [t.width, cfg.embed_dim],
                (t.width as f64).powf(-0.5),
                device,
            ),
            pad_id: t.pad_id,
        }
    }

    /// Maximum number of tokens (without the CLS position).
    pub fn context_length(&self) -> usize {
        self.positional_embedding.dims()[0] - 1
    }

    /// Token embeddings plus positions for `text [B, L]` followed by CLS: `[B, L + 1, W]`.
    pub fn embed(&self, text: Tensor<2, Int>) -> Tensor<3> {
        let [b, l] = text.dims();
        let x = embedding(self.token_embedding.weight.val(), text);
        let w = x.dims()[2];
        let cls = self.cls_emb.val().reshape([1, 1, w]).expand([b, 1, w]);
        let x = Tensor::cat(vec![x, cls], 1);
        let pos = self.positional_embedding.val().slice([0..l + 1, 0..w]);
        x + pos.unsqueeze::<3>()
    }

    /// Token embeddings plus positions `start..start + n` for `tokens [B, n]` (no CLS): the
    /// input of incremental decoding.
    pub fn embed_tokens(&self, tokens: Tensor<2, Int>, start: usize) -> Tensor<3> {
        let n = tokens.dims()[1];
        let x = embedding(self.token_embedding.weight.val(), tokens);
        let w = x.dims()[2];
        let pos = self
            .positional_embedding
            .val()
            .slice([start..start + n, 0..w]);
        x + pos.unsqueeze::<3>()
    }

    /// The additive mask of open_clip 3.3.0 `[B, 1, L + 1, L + 1]`: causal, plus key `j`
    /// hidden when `j >= 1` and `text[j - 1]` is padding (key 0 always visible).
    pub fn attention_bias(&self, text: Tensor<2, Int>) -> Tensor<4> {
        let [b, l] = text.dims();
        let device = text.device();
        let first = Tensor::<2, Bool>::from_data(
            burn::tensor::TensorData::new(vec![true; b], [b, 1]),
            &device,
        );
        let visible = Tensor::cat(vec![first, not_pad(text, self.pad_id)], 1);
        causal_bias(l + 1, &device) + key_bias(visible)
    }

    /// `text [B, L]` (token ids, `L <= context_length`) -> pooled CLS embedding and token outputs.
    pub fn forward(&self, text: Tensor<2, Int>) -> TextOutput {
        let [b, l] = text.dims();
        let x = self.embed(text.clone());
        let x = self.transformer.forward(x, Some(self.attention_bias(text)));
        let w = x.dims()[2];
        let cls = x.clone().slice([0..b, l..l + 1, 0..w]).reshape([b, w]);
        let pooled = self
            .ln_final
            .forward(cls)
            .matmul(self.text_projection.val());
        TextOutput {
            pooled,
            tokens: x.slice([0..b, 0..l, 0..w]),
        }
    }
}
