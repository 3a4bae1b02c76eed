//! The error type of `coca-core`: every failure names the thing (file, key, id, device) and the problem.

use std::path::PathBuf;

/// Result alias used throughout `coca-core`.
pub type Result<T, E = CocaError> = std::result::Result<T, E>;

/// Everything that can go wrong in `coca-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CocaError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An image file could not be opened or decoded.
    #[error("cannot read image {}: {reason}", path.display())]
    Image { path: PathBuf, reason: String },
    /// A tokenizer file is missing or unusable, or text could not be tokenized.
    #[error("tokenizer {}: {reason}", path.display())]
    Tokenizer { path: PathBuf, reason: String },
    /// A checkpoint is unreadable, truncated, or does not match the model.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint { path: PathBuf, reason: String },
    /// A configuration file or value is invalid.
    #[error("config {source_name}: {reason}")]
    Config { source_name: String, reason: String },
    /// A model id is neither a directory nor a known hub repository.
    #[error("unknown model id `{id}`: {reason}")]
    ModelId { id: String, reason: String },
    /// A requested device is unknown or its backend is not compiled in.
    #[error("device `{device}`: {reason}")]
    Device { device: String, reason: String },
    /// A call received inputs of the wrong shape or value.
    #[error("invalid input: {0}")]
    Invalid(String),
}

impl CocaError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CocaError::Io {
            path: path.into(),
            source,
        }
    }
}
