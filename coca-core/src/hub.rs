//! Model ids: a local directory or file, `hf-hub:<repo>`, or a short name of the released models.
//!
//! Hub downloads go through `hf-hub` into its cache (`HF_HOME` honoured). With
//! `HF_HUB_OFFLINE=1`, or when the network is unreachable, cached copies are used.

use std::path::{Path, PathBuf};

use crate::error::{CocaError, Result};
use crate::tokenizer::ClipTokenizer;

/// Weights file names, in order of preference.
pub const WEIGHT_FILES: [&str; 2] = ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"];
/// The config file name.
pub const CONFIG_FILE: &str = "open_clip_config.json";

/// Short names of the four released laion CoCa checkpoints.
pub const SHORT_NAMES: [(&str, &str); 4] = [
    ("coca-b32", "laion/CoCa-ViT-B-32-laion2B-s13B-b90k"),
    (
        "coca-b32-coco",
        "laion/mscoco_finetuned_CoCa-ViT-B-32-laion2B-s13B-b90k",
    ),
    ("coca-l14", "laion/CoCa-ViT-L-14-laion2B-s13B-b90k"),
    (
        "coca-l14-coco",
        "laion/mscoco_finetuned_CoCa-ViT-L-14-laion2B-s13B-b90k",
    ),
];

/// The files a model id resolved to.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFiles {
    /// The id as the user gave it.
    pub id: String,
    pub weights: PathBuf,
    pub config: Option<PathBuf>,
    /// A `tokenizer.json` shipped with the model, if any.
    pub tokenizer: Option<PathBuf>,
}

/// Resolves a model id to local files, downloading from the hub if needed.
pub fn resolve_model(id: &str) -> Result<ModelFiles> {
    let repo = SHORT_NAMES
        .iter()
        .find(|(short, _)| *short == id)
        .map(|(_, repo)| repo.to_string())
        .or_else(|| id.strip_prefix("hf-hub:").map(str::to_string));
    if let Some(repo) = repo {
        return resolve_hub(id, &repo);
    }
    let path = Path::new(id);
    if path.is_dir() {
        let weights = WEIGHT_FILES
            .iter()
            .map(|f| path.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| CocaError::ModelId {
                id: id.to_string(),
                reason: format!("directory has neither {}", WEIGHT_FILES.join(" nor ")),
            })?;
        return Ok(ModelFiles {
            id: id.to_string(),
            weights,
            config: Some(path.join(CONFIG_FILE)).filter(|p| p.is_file()),
            tokenizer: Some(path.join("tokenizer.json")).filter(|p| p.is_file()),
        });
    }
    if path.is_file() {
        let dir = path.parent().unwrap_or(Path::new("."));
        return Ok(ModelFiles {
            id: id.to_string(),
            weights: path.to_path_buf(),
            config: Some(dir.join(CONFIG_FILE)).filter(|p| p.is_file()),
            tokenizer: Some(dir.join("tokenizer.json")).filter(|p| p.is_file()),
        });
    }
    let shorts: Vec<_> = SHORT_NAMES.iter().map(|(s, _)| *s).collect();
    Err(CocaError::ModelId {
        id: id.to_string(),
        reason: format!(
            "not an existing directory or file, not `hf-hub:<owner/repo>`, and not a short name ({})",
            shorts.join(", ")
        ),
    })
}

fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .is_ok_and(|v| !v.is_empty() && v != "0" && v.to_lowercase() != "false")
}

/// Fetches one file of a hub repo (from the cache when offline). `Ok(None)` when the repo has
/// no such file; `Err` when the hub cannot be reached and nothing is cached.
pub fn hub_file(repo: &str, file: &str) -> Result<Option<PathBuf>> {
    let cache = hf_hub::Cache::from_env();
    let cached = cache.model(repo.to_string()).get(file);
    if offline() {
        return Ok(cached);
    }
    if cached.is_some() {
        return Ok(cached);
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(true)
        .build()
        .map_err(|e| CocaError::ModelId {
            id: format!("hf-hub:{repo}"),
            reason: e.to_string(),
        })?;
    match api.model(repo.to_string()).get(file) {
        Ok(path) => Ok(Some(path)),
        // ureq reports a missing file as status 404 (the hub's answer for an absent file).
        Err(e @ hf_hub::api::sync::ApiError::RequestError(_)) if e.to_string().contains("404") => {
            Ok(None)
        }
        Err(e) => Err(CocaError::ModelId {
            id: format!("hf-hub:{repo}"),
            reason: format!(
                "cannot fetch {file}: {e} (set HF_HUB_OFFLINE=1 to use the cache only)"
            ),
        }),
    }
}

fn resolve_hub(id: &str, repo: &str) -> Result<ModelFiles> {
    let mut weights = None;
    for file in WEIGHT_FILES {
        if let Some(p) = hub_file(repo, file)? {
            weights = Some(p);
            break;
        }
    }
    let weights = weights.ok_or_else(|| CocaError::ModelId {
        id: id.to_string(),
        reason: if offline() {
            format!("HF_HUB_OFFLINE is set and no cached copy of {repo} was found")
        } else {
            format!("hub repo {repo} has neither {}", WEIGHT_FILES.join(" nor "))
        },
    })?;
    Ok(ModelFiles {
        id: id.to_string(),
        weights,
        config: hub_file(repo, CONFIG_FILE)?,
        tokenizer: None,
    })
}

/// Which `tokenizer.json` to use: an explicit path, else the model's own; `None` means the CLIP
/// vocabulary built into coca-core ([`ClipTokenizer::builtin`]), which needs no file and no
/// network.
pub fn resolve_tokenizer(explicit: Option<&Path>, model: Option<&ModelFiles>) -> Option<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| model.and_then(|m| m.tokenizer.clone()))
}

/// Loads the tokenizer [`resolve_tokenizer`] picks.
///
/// # Errors
/// As [`ClipTokenizer::load`] for the chosen file.
pub fn load_tokenizer(
    explicit: Option<&Path>,
    model: Option<&ModelFiles>,
) -> Result<ClipTokenizer> {
    ClipTokenizer::load(resolve_tokenizer(explicit, model).as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_id_is_a_clear_error() {
        let e = resolve_model("no/such/model-dir").unwrap_err().to_string();
        assert!(
            e.contains("no/such/model-dir") && e.contains("short name"),
            "{e}"
        );
    }

    #[test]
    fn offline_hub_without_cache_is_a_clear_error() {
        // SAFETY: tests in this module do not read these variables concurrently.
        unsafe {
            std::env::set_var("HF_HUB_OFFLINE", "1");
            std::env::set_var("HF_HOME", std::env::temp_dir().join("coca-empty-hf-home"));
        }
        let e = resolve_model("hf-hub:laion/CoCa-ViT-B-32-laion2B-s13B-b90k")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HF_HUB_OFFLINE") && e.contains("laion/CoCa-ViT-B-32"),
            "{e}"
        );
    }

    #[test]
    fn directory_with_weights_resolves() {
        let dir = crate::test_paths::fixture("coca-tiny");
        let files = resolve_model(dir.to_str().unwrap()).unwrap();
        assert!(files.weights.ends_with("open_clip_model.safetensors"));
        assert!(files.config.is_some());
    }

    #[test]
    fn tokenizer_defaults_to_the_builtin_vocabulary() {
        let files =
            resolve_model(crate::test_paths::fixture("coca-tiny").to_str().unwrap()).unwrap();
        assert_eq!(files.tokenizer, None, "the fixture ships no tokenizer.json");
        assert_eq!(resolve_tokenizer(None, Some(&files)), None);
        let explicit = Path::new("my/tokenizer.json");
        assert_eq!(
            resolve_tokenizer(Some(explicit), Some(&files)).as_deref(),
            Some(explicit)
        );
        let own = ModelFiles {
            tokenizer: Some(PathBuf::from("model/tokenizer.json")),
            ..files
        };
        assert_eq!(
            resolve_tokenizer(None, Some(&own)),
            Some(PathBuf::from("model/tokenizer.json"))
        );
        let tok = load_tokenizer(None, None).unwrap();
        assert_eq!(tok.source(), None);
        assert_eq!(tok.vocab_size(), 49408);
    }
}
