//! Model configuration in open_clip's `model_cfg` layout, with the released presets.
//!
//! `CocaConfig` deserialises the `model_cfg` object of an `open_clip_config.json` directly;
//! options that would change the architecture in ways this crate does not implement are
//! rejected by [`CocaConfig::validate`] instead of being silently ignored.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{CocaError, Result};
use crate::preprocess::PreprocessConfig;

/// How the image encoder pools its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttentionalPool {
    /// `true`: the released layout, one pooler with `attn_pooler_queries` queries whose first
    /// output is the contrastive embedding and the rest the decoder memory.
    Shared(bool),
    /// The paper's layout: a generative pooler (`attn_pooler_queries` queries) and a separate
    /// 1-query contrastive pooler (`attn_pool_contrastive`).
    Separate(TwoPoolers),
}

/// Variants of the paper's two-pooler layout (open_clip's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TwoPoolers {
    /// Both poolers read the encoder tokens.
    Parallel,
    /// The contrastive pooler reads the generative pooler's outputs.
    Cascade,
}

impl Default for AttentionalPool {
    fn default() -> Self {
        AttentionalPool::Shared(true)
    }
}

/// Image encoder (`vision_cfg`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisionConfig {
    pub image_size: usize,
    pub layers: usize,
    pub width: usize,
    #[serde(default = "default_head_width")]
    pub head_width: usize,
    pub patch_size: usize,
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
    #[serde(default)]
    pub attentional_pool: AttentionalPool,
    #[serde(default = "default_pool_queries")]
    pub attn_pooler_queries: usize,
    #[serde(default = "default_pool_heads")]
    pub attn_pooler_heads: usize,
    #[serde(default = "default_true")]
    pub output_tokens: bool,
    /// Options present in the file that this crate does not interpret.
    #[serde(flatten, skip_serializing)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Unimodal text decoder (`text_cfg`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    #[serde(default = "default_context")]
    pub context_length: usize,
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    pub width: usize,
    pub heads: usize,
    pub layers: usize,
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
    #[serde(default = "default_true")]
    pub embed_cls: bool,
    #[serde(default)]
    pub pad_id: u32,
    #[serde(default = "default_true")]
    pub output_tokens: bool,
    #[serde(flatten, skip_serializing)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Multimodal decoder (`multimodal_cfg`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultimodalConfig {
    #[serde(default = "default_context")]
    pub context_length: usize,
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    pub width: usize,
    pub heads: usize,
    pub layers: usize,
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
    #[serde(default = "default_pool_heads")]
    pub attn_pooler_heads: usize,
    #[serde(flatten, skip_serializing)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// A whole CoCa model (`model_cfg` of `open_clip_config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocaConfig {
    pub embed_dim: usize,
    pub vision_cfg: VisionConfig,
    pub text_cfg: TextConfig,
    pub multimodal_cfg: MultimodalConfig,
    #[serde(flatten, skip_serializing)]
    pub other: BTreeMap<String, serde_json::Value>,
}

fn default_head_width() -> usize {
    64
}
fn default_mlp_ratio() -> f64 {
    4.0
}
fn default_pool_queries() -> usize {
    256
}
fn default_pool_heads() -> usize {
    8
}
fn default_true() -> bool {
    true
}
fn default_context() -> usize {
    76
}
fn default_vocab() -> usize {
    49408
}

/// Names of the presets, as open_clip spells them.
pub const PRESETS: [&str; 2] = ["coca_ViT-B-32", "coca_ViT-L-14"];

impl CocaConfig {
    /// `coca_ViT-B-32` (253.6 M parameters).
    pub fn coca_vit_b_32() -> Self {
        Self::preset_parts(512, (224, 12, 768, 32), (512, 8, 12), (512, 8, 12))
    }

    /// `coca_ViT-L-14` (638.5 M parameters).
    pub fn coca_vit_l_14() -> Self {
        Self::preset_parts(768, (224, 24, 1024, 14), (768, 12, 12), (768, 12, 12))
    }

    /// A preset by open_clip name (`coca_ViT-B-32`, `coca_ViT-L-14`).
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "coca_ViT-B-32" => Ok(Self::coca_vit_b_32()),
            "coca_ViT-L-14" => Ok(Self::coca_vit_l_14()),
            _ => Err(CocaError::Config {
                source_name: name.to_string(),
                reason: format!("unknown preset; known presets: {}", PRESETS.join(", ")),
            }),
        }
    }

    /// A small random-weight configuration for tests and smoke runs (image 64 in 8x8 patches,
    /// widths 32-64, 32-token context).
    pub fn tiny() -> Self {
        let mut cfg = Self::preset_parts(32, (64, 2, 64, 8), (32, 4, 2), (32, 4, 2));
        cfg.text_cfg.context_length = 32;
        cfg.multimodal_cfg.context_length = 32;
        cfg.vision_cfg.head_width = 32;
        cfg.vision_cfg.attn_pooler_queries = 9;
        cfg.vision_cfg.attn_pooler_heads = 4;
        cfg.multimodal_cfg.attn_pooler_heads = 4;
        cfg
    }

    fn preset_parts(
        embed_dim: usize,
        (image_size, v_layers, v_width, patch): (usize, usize, usize, usize),
        (t_width, t_heads, t_layers): (usize, usize, usize),
        (m_width, m_heads, m_layers): (usize, usize, usize),
    ) -> Self {
        CocaConfig {
            embed_dim,
            vision_cfg: VisionConfig {
                image_size,
                layers: v_layers,
                width: v_width,
                head_width: 64,
                patch_size: patch,
                mlp_ratio: 4.0,
                attentional_pool: AttentionalPool::Shared(true),
                attn_pooler_queries: 256,
                attn_pooler_heads: 8,
                output_tokens: true,
                other: BTreeMap::new(),
            },
            text_cfg: TextConfig {
                context_length: 76,
                vocab_size: 49408,
                width: t_width,
                heads: t_heads,
                layers: t_layers,
                mlp_ratio: 4.0,
                embed_cls: true,
                pad_id: 0,
                output_tokens: true,
                other: BTreeMap::new(),
            },
            multimodal_cfg: MultimodalConfig {
                context_length: 76,
                vocab_size: 49408,
                width: m_width,
                heads: m_heads,
                layers: m_layers,
                mlp_ratio: 4.0,
                attn_pooler_heads: 8,
                other: BTreeMap::new(),
            },
            other: BTreeMap::new(),
        }
    }

    /// Parses a `model_cfg` JSON object; `source_name` names it in errors.
    pub fn from_json_value(value: serde_json::Value, source_name: &str) -> Result<Self> {
        let cfg: CocaConfig = serde_json::from_value(value).map_err(|e| CocaError::Config {
            source_name: source_name.to_string(),
            reason: e.to_string(),
        })?;
        cfg.validate(source_name)?;
        Ok(cfg)
    }

    /// Checks that the widths fit together and that no unsupported option is set.
    pub fn validate(&self, source_name: &str) -> Result<()> {
        let err = |reason: String| {
            Err(CocaError::Config {
                source_name: source_name.to_string(),
                reason,
            })
        };
        let v = &self.vision_cfg;
        let t = &self.text_cfg;
        let m = &self.multimodal_cfg;
        let positive = [
            ("embed_dim", self.embed_dim),
            ("vision_cfg.image_size", v.image_size),
            ("vision_cfg.layers", v.layers),
            ("vision_cfg.width", v.width),
            ("vision_cfg.head_width", v.head_width),
            ("vision_cfg.patch_size", v.patch_size),
            ("vision_cfg.attn_pooler_queries", v.attn_pooler_queries),
            ("vision_cfg.attn_pooler_heads", v.attn_pooler_heads),
            ("text_cfg.width", t.width),
            ("text_cfg.heads", t.heads),
            ("text_cfg.layers", t.layers),
            ("text_cfg.context_length", t.context_length),
            ("text_cfg.vocab_size", t.vocab_size),
            ("multimodal_cfg.width", m.width),
            ("multimodal_cfg.heads", m.heads),
            ("multimodal_cfg.layers", m.layers),
            ("multimodal_cfg.vocab_size", m.vocab_size),
        ];
        for (name, value) in positive {
            if value == 0 {
                return err(format!("{name} must be positive"));
            }
        }
        if !v.image_size.is_multiple_of(v.patch_size) {
            return err(format!(
                "vision_cfg.image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        let divides = [
            ("vision_cfg.width / head_width", v.width, v.head_width),
            (
                "embed_dim / vision_cfg.attn_pooler_heads",
                self.embed_dim,
                v.attn_pooler_heads,
            ),
            ("text_cfg.width / heads", t.width, t.heads),
            ("multimodal_cfg.width / heads", m.width, m.heads),
        ];
        for (name, a, b) in divides {
            if a % b != 0 {
                return err(format!("{name}: {a} is not divisible by {b}"));
            }
        }
        if !t.embed_cls {
            return err("text_cfg.embed_cls must be true for CoCa".into());
        }
        if t.vocab_size != m.vocab_size {
            return err(format!(
                "text_cfg.vocab_size ({}) and multimodal_cfg.vocab_size ({}) must agree: the \
                 decoder predicts the ids the text tower embeds",
                t.vocab_size, m.vocab_size
            ));
        }
        if m.width != t.width || m.width != self.embed_dim {
            return err(format!(
                "multimodal_cfg.width ({}) must equal text_cfg.width ({}) and embed_dim ({})",
                m.width, t.width, self.embed_dim
            ));
        }
        if matches!(v.attentional_pool, AttentionalPool::Shared(false)) {
            return err(
                "vision_cfg.attentional_pool must be true, \"parallel\" or \"cascade\"".into(),
            );
        }
        if matches!(v.attentional_pool, AttentionalPool::Shared(true)) && v.attn_pooler_queries < 2
        {
            return err(
                "vision_cfg.attn_pooler_queries must be at least 2 with a shared pooler".into(),
            );
        }
        for (section, other) in [
            (Section::Model, &self.other),
            (Section::Vision, &v.other),
            (Section::Text, &t.other),
            (Section::Multimodal, &m.other),
        ] {
            for (key, value) in other {
                if let Some(reason) = unsupported_option(&section, key, value, other) {
                    return err(format!("{}{key} = {value}: {reason}", section.prefix()));
                }
            }
        }
        Ok(())
    }

    /// Checks that the text tower's vocabulary covers every id of a tokenizer with
    /// `tokenizer_vocab` ids (named `tokenizer` in the error): an id past the embedding table
    /// would fail deep inside the backend.
    pub fn check_tokenizer(&self, tokenizer_vocab: usize, tokenizer: &str) -> Result<()> {
        if tokenizer_vocab > self.text_cfg.vocab_size {
            return Err(CocaError::Config {
                source_name: tokenizer.to_string(),
                reason: format!(
                    "the tokenizer has {tokenizer_vocab} ids but the model's vocab_size is {}",
                    self.text_cfg.vocab_size
                ),
            });
        }
        Ok(())
    }

    /// Vision heads (`width / head_width`).
    pub fn vision_heads(&self) -> usize {
        self.vision_cfg.width / self.vision_cfg.head_width
    }

    /// Number of positions of the text tower (context + CLS).
    pub fn text_positions(&self) -> usize {
        self.text_cfg.context_length + usize::from(self.text_cfg.embed_cls)
    }
}

/// The sections of a `model_cfg`, for [`unsupported_option`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Model,
    Vision,
    Text,
    Multimodal,
}

impl Section {
    fn prefix(self) -> &'static str {
        match self {
            Section::Model => "",
            Section::Vision => "vision_cfg.",
            Section::Text => "text_cfg.",
            Section::Multimodal => "multimodal_cfg.",
        }
    }
}

/// Why an open_clip option that this crate does not model is an error, or `None` when its value
/// leaves the computation as implemented here (the option's default, or a key with no effect
/// on a loaded model such as an initialisation value or a pretrained-download flag). Keys
/// open_clip does not have are errors too: they cannot be known to be harmless.
fn unsupported_option(
    section: &Section,
    key: &str,
    value: &serde_json::Value,
    siblings: &BTreeMap<String, serde_json::Value>,
) -> Option<&'static str> {
    use serde_json::Value;
    let null = value.is_null();
    let is_false = value == &Value::Bool(false) || null;
    let empty = null || value.as_object().is_some_and(|o| o.is_empty());
    let unset = |name: &str| siblings.get(name).is_none_or(Value::is_null);
    let tower = matches!(
        section,
        Section::Vision | Section::Text | Section::Multimodal
    );
    let ok = |cond: bool, reason: &'static str| (!cond).then_some(reason);
    match (*section, key) {
        (Section::Model, "quick_gelu") => ok(is_false, "QuickGELU is not implemented (GELU only)"),
        (Section::Model, "init_logit_bias") => {
            ok(null, "a logit bias (SigLIP-style) is not implemented")
        }
        (Section::Model, "nonscalar_logit_scale") => {
            ok(is_false, "only a scalar logit scale is implemented")
        }
        // Initial values (the weights override them), dtype and class choice: no effect.
        (Section::Model, "init_logit_scale" | "cast_dtype" | "custom_text") => None,
        (_, "ls_init_value") if tower => ok(null, "LayerScale is not implemented"),
        (_, "act_kwargs") if tower => ok(empty, "activation arguments are not implemented"),
        (_, "norm_kwargs") if tower => {
            ok(empty, "LayerNorm arguments (e.g. eps) are not implemented")
        }
        (_, "block_type") if tower => ok(
            null || value == "default",
            "only the default block is implemented",
        ),
        (
            _,
            "qk_norm" | "scaled_cosine_attn" | "scale_heads" | "scale_attn_inner" | "scale_attn"
            | "scale_fc",
        ) if tower => ok(is_false, "this attention/MLP variant is not implemented"),
        (Section::Vision, "patch_dropout") => ok(
            null || value.as_f64() == Some(0.0),
            "patch dropout is not implemented",
        ),
        (Section::Vision, "no_ln_pre") => ok(is_false, "a model without ln_pre is not implemented"),
        (Section::Vision, "pos_embed_type") => ok(
            null || value == "learnable",
            "only learnable position embeddings are implemented",
        ),
        (Section::Vision, "final_ln_after_pool") => {
            ok(is_false, "ln_post after pooling is not implemented")
        }
        (Section::Vision, "pool_type") => ok(
            null || value == "tok",
            "only pool_type \"tok\" is implemented",
        ),
        (Section::Vision, "timm_model_name") => ok(null, "timm image towers are not implemented"),
        (Section::Vision, k) if k.starts_with("timm_") => ok(
            unset("timm_model_name"),
            "timm image towers are not implemented",
        ),
        (Section::Text | Section::Multimodal, "hf_model_name") => {
            ok(null, "Hugging Face text towers are not implemented")
        }
        (
            Section::Text | Section::Multimodal,
            "hf_model_pretrained" | "hf_proj_type" | "hf_pooler_type",
        ) => ok(
            unset("hf_model_name"),
            "Hugging Face text towers are not implemented",
        ),
        (Section::Text | Section::Multimodal, "hf_tokenizer_name") => {
            ok(null, "only the CLIP tokenizer is implemented")
        }
        (Section::Text | Section::Multimodal, "tokenizer_mode") => {
            ok(null, "only the CLIP tokenizer is implemented")
        }
        (Section::Text | Section::Multimodal, "tokenizer_kwargs") => ok(
            empty,
            "tokenizer arguments (e.g. other text cleaning) are not implemented",
        ),
        (Section::Text | Section::Multimodal, "no_causal_mask") => ok(
            is_false,
            "a text tower without causal mask is not implemented",
        ),
        (Section::Text | Section::Multimodal, "proj_bias") => {
            ok(is_false, "a text projection bias is not implemented")
        }
        (Section::Text | Section::Multimodal, "proj_type") => ok(
            null || value == "linear",
            "only a linear text projection is implemented",
        ),
        // CoCa's text tower pools its appended CLS token whatever these say.
        (Section::Text | Section::Multimodal, "pool_type" | "final_ln_after_pool" | "eos_id") => {
            None
        }
        // Unused by open_clip's multimodal decoder construction.
        (
            Section::Multimodal,
            "dim_head" | "n_queries" | "embed_cls" | "output_tokens" | "pad_id",
        ) => None,
        _ => Some("not an open_clip option this crate knows, so it may change the computation"),
    }
}

/// The two halves of an `open_clip_config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenClipConfig {
    pub model_cfg: CocaConfig,
    #[serde(default)]
    pub preprocess_cfg: Option<PreprocessFileConfig>,
}

/// `preprocess_cfg` of an `open_clip_config.json` (only the fields that matter here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreprocessFileConfig {
    #[serde(default)]
    pub mean: Option<[f32; 3]>,
    #[serde(default)]
    pub std: Option<[f32; 3]>,
    #[serde(default)]
    pub interpolation: Option<String>,
    #[serde(default)]
    pub resize_mode: Option<String>,
}

impl OpenClipConfig {
    /// Reads and validates an `open_clip_config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| CocaError::io(path, e))?;
        let name = path.display().to_string();
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| CocaError::Config {
                source_name: name.clone(),
                reason: e.to_string(),
            })?;
        let cfg: OpenClipConfig = serde_json::from_value(value).map_err(|e| CocaError::Config {
            source_name: name.clone(),
            reason: e.to_string(),
        })?;
        cfg.model_cfg.validate(&name)?;
        if let Some(p) = &cfg.preprocess_cfg
            && let Some(mode) = &p.resize_mode
            && mode != "shortest"
        {
            return Err(CocaError::Config {
                source_name: name,
                reason: format!(
                    "preprocess_cfg.resize_mode \"{mode}\" is not supported (only \"shortest\")"
                ),
            });
        }
        Ok(cfg)
    }

    /// The preprocessing this model expects.
    pub fn preprocess(&self) -> PreprocessConfig {
        let mut p = PreprocessConfig::openai(self.model_cfg.vision_cfg.image_size);
        if let Some(f) = &self.preprocess_cfg {
            if let Some(mean) = f.mean {
                p.mean = mean;
            }
            if let Some(std) = f.std {
                p.std = std;
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        for name in PRESETS {
            CocaConfig::preset(name).unwrap().validate(name).unwrap();
        }
        CocaConfig::tiny().validate("tiny").unwrap();
        assert!(CocaConfig::preset("coca_ViT-H-14").is_err());
    }

    #[test]
    fn rejects_inconsistent_widths_and_unknown_options() {
        let mut cfg = CocaConfig::coca_vit_b_32();
        cfg.multimodal_cfg.width = 256;
        let e = cfg.validate("x").unwrap_err().to_string();
        assert!(e.contains("multimodal_cfg.width"), "{e}");
        let mut value = serde_json::to_value(CocaConfig::coca_vit_b_32()).unwrap();
        value["quick_gelu"] = serde_json::json!(true);
        let e = CocaConfig::from_json_value(value, "cfg.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("quick_gelu") && e.contains("cfg.json"), "{e}");
    }

    #[test]
    fn vocabularies_must_agree_and_cover_the_tokenizer() {
        let mut cfg = CocaConfig::coca_vit_b_32();
        cfg.multimodal_cfg.vocab_size = 1000;
        let e = cfg.validate("x").unwrap_err().to_string();
        assert!(e.contains("multimodal_cfg.vocab_size (1000)"), "{e}");
        let mut cfg = CocaConfig::coca_vit_b_32();
        cfg.text_cfg.vocab_size = 1000;
        cfg.multimodal_cfg.vocab_size = 1000;
        cfg.validate("x").unwrap();
        let e = cfg
            .check_tokenizer(49408, "tok.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tok.json") && e.contains("49408") && e.contains("1000"),
            "{e}"
        );
        CocaConfig::coca_vit_b_32()
            .check_tokenizer(49408, "clip")
            .unwrap();
    }

    #[test]
    fn options_that_change_the_computation_are_named() {
        let base = serde_json::to_value(CocaConfig::coca_vit_b_32()).unwrap();
        let with = |path: &[&str], value: serde_json::Value| {
            let mut v = base.clone();
            let mut at = &mut v;
            for p in &path[..path.len() - 1] {
                at = &mut at[*p];
            }
            at[path[path.len() - 1]] = value;
            CocaConfig::from_json_value(v, "cfg.json")
        };
        use serde_json::json;
        for (path, value) in [
            (&["quick_gelu"][..], json!(true)),
            (&["init_logit_bias"], json!(-10.0)),
            (&["vision_cfg", "ls_init_value"], json!(1e-5)),
            (&["vision_cfg", "norm_kwargs"], json!({"eps": 1e-6})),
            (&["vision_cfg", "pool_type"], json!("avg")),
            (
                &["vision_cfg", "timm_model_name"],
                json!("vit_base_patch16_224"),
            ),
            (&["text_cfg", "hf_model_name"], json!("roberta-base")),
            (
                &["text_cfg", "tokenizer_kwargs"],
                json!({"clean": "canonicalize"}),
            ),
            (&["text_cfg", "qk_norm"], json!(true)),
            (&["multimodal_cfg", "no_causal_mask"], json!(true)),
            (&["text_cfg", "a_new_option"], json!(1)),
        ] {
            let key = path[path.len() - 1];
            let e = with(path, value.clone())
                .expect_err(&format!("{path:?} = {value} accepted"))
                .to_string();
            assert!(e.contains(key) && e.contains("cfg.json"), "{e}");
        }
        // Defaults, initial values and unused bookkeeping keys, as hub configs carry them.
        for (path, value) in [
            (&["quick_gelu"][..], json!(false)),
            (&["custom_text"], json!(true)),
            (&["init_logit_scale"], json!(2.65)),
            (&["cast_dtype"], json!("bf16")),
            (&["vision_cfg", "ls_init_value"], json!(null)),
            (&["vision_cfg", "timm_pool"], json!("avg")),
            (&["vision_cfg", "patch_dropout"], json!(0.0)),
            (&["text_cfg", "hf_tokenizer_name"], json!(null)),
            (&["text_cfg", "proj_type"], json!("linear")),
            (&["multimodal_cfg", "dim_head"], json!(64)),
            (&["multimodal_cfg", "n_queries"], json!(256)),
        ] {
            with(path, value.clone()).unwrap_or_else(|e| panic!("{path:?} = {value}: {e}"));
        }
    }

    #[test]
    fn parses_the_two_pooler_layout() {
        let mut value = serde_json::to_value(CocaConfig::coca_vit_b_32()).unwrap();
        value["vision_cfg"]["attentional_pool"] = serde_json::json!("parallel");
        let cfg = CocaConfig::from_json_value(value, "x").unwrap();
        assert_eq!(
            cfg.vision_cfg.attentional_pool,
            AttentionalPool::Separate(TwoPoolers::Parallel)
        );
    }
}
