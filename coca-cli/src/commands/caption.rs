//! `coca-cli caption`: batched caption generation. An unreadable image is reported and skipped;
//! the others are captioned and the exit code is non-zero.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use coca_core::generation::{DecodeStrategy, GenerationConfig, generate};
use coca_core::preprocess::load_image;
use coca_core::pretrained::images_to_tensor;
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{CaptionArgs, Decode};

/// File extensions collected from directories (files named explicitly are decoded by content).
const IMAGE_EXTENSIONS: [&str; 8] = ["jpg", "jpeg", "png", "bmp", "gif", "webp", "tif", "tiff"];

/// Expands directories (sorted, non-recursive) into the image files they contain.
pub fn expand_images(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("cannot list {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && has_image_extension(p))
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

fn has_image_extension(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn generation_config(args: &CaptionArgs) -> GenerationConfig {
    let strategy = match args.decode {
        Decode::Greedy => DecodeStrategy::Greedy,
        Decode::Beam => DecodeStrategy::Beam {
            num_beams: args.beams,
            length_penalty: args.length_penalty,
            early_stopping: true,
        },
        Decode::Sample => DecodeStrategy::Sample {
            top_k: args.top_k,
            top_p: args.top_p,
            temperature: args.temperature,
            seed: args.seed,
        },
    };
    GenerationConfig {
        strategy,
        max_new_tokens: args.max_tokens,
        min_new_tokens: args.min_tokens.min(args.max_tokens),
        repetition_penalty: args.repetition_penalty,
        ignore_eos: args.ignore_eos,
        use_cache: !args.no_cache,
    }
}

pub fn run(args: CaptionArgs) -> Result<ExitCode> {
    if args.batch_size == 0 {
        bail!("--batch-size must be positive");
    }
    let images = expand_images(&args.images)?;
    if images.is_empty() {
        bail!("no images found in the given paths");
    }
    let (device, coca, tokenizer) = super::load(&args.model, true)?;
    let tokenizer = tokenizer.context("tokenizer")?;
    let cfg = generation_config(&args);
    let prefix: Vec<u32> = match &args.prefix {
        Some(p) => {
            let ids = tokenizer.encode_unpadded(p)?;
            ids[1..ids.len() - 1].to_vec()
        }
        None => Vec::new(),
    };
    let bar = if images.len() > 1 && !args.json {
        let bar = ProgressBar::new(images.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} images, {per_sec}, eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut failed = 0usize;
    for chunk in images.chunks(args.batch_size) {
        let mut ok = Vec::new();
        let mut decoded = Vec::new();
        for path in chunk {
            match load_image(path) {
                Ok(img) => {
                    ok.push(path);
                    decoded.push(img);
                }
                Err(e) => {
                    failed += 1;
                    bar.suspend(|| eprintln!("error: {e} (skipped)"));
                }
            }
        }
        bar.inc((chunk.len() - ok.len()) as u64);
        if ok.is_empty() {
            continue;
        }
        let pixels = images_to_tensor(&decoded, &coca.preprocess, &device);
        let embs = coca.model.encode_image(pixels).embs;
        let captions = generate(&coca.model, embs, &prefix, &cfg)?;
        for (path, cap) in ok.iter().zip(captions) {
            let all: Vec<u32> = prefix.iter().chain(cap.tokens.iter()).copied().collect();
            let text = tokenizer.decode(&all)?;
            bar.suspend(|| {
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({"image": path.display().to_string(), "caption": text, "tokens": cap.tokens})
                    );
                } else {
                    println!("{}\t{}", path.display(), text);
                }
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    if failed > 0 {
        eprintln!("{failed} of {} image(s) could not be read", images.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
