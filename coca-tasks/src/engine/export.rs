//! Export of a trained model: the backbone in its family's own format (CoCa: an open_clip state
//! dict `open_clip_model.safetensors` + `open_clip_config.json`, loadable by open_clip and by
//! `coca-core`; CLIPPO: a big_vision `clippo.npz`), the task head as safetensors, and
//! `task.json` describing how to rebuild it.

use std::path::{Path, PathBuf};

use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Device;
use coca_core::Coca;
use coca_core::checkpoint::{StateDict, save_open_clip, write_atomic, write_safetensors};
use coca_core::clippo::Clippo;
use serde_json::json;

use super::backbone::{Backbone, BackboneInfo, CLIPPO_FILE, Family};
use super::checkpoint;
use crate::error::{Result, TaskError};
use crate::task::{Task, Tower, is_backbone_path};

/// Name of the backbone record written in every run directory.
pub const BACKBONE_INFO: &str = "backbone.json";

/// `open_clip_config.json` content for a CoCa backbone.
pub fn open_clip_config(
    model_cfg: &coca_core::CocaConfig,
    preprocess: &coca_core::preprocess::PreprocessConfig,
) -> serde_json::Value {
    json!({
        "model_cfg": model_cfg,
        "preprocess_cfg": {
            "mean": preprocess.mean,
            "std": preprocess.std,
            "interpolation": "bicubic",
            "resize_mode": "shortest",
        }
    })
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| TaskError::Config(e.to_string()))?;
    Ok(write_atomic(path, &bytes)?)
}

/// Writes the backbone of `model` into `dir` in its family's format; returns its file name.
fn export_backbone(tower: Tower<'_>, backbone: &Backbone, dir: &Path) -> Result<&'static str> {
    match (tower, backbone) {
        (Tower::Coca(coca), Backbone::Coca(b)) => {
            save_open_clip(coca, &dir.join("open_clip_model.safetensors"))?;
            write_json(
                &dir.join("open_clip_config.json"),
                &open_clip_config(&b.config, &b.preprocess),
            )?;
            Ok("open_clip_model.safetensors")
        }
        (Tower::Clippo(clippo), Backbone::Clippo(_)) => {
            clippo.save_npz(&dir.join(CLIPPO_FILE))?;
            Ok(CLIPPO_FILE)
        }
        _ => Err(TaskError::Config(
            "the task model's backbone is not of the run's family".into(),
        )),
    }
}

/// Writes `dir/{<backbone>, head.safetensors, tokenizer.json, task.json}`, the backbone being
/// `open_clip_model.safetensors` + `open_clip_config.json` (CoCa) or `clippo.npz` (CLIPPO).
pub fn export_run<T: Task>(
    task: &T,
    model: &T::Model,
    backbone: &Backbone,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| TaskError::io(dir, e))?;
    let info = backbone.info();
    let backbone_file = export_backbone(task.backbone(model), backbone, dir)?;
    let mut head = StateDict::new();
    for t in model.collect(None, None, false) {
        if !is_backbone_path(&t.name) {
            let name = t.name.clone();
            let data = burn::store::bridge::into_data(t)
                .map_err(|e| TaskError::Config(format!("cannot read parameter {name}: {e:?}")))?
                .convert::<f32>();
            head.insert(name, data);
        }
    }
    if !head.is_empty() {
        write_safetensors(&dir.join("head.safetensors"), &head, None)?;
    }
    // A tokenizer.json of the run goes with the export; the built-in vocabulary needs none.
    let tokenizer = dir.join("tokenizer.json");
    let tokenizer_file = match backbone.tokenizer_path() {
        Some(src) => {
            if *src != tokenizer {
                std::fs::copy(src, &tokenizer).map_err(|e| TaskError::io(src, e))?;
            }
            json!("tokenizer.json")
        }
        None => json!(null),
    };
    write_json(
        &dir.join("task.json"),
        &json!({
            "task": task.name(),
            "family": info.family,
            "backbone": backbone_file,
            "open_clip_config": if info.family == Family::Coca { json!("open_clip_config.json") } else { json!(null) },
            "head": if head.is_empty() { json!(null) } else { json!("head.safetensors") },
            "tokenizer": tokenizer_file,
            "source": info.source,
            "task_info": task.export_info(),
        }),
    )
}

/// Writes the backbone record of a run (read back by [`export_backbone_from_run`]).
pub fn write_backbone_info(run_dir: &Path, backbone: &Backbone) -> Result<()> {
    let value =
        serde_json::to_value(backbone.info()).map_err(|e| TaskError::Config(e.to_string()))?;
    write_json(&run_dir.join(BACKBONE_INFO), &value)
}

/// Exports the backbone of a run's best (else newest valid) checkpoint: CoCa as an open_clip
/// `safetensors` file, CLIPPO as a big_vision `.npz` (when `out` ends in `.npz`) or
/// safetensors.
pub fn export_backbone_from_run(run_dir: &Path, out: &Path) -> Result<PathBuf> {
    let info_path = run_dir.join(BACKBONE_INFO);
    let text = std::fs::read(&info_path).map_err(|e| TaskError::io(&info_path, e))?;
    let info: BackboneInfo = serde_json::from_slice(&text).map_err(|e| TaskError::Json {
        path: info_path.clone(),
        line: None,
        msg: e.to_string(),
    })?;
    let best = std::fs::read(run_dir.join("metrics.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["best_step"].as_u64())
        .map(|s| s as usize);
    let (dir, data) = match best.map(|s| (checkpoint::dir_of(run_dir, s), s)) {
        Some((dir, _)) if dir.is_dir() => {
            let data = checkpoint::load(&dir)?;
            (dir, data)
        }
        _ => checkpoint::latest_valid(run_dir).ok_or_else(|| TaskError::Data {
            path: checkpoint::checkpoints_dir(run_dir),
            msg: "no valid checkpoint to export".into(),
        })?,
    };
    let device = Device::flex();
    let bad_info = |what: &str| TaskError::Data {
        path: info_path.clone(),
        msg: format!("a {} backbone record without `{what}`", info.family.name()),
    };
    match info.family {
        Family::Coca => {
            let cfg = info
                .model_cfg
                .as_ref()
                .ok_or_else(|| bad_info("model_cfg"))?;
            let coca = load_backbone_part(Coca::new(cfg, &device), "coca", data.model, &dir)?;
            save_open_clip(&coca, out)?;
        }
        Family::Clippo => {
            let cfg = info
                .clippo_cfg
                .as_ref()
                .ok_or_else(|| bad_info("clippo_cfg"))?;
            let clippo = load_backbone_part(Clippo::new(cfg, &device), "clippo", data.model, &dir)?;
            if out.extension().is_some_and(|e| e == "npz") {
                clippo.save_npz(out)?;
            } else {
                clippo.save_safetensors(out)?;
            }
        }
    }
    Ok(dir)
}

/// Loads the `field.*` parameters of a checkpoint's model record into `module`.
fn load_backbone_part<M: burn::module::Module>(
    mut module: M,
    field: &str,
    record: Vec<u8>,
    dir: &Path,
) -> Result<M> {
    let mut store = BurnpackStore::from_bytes(Some(burn::tensor::Bytes::from_bytes_vec(record)))
        .with_remap_pattern(format!("^{field}\\."), "")
        .allow_partial(true);
    let result = module.load_from(&mut store).map_err(|e| TaskError::Data {
        path: dir.to_path_buf(),
        msg: format!("unreadable model: {e}"),
    })?;
    if !result.missing.is_empty() || !result.errors.is_empty() {
        return Err(TaskError::Data {
            path: dir.to_path_buf(),
            msg: format!(
                "checkpoint lacks backbone parameters: {:?}",
                result.missing.iter().take(5).collect::<Vec<_>>()
            ),
        });
    }
    Ok(module)
}
