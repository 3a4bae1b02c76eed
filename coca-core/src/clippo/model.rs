//! big_vision's one-tower CLIPPO (`models/proj/clippo/one_tower.py` over `models/vit.py`) in
//! flax's layouts: NHWC input, Dense kernels `[in, out]`, attention kernels `[D, H, D/H]`.
//!
//! The module tree mirrors the checkpoint keys: `img/embedding`, `img/pos_embedding`,
//! `img/Transformer/encoderblock_i/...`, `img/Transformer/encoder_norm`, `img/MAPHead_0/...`,
//! `img/head`, and `t`.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, Param};
use burn::tensor::activation::{gelu_approximate, log_softmax, softmax};
use burn::tensor::{Device, Tensor, TensorData};

use super::config::{ClippoConfig, IMG, T_KEY};
use super::npz::{NpyArray, read_npz, write_npz};
use crate::error::{CocaError, Result};
use crate::model::layers::{lazy_normal, lazy_ones, lazy_zeros};

/// flax `nn.LayerNorm` (epsilon 1e-6, variance `E[x^2] - E[x]^2` clamped at 0).
#[derive(Module, Debug)]
pub struct FlaxLayerNorm {
    pub scale: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
}

/// flax's LayerNorm epsilon.
pub const LN_EPS: f64 = 1e-6;

impl FlaxLayerNorm {
    fn new(d: usize, device: &Device) -> Self {
        Self {
            scale: lazy_ones([d], device),
            bias: lazy_zeros([d], device),
        }
    }

    /// `[..., d] -> [..., d]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let mean = x.clone().mean_dim(D - 1);
        let mean2 = x.clone().powi_scalar(2).mean_dim(D - 1);
        let var = (mean2 - mean.clone().powi_scalar(2)).clamp_min(0.0);
        let inv = (var + LN_EPS).sqrt().recip();
        let scale = self.scale.val().unsqueeze::<D>();
        let bias = self.bias.val().unsqueeze::<D>();
        (x - mean) * inv * scale + bias
    }
}

/// flax `nn.Dense`: `x @ kernel + bias`, kernel `[in, out]`.
#[derive(Module, Debug)]
pub struct Dense {
    pub kernel: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
}

impl Dense {
    fn new(d_in: usize, d_out: usize, device: &Device) -> Self {
        Self {
            kernel: lazy_normal([d_in, d_out], (1.0 / d_in as f64).sqrt(), device),
            bias: lazy_zeros([d_out], device),
        }
    }

    /// `[..., in] -> [..., out]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        dense(x, self.kernel.val(), self.bias.val())
    }
}

fn dense<const D: usize>(x: Tensor<D>, kernel: Tensor<2>, bias: Tensor<1>) -> Tensor<D> {
    let mut dims = x.dims();
    let d_in = dims[D - 1];
    let rows = dims[..D - 1].iter().product();
    let [_, d_out] = kernel.dims();
    let y = x.reshape([rows, d_in]).matmul(kernel) + bias.unsqueeze::<2>();
    dims[D - 1] = d_out;
    y.reshape(dims)
}

/// A q/k/v projection of flax's `MultiHeadDotProductAttention`: kernel `[D, H, D/H]`, bias
/// `[H, D/H]`.
#[derive(Module, Debug)]
pub struct HeadsDense {
    pub kernel: Param<Tensor<3>>,
    pub bias: Param<Tensor<2>>,
}

impl HeadsDense {
    fn new(d: usize, heads: usize, device: &Device) -> Self {
        Self {
            kernel: lazy_normal([d, heads, d / heads], (1.0 / d as f64).sqrt(), device),
            bias: lazy_zeros([heads, d / heads], device),
        }
    }

    /// `[B, L, D] -> [B, H, L, D/H]`.
    fn forward(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, l, _] = x.dims();
        let [d, h, hd] = self.kernel.dims();
        let y = dense(
            x,
            self.kernel.val().reshape([d, h * hd]),
            self.bias.val().reshape([h * hd]),
        );
        y.reshape([b, l, h, hd]).swap_dims(1, 2)
    }
}

/// The output projection: kernel `[H, D/H, D]`, bias `[D]`.
#[derive(Module, Debug)]
pub struct OutDense {
    pub kernel: Param<Tensor<3>>,
    pub bias: Param<Tensor<1>>,
}

/// flax `nn.MultiHeadDotProductAttention` (biases everywhere, q scaled by `1/sqrt(D/H)`, no
/// mask).
#[derive(Module, Debug)]
pub struct Attention {
    pub query: HeadsDense,
    pub key: HeadsDense,
    pub value: HeadsDense,
    pub out: OutDense,
}

impl Attention {
    fn new(d: usize, heads: usize, device: &Device) -> Self {
        Self {
            query: HeadsDense::new(d, heads, device),
            key: HeadsDense::new(d, heads, device),
            value: HeadsDense::new(d, heads, device),
            out: OutDense {
                kernel: lazy_normal([heads, d / heads, d], (1.0 / d as f64).sqrt(), device),
                bias: lazy_zeros([d], device),
            },
        }
    }

    /// Queries `q [B, Lq, D]` attend over `kv [B, Lk, D]`: `[B, Lq, D]`.
    pub fn forward(&self, q: Tensor<3>, kv: Tensor<3>) -> Tensor<3> {
        let [b, lq, _] = q.dims();
        let [h, hd, d] = self.out.kernel.dims();
        let q = self.query.forward(q) / (hd as f64).sqrt();
        let k = self.key.forward(kv.clone());
        let v = self.value.forward(kv);
        let w = softmax(q.matmul(k.swap_dims(2, 3)), 3);
        let o = w.matmul(v).swap_dims(1, 2).reshape([b, lq, h * hd]);
        dense(
            o,
            self.out.kernel.val().reshape([h * hd, d]),
            self.out.bias.val(),
        )
    }
}

/// big_vision's `MlpBlock`: `Dense_0` -> GELU (tanh approximation) -> `Dense_1`.
#[derive(Module, Debug)]
pub struct MlpBlock {
    pub dense_0: Dense,
    pub dense_1: Dense,
}

impl MlpBlock {
    fn new(d: usize, m: usize, device: &Device) -> Self {
        Self {
            dense_0: Dense::new(d, m, device),
            dense_1: Dense::new(m, d, device),
        }
    }

    /// `[..., D] -> [..., D]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.dense_1
            .forward(gelu_approximate(self.dense_0.forward(x)))
    }
}

/// `Encoder1DBlock`: `x + MHA(LN_0(x))`, then `x + MLP(LN_1(x))`.
#[derive(Module, Debug)]
pub struct EncoderBlock {
    pub layer_norm_0: FlaxLayerNorm,
    pub attention: Attention,
    pub layer_norm_1: FlaxLayerNorm,
    pub mlp: MlpBlock,
}

/// What one encoder block computed (big_vision's `out["encoder/blockNN/..."]`).
#[derive(Debug, Clone)]
pub struct BlockOutput {
    /// The attention output.
    pub sa: Tensor<3>,
    /// After the attention residual.
    pub plus_sa: Tensor<3>,
    /// The MLP output.
    pub mlp: Tensor<3>,
    /// After the MLP residual (the block's output).
    pub plus_mlp: Tensor<3>,
}

impl EncoderBlock {
    /// `[B, L, D] -> [B, L, D]` with the intermediates.
    pub fn forward(&self, x: Tensor<3>) -> BlockOutput {
        let y = self.layer_norm_0.forward(x.clone());
        let sa = self.attention.forward(y.clone(), y);
        let plus_sa = x + sa.clone();
        let mlp = self.mlp.forward(self.layer_norm_1.forward(plus_sa.clone()));
        let plus_mlp = plus_sa.clone() + mlp.clone();
        BlockOutput {
            sa,
            plus_sa,
            mlp,
            plus_mlp,
        }
    }
}

/// `MAPHead`: a learned probe attends over the tokens; `x = attn + MLP(LN(attn))`, `x[:, 0]`.
#[derive(Module, Debug)]
pub struct MapHead {
    /// `[1, 1, D]`.
    pub probe: Param<Tensor<3>>,
    pub attention: Attention,
    pub layer_norm_0: FlaxLayerNorm,
    pub mlp: MlpBlock,
}

impl MapHead {
    /// `[B, L, D] -> [B, D]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let [b, _, d] = x.dims();
        let probe = self.probe.val().expand([b, 1, d]);
        let x = self.attention.forward(probe, x);
        let x = x.clone() + self.mlp.forward(self.layer_norm_0.forward(x));
        x.reshape([b, d])
    }
}

/// The ViT tower `img`: patch embedding, learned position embedding, encoder, MAP head, head.
#[derive(Module, Debug)]
pub struct ClippoVit {
    /// Conv kernel HWIO `[p, p, 3, D]`.
    pub embedding_kernel: Param<Tensor<4>>,
    pub embedding_bias: Param<Tensor<1>>,
    /// `[1, N, D]`.
    pub pos_embedding: Param<Tensor<3>>,
    /// `Transformer/encoderblock_i`.
    pub blocks: Vec<EncoderBlock>,
    /// `Transformer/encoder_norm`.
    pub encoder_norm: FlaxLayerNorm,
    /// `MAPHead_0`.
    pub map_head: MapHead,
    /// `head`: width -> out_dim.
    pub head: Dense,
}

/// Everything one tower pass computed (big_vision's `out` dict, prefix-less).
#[derive(Debug, Clone)]
pub struct TowerOutput {
    /// Conv output `[B, h, w, D]`.
    pub stem: Tensor<4>,
    /// Tokens plus position embedding `[B, N, D]`.
    pub with_posemb: Tensor<3>,
    /// Per block.
    pub blocks: Vec<BlockOutput>,
    /// After `encoder_norm` `[B, N, D]`.
    pub encoded: Tensor<3>,
    /// MAP head output `[B, D]`.
    pub head_input: Tensor<2>,
    /// `head` output `[B, out_dim]` (before normalisation).
    pub logits: Tensor<2>,
    /// L2 norms `[B, 1]`.
    pub norm: Tensor<2>,
    /// `logits / (norm + 1e-8)` `[B, out_dim]`.
    pub normalized: Tensor<2>,
}

impl ClippoVit {
    /// The encoder's output tokens (after `encoder_norm`) `[B, N, D]` of NHWC pixels in
    /// `[-1, 1]`: what a task head pools (the MAP head and `head` are not run).
    pub fn encode(&self, x: Tensor<4>) -> Tensor<3> {
        let mut x = self.tokens(x);
        for block in &self.blocks {
            x = block.forward(x).plus_mlp;
        }
        self.encoder_norm.forward(x)
    }

    /// Patch embedding plus position embedding `[B, N, D]`.
    fn tokens(&self, x: Tensor<4>) -> Tensor<3> {
        let [b, hh, ww, _] = x.dims();
        let p = self.embedding_kernel.dims()[0];
        let d = self.embedding_kernel.dims()[3];
        self.stem(x).reshape([b, (hh / p) * (ww / p), d]) + self.pos_embedding.val()
    }

    /// The patch-embedding conv `[B, h, w, D]`.
    fn stem(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, hh, ww, c] = x.dims();
        let [p, _, _, d] = self.embedding_kernel.dims();
        let (gh, gw) = (hh / p, ww / p);
        // A stride-p VALID conv is a matmul over (ph, pw, c)-ordered patches.
        let patches = x
            .reshape([b, gh, p, gw, p, c])
            .swap_dims(2, 3)
            .reshape([b * gh * gw, p * p * c]);
        let stem = patches.matmul(self.embedding_kernel.val().reshape([p * p * c, d]))
            + self.embedding_bias.val().unsqueeze::<2>();
        stem.reshape([b, gh, gw, d])
    }

    /// One pass over NHWC pixels in `[-1, 1]` (`[B, H, W, 3]`).
    pub fn forward(&self, x: Tensor<4>) -> TowerOutput {
        let [b, hh, ww, _] = x.dims();
        let [p, _, _, d] = self.embedding_kernel.dims();
        let (gh, gw) = (hh / p, ww / p);
        let stem = self.stem(x);
        let with_posemb = stem.clone().reshape([b, gh * gw, d]) + self.pos_embedding.val();
        let mut x = with_posemb.clone();
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let out = block.forward(x);
            x = out.plus_mlp.clone();
            blocks.push(out);
        }
        let encoded = self.encoder_norm.forward(x);
        let head_input = self.map_head.forward(encoded.clone());
        let logits = self.head.forward(head_input.clone());
        let norm = logits.clone().powi_scalar(2).sum_dim(1).sqrt();
        let normalized = logits.clone() / (norm.clone() + 1e-8);
        TowerOutput {
            stem,
            with_posemb,
            blocks,
            encoded,
            head_input,
            logits,
            norm,
            normalized,
        }
    }
}

/// A CLIPPO model: one ViT for photos and rendered text, and the log-temperature `t`.
#[derive(Module, Debug)]
pub struct Clippo {
    pub img: ClippoVit,
    /// `params/t` `[1]`: the temperature is `exp(t)`.
    pub t: Param<Tensor<1>>,
}

/// A parameter of any rank, by reference.
#[derive(Debug, Clone, Copy)]
pub enum ParamRef<'a> {
    R1(&'a Param<Tensor<1>>),
    R2(&'a Param<Tensor<2>>),
    R3(&'a Param<Tensor<3>>),
    R4(&'a Param<Tensor<4>>),
}

impl ParamRef<'_> {
    /// The value's shape and f32 values (synchronously read back).
    pub fn to_vec(&self) -> Result<(Vec<usize>, Vec<f32>)> {
        match self {
            ParamRef::R1(p) => tensor_values(p.val()),
            ParamRef::R2(p) => tensor_values(p.val()),
            ParamRef::R3(p) => tensor_values(p.val()),
            ParamRef::R4(p) => tensor_values(p.val()),
        }
    }

    /// The gradient (shape, values) from a backward pass, if the parameter got one.
    pub fn grad(&self, grads: &burn::tensor::Gradients) -> Option<Result<(Vec<usize>, Vec<f32>)>> {
        Some(match self {
            ParamRef::R1(p) => tensor_values(p.val().grad(grads)?),
            ParamRef::R2(p) => tensor_values(p.val().grad(grads)?),
            ParamRef::R3(p) => tensor_values(p.val().grad(grads)?),
            ParamRef::R4(p) => tensor_values(p.val().grad(grads)?),
        })
    }
}

/// A tensor's shape and values as f32.
pub fn tensor_values<const D: usize>(t: Tensor<D>) -> Result<(Vec<usize>, Vec<f32>)> {
    let data = t.into_data().convert::<f32>();
    let shape = data.shape().to_vec();
    let values = data
        .try_into_vec::<f32>()
        .map_err(|e| CocaError::Invalid(format!("reading a tensor back: {e:?}")))?;
    Ok((shape, values))
}

/// The outputs of a forward pass over images and texts.
#[derive(Debug, Clone)]
pub struct ClippoOutput {
    pub img: TowerOutput,
    pub txt: TowerOutput,
    /// `exp(t)` `[1]`.
    pub t: Tensor<1>,
}

/// The contrastive loss and its two directions.
#[derive(Debug, Clone)]
pub struct ClippoLoss {
    /// `0.5 * (i2t + t2i)`.
    pub total: Tensor<1>,
    pub i2t: Tensor<1>,
    pub t2i: Tensor<1>,
    /// `zimg @ ztxt^T * t` `[B, B]`.
    pub logits: Tensor<2>,
}

impl Clippo {
    /// A randomly initialised model of the given sizes (parameters drawn on first use).
    pub fn new(cfg: &ClippoConfig, device: &Device) -> Self {
        let (d, h, m, p) = (cfg.width, cfg.num_heads, cfg.mlp_dim, cfg.patch_size);
        let block = || EncoderBlock {
            layer_norm_0: FlaxLayerNorm::new(d, device),
            attention: Attention::new(d, h, device),
            layer_norm_1: FlaxLayerNorm::new(d, device),
            mlp: MlpBlock::new(d, m, device),
        };
        Self {
            img: ClippoVit {
                embedding_kernel: lazy_normal(
                    [p, p, 3, d],
                    (1.0 / (p * p * 3) as f64).sqrt(),
                    device,
                ),
                embedding_bias: lazy_zeros([d], device),
                pos_embedding: lazy_normal(
                    [1, cfg.num_tokens(), d],
                    1.0 / (d as f64).sqrt(),
                    device,
                ),
                blocks: (0..cfg.depth).map(|_| block()).collect(),
                encoder_norm: FlaxLayerNorm::new(d, device),
                map_head: MapHead {
                    probe: lazy_normal([1, 1, d], (1.0 / d as f64).sqrt(), device),
                    attention: Attention::new(d, h, device),
                    layer_norm_0: FlaxLayerNorm::new(d, device),
                    mlp: MlpBlock::new(d, m, device),
                },
                head: Dense::new(d, cfg.out_dim, device),
            },
            t: Param::from_tensor(Tensor::from_floats([10f32.ln()], device)),
        }
    }

    /// The sizes, read off the parameters.
    pub fn config(&self) -> ClippoConfig {
        let [p, _, _, width] = self.img.embedding_kernel.dims();
        let [_, n, _] = self.img.pos_embedding.dims();
        let [_, heads, _] = self.img.map_head.attention.query.kernel.dims();
        let [_, mlp_dim] = self.img.map_head.mlp.dense_0.kernel.dims();
        let [_, out_dim] = self.img.head.kernel.dims();
        let grid = (n as f64).sqrt().round() as usize;
        ClippoConfig {
            width,
            depth: self.img.blocks.len(),
            num_heads: heads,
            mlp_dim,
            patch_size: p,
            image_size: grid * p,
            out_dim,
        }
    }

    /// Every parameter under its checkpoint key (`params/img/...`, `params/t`), in key order.
    pub fn named_params(&self) -> Vec<(String, ParamRef<'_>)> {
        use ParamRef::*;
        let mut out: Vec<(String, ParamRef<'_>)> = Vec::new();
        fn ln<'a>(out: &mut Vec<(String, ParamRef<'a>)>, pre: &str, l: &'a FlaxLayerNorm) {
            out.push((format!("{pre}/scale"), R1(&l.scale)));
            out.push((format!("{pre}/bias"), R1(&l.bias)));
        }
        fn dense<'a>(out: &mut Vec<(String, ParamRef<'a>)>, pre: &str, l: &'a Dense) {
            out.push((format!("{pre}/kernel"), R2(&l.kernel)));
            out.push((format!("{pre}/bias"), R1(&l.bias)));
        }
        fn attn_mlp<'a>(
            out: &mut Vec<(String, ParamRef<'a>)>,
            pre: &str,
            a: &'a Attention,
            m: &'a MlpBlock,
        ) {
            let ap = format!("{pre}/MultiHeadDotProductAttention_0");
            for (name, l) in [("query", &a.query), ("key", &a.key), ("value", &a.value)] {
                out.push((format!("{ap}/{name}/kernel"), R3(&l.kernel)));
                out.push((format!("{ap}/{name}/bias"), R2(&l.bias)));
            }
            out.push((format!("{ap}/out/kernel"), R3(&a.out.kernel)));
            out.push((format!("{ap}/out/bias"), R1(&a.out.bias)));
            dense(out, &format!("{pre}/MlpBlock_0/Dense_0"), &m.dense_0);
            dense(out, &format!("{pre}/MlpBlock_0/Dense_1"), &m.dense_1);
        }
        let v = &self.img;
        out.push((format!("{IMG}/embedding/kernel"), R4(&v.embedding_kernel)));
        out.push((format!("{IMG}/embedding/bias"), R1(&v.embedding_bias)));
        out.push((format!("{IMG}/pos_embedding"), R3(&v.pos_embedding)));
        for (i, b) in v.blocks.iter().enumerate() {
            let pre = format!("{IMG}/Transformer/encoderblock_{i}");
            ln(&mut out, &format!("{pre}/LayerNorm_0"), &b.layer_norm_0);
            ln(&mut out, &format!("{pre}/LayerNorm_1"), &b.layer_norm_1);
            attn_mlp(&mut out, &pre, &b.attention, &b.mlp);
        }
        ln(
            &mut out,
            &format!("{IMG}/Transformer/encoder_norm"),
            &v.encoder_norm,
        );
        let map = format!("{IMG}/MAPHead_0");
        out.push((format!("{map}/probe"), R3(&v.map_head.probe)));
        ln(
            &mut out,
            &format!("{map}/LayerNorm_0"),
            &v.map_head.layer_norm_0,
        );
        attn_mlp(&mut out, &map, &v.map_head.attention, &v.map_head.mlp);
        dense(&mut out, &format!("{IMG}/head"), &v.head);
        out.push((T_KEY.to_string(), R1(&self.t)));
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Builds the model from checkpoint arrays, strictly: every key of
    /// [`ClippoConfig::expected_shapes`] present with its shape, nothing else. The sizes are
    /// read off the arrays' shapes. The error lists every missing, extra and misshaped key.
    pub fn from_arrays(
        arrays: &BTreeMap<String, NpyArray>,
        source: &Path,
        device: &Device,
    ) -> Result<Self> {
        let bad = |reason: String| CocaError::Checkpoint {
            path: source.to_path_buf(),
            reason,
        };
        let shapes: BTreeMap<String, Vec<usize>> = arrays
            .iter()
            .map(|(k, a)| (k.clone(), a.shape.clone()))
            .collect();
        let cfg = ClippoConfig::from_shapes(&shapes).map_err(bad)?;
        let expected = cfg.expected_shapes();
        let missing: Vec<&String> = expected
            .keys()
            .filter(|k| !shapes.contains_key(*k))
            .collect();
        let extra: Vec<&String> = shapes
            .keys()
            .filter(|k| !expected.contains_key(*k))
            .collect();
        let misshaped: Vec<String> = expected
            .iter()
            .filter_map(|(k, want)| {
                let got = shapes.get(k)?;
                (got != want).then(|| format!("{k} (file {got:?}, model {want:?})"))
            })
            .collect();
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("missing keys: {}", join(&missing)));
        }
        if !extra.is_empty() {
            problems.push(format!("unexpected keys: {}", join(&extra)));
        }
        if !misshaped.is_empty() {
            problems.push(format!("misshaped keys: {}", misshaped.join(", ")));
        }
        if !problems.is_empty() {
            return Err(bad(format!(
                "does not match a CLIPPO model ({cfg:?}): {}",
                problems.join("; ")
            )));
        }
        let mut values = BTreeMap::new();
        for (k, a) in arrays {
            let v = a
                .to_f32()
                .ok_or_else(|| bad(format!("key {k} has unsupported dtype {}", a.descr)))?;
            values.insert(k.clone(), v);
        }
        let mut model = Self::new(&cfg, device);
        let take = |k: &str| values[k].clone();
        macro_rules! set {
            ($field:expr, $key:expr) => {{
                let key: String = $key;
                let shape = expected[&key].clone();
                let t = Tensor::from_data(TensorData::new(take(&key), shape), device);
                $field = Param::from_tensor(t);
            }};
        }
        let v = &mut model.img;
        set!(v.embedding_kernel, format!("{IMG}/embedding/kernel"));
        set!(v.embedding_bias, format!("{IMG}/embedding/bias"));
        set!(v.pos_embedding, format!("{IMG}/pos_embedding"));
        macro_rules! set_ln {
            ($l:expr, $pre:expr) => {{
                let pre: String = $pre;
                set!($l.scale, format!("{pre}/scale"));
                set!($l.bias, format!("{pre}/bias"));
            }};
        }
        macro_rules! set_attn_mlp {
            ($a:expr, $m:expr, $pre:expr) => {{
                let pre: String = $pre;
                let ap = format!("{pre}/MultiHeadDotProductAttention_0");
                set!($a.query.kernel, format!("{ap}/query/kernel"));
                set!($a.query.bias, format!("{ap}/query/bias"));
                set!($a.key.kernel, format!("{ap}/key/kernel"));
                set!($a.key.bias, format!("{ap}/key/bias"));
                set!($a.value.kernel, format!("{ap}/value/kernel"));
                set!($a.value.bias, format!("{ap}/value/bias"));
                set!($a.out.kernel, format!("{ap}/out/kernel"));
                set!($a.out.bias, format!("{ap}/out/bias"));
                set!(
                    $m.dense_0.kernel,
                    format!("{pre}/MlpBlock_0/Dense_0/kernel")
                );
                set!($m.dense_0.bias, format!("{pre}/MlpBlock_0/Dense_0/bias"));
                set!(
                    $m.dense_1.kernel,
                    format!("{pre}/MlpBlock_0/Dense_1/kernel")
                );
                set!($m.dense_1.bias, format!("{pre}/MlpBlock_0/Dense_1/bias"));
            }};
        }
        for (i, b) in v.blocks.iter_mut().enumerate() {
            let pre = format!("{IMG}/Transformer/encoderblock_{i}");
            set_ln!(b.layer_norm_0, format!("{pre}/LayerNorm_0"));
            set_ln!(b.layer_norm_1, format!("{pre}/LayerNorm_1"));
            set_attn_mlp!(b.attention, b.mlp, pre);
        }
        set_ln!(v.encoder_norm, format!("{IMG}/Transformer/encoder_norm"));
        let map = format!("{IMG}/MAPHead_0");
        set!(v.map_head.probe, format!("{map}/probe"));
        set_ln!(v.map_head.layer_norm_0, format!("{map}/LayerNorm_0"));
        set_attn_mlp!(v.map_head.attention, v.map_head.mlp, map);
        set!(v.head.kernel, format!("{IMG}/head/kernel"));
        set!(v.head.bias, format!("{IMG}/head/bias"));
        set!(model.t, T_KEY.to_string());
        Ok(model)
    }

    /// Loads a big_vision `.npz` checkpoint strictly (see [`Self::from_arrays`]).
    pub fn load_npz(path: &Path, device: &Device) -> Result<Self> {
        Self::from_arrays(&read_npz(path)?, path, device)
    }

    /// The parameters as float32 checkpoint arrays under big_vision's keys.
    pub fn to_arrays(&self) -> Result<BTreeMap<String, NpyArray>> {
        self.named_params()
            .into_iter()
            .map(|(k, p)| {
                let (shape, values) = p.to_vec()?;
                Ok((k, NpyArray::from_f32(shape, &values)))
            })
            .collect()
    }

    /// Saves as a big_vision `.npz` checkpoint (`np.savez` layout, float32).
    pub fn save_npz(&self, path: &Path) -> Result<()> {
        write_npz(path, &self.to_arrays()?)
    }

    /// Saves as safetensors, float32, under the checkpoint keys.
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        let arrays = self.to_arrays()?;
        let views = arrays
            .iter()
            .map(|(k, a)| {
                safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    a.shape.clone(),
                    &a.data,
                )
                .map(|v| (k.clone(), v))
                .map_err(|e| CocaError::Invalid(format!("safetensors view of {k}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize_to_file(views, None, path).map_err(|e| CocaError::Checkpoint {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Embeds a batch of NHWC images in `[-1, 1]` (photos or rendered texts): L2-normalised
    /// `[B, out_dim]`.
    pub fn embed(&self, x: Tensor<4>) -> Tensor<2> {
        self.img.forward(x).normalized
    }

    /// The temperature `exp(t)`.
    pub fn temperature(&self) -> Tensor<1> {
        self.t.val().exp()
    }

    /// Both passes (the same tower) and the temperature.
    pub fn forward(&self, images: Tensor<4>, texts: Tensor<4>) -> ClippoOutput {
        ClippoOutput {
            img: self.img.forward(images),
            txt: self.img.forward(texts),
            t: self.temperature(),
        }
    }
}

/// big_vision's contrastive loss: `logits = zimg @ ztxt^T * t`,
/// `0.5 * (mean_i CE(logits[i, :], i) + mean_j CE(logits[:, j], j))`.
pub fn contrastive_loss(zimg: Tensor<2>, ztxt: Tensor<2>, t: Tensor<1>) -> ClippoLoss {
    let [n, _] = zimg.dims();
    let logits = zimg.matmul(ztxt.transpose()) * t.unsqueeze::<2>();
    let eye = Tensor::<2>::eye(n, &logits.device());
    let i2t = -(log_softmax(logits.clone(), 1) * eye.clone())
        .sum()
        .div_scalar(n as f64);
    let t2i = -(log_softmax(logits.clone(), 0) * eye)
        .sum()
        .div_scalar(n as f64);
    ClippoLoss {
        total: (i2t.clone() + t2i.clone()) * 0.5,
        i2t,
        t2i,
        logits,
    }
}

fn join(keys: &[&String]) -> String {
    keys.iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
