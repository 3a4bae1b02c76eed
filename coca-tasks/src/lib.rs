//! # coca-tasks
//!
//! Downstream tasks for CoCa and their official metrics.

pub mod error;
pub use error::{Result, TaskError};
