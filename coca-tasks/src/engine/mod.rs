//! The fine-tuning engine shared by all tasks: configuration, data pipeline, optimiser groups,
//! schedule, clipping, checkpoints and resume, logging, plots and export.

pub mod backbone;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod export;
pub mod log;
pub mod optim;
pub mod params;
pub mod plot;
pub mod schedule;
pub mod train;

pub use backbone::Backbone;
pub use config::RunConfig;
pub use train::{RunOutcome, Trainer};
