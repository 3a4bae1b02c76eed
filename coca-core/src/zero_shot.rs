//! Zero-shot classification from class names and prompt templates, and image-text retrieval.

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use crate::error::{CocaError, Result};
use crate::model::{Coca, l2_normalize};
use crate::pretrained::tokens_to_tensor;
use crate::tokenizer::ClipTokenizer;

/// The prompt used when none is given.
pub const DEFAULT_TEMPLATES: [&str; 1] = ["a photo of a {}."];

/// Builds a classifier `[C, D]`: for each class, the normalised mean of the normalised text
/// features of every template (`{}` replaced by the class name), as in CLIP/open_clip.
pub fn build_classifier(
    model: &Coca,
    tokenizer: &ClipTokenizer,
    classnames: &[impl AsRef<str>],
    templates: &[impl AsRef<str>],
    device: &Device,
) -> Result<Tensor<2>> {
    let ctx = model.context_length();
    build_classifier_with(classnames, templates, |prompts| {
        let ids = prompts
            .iter()
            .map(|p| tokenizer.encode(p, ctx))
            .collect::<Result<Vec<_>>>()?;
        Ok(model.encode_text(tokens_to_tensor(&ids, device)).features)
    })
}

/// [`build_classifier`] over any text encoder: `embed` maps the prompts of one class to their
/// features `[T, D]` (CoCa: tokenized through the text tower; CLIPPO: rendered through its ViT).
pub fn build_classifier_with(
    classnames: &[impl AsRef<str>],
    templates: &[impl AsRef<str>],
    mut embed: impl FnMut(&[String]) -> Result<Tensor<2>>,
) -> Result<Tensor<2>> {
    if classnames.is_empty() {
        return Err(CocaError::Invalid(
            "zero-shot classification needs at least one class name".into(),
        ));
    }
    if templates.is_empty() || templates.iter().any(|t| !t.as_ref().contains("{}")) {
        return Err(CocaError::Invalid(
            "every prompt template must contain `{}`".into(),
        ));
    }
    let mut rows = Vec::with_capacity(classnames.len());
    for name in classnames {
        let prompts: Vec<String> = templates
            .iter()
            .map(|t| t.as_ref().replace("{}", name.as_ref()))
            .collect();
        rows.push(l2_normalize(embed(&prompts)?).mean_dim(0));
    }
    Ok(l2_normalize(Tensor::cat(rows, 0)))
}

/// Class probabilities `[N, C]`: `softmax(100 * image_features @ classifier^T)`.
pub fn classify(image_features: Tensor<2>, classifier: Tensor<2>) -> Tensor<2> {
    softmax(image_features.matmul(classifier.transpose()) * 100.0, 1)
}

/// Cosine similarities `[N_images, N_texts]` of normalised features.
pub fn similarity(image_features: Tensor<2>, text_features: Tensor<2>) -> Tensor<2> {
    image_features.matmul(text_features.transpose())
}

/// Recall@k of retrieval where query `i` matches candidate `i`: the share of rows of
/// `scores [N, M]` whose own column ranks among the top `k`.
pub fn recall_at_k(scores: &[Vec<f32>], k: usize) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    let hits = scores
        .iter()
        .enumerate()
        .filter(|(i, row)| {
            let own = row.get(*i).copied().unwrap_or(f32::NEG_INFINITY);
            row.iter().filter(|&&s| s > own).count() < k
        })
        .count();
    hits as f64 / scores.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_counts_rank_of_the_matching_column() {
        let scores = vec![
            vec![0.9, 0.1, 0.0],
            vec![0.8, 0.5, 0.1],
            vec![0.1, 0.2, 0.3],
        ];
        assert_eq!(recall_at_k(&scores, 1), 2.0 / 3.0);
        assert_eq!(recall_at_k(&scores, 2), 1.0);
    }
}
