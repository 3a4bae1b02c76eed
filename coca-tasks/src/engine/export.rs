//! Export of a trained model: the backbone as an open_clip state dict
//! (`open_clip_model.safetensors` + `open_clip_config.json`, loadable by open_clip and by
//! `coca-core`), the task head as safetensors, and `task.json` describing how to rebuild it.

use std::path::{Path, PathBuf};

use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Device;
use coca_core::Coca;
use coca_core::checkpoint::{StateDict, save_open_clip, write_atomic, write_safetensors};
use serde_json::json;

use super::backbone::{Backbone, BackboneInfo};
use super::checkpoint;
use crate::error::{Result, TaskError};
use crate::task::{BACKBONE_PREFIX, Task};

/// Name of the backbone record written in every run directory.
pub const BACKBONE_INFO: &str = "backbone.json";

/// `open_clip_config.json` content for a backbone.
pub fn open_clip_config(info: &BackboneInfo) -> serde_json::Value {
    json!({
        "model_cfg": info.model_cfg,
        "preprocess_cfg": {
            "mean": info.preprocess.mean,
            "std": info.preprocess.std,
            "interpolation": "bicubic",
            "resize_mode": "shortest",
        }
    })
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| TaskError::Config(e.to_string()))?;
    Ok(write_atomic(path, &bytes)?)
}

/// Writes `dir/{open_clip_model.safetensors, open_clip_config.json, head.safetensors,
/// tokenizer.json, task.json}`.
pub fn export_run<T: Task>(
    task: &T,
    model: &T::Model,
    backbone: &Backbone,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| TaskError::io(dir, e))?;
    let info = backbone.info();
    save_open_clip(
        task.backbone(model),
        &dir.join("open_clip_model.safetensors"),
    )?;
    write_json(&dir.join("open_clip_config.json"), &open_clip_config(&info))?;
    let mut head = StateDict::new();
    for t in model.collect(None, None, false) {
        if !t.name.starts_with(BACKBONE_PREFIX) {
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
    let tokenizer_file = match &backbone.tokenizer_path {
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
            "backbone": "open_clip_model.safetensors",
            "open_clip_config": "open_clip_config.json",
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

/// Exports the backbone of a run's best (else newest valid) checkpoint as an open_clip
/// `safetensors` file.
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
    let mut coca = Coca::new(&info.model_cfg, &device);
    let mut store =
        BurnpackStore::from_bytes(Some(burn::tensor::Bytes::from_bytes_vec(data.model)))
            .with_remap_pattern("^coca\\.", "")
            .allow_partial(true);
    let result = coca.load_from(&mut store).map_err(|e| TaskError::Data {
        path: dir.clone(),
        msg: format!("unreadable model: {e}"),
    })?;
    if !result.missing.is_empty() || !result.errors.is_empty() {
        return Err(TaskError::Data {
            path: dir,
            msg: format!(
                "checkpoint lacks backbone parameters: {:?}",
                result.missing.iter().take(5).collect::<Vec<_>>()
            ),
        });
    }
    save_open_clip(&coca, out)?;
    Ok(dir)
}
