//! Building the starting model of a run, of either family: a CoCa (pretrained weights or a
//! random-init preset, with its preprocessing and tokenizer) or a CLIPPO one-tower ViT (a
//! big_vision `.npz` or a preset; no tokenizer, text is rendered).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use coca_core::clippo::{Clippo, ClippoConfig};
use coca_core::config::CocaConfig;
use coca_core::hub::{ModelFiles, resolve_tokenizer};
use coca_core::preprocess::PreprocessConfig;
use coca_core::tokenizer::ClipTokenizer;
use coca_core::{Coca, Pretrained};
use serde::{Deserialize, Serialize};

use super::config::ModelSection;
use crate::error::{Result, TaskError};

/// File name of a CLIPPO backbone inside an export directory.
pub const CLIPPO_FILE: &str = "clippo.npz";

/// The model family of a backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Contrastive Captioner: image encoder + decoupled text decoder (open_clip checkpoints).
    #[default]
    Coca,
    /// CLIPPO: one ViT for images and rendered text (big_vision checkpoints).
    Clippo,
}

impl Family {
    /// `coca` or `clippo`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Coca => "coca",
            Family::Clippo => "clippo",
        }
    }

    /// The family `[model]` asks for: `family` when set, else read off `id` (a `.npz` file or
    /// a directory holding `clippo.npz`) or `preset` (`clippo_*`).
    pub fn of(section: &ModelSection) -> Family {
        if let Some(f) = section.family {
            return f;
        }
        let clippo_id = section.id.as_deref().is_some_and(|id| {
            id.to_ascii_lowercase().ends_with(".npz") || Path::new(id).join(CLIPPO_FILE).is_file()
        });
        let clippo_preset = section
            .preset
            .as_deref()
            .is_some_and(|p| p.to_ascii_lowercase().starts_with("clippo"));
        if clippo_id || (section.id.is_none() && clippo_preset) {
            Family::Clippo
        } else {
            Family::Coca
        }
    }
}

/// The starting model of a run and what goes with it.
// One value per run, moved a handful of times: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Backbone {
    Coca(CocaBackbone),
    Clippo(ClippoBackbone),
}

/// A CoCa with its preprocessing and tokenizer.
#[derive(Debug, Clone)]
pub struct CocaBackbone {
    pub coca: Coca,
    pub config: CocaConfig,
    pub preprocess: PreprocessConfig,
    pub tokenizer: ClipTokenizer,
    /// The `tokenizer.json` in use; `None` for the built-in CLIP vocabulary.
    pub tokenizer_path: Option<PathBuf>,
    pub files: Option<ModelFiles>,
}

/// A CLIPPO model (its sizes are read off the weights).
#[derive(Debug, Clone)]
pub struct ClippoBackbone {
    pub clippo: Clippo,
    pub config: ClippoConfig,
    /// The checkpoint it was loaded from; `None` for a random-init preset.
    pub source: Option<String>,
}

/// What `backbone.json` and `task.json` record about the backbone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackboneInfo {
    /// Absent in records written before CLIPPO: CoCa.
    #[serde(default)]
    pub family: Family,
    /// The CoCa sizes (CoCa only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_cfg: Option<CocaConfig>,
    /// The CLIPPO sizes (CLIPPO only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clippo_cfg: Option<ClippoConfig>,
    /// CoCa's image preprocessing (CLIPPO's is fixed by big_vision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocess: Option<PreprocessConfig>,
    /// The `tokenizer.json` used; `None` (or absent) for the built-in CLIP vocabulary.
    #[serde(default)]
    pub tokenizer: Option<PathBuf>,
    pub source: Option<String>,
}

impl Backbone {
    /// Loads `[model]` onto `device`, of the family [`Family::of`] says.
    pub fn load(section: &ModelSection, device: &Device) -> Result<Self> {
        match Family::of(section) {
            Family::Coca => Ok(Backbone::Coca(CocaBackbone::load(section, device)?)),
            Family::Clippo => Ok(Backbone::Clippo(ClippoBackbone::load(section, device)?)),
        }
    }

    /// The family.
    pub fn family(&self) -> Family {
        match self {
            Backbone::Coca(_) => Family::Coca,
            Backbone::Clippo(_) => Family::Clippo,
        }
    }

    /// The CoCa backbone; an error naming `task` for a CLIPPO one.
    pub fn coca(&self, task: &str) -> Result<&CocaBackbone> {
        match self {
            Backbone::Coca(b) => Ok(b),
            Backbone::Clippo(_) => Err(TaskError::Config(format!(
                "task `{task}` needs a CoCa backbone, but [model] is a CLIPPO model (CLIPPO \
                 runs pretrain, vqa, snli-ve and classify)"
            ))),
        }
    }

    /// The CLIPPO backbone; an error naming `task` for a CoCa one.
    pub fn clippo(&self, task: &str) -> Result<&ClippoBackbone> {
        match self {
            Backbone::Clippo(b) => Ok(b),
            Backbone::Coca(_) => Err(TaskError::Config(format!(
                "task `{task}` needs a CLIPPO backbone, but [model] is a CoCa model"
            ))),
        }
    }

    /// The record for `backbone.json` / `task.json`.
    pub fn info(&self) -> BackboneInfo {
        match self {
            Backbone::Coca(b) => b.info(),
            Backbone::Clippo(b) => BackboneInfo {
                family: Family::Clippo,
                model_cfg: None,
                clippo_cfg: Some(b.config.clone()),
                preprocess: None,
                tokenizer: None,
                source: b.source.clone(),
            },
        }
    }

    /// The `tokenizer.json` in use (CoCa with a tokenizer file only).
    pub fn tokenizer_path(&self) -> Option<&Path> {
        match self {
            Backbone::Coca(b) => b.tokenizer_path.as_deref(),
            Backbone::Clippo(_) => None,
        }
    }
}

impl CocaBackbone {
    /// Loads a CoCa `[model]` onto `device`.
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
            family: Family::Coca,
            model_cfg: Some(self.config.clone()),
            clippo_cfg: None,
            preprocess: Some(self.preprocess.clone()),
            tokenizer: self.tokenizer_path.clone(),
            source: self.files.as_ref().map(|f| f.id.clone()),
        }
    }
}

impl ClippoBackbone {
    /// Loads a CLIPPO `[model]`: `id` is a big_vision `.npz` (path or
    /// `hf-hub:<owner>/<repo>/<file.npz>`) or a directory holding `clippo.npz` (an export);
    /// `preset` (`clippo_B16`, `clippo_tiny`, or `tiny`) builds random weights.
    pub fn load(section: &ModelSection, device: &Device) -> Result<Self> {
        if let Some(tok) = &section.tokenizer {
            return Err(TaskError::Config(format!(
                "[model] tokenizer = {} is set, but a CLIPPO model has no tokenizer (text is \
                 rendered as pixels)",
                tok.display()
            )));
        }
        let (clippo, source) = match (&section.id, &section.preset) {
            (Some(id), _) => {
                let dir_file = Path::new(id).join(CLIPPO_FILE);
                let id = if dir_file.is_file() {
                    dir_file.display().to_string()
                } else {
                    id.clone()
                };
                (coca_core::clippo::load(&id, device)?, Some(id))
            }
            (None, Some(preset)) => {
                let config = match preset.as_str() {
                    "tiny" => Some(ClippoConfig::tiny()),
                    p => ClippoConfig::preset(p),
                }
                .ok_or_else(|| {
                    TaskError::Config(format!(
                        "unknown CLIPPO preset `{preset}` (known: clippo_B16, clippo_tiny)"
                    ))
                })?;
                (Clippo::new(&config, device), None)
            }
            (None, None) => return Err(TaskError::Config("[model] needs `id` or `preset`".into())),
        };
        Ok(Self {
            config: clippo.config(),
            clippo,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(id: Option<&str>, preset: Option<&str>, family: Option<Family>) -> ModelSection {
        ModelSection {
            id: id.map(str::to_string),
            preset: preset.map(str::to_string),
            family,
            tokenizer: None,
            freeze: Default::default(),
        }
    }

    #[test]
    fn the_family_is_read_off_the_id_or_preset_unless_set() {
        let dir = std::env::temp_dir().join(format!("coca-family-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display().to_string();
        use Family::*;
        for (id, preset, family, want) in [
            (Some("coca-b32"), None, None, Coca),
            (Some("weights/clippo_b16_yfcc100m.NPZ"), None, None, Clippo),
            (Some("hf-hub:google/clippo/b16.npz"), None, None, Clippo),
            (Some(d.as_str()), None, None, Coca),
            (None, Some("tiny"), None, Coca),
            (None, Some("clippo_tiny"), None, Clippo),
            (None, Some("tiny"), Some(Clippo), Clippo),
            // An id wins over a preset: a CoCa id with a leftover CLIPPO preset is CoCa.
            (Some("coca-b32"), Some("clippo_tiny"), None, Coca),
        ] {
            assert_eq!(
                Family::of(&section(id, preset, family)),
                want,
                "{id:?} {preset:?}"
            );
        }
        std::fs::write(dir.join(CLIPPO_FILE), b"").unwrap();
        assert_eq!(Family::of(&section(Some(&d), None, None)), Clippo);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn backbone_records_written_before_clippo_read_as_coca() {
        let old = serde_json::json!({
            "model_cfg": CocaConfig::tiny(),
            "preprocess": PreprocessConfig::openai(64),
            "source": null
        });
        let info: BackboneInfo = serde_json::from_value(old).unwrap();
        assert_eq!(info.family, Family::Coca);
        assert!(info.model_cfg.is_some() && info.clippo_cfg.is_none());
    }
}
