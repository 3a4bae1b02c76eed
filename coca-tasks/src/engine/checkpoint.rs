//! Training checkpoints: model (with parameter ids), optimiser state and training state,
//! written atomically as `checkpoints/step-NNNNNNNN/` (a temporary directory renamed into
//! place). Each file's length and hash are recorded in `state.json`, so a truncated or
//! corrupted checkpoint is detected and the previous good one used.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{BurnpackStore, ModuleSnapshot};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TaskError};

/// Where the run stands: everything besides weights and optimiser moments that resuming needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimiser steps done.
    pub step: usize,
    /// Micro-batches consumed (the data position).
    pub micro_batches: u64,
    pub best_metric: Option<f64>,
    pub best_step: Option<usize>,
    /// Evaluations since the metric last improved.
    pub evals_without_improvement: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileEntry {
    name: String,
    len: u64,
    hash: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    state: TrainState,
    files: Vec<FileEntry>,
}

const MODEL: &str = "model.bpk";
const OPTIM: &str = "optim.safetensors";
const MANIFEST: &str = "state.json";

/// FNV-1a, 64 bit.
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// What a checkpoint holds.
pub struct CheckpointData {
    pub state: TrainState,
    pub model: Vec<u8>,
    /// AdamW moments and step counts ([`super::optim::Optimizers::to_bytes`]).
    pub optim: Vec<u8>,
}

/// Serialises a module with its parameter ids (burnpack).
pub fn model_bytes<M: Module>(model: &M) -> Result<Vec<u8>> {
    let mut store = BurnpackStore::from_bytes(None);
    model
        .save_into(&mut store)
        .map_err(|e| TaskError::Config(format!("cannot serialise model: {e}")))?;
    store
        .get_bytes()
        .map(|b| b.to_vec())
        .map_err(|e| TaskError::Config(format!("cannot serialise model: {e:?}")))
}

/// Restores a module (values and parameter ids) from [`model_bytes`].
pub fn load_model_bytes<M: Module>(mut model: M, bytes: Vec<u8>, source: &Path) -> Result<M> {
    let bad = |msg: String| TaskError::Data {
        path: source.to_path_buf(),
        msg,
    };
    let mut store = BurnpackStore::from_bytes(Some(burn::tensor::Bytes::from_bytes_vec(bytes)));
    let result = model
        .load_from(&mut store)
        .map_err(|e| bad(format!("unreadable model: {e}")))?;
    if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
        return Err(bad(format!(
            "checkpoint does not match the model: {} errors, missing {:?}, unused {:?}",
            result.errors.len(),
            result
                .missing
                .iter()
                .map(|m| &m.0)
                .take(10)
                .collect::<Vec<_>>(),
            result.unused.iter().take(10).collect::<Vec<_>>()
        )));
    }
    Ok(model)
}

/// The checkpoint directory of a run.
pub fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

fn step_dir(run_dir: &Path, step: usize) -> PathBuf {
    checkpoints_dir(run_dir).join(format!("step-{step:08}"))
}

/// Writes a checkpoint atomically and returns its directory.
pub fn save(run_dir: &Path, data: &CheckpointData) -> Result<PathBuf> {
    use std::io::Write;
    let final_dir = step_dir(run_dir, data.state.step);
    let tmp = checkpoints_dir(run_dir).join(format!(
        ".tmp-step-{:08}-{}",
        data.state.step,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| TaskError::io(&tmp, e))?;
    let mut files = Vec::new();
    for (name, bytes) in [(MODEL, &data.model), (OPTIM, &data.optim)] {
        let path = tmp.join(name);
        let mut f = std::fs::File::create(&path).map_err(|e| TaskError::io(&path, e))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| TaskError::io(&path, e))?;
        files.push(FileEntry {
            name: name.to_string(),
            len: bytes.len() as u64,
            hash: hash(bytes),
        });
    }
    let manifest = Manifest {
        state: data.state.clone(),
        files,
    };
    let json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| TaskError::Config(e.to_string()))?;
    let path = tmp.join(MANIFEST);
    std::fs::write(&path, json).map_err(|e| TaskError::io(&path, e))?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(|e| TaskError::io(&final_dir, e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| TaskError::io(&final_dir, e))?;
    Ok(final_dir)
}

/// Reads and verifies one checkpoint directory.
pub fn load(dir: &Path) -> Result<CheckpointData> {
    let bad = |msg: String| TaskError::Data {
        path: dir.to_path_buf(),
        msg,
    };
    let path = dir.join(MANIFEST);
    let text = std::fs::read(&path).map_err(|e| TaskError::io(&path, e))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| bad(format!("{MANIFEST}: {e}")))?;
    let read = |name: &str| -> Result<Vec<u8>> {
        let entry = manifest
            .files
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| bad(format!("{MANIFEST} does not list {name}")))?;
        let p = dir.join(name);
        let bytes = std::fs::read(&p).map_err(|e| TaskError::io(&p, e))?;
        if bytes.len() as u64 != entry.len || hash(&bytes) != entry.hash {
            return Err(bad(format!(
                "{name} is corrupt or truncated ({} bytes, expected {})",
                bytes.len(),
                entry.len
            )));
        }
        Ok(bytes)
    };
    if manifest.files.iter().any(|f| f.name == "optim_head.bpk") {
        return Err(bad(
            "written by an earlier coca whose optimiser state (optim_head.bpk) this version \
             cannot read; start a new run (its export can be the model id)"
                .into(),
        ));
    }
    Ok(CheckpointData {
        model: read(MODEL)?,
        optim: read(OPTIM)?,
        state: manifest.state,
    })
}

/// Steps of the checkpoints present, newest first.
pub fn list(run_dir: &Path) -> Vec<usize> {
    let mut steps: Vec<usize> = std::fs::read_dir(checkpoints_dir(run_dir))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("step-")?.parse().ok())
        .collect();
    steps.sort_unstable_by(|a, b| b.cmp(a));
    steps
}

/// The newest checkpoint that verifies; corrupt ones are reported and skipped.
pub fn latest_valid(run_dir: &Path) -> Option<(PathBuf, CheckpointData)> {
    let found = find_latest_valid(run_dir);
    found.loaded
}

/// What [`find_latest_valid`] found: the newest readable checkpoint, and every newer one that
/// could not be read (directory and reason), newest first.
pub struct LatestValid {
    pub loaded: Option<(PathBuf, CheckpointData)>,
    pub skipped: Vec<(PathBuf, String)>,
}

/// The newest checkpoint that reads back whole, with the newer ones skipped on the way (each
/// logged as a warning).
pub fn find_latest_valid(run_dir: &Path) -> LatestValid {
    let mut skipped = Vec::new();
    for step in list(run_dir) {
        let dir = step_dir(run_dir, step);
        match load(&dir) {
            Ok(data) => {
                return LatestValid {
                    loaded: Some((dir, data)),
                    skipped,
                };
            }
            Err(e) => {
                tracing::warn!("skipping checkpoint: {e}");
                skipped.push((dir, e.to_string()));
            }
        }
    }
    LatestValid {
        loaded: None,
        skipped,
    }
}

/// Directory of the checkpoint at `step`.
pub fn dir_of(run_dir: &Path, step: usize) -> PathBuf {
    step_dir(run_dir, step)
}

/// Deletes all but the `keep_last` newest checkpoints, never the one at `keep_step`.
pub fn prune(run_dir: &Path, keep_last: usize, keep_step: Option<usize>) {
    for (i, step) in list(run_dir).into_iter().enumerate() {
        if i >= keep_last.max(1) && Some(step) != keep_step {
            let dir = step_dir(run_dir, step);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!("cannot remove old checkpoint {}: {e}", dir.display());
            }
        }
    }
}
