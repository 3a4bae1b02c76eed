//! Small building blocks whose parameters keep PyTorch's names and layouts
//! (`weight`/`bias`, Linear weights `[out, in]`), so checkpoints load without remapping.

use burn::module::{Module, Param, ParamId};
use burn::tensor::module::layer_norm;
use burn::tensor::{Device, Distribution, Shape, Tensor};

/// LayerNorm over the last dimension (`torch.nn.LayerNorm`, eps 1e-5).
#[derive(Module, Debug)]
pub struct LayerNorm {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
}

impl LayerNorm {
    /// Ones / zeros, as PyTorch initialises it.
    pub fn new(dim: usize, device: &Device) -> Self {
        Self {
            weight: lazy_ones([dim], device),
            bias: lazy_zeros([dim], device),
        }
    }

    /// `[..., dim] -> [..., dim]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        layer_norm(x, self.weight.val(), Some(self.bias.val()), 1e-5)
    }
}

/// A dense layer `y = x W^T + b` with the weight stored `[out, in]` as in PyTorch.
#[derive(Module, Debug)]
pub struct Linear {
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
}

impl Linear {
    /// Normal(0, std) weights and zero bias.
    pub fn new(d_in: usize, d_out: usize, bias: bool, std: f64, device: &Device) -> Self {
        Self {
            weight: lazy_normal([d_out, d_in], std, device),
            bias: bias.then(|| lazy_zeros([d_out], device)),
        }
    }

    /// `[..., in] -> [..., out]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        linear_pt(x, self.weight.val(), self.bias.as_ref().map(|b| b.val()))
    }
}

/// Rows (all dimensions of the input but the last, multiplied) up to which [`linear_pt`]
/// multiplies with the weight on the left.
pub const FEW_ROWS: usize = 64;

/// `x [..., in] W^T + b` for a weight `[out, in]` in PyTorch's layout.
///
/// With at most [`FEW_ROWS`] rows (incremental decoding) this runs [`crate::cpu::linear_rows`]
/// where it applies, else `(W x^T)^T`: on the CPU backend's gemm the weight streams about 1.5x
/// faster as the left operand of a product whose other side is this thin (docs/benchmarks.md).
pub fn linear_pt<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    let dims = x.dims();
    let rows: usize = dims[..D - 1].iter().product();
    if D < 2 || rows > FEW_ROWS {
        return burn::tensor::module::linear(x, weight.transpose(), bias);
    }
    if let Some(y) = crate::cpu::linear_rows(&x, &weight, bias.as_ref()) {
        return y;
    }
    let [out, d_in] = weight.dims();
    let y = weight
        .matmul(x.reshape([rows, d_in]).transpose())
        .transpose();
    let y = match bias {
        Some(b) => y + b.unsqueeze::<2>(),
        None => y,
    };
    let mut out_dims = dims;
    out_dims[D - 1] = out;
    y.reshape(out_dims)
}

/// The transformer MLP: `c_fc` (w -> 4w), exact erf GELU, `c_proj` (4w -> w).
#[derive(Module, Debug)]
pub struct Mlp {
    pub c_fc: Linear,
    pub c_proj: Linear,
}

impl Mlp {
    /// Initialised like open_clip's transformer MLP.
    pub fn new(width: usize, hidden: usize, layers: usize, device: &Device) -> Self {
        let proj_std = (width as f64).powf(-0.5) * ((2 * layers.max(1)) as f64).powf(-0.5);
        let fc_std = (2.0 * width as f64).powf(-0.5);
        Self {
            c_fc: Linear::new(width, hidden, true, fc_std, device),
            c_proj: Linear::new(hidden, width, true, proj_std, device),
        }
    }

    /// `[..., w] -> [..., w]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.c_proj.forward(crate::cpu::gelu(self.c_fc.forward(x)))
    }
}

/// A tensor of Normal(0, std) values.
pub fn normal<const D: usize>(shape: [usize; D], std: f64, device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, std), device)
}

/// A parameter of zeros, computed only when first read.
///
/// Loading a checkpoint replaces every parameter, so building a model for loading costs no
/// random sampling nor allocation; a model used without loading initialises on first use.
pub fn lazy_zeros<const D: usize>(shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    lazy(shape, device, move |device| Tensor::zeros(shape, device))
}

/// A parameter of ones, computed only when first read (see [`lazy_zeros`]).
pub fn lazy_ones<const D: usize>(shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    lazy(shape, device, move |device| Tensor::ones(shape, device))
}

/// A lazily initialised parameter of Normal(0, std) values (see [`lazy_zeros`]).
pub fn lazy_normal<const D: usize>(
    shape: [usize; D],
    std: f64,
    device: &Device,
) -> Param<Tensor<D>> {
    lazy(shape, device, move |device| normal(shape, std, device))
}

fn lazy<const D: usize>(
    shape: [usize; D],
    device: &Device,
    init: impl FnOnce(&Device) -> Tensor<D> + Send + Sync + 'static,
) -> Param<Tensor<D>> {
    Param::uninitialized(
        ParamId::new(),
        move |device, require_grad| {
            let tensor = init(device);
            if require_grad {
                tensor.require_grad()
            } else {
                tensor
            }
        },
        device.clone(),
        true,
        Shape::from(shape),
    )
}
