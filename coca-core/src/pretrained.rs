//! A loaded model with everything needed to use it: weights, configuration, preprocessing.

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::checkpoint::{LoadOptions, load_state_dict, read_state_dict};
use crate::config::{CocaConfig, OpenClipConfig, PRESETS};
use crate::error::{CocaError, Result};
use crate::hub::{ModelFiles, resolve_model};
use crate::model::Coca;
use crate::preprocess::{PreprocessConfig, load_image, preprocess_eval};

/// A CoCa model loaded from a model id, with its configuration and preprocessing.
#[derive(Debug, Clone)]
pub struct Pretrained {
    pub model: Coca,
    pub config: CocaConfig,
    pub preprocess: PreprocessConfig,
    pub files: ModelFiles,
}

impl Pretrained {
    /// Resolves `id` (directory, file, `hf-hub:<repo>` or short name) and loads it strictly.
    pub fn load(id: &str, device: &Device) -> Result<Self> {
        Self::load_with(id, device, &LoadOptions::default())
    }

    /// [`Pretrained::load`] with loading options.
    pub fn load_with(id: &str, device: &Device, options: &LoadOptions) -> Result<Self> {
        let files = resolve_model(id)?;
        let state = read_state_dict(&files.weights)?;
        let (config, preprocess) = match &files.config {
            Some(path) => {
                let file = OpenClipConfig::from_file(path)?;
                let preprocess = file.preprocess();
                (file.model_cfg, preprocess)
            }
            None => {
                let cfg = infer_preset(&state).ok_or_else(|| CocaError::Config {
                    source_name: files.weights.display().to_string(),
                    reason: format!(
                        "no open_clip_config.json beside the weights and the shapes match no preset ({})",
                        PRESETS.join(", ")
                    ),
                })?;
                let p = PreprocessConfig::openai(cfg.vision_cfg.image_size);
                (cfg, p)
            }
        };
        tracing::info!(weights = %files.weights.display(), "loading CoCa");
        let model = load_state_dict(Coca::new(&config, device), state, &files.weights, options)?;
        Ok(Self {
            model,
            config,
            preprocess,
            files,
        })
    }

    /// Reads and preprocesses images into a batch `[N, 3, S, S]`.
    pub fn load_images(&self, paths: &[impl AsRef<Path>], device: &Device) -> Result<Tensor<4>> {
        let images = paths.iter().map(load_image).collect::<Result<Vec<_>>>()?;
        Ok(images_to_tensor(&images, &self.preprocess, device))
    }
}

/// Preprocesses decoded images (eval transform) into a batch `[N, 3, S, S]`.
pub fn images_to_tensor(
    images: &[image::RgbImage],
    cfg: &PreprocessConfig,
    device: &Device,
) -> Tensor<4> {
    let s = cfg.image_size;
    let mut data = Vec::with_capacity(images.len() * 3 * s * s);
    for img in images {
        data.extend(preprocess_eval(img, cfg));
    }
    Tensor::from_data(TensorData::new(data, [images.len(), 3, s, s]), device)
}

/// Token id rows (equal length) into an `Int` tensor `[N, L]`.
pub fn tokens_to_tensor(rows: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
    let l = rows.first().map_or(0, Vec::len);
    let data: Vec<i64> = rows
        .iter()
        .flat_map(|r| r.iter().map(|&t| t as i64))
        .collect();
    Tensor::from_data(TensorData::new(data, [rows.len(), l]), device)
}

fn infer_preset(state: &crate::checkpoint::StateDict) -> Option<CocaConfig> {
    let conv = state.get("visual.conv1.weight")?.shape().to_vec();
    PRESETS
        .iter()
        .filter_map(|name| CocaConfig::preset(name).ok())
        .find(|cfg| {
            let v = &cfg.vision_cfg;
            conv == [v.width, 3, v.patch_size, v.patch_size]
        })
}
