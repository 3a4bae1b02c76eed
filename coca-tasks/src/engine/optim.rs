//! AdamW with decoupled weight decay and parameter groups: the task head and the backbone have
//! their own learning rates; biases, norms, 0/1-D tensors and `logit_scale` get no decay.

use burn::module::{Module, ParamGroup};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use super::params::{ParamInfo, split_grads};
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

impl OptimConfig {
    fn adamw(&self, weight_decay: f64) -> AdamWConfig {
        AdamWConfig::new()
            .with_beta_1(self.beta1 as f32)
            .with_beta_2(self.beta2 as f32)
            .with_epsilon(self.eps as f32)
            .with_weight_decay(weight_decay as f32)
    }

    fn group(&self, params: &[&ParamInfo]) -> ModuleOptimizer {
        let no_decay: Vec<_> = params
            .iter()
            .filter(|p| !p.decays())
            .map(|p| p.id)
            .collect();
        self.adamw(self.weight_decay).init().with_group(
            ParamGroup::from_ids(no_decay),
            self.adamw(0.0).build(),
            None,
        )
    }
}

/// The two optimiser groups (head and backbone).
#[derive(Clone)]
pub struct Optimizers {
    head: ModuleOptimizer,
    backbone: ModuleOptimizer,
    config: OptimConfig,
}

impl Optimizers {
    /// Optimisers for the trainable parameters `params` of a model.
    pub fn new(params: &[ParamInfo], config: &OptimConfig) -> Self {
        let head: Vec<_> = params.iter().filter(|p| p.is_head()).collect();
        let backbone: Vec<_> = params.iter().filter(|p| !p.is_head()).collect();
        Self {
            head: config.group(&head),
            backbone: config.group(&backbone),
            config: config.clone(),
        }
    }

    /// One AdamW step with learning rates `factor x` the peaks. `grads` must hold only the
    /// gradients of trainable parameters (clipped already).
    pub fn step<M: Module>(&mut self, model: M, mut grads: GradientsParams, factor: f64) -> M {
        let head = split_grads(&model, &mut grads, ParamInfo::is_head);
        let model = if head.is_empty() {
            model
        } else {
            self.head.step(self.config.lr_head * factor, model, head)
        };
        if grads.is_empty() {
            model
        } else {
            self.backbone
                .step(self.config.lr_backbone * factor, model, grads)
        }
    }

    /// Serialised state of both groups.
    pub fn to_bytes(&self) -> Result<(Vec<u8>, Vec<u8>)> {
        let enc = |o: &ModuleOptimizer| {
            o.into_bytes()
                .map(|b| b.to_vec())
                .map_err(|e| TaskError::Config(format!("cannot serialise optimiser state: {e:?}")))
        };
        Ok((enc(&self.head)?, enc(&self.backbone)?))
    }

    /// Restores the state written by [`Optimizers::to_bytes`].
    pub fn load_bytes(self, head: Vec<u8>, backbone: Vec<u8>) -> Result<Self> {
        let dec = |o: ModuleOptimizer, b: Vec<u8>| {
            o.from_bytes(Bytes::from_bytes_vec(b))
                .map_err(|e| TaskError::Config(format!("cannot read optimiser state: {e:?}")))
        };
        Ok(Self {
            head: dec(self.head, head)?,
            backbone: dec(self.backbone, backbone)?,
            config: self.config,
        })
    }
}
