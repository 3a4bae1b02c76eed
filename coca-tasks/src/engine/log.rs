//! `metrics.jsonl`: one JSON object per logged step (`"kind": "train"`) and per evaluation
//! (`"kind": "eval"`), appended and flushed as the run goes.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, TaskError};

/// An append-only JSON Lines log.
pub struct MetricsLog {
    path: PathBuf,
}

impl MetricsLog {
    /// Opens `path`; when resuming at `resume_step`, later lines (from the interrupted part of
    /// the run) are dropped so that the log matches the restored state.
    pub fn open(path: &Path, resume_step: Option<usize>) -> Result<Self> {
        if let (Some(step), true) = (resume_step, path.exists()) {
            let text = std::fs::read_to_string(path).map_err(|e| TaskError::io(path, e))?;
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| {
                    serde_json::from_str::<serde_json::Value>(l)
                        .ok()
                        .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                        .is_some_and(|s| s as usize <= step)
                })
                .collect();
            let mut out = kept.join("\n");
            if !out.is_empty() {
                out.push('\n');
            }
            coca_core::checkpoint::write_atomic(path, out.as_bytes())?;
        } else if resume_step.is_none() {
            std::fs::write(path, b"").map_err(|e| TaskError::io(path, e))?;
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// Appends one record.
    pub fn write(&self, record: &serde_json::Value) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| TaskError::io(&self.path, e))?;
        writeln!(f, "{record}").map_err(|e| TaskError::io(&self.path, e))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
