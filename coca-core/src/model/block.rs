//! open_clip's `ResidualAttentionBlock` (pre-LN) and `Transformer` (a stack of them).

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::attention::{MultiheadAttention, causal_bias_offset};
use super::kv_cache::{KvCache, contiguous};
use super::layers::{LayerNorm, Mlp};

/// `x += attn(ln_1(x)); x += mlp(ln_2(x))`; cross-attention blocks also normalise the
/// keys/values with `ln_1_kv`.
#[derive(Module, Debug)]
pub struct ResidualAttentionBlock {
    pub ln_1: LayerNorm,
    pub attn: MultiheadAttention,
    pub ln_1_kv: Option<LayerNorm>,
    pub ln_2: LayerNorm,
    pub mlp: Mlp,
}

impl ResidualAttentionBlock {
    /// A fresh block; `cross` adds `ln_1_kv` for cross-attention.
    pub fn new(
        width: usize,
        heads: usize,
        mlp_ratio: f64,
        layers: usize,
        cross: bool,
        device: &Device,
    ) -> Self {
        let hidden = (width as f64 * mlp_ratio) as usize;
        Self {
            ln_1: LayerNorm::new(width, device),
            attn: MultiheadAttention::new(width, width, heads, layers, device),
            ln_1_kv: cross.then(|| LayerNorm::new(width, device)),
            ln_2: LayerNorm::new(width, device),
            mlp: Mlp::new(width, hidden, layers, device),
        }
    }

    /// Self-attention block: `x [B, L, W]`, additive `bias` broadcastable to `[B, 1, L, L]`.
    pub fn forward(&self, x: Tensor<3>, bias: Option<Tensor<4>>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.ln_1.forward(x), None, bias);
        self.feed_forward(x)
    }

    /// Cross-attention block: queries from `x [B, L, W]`, keys/values from `kv [B, M, W]`.
    pub fn forward_cross(&self, x: Tensor<3>, kv: Tensor<3>) -> Tensor<3> {
        let kv = match &self.ln_1_kv {
            Some(ln) => ln.forward(kv),
            None => kv,
        };
        let x = x.clone() + self.attn.forward(self.ln_1.forward(x), Some(kv), None);
        self.feed_forward(x)
    }

    /// Incremental causal self-attention: `x [B, n, W]` are the next `n` positions; keys and
    /// values of earlier positions come from `cache`, which is extended by the new ones.
    pub fn forward_cached(&self, x: Tensor<3>, cache: &mut KvCache) -> Tensor<3> {
        let (q, k, v) = self.attn.project_qkv(self.ln_1.forward(x.clone()));
        let q = self.attn.split_heads(q);
        let past = cache.len();
        let n = q.dims()[2];
        let (k, v) = cache.append(self.attn.split_heads(k), self.attn.split_heads(v));
        let bias = (n > 1).then(|| causal_bias_offset(n, past, &x.device()));
        let x = x + self.attn.attend_heads(q, k, v, bias);
        self.feed_forward(x)
    }

    /// Projected cross-attention keys/values of `kv [B, M, W]` (computed once per image),
    /// split into heads and contiguous: `[B, heads, M, W / heads]` each.
    pub fn cross_kv(&self, kv: Tensor<3>) -> (Tensor<4>, Tensor<4>) {
        let kv = match &self.ln_1_kv {
            Some(ln) => ln.forward(kv),
            None => kv,
        };
        let (k, v) = self.attn.project_kv(kv.clone(), kv);
        (
            contiguous(self.attn.split_heads(k)),
            contiguous(self.attn.split_heads(v)),
        )
    }

    /// Cross-attention with precomputed keys/values from [`Self::cross_kv`].
    pub fn forward_cross_cached(&self, x: Tensor<3>, k: Tensor<4>, v: Tensor<4>) -> Tensor<3> {
        let q = self
            .attn
            .split_heads(self.attn.project_q(self.ln_1.forward(x.clone())));
        let x = x + self.attn.attend_heads(q, k, v, None);
        self.feed_forward(x)
    }

    /// The MLP half: `x + mlp(ln_2(x))`.
    pub fn feed_forward(&self, x: Tensor<3>) -> Tensor<3> {
        x.clone() + self.mlp.forward(self.ln_2.forward(x))
    }
}

/// A stack of self-attention blocks (`transformer.resblocks.N`).
#[derive(Module, Debug)]
pub struct Transformer {
    pub resblocks: Vec<ResidualAttentionBlock>,
}

impl Transformer {
    /// `layers` fresh self-attention blocks.
    pub fn new(width: usize, layers: usize, heads: usize, mlp_ratio: f64, device: &Device) -> Self {
        Self {
            resblocks: (0..layers)
                .map(|_| {
                    ResidualAttentionBlock::new(width, heads, mlp_ratio, layers, false, device)
                })
                .collect(),
        }
    }

    /// Runs every block with the same additive mask.
    pub fn forward(&self, mut x: Tensor<3>, bias: Option<Tensor<4>>) -> Tensor<3> {
        for block in &self.resblocks {
            x = block.forward(x, bias.clone());
        }
        x
    }
}
