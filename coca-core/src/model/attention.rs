//! Multi-head attention with the parameter layout of `torch.nn.MultiheadAttention`
//! (fused `in_proj_weight` when q/k/v widths agree, separate `{q,k,v}_proj_weight` otherwise),
//! and the additive masks open_clip builds.

use burn::module::{Module, Param};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, Int, Tensor};

use super::layers::{FEW_ROWS, Linear, lazy_normal, lazy_zeros, linear_pt};

/// `torch.nn.MultiheadAttention(d_model, n_heads, kdim, vdim, batch_first=True)` without dropout.
#[derive(Module, Debug)]
pub struct MultiheadAttention {
    /// `[3 d, d]`: rows q, then k, then v (present when kdim == vdim == d).
    pub in_proj_weight: Option<Param<Tensor<2>>>,
    /// `[d, d]` (present when kdim != d).
    pub q_proj_weight: Option<Param<Tensor<2>>>,
    /// `[d, kdim]`.
    pub k_proj_weight: Option<Param<Tensor<2>>>,
    /// `[d, vdim]`.
    pub v_proj_weight: Option<Param<Tensor<2>>>,
    /// `[3 d]`.
    pub in_proj_bias: Param<Tensor<1>>,
    pub out_proj: Linear,
    n_heads: usize,
}

impl MultiheadAttention {
    /// A fresh attention layer; `kv_dim` is the width of keys/values (`d_model` for self-attention).
    pub fn new(
        d_model: usize,
        kv_dim: usize,
        n_heads: usize,
        layers: usize,
        device: &Device,
    ) -> Self {
        let attn_std = (d_model as f64).powf(-0.5);
        let proj_std = attn_std * ((2 * layers.max(1)) as f64).powf(-0.5);
        let fused = kv_dim == d_model;
        Self {
            in_proj_weight: fused.then(|| lazy_normal([3 * d_model, d_model], attn_std, device)),
            q_proj_weight: (!fused).then(|| lazy_normal([d_model, d_model], attn_std, device)),
            k_proj_weight: (!fused).then(|| lazy_normal([d_model, kv_dim], attn_std, device)),
            v_proj_weight: (!fused).then(|| lazy_normal([d_model, kv_dim], attn_std, device)),
            in_proj_bias: lazy_zeros([3 * d_model], device),
            out_proj: Linear::new(d_model, d_model, true, proj_std, device),
            n_heads,
        }
    }

    /// Number of heads.
    pub fn n_heads(&self) -> usize {
        self.n_heads
    }

    fn d_model(&self) -> usize {
        self.in_proj_bias.dims()[0] / 3
    }

    /// Projection weight `[d, in]` and bias `[d]` of part `i` (0 = q, 1 = k, 2 = v).
    fn part(&self, i: usize) -> (Tensor<2>, Tensor<1>) {
        let d = self.d_model();
        let bias = self.in_proj_bias.val().narrow(0, i * d, d);
        let weight = match &self.in_proj_weight {
            Some(w) => w.val().narrow(0, i * d, d),
            None => {
                let w = [
                    &self.q_proj_weight,
                    &self.k_proj_weight,
                    &self.v_proj_weight,
                ][i];
                match w {
                    Some(w) => w.val(),
                    None => unreachable!("attention without projection weights"),
                }
            }
        };
        (weight, bias)
    }

    fn project(&self, x: Tensor<3>, i: usize) -> Tensor<3> {
        let (w, b) = self.part(i);
        linear_pt(x, w, Some(b))
    }

    /// Query projection `[B, Lq, d]`.
    pub fn project_q(&self, x: Tensor<3>) -> Tensor<3> {
        self.project(x, 0)
    }

    /// Key and value projections `[B, Lk, d]` each.
    pub fn project_kv(&self, k_x: Tensor<3>, v_x: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        (self.project(k_x, 1), self.project(v_x, 2))
    }

    /// Query, key and value projections of the same `x [B, L, d]` (self-attention). With a
    /// fused weight and few rows (decoding) this is one product on the CPU kernels
    /// ([`crate::cpu::linear_rows`]); otherwise three.
    pub fn project_qkv(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<3>, Tensor<3>) {
        let [b, l, _] = x.dims();
        if let Some(w) = &self.in_proj_weight
            && b * l <= FEW_ROWS
            && let Some(y) = crate::cpu::linear_rows(&x, &w.val(), Some(&self.in_proj_bias.val()))
        {
            let d = self.d_model();
            return (
                y.clone().narrow(2, 0, d),
                y.clone().narrow(2, d, d),
                y.narrow(2, 2 * d, d),
            );
        }
        let q = self.project_q(x.clone());
        let (k, v) = self.project_kv(x.clone(), x);
        (q, k, v)
    }

    /// Full attention: `q_x [B, Lq, d]`, `kv_x` (defaults to `q_x`) `[B, Lk, kdim]`,
    /// additive `bias` broadcastable to `[B, 1, Lq, Lk]`. Returns `[B, Lq, d]`.
    pub fn forward(
        &self,
        q_x: Tensor<3>,
        kv_x: Option<Tensor<3>>,
        bias: Option<Tensor<4>>,
    ) -> Tensor<3> {
        let kv_x = kv_x.unwrap_or_else(|| q_x.clone());
        let q = self.project_q(q_x);
        let (k, v) = self.project_kv(kv_x.clone(), kv_x);
        self.attend(q, k, v, bias)
    }

    /// Attention on projected `q [B, Lq, d]`, `k`, `v [B, Lk, d]`, then the output projection.
    pub fn attend(
        &self,
        q: Tensor<3>,
        k: Tensor<3>,
        v: Tensor<3>,
        bias: Option<Tensor<4>>,
    ) -> Tensor<3> {
        let (q, k, v) = (
            self.split_heads(q),
            self.split_heads(k),
            self.split_heads(v),
        );
        self.attend_heads(q, k, v, bias)
    }

    /// `[B, L, d] -> [B, heads, L, d / heads]` (a view).
    pub fn split_heads(&self, t: Tensor<3>) -> Tensor<4> {
        let [b, l, d] = t.dims();
        let h = self.n_heads;
        t.reshape([b, l, h, d / h]).swap_dims(1, 2)
    }

    /// Attention on projected queries/keys/values already split into heads (`q [B, H, Lq, dh]`,
    /// `k`, `v [B, H, Lk, dh]`, see [`Self::split_heads`]), then the output projection:
    /// `[B, Lq, H * dh]`.
    pub fn attend_heads(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        bias: Option<Tensor<4>>,
    ) -> Tensor<3> {
        let [b, h, lq, dh] = q.dims();
        if bias.is_none()
            && let Some(out) = crate::cpu::attend_one(&q, &k, &v)
        {
            return self.out_proj.forward(out);
        }
        let lk = k.dims()[2];
        let bias = bias.map(|m| {
            let [mb, _, _, _] = m.dims();
            let m = if mb == b { m } else { m.expand([b, 1, lq, lk]) };
            m.expand([b, h, lq, lk])
        });
        let out = attention(q, k, v, None, bias, AttentionModuleOptions::default());
        self.out_proj
            .forward(out.swap_dims(1, 2).reshape([b, lq, h * dh]))
    }
}

/// Additive causal mask `[1, 1, len, len]`: 0 on and below the diagonal, -inf above.
pub fn causal_bias(len: usize, device: &Device) -> Tensor<4> {
    let mask = Tensor::<2>::ones([len, len], device).triu(1).bool();
    Tensor::<2>::zeros([len, len], device)
        .mask_fill(mask, f32::NEG_INFINITY)
        .reshape([1, 1, len, len])
}

/// Additive causal mask `[1, 1, n, past + n]` for `n` new positions after `past` cached ones.
pub fn causal_bias_offset(n: usize, past: usize, device: &Device) -> Tensor<4> {
    let total = past + n;
    let mask = Tensor::<2>::ones([n, total], device)
        .triu(past as i64 + 1)
        .bool();
    Tensor::<2>::zeros([n, total], device)
        .mask_fill(mask, f32::NEG_INFINITY)
        .reshape([1, 1, n, total])
}

/// Additive key-padding mask `[B, 1, 1, len]` (-inf where `visible` is false).
pub fn key_bias(visible: Tensor<2, burn::tensor::Bool>) -> Tensor<4> {
    let [b, len] = visible.dims();
    let device = visible.device();
    Tensor::<2>::zeros([b, len], &device)
        .mask_fill(visible.bool_not(), f32::NEG_INFINITY)
        .reshape([b, 1, 1, len])
}

/// Token ids that are not padding (`!= pad_id`), as a bool tensor.
pub fn not_pad(text: Tensor<2, Int>, pad_id: u32) -> Tensor<2, burn::tensor::Bool> {
    text.not_equal_elem(pad_id as i64)
}
