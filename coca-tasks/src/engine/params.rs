//! Parameter bookkeeping over any module: paths and ids, weight-decay and learning-rate groups,
//! freezing, global-norm gradient clipping and the `logit_scale` clamp.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{FloatDType, Tensor};
use serde::{Deserialize, Serialize};

use crate::task::{BACKBONE_PREFIX, CLIPPO_PREFIX, is_backbone_path};

/// One float parameter of a module.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo {
    pub id: ParamId,
    /// Dotted path, e.g. `coca.visual.transformer.resblocks.0.ln_1.weight`.
    pub path: String,
    pub shape: Vec<usize>,
}

impl ParamInfo {
    /// Number of values.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// open_clip's rule: no weight decay on 0/1-D tensors, norms, biases and `logit_scale`.
    pub fn decays(&self) -> bool {
        let name = self.path.rsplit('.').next().unwrap_or("");
        !(self.shape.len() < 2
            || self.path.contains(".ln_")
            || self.path.contains("bn")
            || name == "bias"
            || self.path.ends_with("logit_scale"))
    }

    /// Whether the parameter belongs to the task head (not the pretrained backbone).
    pub fn is_head(&self) -> bool {
        !is_backbone_path(&self.path)
    }
}

#[derive(Default)]
struct Collect {
    stack: Vec<String>,
    out: Vec<ParamInfo>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.out.push(ParamInfo {
            id: param.id,
            path: self.stack.join("."),
            shape: param.shape().to_vec(),
        });
    }
}

/// Every float parameter of `module` with its path.
pub fn param_infos<M: Module>(module: &M) -> Vec<ParamInfo> {
    let mut v = Collect::default();
    module.visit(&mut v);
    v.out
}

/// Which parts of the model are trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Freeze {
    /// Everything trains.
    #[default]
    None,
    /// The image encoder (`coca.visual`; CLIPPO: its one tower `clippo.img`) is frozen.
    ImageEncoder,
    /// The unimodal and multimodal text decoders are frozen (CoCa only: CLIPPO has no text
    /// tower, and asking for this is an error).
    TextTowers,
    /// Only the task head trains (the paper's frozen-feature evaluation).
    AllButHead,
}

impl Freeze {
    /// Whether the parameter at `path` is frozen.
    pub fn is_frozen(&self, path: &str) -> bool {
        let b = BACKBONE_PREFIX;
        match self {
            Freeze::None => false,
            Freeze::ImageEncoder => {
                path.starts_with(&format!("{b}visual."))
                    || path.starts_with(&format!("{CLIPPO_PREFIX}img."))
            }
            Freeze::TextTowers => {
                path.starts_with(&format!("{b}text."))
                    || path.starts_with(&format!("{b}text_decoder."))
            }
            Freeze::AllButHead => is_backbone_path(path),
        }
    }
}

struct GradVisitor<'a, F: FnMut(&ParamInfo, &mut GradientsParams, usize)> {
    stack: Vec<String>,
    grads: &'a mut GradientsParams,
    f: F,
}

impl<F: FnMut(&ParamInfo, &mut GradientsParams, usize)> ModuleVisitor for GradVisitor<'_, F> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let info = ParamInfo {
            id: param.id,
            path: self.stack.join("."),
            shape: param.shape().to_vec(),
        };
        (self.f)(&info, self.grads, D);
    }
}

/// Calls `f(info, grads, rank)` for every float parameter of `module`.
fn for_each_grad<M: Module>(
    module: &M,
    grads: &mut GradientsParams,
    f: impl FnMut(&ParamInfo, &mut GradientsParams, usize),
) {
    let mut v = GradVisitor {
        stack: Vec::new(),
        grads,
        f,
    };
    module.visit(&mut v);
}

macro_rules! with_rank {
    ($rank:expr, $d:ident => $body:expr) => {
        match $rank {
            1 => {
                const $d: usize = 1;
                $body
            }
            2 => {
                const $d: usize = 2;
                $body
            }
            3 => {
                const $d: usize = 3;
                $body
            }
            4 => {
                const $d: usize = 4;
                $body
            }
            5 => {
                const $d: usize = 5;
                $body
            }
            r => unreachable!("parameters of rank {r} are not used"),
        }
    };
}

/// Removes the gradients of parameters for which `drop` is true.
pub fn drop_grads<M: Module>(
    module: &M,
    grads: &mut GradientsParams,
    mut drop: impl FnMut(&ParamInfo) -> bool,
) {
    for_each_grad(module, grads, |info, g, rank| {
        if drop(info) {
            with_rank!(rank, D => { g.remove::<D>(info.id); });
        }
    });
}

/// Moves the gradients of parameters for which `take` is true into a new container.
pub fn split_grads<M: Module>(
    module: &M,
    grads: &mut GradientsParams,
    mut take: impl FnMut(&ParamInfo) -> bool,
) -> GradientsParams {
    let mut out = GradientsParams::new();
    for_each_grad(module, grads, |info, g, rank| {
        if take(info) {
            with_rank!(rank, D => {
                if let Some(t) = g.remove::<D>(info.id) {
                    out.register::<D>(info.id, t);
                }
            });
        }
    });
    out
}

/// The gradients of `module` cast to `dtype`.
pub fn cast_grads<M: Module>(
    module: &M,
    mut grads: GradientsParams,
    dtype: FloatDType,
) -> GradientsParams {
    for_each_grad(module, &mut grads, |info, g, rank| {
        with_rank!(rank, D => {
            if let Some(t) = g.remove::<D>(info.id) {
                g.register::<D>(info.id, t.cast(dtype));
            }
        });
    });
    grads
}

/// The L2 norm over all gradients together.
pub fn global_grad_norm<M: Module>(module: &M, grads: &mut GradientsParams) -> f64 {
    let mut total: Option<Tensor<1>> = None;
    for_each_grad(module, grads, |info, g, rank| {
        let sq: Option<Tensor<1>> =
            with_rank!(rank, D => g.get::<D>(info.id).map(|t| t.square().sum()));
        if let Some(sq) = sq {
            total = Some(match total.take() {
                Some(acc) => acc + sq,
                None => sq,
            });
        }
    });
    total.map_or(0.0, |t| f64::from(t.into_scalar::<f32>()).sqrt())
}

/// Scales all gradients so that their global L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`). Returns the norm before clipping.
pub fn clip_global_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let norm = global_grad_norm(module, grads);
    let scale = max_norm / (norm + 1e-6);
    if scale < 1.0 {
        for_each_grad(module, grads, |info, g, rank| {
            with_rank!(rank, D => {
                if let Some(t) = g.remove::<D>(info.id) {
                    g.register::<D>(info.id, t * scale);
                }
            });
        });
    }
    norm
}

/// Clamps every parameter named `logit_scale` to `[0, ln 100]` (open_clip does this after
/// each optimiser step).
pub fn clamp_logit_scale<M: Module>(module: M) -> M {
    struct Clamp {
        stack: Vec<String>,
    }
    impl ModuleMapper for Clamp {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.stack.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.stack.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if self.stack.last().is_some_and(|n| n == "logit_scale") {
                // A fresh leaf: the clamp must not link the parameter to the finished graph.
                param.map(|t| {
                    let tracked = t.is_require_grad();
                    let t = t.clamp(0.0, coca_core::model::LOGIT_SCALE_MAX).detach();
                    if tracked { t.require_grad() } else { t }
                })
            } else {
                param
            }
        }
    }
    module.map(&mut Clamp { stack: Vec::new() })
}
