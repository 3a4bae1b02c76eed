//! # coca-core
//!
//! A numerically faithful Rust implementation of CoCa (Contrastive Captioner, Yu et al. 2022)
//! as released through open_clip, on [burn](https://burn.dev):
//!
//! - [`model`]: image encoder + attentional pooler, unimodal and multimodal text decoders; the
//!   module tree mirrors open_clip's state-dict keys.
//! - [`checkpoint`]: strict loading of `open_clip_model.safetensors` / `open_clip_pytorch_model.bin`
//!   and export back to open_clip naming.
//! - [`hub`]: model ids (`hf-hub:<repo>`, local directories, short names).
//! - [`tokenizer`], [`preprocess`]: open_clip's text cleaning + CLIP BPE, Pillow-exact image
//!   preprocessing.
//! - [`loss`], [`zero_shot`]: CoCa's objective, zero-shot classification and retrieval.
//! - [`precision`]: casting weights between f32 and bf16.
//!
//! ```no_run
//! use coca_core::{Pretrained, device::parse_device, tokenizer::ClipTokenizer};
//! # fn main() -> coca_core::Result<()> {
//! let device = parse_device("cpu")?;
//! let coca = Pretrained::load("hf-hub:laion/CoCa-ViT-B-32-laion2B-s13B-b90k", &device)?;
//! let pixels = coca.load_images(&["cat.jpg"], &device)?;
//! let image = coca.model.encode_image(pixels);
//! println!("{:?}", image.features.dims());
//! # Ok(()) }
//! ```

pub mod checkpoint;
pub mod clippo;
pub mod config;
pub mod cpu;
pub mod device;
pub mod error;
pub mod generation;
pub mod hub;
pub mod loss;
pub mod model;
pub mod precision;
pub mod preprocess;
pub mod pretrained;
pub mod randaugment;
pub mod tokenizer;
pub mod zero_shot;

#[cfg(test)]
#[path = "../../tests/support/fixture.rs"]
mod test_paths;

#[cfg(test)]
#[path = "../../tests/support/compare.rs"]
mod test_compare;

pub use config::CocaConfig;
pub use error::{CocaError, Result};
pub use model::Coca;
pub use pretrained::Pretrained;

/// Re-export of the burn version this crate is built on.
pub use burn;
