//! Building the starting CoCa of a run: pretrained weights or a random-init preset, with its
//! preprocessing and tokenizer.

use std::path::PathBuf;

use burn::tensor::Device;
use coca_core::config::CocaConfig;
use coca_core::hub::{ModelFiles, resolve_tokenizer};
use coca_core::preprocess::PreprocessConfig;
use coca_core::tokenizer::ClipTokenizer;
use coca_core::{Coca, Pretrained};
use serde::{Deserialize, Serialize};

use super::config::ModelSection;
use crate::error::{Result, TaskError};

/// The starting model and what goes with it.
#[derive(Debug, Clone)]
pub struct Backbone {
    pub coca: Coca,
    pub config: CocaConfig,
    pub preprocess: PreprocessConfig,
    pub tokenizer: ClipTokenizer,
    /// The `tokenizer.json` in use; `None` for the built-in CLIP vocabulary.
    pub tokenizer_path: Option<PathBuf>,
    pub files: Option<ModelFiles>,
}

/// What `task.json` records about the backbone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackboneInfo {
    pub model_cfg: CocaConfig,
    pub preprocess: PreprocessConfig,
    /// The `tokenizer.json` used; `None` (or absent) for the built-in CLIP vocabulary.
    #[serde(default)]
    pub tokenizer: Option<PathBuf>,
    pub source: Option<String>,
}

impl Backbone {
    /// Loads `[model]` onto `device`.
    pub fn load(section: &ModelSection, device: &Device) -> Result<Self> {
        let (coca, config, preprocess, files) = match (&section.id, &section.preset) {
            (Some(id), _) => {
                let p = Pretrained::load(id, device)?;
                (p.model, p.config, p.preprocess, Some(p.files))
            }
            (None, Some(preset)) => {
                let config = if preset == "tiny" {
                    CocaConfig::tiny()
                } else {
                    CocaConfig::preset(preset)?
                };
                let preprocess = PreprocessConfig::openai(config.vision_cfg.image_size);
                (Coca::new(&config, device), config, preprocess, None)
            }
            (None, None) => return Err(TaskError::Config("[model] needs `id` or `preset`".into())),
        };
        let tokenizer_path = resolve_tokenizer(section.tokenizer.as_deref(), files.as_ref());
        let tokenizer = ClipTokenizer::load(tokenizer_path.as_deref())?;
        let tokenizer_name = tokenizer_path.as_ref().map_or_else(
            || "the built-in CLIP tokenizer".to_string(),
            |p| p.display().to_string(),
        );
        config.check_tokenizer(tokenizer.vocab_size(), &tokenizer_name)?;
        Ok(Self {
            coca,
            config,
            preprocess,
            tokenizer,
            tokenizer_path,
            files,
        })
    }

    /// The record for `task.json`.
    pub fn info(&self) -> BackboneInfo {
        BackboneInfo {
            model_cfg: self.config.clone(),
            preprocess: self.preprocess.clone(),
            tokenizer: self.tokenizer_path.clone(),
            source: self.files.as_ref().map(|f| f.id.clone()),
        }
    }
}
