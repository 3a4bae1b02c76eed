//! `coca-cli zero-shot`.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use coca_core::zero_shot::{DEFAULT_TEMPLATES, build_classifier, build_classifier_with, classify};

use super::AnyModel;

use crate::args::ZeroShotArgs;

pub fn run(args: ZeroShotArgs) -> Result<ExitCode> {
    let labels: Vec<String> = args
        .labels
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if labels.is_empty() {
        bail!("--labels needs at least one class name (comma-separated)");
    }
    let templates: Vec<String> = if args.templates.is_empty() {
        DEFAULT_TEMPLATES.iter().map(|s| s.to_string()).collect()
    } else {
        args.templates.clone()
    };
    let (device, model) = super::load_any(&args.model, true)?;
    let probs = match model {
        AnyModel::Coca(coca, tokenizer) => {
            let tokenizer = tokenizer.context("tokenizer")?;
            let classifier =
                build_classifier(&coca.model, &tokenizer, &labels, &templates, &device)?;
            let pixels = coca.load_images(&args.images, &device)?;
            classify(coca.model.encode_image(pixels).features, classifier)
        }
        // Prompts rendered as pixels through the same ViT as the photos.
        AnyModel::Clippo(clippo) => {
            let classifier = build_classifier_with(&labels, &templates, |prompts| {
                coca_core::clippo::embed_texts(&clippo, prompts, &device)
            })?;
            let z = coca_core::clippo::embed_images(&clippo, &args.images, &device)?;
            classify(z, classifier)
        }
    };
    let probs: Vec<f32> = probs
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    for (i, image) in args.images.iter().enumerate() {
        let row = &probs[i * labels.len()..(i + 1) * labels.len()];
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        order.truncate(args.top.max(1));
        if args.json {
            let top: Vec<_> = order
                .iter()
                .map(|&c| serde_json::json!({"label": labels[c], "prob": row[c]}))
                .collect();
            println!(
                "{}",
                serde_json::json!({"image": image.display().to_string(), "top": top})
            );
        } else {
            println!("{}", image.display());
            for &c in &order {
                println!("  {:>6.2}%  {}", row[c] * 100.0, labels[c]);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
