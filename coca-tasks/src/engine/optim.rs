//! AdamW with decoupled weight decay and parameter groups: the task head and the backbone have
//! their own learning rates; biases, norms, 0/1-D tensors and `logit_scale` get no decay.
//!
//! PyTorch's `AdamW` update, written here rather than taken from burn because the moments must
//! keep their dtype through a checkpoint: burn restores optimiser state in the default device's
//! float dtype, which turns the f32 moments of a bf16 run (see `Weights` in `train.rs`) into
//! bf16 ones. The state file is a safetensors file with PyTorch's names (`<param>.exp_avg`,
//! `<param>.exp_avg_sq`) and the step count of each parameter in its metadata.

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use coca_core::checkpoint::{dtype_from_safetensors, dtype_to_safetensors};
use serde::{Deserialize, Serialize};

use super::params::ParamInfo;
use crate::error::{Result, TaskError};

/// Optimiser hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// Peak learning rate of the task head (pooler + classifier).
    pub lr_head: f64,
    /// Peak learning rate of the pretrained backbone.
    pub lr_backbone: f64,
    /// Decoupled weight decay (AdamW), applied to matrices only.
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr_head: 5e-4,
            lr_backbone: 2e-5,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// How one trainable parameter is optimised.
#[derive(Debug, Clone)]
struct Group {
    path: String,
    numel: usize,
    head: bool,
    decays: bool,
}

/// First and second moments (flattened) of one parameter and its step count.
#[derive(Clone)]
struct Moments {
    exp_avg: Tensor<1>,
    exp_avg_sq: Tensor<1>,
    steps: u32,
}

/// AdamW over the trainable parameters of a model, with the head and backbone groups.
#[derive(Clone)]
pub struct Optimizers {
    config: OptimConfig,
    groups: HashMap<ParamId, Group>,
    state: HashMap<ParamId, Moments>,
}

const FORMAT: &str = "coca-adamw-1";

impl Optimizers {
    /// Optimiser for the trainable parameters `params` of a model.
    pub fn new(params: &[ParamInfo], config: &OptimConfig) -> Self {
        let groups = params
            .iter()
            .map(|p| {
                let group = Group {
                    path: p.path.clone(),
                    numel: p.numel(),
                    head: p.is_head(),
                    decays: p.decays(),
                };
                (p.id, group)
            })
            .collect();
        Self {
            config: config.clone(),
            groups,
            state: HashMap::new(),
        }
    }

    /// One AdamW step with learning rates `factor x` the peaks. `grads` must hold only the
    /// gradients of trainable parameters (clipped already); parameters without a gradient are
    /// left as they are. The moments take the gradients' dtype.
    pub fn step<M: Module>(&mut self, model: M, grads: GradientsParams, factor: f64) -> M {
        let mut mapper = Step {
            optim: self,
            grads,
            factor,
        };
        model.map(&mut mapper)
    }

    /// The state as a safetensors file.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let err = |e: String| TaskError::Config(format!("cannot serialise optimiser state: {e}"));
        let mut tensors: Vec<(String, TensorData)> = Vec::new();
        let mut steps: BTreeMap<&str, u32> = BTreeMap::new();
        for (id, m) in &self.state {
            let Some(group) = self.groups.get(id) else {
                continue;
            };
            steps.insert(&group.path, m.steps);
            tensors.push((format!("{}.exp_avg", group.path), m.exp_avg.to_data()));
            tensors.push((format!("{}.exp_avg_sq", group.path), m.exp_avg_sq.to_data()));
        }
        let views = tensors
            .iter()
            .map(|(name, data)| {
                let dtype = dtype_to_safetensors(data.dtype())
                    .ok_or_else(|| err(format!("{name}: dtype {:?}", data.dtype())))?;
                safetensors::tensor::TensorView::new(dtype, data.shape().to_vec(), data.as_bytes())
                    .map(|v| (name.clone(), v))
                    .map_err(|e| err(format!("{name}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let steps = serde_json::to_string(&steps).map_err(|e| err(e.to_string()))?;
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("steps".to_string(), steps),
        ]);
        safetensors::serialize(views, Some(metadata)).map_err(|e| err(e.to_string()))
    }

    /// Restores the state written by [`Optimizers::to_bytes`] onto `device`, keeping the dtype
    /// it was saved in. Parameters are matched by path; state of a parameter that is no longer
    /// trainable, or missing state, is an error.
    pub fn load_bytes(mut self, bytes: &[u8], device: &Device) -> Result<Self> {
        let bad = |msg: String| TaskError::Config(format!("cannot read optimiser state: {msg}"));
        let (_, meta) =
            safetensors::SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(bad(format!("not a {FORMAT} state file")));
        }
        let steps: BTreeMap<String, u32> =
            serde_json::from_str(meta.get("steps").map_or("", String::as_str))
                .map_err(|e| bad(format!("step counts: {e}")))?;
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let by_path: HashMap<&str, (ParamId, usize)> = self
            .groups
            .iter()
            .map(|(id, g)| (g.path.as_str(), (*id, g.numel)))
            .collect();
        let read = |name: &str, numel: usize| -> Result<Tensor<1>> {
            let view = st
                .tensor(name)
                .map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
            let dtype = dtype_from_safetensors(view.dtype())
                .ok_or_else(|| bad(format!("tensor `{name}` has dtype {:?}", view.dtype())))?;
            let n: usize = view.shape().iter().product();
            if n != numel {
                return Err(bad(format!(
                    "tensor `{name}` has {n} values, the parameter {numel}"
                )));
            }
            let data = TensorData::try_from_bytes_vec(view.data().to_vec(), vec![n], dtype)
                .map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
            Ok(Tensor::from_data(data, (device, dtype)))
        };
        for (path, &count) in &steps {
            let (id, numel) = *by_path
                .get(path.as_str())
                .ok_or_else(|| bad(format!("`{path}` is not a trainable parameter")))?;
            let moments = Moments {
                exp_avg: read(&format!("{path}.exp_avg"), numel)?,
                exp_avg_sq: read(&format!("{path}.exp_avg_sq"), numel)?,
                steps: count,
            };
            self.state.insert(id, moments);
        }
        if st.len() != 2 * steps.len() {
            return Err(bad(format!(
                "{} tensors for {} parameters",
                st.len(),
                steps.len()
            )));
        }
        Ok(self)
    }
}

/// Applies one step to every parameter that has a gradient.
struct Step<'a> {
    optim: &'a mut Optimizers,
    grads: GradientsParams,
    factor: f64,
}

impl ModuleMapper for Step<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let id = param.id;
        let Some(group) = self.optim.groups.get(&id).cloned() else {
            return param;
        };
        let Some(grad) = self.grads.remove::<D>(id) else {
            return param;
        };
        let c = self.optim.config.clone();
        let lr = if group.head { c.lr_head } else { c.lr_backbone } * self.factor;
        let wd = if group.decays { c.weight_decay } else { 0.0 };
        let state = &mut self.optim.state;
        param.map(|p| {
            let (tracked, autodiff) = (p.is_require_grad(), p.is_autodiff());
            let shape = p.shape();
            let n = shape.num_elements();
            let p = p.inner();
            let g = grad.inner().reshape([n]);
            let (b1, b2) = (c.beta1, c.beta2);
            let m = match state.remove(&id) {
                // Moments follow the gradients' dtype (a cast only if a run changed precision).
                Some(m) => Moments {
                    exp_avg: m.exp_avg.cast(g.dtype()).mul_scalar(b1)
                        + g.clone().mul_scalar(1.0 - b1),
                    exp_avg_sq: m.exp_avg_sq.cast(g.dtype()).mul_scalar(b2)
                        + g.square().mul_scalar(1.0 - b2),
                    steps: m.steps.saturating_add(1),
                },
                None => Moments {
                    exp_avg: g.clone().mul_scalar(1.0 - b1),
                    exp_avg_sq: g.square().mul_scalar(1.0 - b2),
                    steps: 1,
                },
            };
            let t = i32::try_from(m.steps).unwrap_or(i32::MAX);
            let m_hat = m.exp_avg.clone().div_scalar(1.0 - b1.powi(t));
            let v_hat = m.exp_avg_sq.clone().div_scalar(1.0 - b2.powi(t));
            let delta = (m_hat / v_hat.sqrt().add_scalar(c.eps)).reshape(shape);
            state.insert(id, m);
            let decayed = if wd == 0.0 {
                p
            } else {
                p.mul_scalar(1.0 - lr * wd)
            };
            let updated = decayed - delta.mul_scalar(lr);
            match (autodiff, tracked) {
                (false, _) => updated,
                (true, false) => Tensor::from_inner(updated),
                (true, true) => Tensor::from_inner(updated).require_grad(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{DType, FloatDType};

    use super::*;
    use crate::engine::params::param_infos;

    #[derive(Module, Debug)]
    struct Toy {
        weight: Param<Tensor<2>>,
        bias: Param<Tensor<1>>,
    }

    fn toy(device: &Device, dtype: FloatDType) -> Toy {
        let w = TensorData::new(vec![0.5f32, -1.0, 2.0, 0.25], [2, 2]);
        let b = TensorData::new(vec![0.1f32, -0.3], [2]);
        Toy {
            weight: Param::from_tensor(
                Tensor::<2>::from_data(w, device).cast(dtype).require_grad(),
            ),
            bias: Param::from_tensor(Tensor::<1>::from_data(b, device).cast(dtype).require_grad()),
        }
    }

    fn grads(model: &Toy, step: usize) -> GradientsParams {
        let device = model.weight.val().device();
        let k = step as f32;
        let a =
            Tensor::<2>::from_data(TensorData::new(vec![3.0f32, -k, 1.0, 0.5], [2, 2]), &device)
                .cast(model.weight.val().dtype());
        let b = Tensor::<1>::from_data(TensorData::new(vec![k, -2.0f32], [2]), &device)
            .cast(model.bias.val().dtype());
        let loss = (model.weight.val() * a).sum() + (model.bias.val() * b).sum();
        GradientsParams::from_grads(loss.backward(), model)
    }

    fn values(model: &Toy) -> Vec<f32> {
        let mut v = model
            .weight
            .val()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        v.extend(
            model
                .bias
                .val()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap(),
        );
        v
    }

    fn config() -> OptimConfig {
        OptimConfig {
            lr_head: 0.1,
            weight_decay: 0.5,
            ..OptimConfig::default()
        }
    }

    #[test]
    fn saved_state_continues_exactly_and_keeps_its_dtype() {
        let device = Device::flex().autodiff();
        for dtype in [FloatDType::F32, FloatDType::BF16] {
            let mut model = toy(&device, dtype);
            let infos = param_infos(&model);
            let mut optim = Optimizers::new(&infos, &config());
            for step in 1..=2 {
                let g = grads(&model, step);
                model = optim.step(model, g, 1.0);
            }
            let bytes = optim.to_bytes().unwrap();
            let mut restored = Optimizers::new(&infos, &config())
                .load_bytes(&bytes, &Device::flex())
                .unwrap();
            // The moments come back in the dtype they were saved in (the device's default
            // float dtype is f32 here).
            for m in restored.state.values() {
                assert_eq!(m.exp_avg.dtype(), DType::from(dtype));
                assert_eq!(m.exp_avg_sq.dtype(), DType::from(dtype));
                assert_eq!(m.steps, 2);
            }
            let mut other = model.clone();
            for step in 3..=4 {
                let (g1, g2) = (grads(&model, step), grads(&other, step));
                model = optim.step(model, g1, 0.5);
                other = restored.step(other, g2, 0.5);
            }
            assert_eq!(values(&model), values(&other), "{dtype:?}");
            assert_eq!(model.weight.val().dtype(), DType::from(dtype));
        }
    }

    #[test]
    fn state_that_does_not_fit_the_model_is_an_error() {
        let device = Device::flex().autodiff();
        let model = toy(&device, FloatDType::F32);
        let infos = param_infos(&model);
        let mut optim = Optimizers::new(&infos, &config());
        let g = grads(&model, 1);
        let _stepped = optim.step(model, g, 1.0);
        let bytes = optim.to_bytes().unwrap();
        let load_err = |params: &[ParamInfo], bytes: &[u8]| {
            Optimizers::new(params, &config())
                .load_bytes(bytes, &Device::flex())
                .err()
                .unwrap()
                .to_string()
        };
        let only_bias: Vec<_> = infos.iter().filter(|p| p.path == "bias").cloned().collect();
        let err = load_err(&only_bias, &bytes);
        assert!(
            err.contains("`weight` is not a trainable parameter"),
            "{err}"
        );
        let err = load_err(&infos, &bytes[..bytes.len() / 2]);
        assert!(err.contains("cannot read optimiser state"), "{err}");
        // Same names, other sizes (state of another model).
        let mut bigger = infos.clone();
        bigger[0].shape = vec![3, 2];
        let err = load_err(&bigger, &bytes);
        assert!(
            err.contains("`weight.exp_avg` has 4 values, the parameter 6"),
            "{err}"
        );
    }
}
