//! The error type of `coca-tasks`: data files, run configuration and training failures.

use std::path::PathBuf;

/// Result alias used throughout `coca-tasks`.
pub type Result<T, E = TaskError> = std::result::Result<T, E>;

/// Everything that can go wrong in `coca-tasks`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A JSON (or JSON Lines) file is malformed; `line` is 1-based for JSON Lines.
    #[error("{}{}: malformed JSON: {msg}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Json {
        path: PathBuf,
        line: Option<usize>,
        msg: String,
    },
    /// A data file is well-formed but its content is inconsistent or unusable.
    #[error("{}: {msg}", path.display())]
    Data { path: PathBuf, msg: String },
    /// A run configuration is invalid.
    #[error("config: {0}")]
    Config(String),
    /// The loss became NaN or infinite; the last good checkpoint is kept.
    #[error(
        "the loss is not finite ({value}) at step {step}; stopping (the last good checkpoint is kept)"
    )]
    NonFinite { step: usize, value: f64 },
    /// An error from the model crate.
    #[error(transparent)]
    Core(#[from] coca_core::CocaError),
}

impl TaskError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TaskError::Io {
            path: path.into(),
            source,
        }
    }
}
