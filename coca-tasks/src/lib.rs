//! # coca-tasks
//!
//! The fine-tuning engine ([`engine`]) and the downstream tasks of the CoCa paper, each a
//! [`task::Task`]: VQAv2, SNLI-VE, NLVR2 and COCO captioning, plus CoCa's own objective
//! ([`pretrain`]) for continued pretraining. [`metrics`] holds the official metrics.

pub mod caption;
pub mod classify;
pub mod engine;
pub mod error;
pub mod head;
pub mod inputs;
pub mod jsonl;
pub mod metrics;
pub mod nlvr2;
pub mod pretrain;
pub mod registry;
pub mod run;
pub mod snli_ve;
pub mod synth;
pub mod task;
pub mod video;
pub mod vqa;

#[cfg(test)]
#[path = "../../tests/support/fixture.rs"]
mod test_paths;

#[cfg(test)]
#[path = "../../tests/support/compare.rs"]
mod test_compare;

pub use error::{Result, TaskError};
