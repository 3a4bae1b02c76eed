//! Host-side inputs shared by the tasks: image decoding + preprocessing and tokenization,
//! and stacking them into device tensors. CLIPPO's inputs (photos and rendered text, NHWC)
//! are in [`rendered`].

pub mod rendered;

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
use coca_core::preprocess::{PreprocessConfig, load_image, preprocess_eval, preprocess_train_with};
use coca_core::randaugment::RandAugment;
use coca_core::tokenizer::ClipTokenizer;
use rand::rngs::StdRng;

use crate::engine::backbone::CocaBackbone;
use crate::engine::config::{Augment, TrainSection};
use crate::error::Result;

/// Preprocessing and tokenization settings of a model.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub preprocess: PreprocessConfig,
    pub tokenizer: ClipTokenizer,
    /// Token context length of the text tower.
    pub context_length: usize,
    /// Train-time RandomResizedCrop (else the eval resize + centre crop).
    pub crop: bool,
    /// Train-time RandAugment after the crop.
    pub randaugment: Option<RandAugment>,
}

impl Inputs {
    /// The inputs a backbone expects.
    pub fn new(backbone: &CocaBackbone) -> Self {
        Self {
            preprocess: backbone.preprocess.clone(),
            tokenizer: backbone.tokenizer.clone(),
            context_length: backbone.config.text_cfg.context_length,
            crop: true,
            randaugment: None,
        }
    }

    /// Takes the train-time augmentation of `[train]`.
    pub fn with_augmentation(mut self, train: &TrainSection) -> Self {
        self.crop = train.augment == Augment::Crop;
        self.randaugment = train.randaugment;
        self
    }

    /// Decodes and preprocesses an image: the train-time augmentation when `augment` is given,
    /// else the eval transform. Returns `[3, S, S]` values.
    pub fn image(&self, path: &Path, augment: Option<&mut StdRng>) -> Result<Vec<f32>> {
        let img = load_image(path)?;
        Ok(match augment {
            Some(rng) => preprocess_train_with(
                &img,
                &self.preprocess,
                self.crop,
                self.randaugment.as_ref(),
                rng,
            ),
            None => preprocess_eval(&img, &self.preprocess),
        })
    }

    /// Token ids padded to the context length.
    pub fn text(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode(text, self.context_length)?)
    }

    /// Stacks preprocessed images into `[N, 3, S, S]`.
    pub fn stack_images(&self, images: Vec<Vec<f32>>, device: &Device) -> Tensor<4> {
        let s = self.preprocess.image_size;
        let n = images.len();
        Tensor::from_data(TensorData::new(images.concat(), [n, 3, s, s]), device)
    }
}

/// An image with one text, prepared on the host.
pub type ImageText = (Vec<f32>, Vec<u32>);

impl Inputs {
    /// Prepares an (image, text) pair: the input of CoCa's own objective.
    pub fn image_text(
        &self,
        image: &Path,
        text: &str,
        augment: Option<&mut StdRng>,
    ) -> Result<ImageText> {
        Ok((self.image(image, augment)?, self.text(text)?))
    }

    /// Stacks prepared pairs into `(pixels [N, 3, S, S], tokens [N, L])`.
    pub fn collate_image_text(
        &self,
        items: Vec<ImageText>,
        device: &Device,
    ) -> (Tensor<4>, Tensor<2, Int>) {
        let (images, tokens): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        (
            self.stack_images(images, device),
            stack_tokens(&tokens, device),
        )
    }
}

/// Stacks equal-length token rows into `[N, L]`.
pub fn stack_tokens(rows: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
    coca_core::pretrained::tokens_to_tensor(rows, device)
}
