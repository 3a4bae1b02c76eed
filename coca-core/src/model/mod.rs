//! The CoCa model. The module tree mirrors open_clip's state dict: `visual`, `text`,
//! `text_decoder`, `logit_scale`, so each field path is a checkpoint key.

pub mod attention;
pub mod attn_pool;
pub mod block;
pub mod kv_cache;
pub mod layers;
pub mod text;
pub mod text_decoder;
pub mod visual;

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor};

use crate::config::CocaConfig;
pub use text::{TextOutput, TextTransformer};
pub use text_decoder::MultimodalTransformer;
pub use visual::{VisionOutput, VisionTransformer};

/// Maximum of the learned temperature: `ln(100)`.
pub const LOGIT_SCALE_MAX: f64 = 4.605_170_185_988_092;

/// Image side of [`Coca::forward`].
#[derive(Debug, Clone)]
pub struct ImageEncoding {
    /// L2-normalised contrastive embedding `[B, embed_dim]`.
    pub features: Tensor<2>,
    /// Decoder memory: pooler outputs 1.. `[B, n_queries - 1, embed_dim]`.
    pub embs: Tensor<3>,
}

/// Text side of [`Coca::forward`].
#[derive(Debug, Clone)]
pub struct TextEncoding {
    /// L2-normalised contrastive embedding `[B, embed_dim]`.
    pub features: Tensor<2>,
    /// Unimodal decoder outputs (before `ln_final`, CLS dropped) `[B, L, width]`.
    pub token_embs: Tensor<3>,
}

/// Everything [`Coca::forward`] computes.
#[derive(Debug, Clone)]
pub struct CocaOutput {
    pub image: ImageEncoding,
    pub text: TextEncoding,
    /// Multimodal decoder states (before `ln_final`) with teacher forcing on `text[:, :-1]`
    /// `[B, L - 1, W]`; [`CocaOutput::logits`] turns them into vocabulary logits.
    pub hidden: Tensor<3>,
    /// Caption labels `text[:, 1:]` `[B, L - 1]`.
    pub labels: Tensor<2, Int>,
    /// `exp(logit_scale)`, shape `[1]`.
    pub logit_scale: Tensor<1>,
}

impl CocaOutput {
    /// Caption logits `[B, L - 1, vocab]` (teacher forcing).
    pub fn logits(&self, model: &Coca) -> Tensor<3> {
        model.text_decoder.logits(self.hidden.clone())
    }
}

/// CoCa: image encoder + attentional pooler, unimodal text decoder, multimodal text decoder.
#[derive(Module, Debug)]
pub struct Coca {
    pub visual: VisionTransformer,
    pub text: TextTransformer,
    pub text_decoder: MultimodalTransformer,
    /// Log temperature (a scalar `[]` in checkpoints, `[1]` here).
    pub logit_scale: Param<Tensor<1>>,
}

impl Coca {
    /// A model with random weights (open_clip's initialisation scales).
    pub fn new(cfg: &CocaConfig, device: &Device) -> Self {
        Self {
            visual: VisionTransformer::new(cfg, device),
            text: TextTransformer::new(cfg, device),
            text_decoder: MultimodalTransformer::new(cfg, device),
            logit_scale: Param::from_tensor(Tensor::from_floats([(1.0f32 / 0.07).ln()], device)),
        }
    }

    /// `pixels [B, 3, S, S]` -> normalised features and decoder memory.
    pub fn encode_image(&self, pixels: Tensor<4>) -> ImageEncoding {
        let out = self.visual.forward(pixels);
        ImageEncoding {
            features: l2_normalize(out.pooled),
            embs: out.tokens,
        }
    }

    /// `text [B, L]` token ids -> normalised features and token embeddings.
    pub fn encode_text(&self, text: Tensor<2, Int>) -> TextEncoding {
        let out = self.text.forward(text);
        TextEncoding {
            features: l2_normalize(out.pooled),
            token_embs: out.tokens,
        }
    }

    /// Caption logits for decoder memory `image_embs` and unimodal token embeddings.
    pub fn decode(&self, image_embs: Tensor<3>, token_embs: Tensor<3>) -> Tensor<3> {
        self.text_decoder.forward(image_embs, token_embs)
    }

    /// The full forward pass of open_clip's `CoCa.forward` (teacher forcing).
    pub fn forward(&self, pixels: Tensor<4>, text: Tensor<2, Int>) -> CocaOutput {
        let image = self.encode_image(pixels);
        self.forward_with_image(image, text)
    }

    /// [`Coca::forward`] reusing an image encoding.
    pub fn forward_with_image(&self, image: ImageEncoding, text: Tensor<2, Int>) -> CocaOutput {
        let [b, l] = text.dims();
        let text_enc = self.encode_text(text.clone());
        let w = text_enc.token_embs.dims()[2];
        let inputs = text_enc.token_embs.clone().slice([0..b, 0..l - 1, 0..w]);
        let hidden = self.text_decoder.hidden(image.embs.clone(), inputs);
        CocaOutput {
            image,
            text: text_enc,
            hidden,
            labels: text.slice([0..b, 1..l]),
            logit_scale: self.logit_scale.val().exp(),
        }
    }

    /// Clamps `logit_scale` to `[0, ln 100]` (open_clip does this after every optimiser step).
    pub fn clamp_logit_scale(self) -> Self {
        let logit_scale = self.logit_scale.map(|t| t.clamp(0.0, LOGIT_SCALE_MAX));
        Self {
            logit_scale,
            ..self
        }
    }

    /// Context length of the text tower (without CLS).
    pub fn context_length(&self) -> usize {
        self.text.context_length()
    }
}

/// Divides each row by its L2 norm (with open_clip's `F.normalize` epsilon 1e-12).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}
