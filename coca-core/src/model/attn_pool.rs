//! open_clip's `AttentionalPooler`: learned queries attend to the encoder tokens.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::attention::MultiheadAttention;
use super::layers::{LayerNorm, lazy_normal};

/// `attn(ln_q(query), ln_k(x), ln_k(x))`: no residual, no MLP.
#[derive(Module, Debug)]
pub struct AttentionalPooler {
    /// `[n_queries, d_model]`.
    pub query: Param<Tensor<2>>,
    pub attn: MultiheadAttention,
    pub ln_q: LayerNorm,
    pub ln_k: LayerNorm,
}

impl AttentionalPooler {
    /// Pools `context_dim`-wide tokens into `n_queries` `d_model`-wide outputs.
    pub fn new(
        d_model: usize,
        context_dim: usize,
        n_heads: usize,
        n_queries: usize,
        device: &Device,
    ) -> Self {
        Self {
            query: lazy_normal([n_queries, d_model], 1.0, device),
            attn: MultiheadAttention::new(d_model, context_dim, n_heads, 1, device),
            ln_q: LayerNorm::new(d_model, device),
            ln_k: LayerNorm::new(context_dim, device),
        }
    }

    /// `x [B, N, context_dim] -> [B, n_queries, d_model]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.forward_masked(x, None)
    }

    /// [`Self::forward`] with an additive key mask `[B, 1, 1, N]` (e.g. hiding padding).
    pub fn forward_masked(&self, x: Tensor<3>, key_bias: Option<Tensor<4>>) -> Tensor<3> {
        let b = x.dims()[0];
        let x = self.ln_k.forward(x);
        let q = self.ln_q.forward(self.query.val());
        let [n, d] = q.dims();
        let q = q.reshape([1, n, d]).expand([b, n, d]);
        let q = self.attn.project_q(q);
        let (k, v) = self.attn.project_kv(x.clone(), x);
        self.attn.attend(q, k, v, key_bias)
    }
}
