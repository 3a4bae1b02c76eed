//! The classification plumbing shared by every task: [`PooledClassifier`], an attentional
//! pooler followed by a linear classifier (one query over the multimodal decoder outputs is the
//! CoCa paper's task head for VQA / SNLI-VE / NLVR2; several averaged queries over encoder
//! tokens serve `classify` and `video`, of either family), the decoder forward pass that feeds
//! it, softmax cross-entropy and argmax.

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor};
use coca_core::Coca;
use coca_core::model::attention::{key_bias, not_pad};
use coca_core::model::attn_pool::AttentionalPooler;
use coca_core::model::layers::Linear;

/// Attentional pooler (1 query) + linear classifier.
#[derive(Module, Debug)]
pub struct PooledClassifier {
    pub pool: AttentionalPooler,
    pub classifier: Linear,
}

impl PooledClassifier {
    /// A head over `width`-wide decoder outputs; `inputs` pooled vectors are concatenated before
    /// the classifier (2 for NLVR2's image pairs).
    pub fn new(width: usize, heads: usize, inputs: usize, classes: usize, device: &Device) -> Self {
        Self {
            pool: AttentionalPooler::new(width, width, heads, 1, device),
            classifier: Linear::new(width * inputs, classes, true, 0.02, device),
        }
    }

    /// A head with `queries` learned queries whose outputs are averaged before the classifier
    /// (`classify` and `video`; one query is the paper's task pooler).
    pub fn with_queries(
        width: usize,
        heads: usize,
        queries: usize,
        classes: usize,
        device: &Device,
    ) -> Self {
        Self {
            pool: AttentionalPooler::new(width, width, heads, queries.max(1), device),
            classifier: Linear::new(width, classes, true, 0.02, device),
        }
    }

    /// Logits `[B, classes]` of tokens `[B, L, W]`, every token pooled (query outputs
    /// averaged).
    pub fn classify_tokens(&self, tokens: Tensor<3>) -> Tensor<2> {
        let [b, _, w] = tokens.dims();
        let pooled = self.pool.forward(tokens).mean_dim(1).reshape([b, w]);
        self.classifier.forward(pooled)
    }

    /// A head over the multimodal decoder of `coca` (its width).
    pub fn over_decoder(
        coca: &Coca,
        heads: usize,
        inputs: usize,
        classes: usize,
        device: &Device,
    ) -> Self {
        let width = coca.text_decoder.ln_final.weight.dims()[0];
        Self::new(width, heads, inputs, classes, device)
    }

    /// Pools every token of `[B, N, W]` (e.g. CLIPPO's encoder outputs) into `[B, W]`.
    pub fn pool_all(&self, states: Tensor<3>) -> Tensor<2> {
        let [b, _, w] = states.dims();
        self.pool.forward_masked(states, None).reshape([b, w])
    }

    /// Pools decoder states `[B, L, W]` (padding hidden by `tokens`) into `[B, W]`.
    pub fn pool(&self, states: Tensor<3>, tokens: Tensor<2, Int>) -> Tensor<2> {
        let [b, _, w] = states.dims();
        let bias = key_bias(not_pad(tokens, coca_core::tokenizer::PAD));
        self.pool.forward_masked(states, Some(bias)).reshape([b, w])
    }
}

/// Multimodal decoder states (before `ln_final`) `[B, L, W]` for images and token ids.
pub fn multimodal_states(coca: &Coca, pixels: Tensor<4>, tokens: Tensor<2, Int>) -> Tensor<3> {
    let image = coca.encode_image(pixels);
    let text = coca.encode_text(tokens);
    coca.text_decoder.hidden(image.embs, text.token_embs)
}

/// Attention heads of the head's pooler: the decoder's head count.
pub fn head_heads(coca_cfg: &coca_core::CocaConfig) -> usize {
    coca_cfg.multimodal_cfg.heads
}

/// Class indices `[B]` of a batch.
pub fn label_tensor(labels: Vec<usize>, device: &Device) -> Tensor<1, Int> {
    let n = labels.len();
    let labels: Vec<i64> = labels.into_iter().map(|l| l as i64).collect();
    Tensor::from_data(burn::tensor::TensorData::new(labels, [n]), device)
}

/// Index of the largest value in each row of `[B, C]` logits.
pub fn argmax_rows(logits: Tensor<2>) -> Vec<usize> {
    let c = logits.dims()[1];
    let v: Vec<f32> = logits
        .into_data()
        .convert::<f32>()
        .try_to_vec()
        .unwrap_or_default();
    v.chunks(c)
        .map(|row| coca_core::generation::argmax(row) as usize)
        .collect()
}

/// Mean cross-entropy of logits `[B, C]` against class indices `[B]`.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let b = logits.dims()[0];
    let logp = log_softmax(coca_core::precision::f32(logits), 1);
    -logp.gather(1, labels.reshape([b, 1])).mean()
}
