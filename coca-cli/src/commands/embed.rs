//! `coca-cli embed`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Result, bail};
use coca_core::burn::tensor::Tensor;
use coca_core::checkpoint::write_safetensors;
use coca_core::pretrained::tokens_to_tensor;

use super::AnyModel;
use crate::args::EmbedArgs;

fn data<const D: usize>(t: Tensor<D>) -> coca_core::burn::tensor::TensorData {
    t.into_data().convert::<f32>()
}

pub fn run(args: EmbedArgs) -> Result<ExitCode> {
    if args.images.is_empty() && args.texts.is_empty() {
        bail!("nothing to embed: give at least one --image or --text");
    }
    let (device, model) = super::load_any(&args.model, !args.texts.is_empty())?;
    let mut out = BTreeMap::new();
    match model {
        AnyModel::Coca(coca, tokenizer) => {
            if !args.images.is_empty() {
                let pixels = coca.load_images(&args.images, &device)?;
                let enc = coca.model.encode_image(pixels);
                out.insert("image_features".to_string(), data(enc.features));
                out.insert("image_embs".to_string(), data(enc.embs));
            }
            if let Some(tokenizer) = tokenizer {
                let ctx = coca.model.context_length();
                let ids = args
                    .texts
                    .iter()
                    .map(|t| tokenizer.encode(t, ctx))
                    .collect::<Result<Vec<_>, _>>()?;
                let enc = coca.model.encode_text(tokens_to_tensor(&ids, &device));
                out.insert("text_features".to_string(), data(enc.features));
                out.insert("text_token_embs".to_string(), data(enc.token_embs));
            }
        }
        // One tower for both: photos preprocessed as big_vision evaluates, texts rendered at
        // the model's image size with the renderer's defaults.
        AnyModel::Clippo(clippo) => {
            if !args.images.is_empty() {
                let z = coca_core::clippo::embed_images(&clippo, &args.images, &device)?;
                out.insert("image_features".to_string(), data(z));
            }
            if !args.texts.is_empty() {
                let z = coca_core::clippo::embed_texts(&clippo, &args.texts, &device)?;
                out.insert("text_features".to_string(), data(z));
            }
        }
    }
    write_safetensors(&args.out, &out, None)?;
    tracing::info!(out = %args.out.display(), tensors = out.len(), "embeddings written");
    Ok(ExitCode::SUCCESS)
}
