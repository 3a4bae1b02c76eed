//! The image encoder (`visual.*`): ViT, attentional pooler(s), `ln_post`, `proj`.

use burn::module::{Module, Param};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

use super::attn_pool::AttentionalPooler;
use super::block::Transformer;
use super::layers::{LayerNorm, lazy_normal};
use crate::config::{AttentionalPool, CocaConfig, TwoPoolers};

/// The patch embedding: a bias-free convolution with kernel = stride = patch size.
#[derive(Module, Debug)]
pub struct PatchConv {
    /// `[width, 3, patch, patch]`.
    pub weight: Param<Tensor<4>>,
}

/// Outputs of the image encoder.
#[derive(Debug, Clone)]
pub struct VisionOutput {
    /// Contrastive embedding (projected, not normalised) `[B, embed_dim]`.
    pub pooled: Tensor<2>,
    /// Decoder memory `[B, n_tokens, embed_dim]`.
    pub tokens: Tensor<3>,
}

/// open_clip's `VisionTransformer` with attentional pooling.
#[derive(Module, Debug)]
pub struct VisionTransformer {
    pub conv1: PatchConv,
    /// `[width]`.
    pub class_embedding: Param<Tensor<1>>,
    /// `[1 + grid^2, width]`.
    pub positional_embedding: Param<Tensor<2>>,
    pub ln_pre: LayerNorm,
    pub transformer: Transformer,
    pub attn_pool: AttentionalPooler,
    /// Present in the paper's two-pooler layout only.
    pub attn_pool_contrastive: Option<AttentionalPooler>,
    pub ln_post: LayerNorm,
    /// `[embed_dim, embed_dim]`, used as `x @ proj`.
    pub proj: Param<Tensor<2>>,
    patch_size: usize,
    cascade: bool,
}

impl VisionTransformer {
    /// Random weights with open_clip's initialisation scales.
    pub fn new(cfg: &CocaConfig, device: &Device) -> Self {
        let v = &cfg.vision_cfg;
        let grid = v.image_size / v.patch_size;
        let scale = (v.width as f64).powf(-0.5);
        let d = cfg.embed_dim;
        let (attn_pool, attn_pool_contrastive, cascade) = match v.attentional_pool {
            AttentionalPool::Separate(kind) => (
                AttentionalPooler::new(
                    d,
                    v.width,
                    v.attn_pooler_heads,
                    v.attn_pooler_queries,
                    device,
                ),
                Some(AttentionalPooler::new(
                    d,
                    if kind == TwoPoolers::Cascade {
                        d
                    } else {
                        v.width
                    },
                    v.attn_pooler_heads,
                    1,
                    device,
                )),
                kind == TwoPoolers::Cascade,
            ),
            AttentionalPool::Shared(_) => (
                AttentionalPooler::new(
                    d,
                    v.width,
                    v.attn_pooler_heads,
                    v.attn_pooler_queries,
                    device,
                ),
                None,
                false,
            ),
        };
        Self {
            conv1: PatchConv {
                weight: lazy_normal([v.width, 3, v.patch_size, v.patch_size], 0.02, device),
            },
            class_embedding: lazy_normal([v.width], scale, device),
            positional_embedding: lazy_normal([grid * grid + 1, v.width], scale, device),
            ln_pre: LayerNorm::new(v.width, device),
            transformer: Transformer::new(
                v.width,
                v.layers,
                cfg.vision_heads(),
                v.mlp_ratio,
                device,
            ),
            attn_pool,
            attn_pool_contrastive,
            ln_post: LayerNorm::new(d, device),
            proj: lazy_normal([d, d], (d as f64).powf(-0.5), device),
            patch_size: v.patch_size,
            cascade,
        }
    }

    /// Encoder tokens after the transformer `[B, 1 + grid^2, width]` (CLS first).
    pub fn trunk(&self, pixels: Tensor<4>) -> Tensor<3> {
        let p = self.patch_size;
        let x = conv2d(
            pixels,
            self.conv1.weight.val(),
            None,
            ConvOptions::new([p, p], [0, 0], [1, 1], 1),
        );
        let [b, w, gh, gw] = x.dims();
        let x = x.reshape([b, w, gh * gw]).swap_dims(1, 2);
        let cls = self
            .class_embedding
            .val()
            .reshape([1, 1, w])
            .expand([b, 1, w]);
        let x = Tensor::cat(vec![cls, x], 1);
        let x = x + self.positional_embedding.val().unsqueeze::<3>();
        self.transformer.forward(self.ln_pre.forward(x), None)
    }

    /// `pixels [B, 3, S, S]` -> pooled embedding and decoder memory.
    pub fn forward(&self, pixels: Tensor<4>) -> VisionOutput {
        let x = self.trunk(pixels);
        let (pooled, tokens) = match &self.attn_pool_contrastive {
            None => {
                let x = self.ln_post.forward(self.attn_pool.forward(x));
                let [b, n, d] = x.dims();
                let pooled = x.clone().slice([0..b, 0..1, 0..d]).reshape([b, d]);
                (pooled, x.slice([0..b, 1..n, 0..d]))
            }
            Some(contrastive) => {
                let tokens = self.attn_pool.forward(x.clone());
                let pooled = if self.cascade {
                    contrastive.forward(tokens.clone())
                } else {
                    contrastive.forward(x)
                };
                let [b, _, d] = pooled.dims();
                (
                    self.ln_post.forward(pooled).reshape([b, d]),
                    self.ln_post.forward(tokens),
                )
            }
        };
        VisionOutput {
            pooled: pooled.matmul(self.proj.val()),
            tokens,
        }
    }
}
