//! CLIPPO (Tschannen, Mustafa, Houlsby, CVPR 2023): one ViT for images and for text rendered
//! as pixels, as in Google's big_vision.
//!
//! - [`render`]: `render_unifont`, bit-exact (GNU Unifont glyphs from the `unifont` crate).
//! - [`model`]: the one-tower ViT (patch embedding, learned position embedding, pre-LN blocks,
//!   MAP head, `head`, L2 normalisation, temperature) and the contrastive loss.
//! - [`config`]: sizes, the `clippo_B16` preset, sizes derived from a checkpoint's shapes.
//! - [`npz`]: big_vision `.npz` checkpoints, read and written byte-exact.
//! - [`preprocess`]: TensorFlow bilinear resize + `value_range(-1, 1)`.
//!
//! ```no_run
//! use coca_core::clippo::{Clippo, render::{RenderOptions, render_text}};
//! use coca_core::burn::tensor::{Device, Tensor, TensorData};
//! # fn main() -> coca_core::Result<()> {
//! let device = Device::flex();
//! let model = Clippo::load_npz("clippo_b16_yfcc100m.npz".as_ref(), &device)?;
//! let text = render_text("a photo of a cat", &RenderOptions::with_size(224))?;
//! let x = Tensor::from_data(TensorData::new(text.to_unit_range(), [1, 224, 224, 3]), &device);
//! println!("{:?}", model.embed(x).dims());
//! # Ok(()) }
//! ```

pub mod config;
pub mod model;
pub mod npz;
pub mod preprocess;
pub mod render;

use std::path::{Path, PathBuf};

pub use config::ClippoConfig;
pub use model::{Clippo, ClippoLoss, ClippoOutput, contrastive_loss};

use crate::error::{CocaError, Result};

/// Resolves a CLIPPO checkpoint id to a local `.npz`: a file path, or
/// `hf-hub:<owner>/<repo>/<file.npz>` (downloaded into the hub cache).
pub fn resolve_checkpoint(id: &str) -> Result<PathBuf> {
    if let Some(rest) = id.strip_prefix("hf-hub:") {
        let mut parts = rest.splitn(3, '/');
        let (Some(owner), Some(name), Some(file)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CocaError::ModelId {
                id: id.to_string(),
                reason: "expected hf-hub:<owner>/<repo>/<file.npz>".into(),
            });
        };
        let repo = format!("{owner}/{name}");
        return crate::hub::hub_file(&repo, file)?.ok_or_else(|| CocaError::ModelId {
            id: id.to_string(),
            reason: format!("repo {repo} has no file {file}"),
        });
    }
    let path = Path::new(id);
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(CocaError::ModelId {
            id: id.to_string(),
            reason: "no such .npz file (or use hf-hub:<owner>/<repo>/<file.npz>)".into(),
        })
    }
}

/// Loads a CLIPPO checkpoint by path or hub id (see [`resolve_checkpoint`]), strictly; a
/// directory holding `clippo.npz` (a coca-tasks export) also names one.
pub fn load(id: &str, device: &burn::tensor::Device) -> Result<Clippo> {
    let in_dir = Path::new(id).join("clippo.npz");
    if in_dir.is_file() {
        return Clippo::load_npz(&in_dir, device);
    }
    Clippo::load_npz(&resolve_checkpoint(id)?, device)
}

/// Whether a model id names a CLIPPO checkpoint: a `.npz` (path or hub file) or a directory
/// holding `clippo.npz`.
pub fn is_clippo_id(id: &str) -> bool {
    id.to_ascii_lowercase().ends_with(".npz") || Path::new(id).join("clippo.npz").is_file()
}

/// L2-normalised embeddings `[N, out_dim]` of texts, each rendered at the model's image size
/// with the renderer's defaults.
pub fn embed_texts(
    model: &Clippo,
    texts: &[impl AsRef<str>],
    device: &burn::tensor::Device,
) -> Result<burn::tensor::Tensor<2>> {
    let s = model.config().image_size;
    let opts = render::RenderOptions::with_size(s);
    let mut values = Vec::with_capacity(texts.len() * s * s * 3);
    for t in texts {
        values.extend(render::render_text(t.as_ref(), &opts)?.to_unit_range());
    }
    let x = burn::tensor::Tensor::from_data(
        burn::tensor::TensorData::new(values, [texts.len(), s, s, 3]),
        device,
    );
    Ok(model.embed(x))
}

/// L2-normalised embeddings `[N, out_dim]` of image files, preprocessed as big_vision
/// evaluates CLIPPO.
pub fn embed_images(
    model: &Clippo,
    paths: &[impl AsRef<Path>],
    device: &burn::tensor::Device,
) -> Result<burn::tensor::Tensor<2>> {
    let s = model.config().image_size;
    let mut values = Vec::with_capacity(paths.len() * s * s * 3);
    for p in paths {
        let img = crate::preprocess::load_image(p.as_ref())?;
        values.extend(preprocess::preprocess_eval(&img, s as u32));
    }
    let x = burn::tensor::Tensor::from_data(
        burn::tensor::TensorData::new(values, [paths.len(), s, s, 3]),
        device,
    );
    Ok(model.embed(x))
}
